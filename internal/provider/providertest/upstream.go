package providertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Request is one request as the upstream received it.
type Request struct {
	Header http.Header
	Path   string
	Query  string // the raw query, without the '?'
	Body   []byte
}

// Upstream is an httptest server that records every request, then hands
// it to the test's handler. Its methods are safe for concurrent use.
type Upstream struct {
	*httptest.Server

	mu   sync.Mutex
	reqs []Request
}

// NewUpstream starts an Upstream that answers with h, and closes it when
// t's test ends. h can read the request's body again.
func NewUpstream(t testing.TB, h http.HandlerFunc) *Upstream {
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, Request{r.Header.Clone(), r.URL.Path, r.URL.RawQuery, b})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// Requests returns a copy of the requests received so far, in the order
// they arrived.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// SSE returns a handler that writes events, joined, as an event stream,
// flushing after each event (each run ending in a blank line).
func SSE(events ...string) http.HandlerFunc {
	stream := strings.Join(events, "")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for ev := range strings.SplitAfterSeq(stream, "\n\n") {
			io.WriteString(w, ev)
			rc.Flush()
		}
	}
}

// JSON returns a handler that answers with status and body as
// application/json, setting header over that.
func JSON(status int, header map[string]string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write(body)
	}
}

// Serve returns a handler that serves the fixture at path (see Fixture):
// as SSE for a .sse file, and as JSON with a 200 for a .json one. It reads
// the fixture at once, and stops t for any other extension.
func Serve(t testing.TB, path string) http.HandlerFunc {
	t.Helper()
	b := Fixture(t, path)
	switch filepath.Ext(path) {
	case ".sse":
		return SSE(string(b))
	case ".json":
		return JSON(200, nil, b)
	}
	t.Fatalf("Serve %s: not a .sse or .json fixture", path)
	return nil
}

// Cut returns a handler that starts an event stream with text, flushes
// it, and then drops the connection, as a network cut would. It fails t
// if the connection cannot be taken over.
func Cut(t testing.TB, text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, text)
		rc := http.NewResponseController(w)
		rc.Flush()
		conn, _, err := rc.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}
}

// Stall is a handler that never answers, until the client leaves.
func Stall(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// CancelOnArrival returns a context derived from t's, and a handler that
// cancels that context when a request arrives and then stalls: a client
// that leaves while it waits for the headers.
func CancelOnArrival(t testing.TB) (context.Context, http.HandlerFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	return ctx, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		Stall(w, r)
	}
}

// StallAfter returns a handler that sends a 200 with text as the start of
// its body, flushes it, and then goes silent until the client leaves. It
// sets no Content-Type.
func StallAfter(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, text)
		w.(http.Flusher).Flush()
		Stall(w, r)
	}
}
