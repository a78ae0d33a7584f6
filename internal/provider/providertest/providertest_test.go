package providertest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keel-ai/keel/internal/llm"
)

// TestUpstream checks what the upstream records, and that its handler can
// read the body too.
func TestUpstream(t *testing.T) {
	u := NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); string(b) != "body" {
			t.Errorf("the handler read %q, want the body", b)
		}
		JSON(201, map[string]string{"X-A": "b"}, []byte(`{}`))(w, r)
	})
	req, _ := http.NewRequest("POST", u.URL+"/v1/x?alt=sse", strings.NewReader("body"))
	req.Header.Set("X-Key", "k")
	resp, err := u.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-A") != "b" || string(b) != "{}" {
		t.Errorf("answer %d %v %s", resp.StatusCode, resp.Header, b)
	}
	got := u.Requests()
	if len(got) != 1 || got[0].Path != "/v1/x" || got[0].Query != "alt=sse" || string(got[0].Body) != "body" || got[0].Header.Get("X-Key") != "k" {
		t.Errorf("recorded %+v", got)
	}
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name    string
		h       http.HandlerFunc
		ctype   string
		body    string
		readErr bool
	}{
		{"SSE", SSE("data: 1\n\n", "data: 2\n\n"), "text/event-stream", "data: 1\n\ndata: 2\n\n", false},
		{"Serve .sse", Serve(t, "openai-chat/stream-text-usage.sse"), "text/event-stream", string(Fixture(t, "openai-chat/stream-text-usage.sse")), false},
		{"Serve .json", Serve(t, "openai-chat/response-basic.json"), "application/json", string(Fixture(t, "openai-chat/response-basic.json")), false},
		{"Cut", Cut(t, "data: 1"), "text/event-stream", "data: 1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := NewUpstream(t, tt.h)
			resp, err := u.Client().Get(u.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if (err != nil) != tt.readErr || resp.Header.Get("Content-Type") != tt.ctype || string(b) != tt.body {
				t.Errorf("read %q, %v with Content-Type %q; want %q, error %v, %q", b, err, resp.Header.Get("Content-Type"), tt.body, tt.readErr, tt.ctype)
			}
		})
	}
}

// stream is an llm.Stream of events, then err.
type stream struct {
	events []llm.Event
	err    error
	closed bool
}

func (s *stream) Recv() (*llm.Event, error) {
	if len(s.events) == 0 {
		return nil, s.err
	}
	ev := &s.events[0]
	s.events = s.events[1:]
	return ev, nil
}

func (s *stream) Close() error { s.closed = true; return nil }

func TestDrain(t *testing.T) {
	s := &stream{events: []llm.Event{{Text: "Hel"}, {Text: "lo"}}, err: io.EOF}
	a, err := Drain(t, s)
	if string(a.Text) != "Hello" || err != io.EOF || !s.closed {
		t.Errorf("Drain = %q, %v (closed %v)", a.Text, err, s.closed)
	}
}

func TestKindOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want llm.Kind
	}{
		{&llm.Error{Kind: llm.KindTimeout}, llm.KindTimeout},
		{fmt.Errorf("wrapped: %w", &llm.Error{Kind: llm.KindAuth}), llm.KindAuth},
		{errors.New("plain"), 255},
		{nil, 255},
	} {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestCheckError checks that the cause is left out of the comparison.
func TestCheckError(t *testing.T) {
	err := fmt.Errorf("x: %w", &llm.Error{Kind: llm.KindAuth, Status: 401, Err: io.EOF})
	CheckError(t, err, llm.Error{Kind: llm.KindAuth, Status: 401})
}
