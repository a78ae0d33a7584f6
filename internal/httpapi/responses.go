package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/wire"
)

// responses serves POST /v1/responses (OpenAI Responses API). With a
// response store, responses the client asks to store (store: true, the
// API's default) are kept under the caller's key, so previous_response_id
// works; without one, the API is stateless.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) int {
	start := time.Now()
	api := wire.ResponsesAPI{}
	body, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, api, err)
	}
	rr, err := wire.DecodeResponsesRequest(body)
	if err != nil {
		return writeError(w, api, err)
	}
	key := keyID(r)
	store := s.cfg.Responses
	var load func(string) (*chat.Response, error)
	if store != nil {
		load = func(id string) (*chat.Response, error) { return store.Response(r.Context(), id, key) }
	} else {
		rr.Store = false
	}
	if err := rr.Resolve(load); err != nil {
		return writeError(w, api, err)
	}
	enc := wire.NewResponsesEncoder(wire.NewResponseID(), rr)
	enc.Created = start
	saving := &savingEncoder{ResponsesEncoder: enc, store: store, key: key, log: s.cfg.Log}
	return s.runTurn(w, r, responsesAPI{wire.ResponsesAPI{Response: enc}, saving}, rr.Request, start)
}

// responsesAPI is the Responses API for one request, whose answer is saved
// as it completes.
type responsesAPI struct {
	wire.ResponsesAPI
	enc *savingEncoder
}

func (a responsesAPI) Encoder(*llm.Request) wire.StreamEncoder { return a.enc }

func (a responsesAPI) AppendAnswer(dst []byte, ans *llm.Answer) []byte {
	dst = a.enc.ResponsesEncoder.AppendAnswer(dst, ans)
	a.enc.save()
	return dst
}

// savingEncoder stores the response when it completes, before its final
// event is written: clients send the next turn as soon as they see
// response.completed, so a save after the flush would race them.
type savingEncoder struct {
	*wire.ResponsesEncoder
	store chat.ResponseStore
	key   string
	log   *slog.Logger
}

func (e *savingEncoder) AppendDone(dst []byte, u llm.Usage) []byte {
	dst = e.ResponsesEncoder.AppendDone(dst, u)
	e.save()
	return dst
}

func (e *savingEncoder) save() {
	if e.store == nil {
		return
	}
	rec := e.Record(e.key)
	if rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.store.SaveResponse(ctx, rec); err != nil {
		e.log.Error("storing a response", "id", rec.ID, "err", err)
	}
}
