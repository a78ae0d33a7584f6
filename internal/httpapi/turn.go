package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/keel-ai/keel/internal/auth"
	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/turn"
	"github.com/keel-ai/keel/internal/wire"
)

// clientAPI is one client-facing API's wire format: how its requests
// decode, and how answers and errors encode. Every API is served by every
// upstream through llm's neutral model (issue 4: no pairwise translators).
type clientAPI interface {
	Name() string
	Decode(body []byte) (*llm.Request, error)
	Encoder(r *llm.Request) wire.StreamEncoder
	AppendAnswer(dst []byte, a *llm.Answer) []byte
	AppendError(dst []byte, e wire.APIError) []byte
	// Relay is the Wire of upstream answers this API's non-streaming
	// clients can be sent unchanged, or WireNone.
	Relay() llm.Wire
}

// serveTurn serves one chat turn in api's format.
func (s *Server) serveTurn(api clientAPI) handler {
	return func(w http.ResponseWriter, r *http.Request) int {
		start := time.Now()
		body, err := s.readBody(w, r)
		if err != nil {
			return writeError(w, api, err)
		}
		req, err := api.Decode(body)
		if err != nil {
			return writeError(w, api, err)
		}
		return s.runTurn(w, r, api, req, start)
	}
}

// runTurn runs a decoded request and writes its answer in api's format.
func (s *Server) runTurn(w http.ResponseWriter, r *http.Request, api clientAPI, req *llm.Request, start time.Time) int {
	m := turn.Meta{ID: w.Header().Get("X-Request-Id"), API: api.Name(), Start: start, KeyID: keyID(r)}
	t, err := s.cfg.Turns.Start(r.Context(), m, req)
	if err != nil {
		status := writeError(w, api, err)
		t.Finish(status, err)
		return status
	}
	w.Header().Set("X-Keel-Target", t.Target())
	var status int
	if req.Stream {
		status, err = s.stream(w, t, api.Encoder(req))
	} else {
		status, err = s.answer(w, t, api)
	}
	if status == http.StatusOK {
		// By API, not model: model names come from clients, and a label
		// per name would let them grow /metrics without bound.
		s.metrics.ttft.WithLabelValues(api.Name()).Observe(t.TTFT().Seconds())
	}
	t.Finish(status, err)
	return status
}

// keyID returns the id of the API key the request came with, if any.
func keyID(r *http.Request) string {
	if k, ok := auth.KeyFrom(r.Context()); ok {
		return k.ID
	}
	return ""
}

// stream relays the answer as SSE, flushing as events arrive: after every
// event unless the next one has already arrived too, so that a burst from
// the upstream leaves in one write while no event is ever held back.
// (STYLE.md says flush after every event; this is the same promise, minus
// a syscall per event of a burst: scripts/bench found one write per event
// to be 41% of keel's CPU on fast streams.) After the 200 has gone out, a
// failure is reported in band and the stream ends without the API's end
// marker, so no client mistakes it for a complete answer.
func (s *Server) stream(w http.ResponseWriter, t *turn.Turn, enc wire.StreamEncoder) (int, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A burst goes to the server in writes of about writeAt bytes and is
	// flushed once, at its end: keel's server (internal/h1) holds the
	// writes and sends the burst in one system call, and net/http's takes
	// a write of 4 KiB or more past its buffers. Event by event, each
	// would be copied twice more; collected whole, buf would grow (and be
	// allocated again) for every stream.
	buf := make([]byte, 0, writeAt+1024)
	for {
		ev, err := t.Recv()
		switch {
		case err == io.EOF:
			buf = enc.AppendDone(buf, t.Usage())
		case err != nil:
			buf = enc.AppendError(buf, errorOf(err))
		default:
			buf = enc.AppendEvent(buf, ev)
			if t.Buffered() && len(buf) < writeAt {
				continue
			}
		}
		if len(buf) > 0 {
			if _, werr := w.Write(buf); werr != nil {
				return statusClientClosed, werr
			}
			buf = buf[:0]
		}
		switch {
		case err == io.EOF:
			// No flush: net/http flushes what is left with the body's
			// terminating chunk when the handler returns, in one write.
			return http.StatusOK, nil
		case err != nil:
			return errorOf(err).Status, err
		case t.Buffered():
			continue
		}
		if ferr := rc.Flush(); ferr != nil {
			return statusClientClosed, ferr
		}
	}
}

// writeAt is how many bytes of a burst collect before a write.
const writeAt = 4 << 10

// answer collects the whole answer and writes it in one body. An
// upstream's own body is relayed untouched when it is the whole answer in
// the client's format.
func (s *Server) answer(w http.ResponseWriter, t *turn.Turn, api clientAPI) (int, error) {
	var a llm.Answer
	var raw []byte
	for {
		ev, err := t.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return writeError(w, api, err), err
		}
		a.Add(ev)
		raw = nil
		if a.Events == 1 && ev.Wire != llm.WireNone && ev.Wire == api.Relay() {
			raw = append([]byte(nil), ev.Raw...)
		}
	}
	if raw == nil {
		raw = api.AppendAnswer(nil, &a)
	}
	// With its length known, the body leaves in one write, unchunked.
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	w.Write(raw)
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
