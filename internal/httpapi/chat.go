package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/keel-ai/keel/internal/auth"
	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/turn"
	"github.com/keel-ai/keel/internal/wire"
)

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) int {
	start := time.Now()
	body, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, err)
	}
	req, err := wire.DecodeChatRequest(body)
	if err != nil {
		return writeError(w, err)
	}
	m := turn.Meta{ID: w.Header().Get("X-Request-Id"), API: "chat.completions", Start: start}
	if k, ok := auth.KeyFrom(r.Context()); ok {
		m.KeyID = k.ID
	}
	t, err := s.cfg.Turns.Start(r.Context(), m, req)
	if err != nil {
		status := writeError(w, err)
		t.Finish(status, err)
		return status
	}
	w.Header().Set("X-Keel-Target", t.Target())
	var status int
	if req.Stream {
		status, err = s.streamChat(w, t, req)
	} else {
		status, err = s.answerChat(w, t)
	}
	t.Finish(status, err)
	return status
}

// streamChat relays the answer as SSE, flushing every event as it arrives.
// After the 200 has gone out, a failure is reported in band and the stream
// ends without [DONE], so no client mistakes it for a complete answer.
func (s *Server) streamChat(w http.ResponseWriter, t *turn.Turn, req *llm.Request) (int, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := wire.ChatEncoder{IncludeUsage: req.IncludeUsage}
	buf := make([]byte, 0, 4096)
	for {
		ev, err := t.Recv()
		switch {
		case err == io.EOF:
			buf = enc.AppendDone(buf[:0], t.Usage())
		case err != nil:
			e := errorOf(err)
			buf = append(buf[:0], "data: "...)
			buf = wire.AppendChatError(buf, e.Message, e.Type, e.Param, e.Code)
			buf = append(buf, "\n\n"...)
		default:
			buf = enc.AppendEvent(buf[:0], ev)
			if len(buf) == 0 {
				continue
			}
		}
		if _, werr := w.Write(buf); werr != nil {
			return statusClientClosed, werr
		}
		if ferr := rc.Flush(); ferr != nil {
			return statusClientClosed, ferr
		}
		if err == io.EOF {
			return http.StatusOK, nil
		}
		if err != nil {
			return errorOf(err).Status, err
		}
	}
}

// answerChat collects the whole answer and writes one chat.completion. An
// upstream's own body is relayed untouched when it is the whole answer.
func (s *Server) answerChat(w http.ResponseWriter, t *turn.Turn) (int, error) {
	var a llm.Answer
	var raw []byte
	for {
		ev, err := t.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return writeError(w, err), err
		}
		a.Add(ev)
		raw = nil
		if a.Events == 1 && ev.Wire == llm.WireChatCompletion {
			raw = ev.Raw
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if raw != nil {
		w.Write(raw)
	} else {
		w.Write(wire.AppendChatCompletion(nil, &a))
	}
	return http.StatusOK, nil
}

// readBody reads a request body up to the configured limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, chat.Errorf(chat.ETooLarge, "the request body exceeds %d bytes", tooLarge.Limit)
	case err != nil:
		return nil, chat.Errorf(chat.EInvalid, "could not read the request body")
	}
	return b, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
	return status
}
