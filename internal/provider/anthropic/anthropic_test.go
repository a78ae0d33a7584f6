package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/wire"
)

// examples are the recorded wire examples, kept with the wire package.
const examples = "../../wire/testdata/examples"

func fixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seen is one request as the upstream received it.
type seen struct {
	Header http.Header
	Path   string
	Body   []byte
}

// upstream is an httptest server whose handler the test sets, and which
// records every request.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []seen
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{handler: h}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Header.Clone(), r.URL.Path, b})
		u.mu.Unlock()
		u.handler(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// serveSSE writes a recorded stream one event at a time, flushing each.
func serveSSE(stream []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for ev := range strings.SplitAfterSeq(string(stream), "\n\n") {
			io.WriteString(w, ev)
			rc.Flush()
		}
	}
}

func serveJSON(status int, header map[string]string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write(body)
	}
}

// newClient returns a client of u, quiet unless the test fails.
func newClient(t *testing.T, u *upstream, cfg Config) *Client {
	if cfg.Name == "" {
		cfg.Name = "up"
	}
	cfg.BaseURL = u.URL + "/v1"
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return New(cfg, u.Client())
}

func chatReq(stream bool) *llm.Request {
	return &llm.Request{
		Model:    "claude-sonnet-4-5",
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("hi")}}},
		Stream:   stream,
	}
}

// drain reads s to its end, returning the answer and the final error
// (io.EOF for a complete answer).
func drain(t testing.TB, s llm.Stream) (llm.Answer, error) {
	t.Helper()
	var a llm.Answer
	for range 10000 {
		ev, err := s.Recv()
		if err != nil {
			if _, again := s.Recv(); again != err {
				t.Errorf("Recv after the end = %v, want the same %v", again, err)
			}
			s.Close()
			return a, err
		}
		a.Add(ev)
	}
	t.Fatal("stream does not end")
	return a, nil
}

func kindOf(err error) llm.Kind {
	var e *llm.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 255
}

var ignoreEvents = cmpopts.IgnoreFields(llm.Answer{}, "Events", "Created")

func TestChatStream(t *testing.T) {
	tests := []struct {
		file string
		want llm.Answer
	}{
		{"anthropic/stream-text.sse", llm.Answer{
			ID: "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", Model: "claude-opus-4-8",
			Text: []byte("Hello there!"), Finish: llm.FinishStop,
			Usage: llm.Usage{Input: 11, Output: 6}, HasUsage: true,
		}},
		{"anthropic/stream-text-cache-usage.sse", llm.Answer{
			ID: "msg_01QC4g3HwBThD4BaNtBckFDJ", Model: "claude-sonnet-4-5-20250929",
			Text:   []byte("Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?"),
			Finish: llm.FinishStop, Usage: llm.Usage{Input: 12, Output: 30}, HasUsage: true,
		}},
		{"anthropic/stream-tool-use.sse", llm.Answer{
			ID: "msg_019Q1hrJbZG26Fb9BQhrkHEr", Model: "claude-opus-4-8",
			Text:      []byte("I'll check the current weather in Paris for you."),
			ToolCalls: []llm.ToolCall{{ID: "toolu_01NRLabsLyVHZPKxbKvkfSMn", Name: "get_weather", Arguments: `{"location": "Paris"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 377, Output: 65}, HasUsage: true,
		}},
		{"anthropic/stream-tool-no-args.sse", llm.Answer{
			ID: "msg_01GE2RKp1VYsPzdFs3sS9z5S", Model: "claude-sonnet-4-5-20250929",
			Text:      []byte("I'll update the issue list for you."),
			ToolCalls: []llm.ToolCall{{ID: "toolu_01QE1WLsSVp5hy5Q3GmGTmjP", Name: "updateIssueList", Arguments: `{}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 565, Output: 48}, HasUsage: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := newUpstream(t, serveSSE(fixture(t, tt.file)))
			c := newClient(t, u, Config{Keys: []string{"sk-ant"}})
			s, err := c.Chat(t.Context(), chatReq(true))
			if err != nil {
				t.Fatal(err)
			}
			got, err := drain(t, s)
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want io.EOF", err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if d := time.Since(time.Unix(got.Created, 0)); d < 0 || d > time.Minute {
				t.Errorf("Created = %d, want the time of the request", got.Created)
			}
			if n := c.Malformed.Load(); n != 0 {
				t.Errorf("Malformed = %d", n)
			}
			r := u.seen()[0]
			for k, want := range map[string]string{
				"Accept": "text/event-stream", "Content-Type": "application/json",
				"X-Api-Key": "sk-ant", "Anthropic-Version": "2023-06-01", "Authorization": "",
			} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if r.Path != "/v1/messages" {
				t.Errorf("path = %s", r.Path)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(r.Body, &body); err != nil || string(body["stream"]) != "true" || string(body["max_tokens"]) != "4096" {
				t.Errorf("body = %s", r.Body)
			}
		})
	}
}

// TestChatStreamCacheUsage checks that cache reads and writes are counted
// in the input, as llm.Usage wants (README §9).
func TestChatStreamCacheUsage(t *testing.T) {
	stream := "event: message_start\ndata: " + `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"output_tokens":1}}}` + "\n\n" +
		"event: content_block_start\ndata: " + `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: content_block_delta\ndata: " + `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}` + "\n\n" +
		"event: content_block_stop\ndata: " + `{"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\ndata: " + `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}` + "\n\n" +
		"event: message_stop\ndata: " + `{"type":"message_stop"}` + "\n\n"
	u := newUpstream(t, serveSSE([]byte(stream)))
	s, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(true))
	if err != nil {
		t.Fatal(err)
	}
	a, err := drain(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	if diff := cmp.Diff(llm.Usage{Input: 3210, Cached: 3000, CacheWrite: 200, Output: 5}, a.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestChatNonStream(t *testing.T) {
	tests := []struct {
		file string
		want llm.Answer
	}{
		{"anthropic/response-text.json", llm.Answer{
			ID: "msg_01VdEjxAP5ahtHKrrRdNBteQ", Model: "claude-sonnet-4-5-20250929",
			Text:   []byte("Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?"),
			Finish: llm.FinishStop, Usage: llm.Usage{Input: 12, Output: 29}, HasUsage: true,
		}},
		{"anthropic/response-tool-use.json", llm.Answer{
			ID: "msg_019Q1hrJbZG26Fb9BQhrkHEr", Model: "claude-opus-4-8",
			Text:      []byte("I'll check the current weather in Paris for you."),
			ToolCalls: []llm.ToolCall{{ID: "toolu_01NRLabsLyVHZPKxbKvkfSMn", Name: "get_weather", Arguments: `{"location":"Paris"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 377, Output: 65}, HasUsage: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := newUpstream(t, serveJSON(200, nil, fixture(t, tt.file)))
			s, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(false))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			var a llm.Answer
			a.Add(ev)
			if diff := cmp.Diff(tt.want, a, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if a.Created == 0 {
				t.Errorf("Created not set")
			}
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("second Recv = %v, want io.EOF", err)
			}
			s.Close()
			r := u.seen()[0]
			if r.Header.Get("Accept") != "application/json" || strings.Contains(string(r.Body), `"stream"`) {
				t.Errorf("Accept = %q, body %s", r.Header.Get("Accept"), r.Body)
			}
		})
	}
}

func TestChatStatusErrors(t *testing.T) {
	var rateLimit struct {
		Status  int
		Headers map[string]string
		Body    json.RawMessage
	}
	if err := json.Unmarshal(fixture(t, "anthropic/error-429-rate-limit.http.json"), &rateLimit); err != nil {
		t.Fatal(err)
	}
	body := func(typ, msg string) []byte {
		return []byte(`{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_1"}`)
	}
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   []byte
		want   llm.Error
	}{
		{"rate limit", rateLimit.Status, rateLimit.Headers, rateLimit.Body, llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "rate_limit_error",
			Message: "This request would exceed your account's rate limit. Please try again later.", RetryAfter: 7 * time.Second,
		}},
		{"overloaded", 529, map[string]string{"X-Should-Retry": "false"}, fixture(t, "anthropic/error-529-overloaded.json"), llm.Error{
			Kind: llm.KindOverloaded, Status: 529, Type: "overloaded_error", Message: "Overloaded",
		}},
		{"invalid", 400, nil, fixture(t, "anthropic/error-400-invalid-request.json"), llm.Error{
			Kind: llm.KindInvalid, Status: 400, Type: "invalid_request_error", Message: "max_tokens: Field required",
		}},
		{"prompt too long", 400, nil, body("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"), llm.Error{
			Kind: llm.KindContextLength, Status: 400, Type: "invalid_request_error", Message: "prompt is too long: 208310 tokens > 200000 maximum",
		}},
		{"input and max_tokens too long", 400, nil, body("invalid_request_error", "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000"), llm.Error{
			Kind: llm.KindContextLength, Status: 400, Type: "invalid_request_error", Message: "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
		}},
		{"content filter", 400, nil, body("invalid_request_error", "Output blocked by content filtering policy"), llm.Error{
			Kind: llm.KindContentFilter, Status: 400, Type: "invalid_request_error", Message: "Output blocked by content filtering policy",
		}},
		{"credit balance", 400, nil, body("invalid_request_error", "Your credit balance is too low to access the Anthropic API."), llm.Error{
			Kind: llm.KindQuota, Status: 400, Type: "invalid_request_error", Message: "Your credit balance is too low to access the Anthropic API.",
		}},
		{"billing", 402, nil, body("billing_error", "pay up"), llm.Error{
			Kind: llm.KindQuota, Status: 402, Type: "billing_error", Message: "pay up",
		}},
		{"bad key", 401, nil, body("authentication_error", "invalid x-api-key"), llm.Error{
			Kind: llm.KindAuth, Status: 401, Type: "authentication_error", Message: "invalid x-api-key",
		}},
		{"permission", 403, nil, body("permission_error", "no"), llm.Error{
			Kind: llm.KindAuth, Status: 403, Type: "permission_error", Message: "no",
		}},
		{"not found", 404, nil, body("not_found_error", "model: claude-9"), llm.Error{
			Kind: llm.KindNotFound, Status: 404, Type: "not_found_error", Message: "model: claude-9",
		}},
		{"too large", 413, nil, body("request_too_large", "Request exceeds the maximum allowed number of bytes."), llm.Error{
			Kind: llm.KindInvalid, Status: 413, Type: "request_too_large", Message: "Request exceeds the maximum allowed number of bytes.",
		}},
		{"api error", 500, nil, body("api_error", "Internal server error"), llm.Error{
			Kind: llm.KindServer, Status: 500, Type: "api_error", Message: "Internal server error",
		}},
		{"proxy html", 502, nil, []byte("<html>bad gateway</html>"), llm.Error{
			Kind: llm.KindServer, Status: 502, Message: "<html>bad gateway</html>",
		}},
		{"empty body", 500, nil, nil, llm.Error{
			Kind: llm.KindServer, Status: 500, Message: "upstream returned status 500",
		}},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				u := newUpstream(t, serveJSON(tt.status, tt.header, tt.body))
				s, err := newClient(t, u, Config{Name: "up"}).Chat(t.Context(), chatReq(stream))
				if err == nil {
					s.Close()
					t.Fatal("Chat succeeded")
				}
				var got *llm.Error
				if !errors.As(err, &got) {
					t.Fatalf("err = %T %v, want *llm.Error", err, err)
				}
				want := tt.want
				want.Provider = "up"
				if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(llm.Error{}, "Err")); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

// ev is one SSE event of an Anthropic stream.
func ev(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

var (
	evStart   = ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}`)
	evBlock   = ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	evHel     = ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`)
	evLo      = ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}`)
	evStop    = ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	evDelta   = ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}`)
	evMsgStop = ev("message_stop", `{"type":"message_stop"}`)
	evPing    = ev("ping", `{"type": "ping"}`)
)

// handlerStream writes the given SSE text, flushing after each event.
func handlerStream(events ...string) http.HandlerFunc {
	return serveSSE([]byte(strings.Join(events, "")))
}

// TestChatStreamEnds checks how the end of an upstream body is read: only
// an answer that finished is complete.
func TestChatStreamEnds(t *testing.T) {
	tests := []struct {
		name      string
		h         http.HandlerFunc
		wantText  string
		wantErr   error    // io.EOF, or nil when wantKind applies
		wantKind  llm.Kind // of the *llm.Error
		malformed int64
	}{
		{"complete", handlerStream(evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"pings anywhere", handlerStream(evPing, evStart, evPing, evBlock, evHel, evPing, evLo, evStop, evPing, evDelta, evPing, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"keep-alive comments", handlerStream(": ping\n\n", evStart, evBlock, evHel, ": x\n\n", evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"stop reason without message_stop", handlerStream(evStart, evBlock, evHel, evLo, evStop, evDelta),
			"Hello", io.EOF, 0, 0},
		{"data after message_stop is not read", handlerStream(evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop, evHel),
			"Hello", io.EOF, 0, 0},
		{"ends before the stop reason", handlerStream(evStart, evBlock, evHel, evLo, evStop),
			"Hello", nil, llm.KindStream, 0},
		{"ends inside a block", handlerStream(evStart, evBlock, evHel),
			"Hel", nil, llm.KindStream, 0},
		{"empty body", handlerStream(),
			"", nil, llm.KindStream, 0},
		{"malformed event skipped", handlerStream(evStart, evBlock, evHel,
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00`), evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 1},
		{"non-JSON events skipped", handlerStream(evStart, evBlock, evHel, ev("content_block_delta", "hello"), ev("x", "[1]"), evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 2},
		{"data-only stream", handlerStream(strings.ReplaceAll(strings.Join([]string{evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop}, ""), "event: ", ": was event ")),
			"Hello", io.EOF, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, tt.h)
			c := newClient(t, u, Config{})
			s, err := c.Chat(t.Context(), chatReq(true))
			if err != nil {
				t.Fatal(err)
			}
			a, err := drain(t, s)
			if string(a.Text) != tt.wantText {
				t.Errorf("text = %q, want %q", a.Text, tt.wantText)
			}
			switch {
			case tt.wantErr != nil && err != tt.wantErr:
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (kindOf(err) != tt.wantKind || errors.Is(err, io.EOF)):
				t.Errorf("err = %v (kind %v), want kind %v", err, kindOf(err), tt.wantKind)
			}
			if got := c.Malformed.Load(); got != tt.malformed {
				t.Errorf("Malformed = %d, want %d", got, tt.malformed)
			}
		})
	}
}

// TestChatStreamCut checks that a connection cut in the middle of an event
// is a broken stream, never a clean end.
func TestChatStreamCut(t *testing.T) {
	head := evStart + evBlock + evHel
	for _, cut := range []string{
		head + `event: content_block_delta` + "\ndata: " + `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo`, // inside a line
		head + strings.TrimSuffix(evLo, "\n"),    // before the blank line
		head + evStop + evDelta[:30],             // inside the stop reason
		head + "event: message_stop\n",           // between the event and its data
		head,                                     // between events
		head + evStop + evDelta + evMsgStop[:20], // inside message_stop, after the stop reason
	} {
		t.Run(fmt.Sprintf("%q", cut[len(cut)-12:]), func(t *testing.T) {
			u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, cut)
				rc := http.NewResponseController(w)
				rc.Flush()
				conn, _, err := rc.Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close()
			})
			s, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(true))
			if err != nil {
				t.Fatal(err)
			}
			a, err := drain(t, s)
			if string(a.Text) != "Hel" {
				t.Errorf("text = %q, want Hel", a.Text)
			}
			if kindOf(err) != llm.KindStream || errors.Is(err, io.EOF) {
				t.Errorf("err = %v (kind %v), want a stream error", err, kindOf(err))
			}
		})
	}
}

func TestChatStreamInBandError(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		text string
		want llm.Error
	}{
		{"overloaded", serveSSE(fixture(t, "anthropic/stream-error-overloaded.sse")), "Hello", llm.Error{
			Kind: llm.KindOverloaded, Type: "overloaded_error", Message: "Overloaded",
		}},
		{"api error", handlerStream(evStart, evBlock, evHel, ev("error", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`)), "Hel", llm.Error{
			Kind: llm.KindStream, Type: "api_error", Message: "Internal server error",
		}},
		{"rate limit before any content", handlerStream(ev("error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)), "", llm.Error{
			Kind: llm.KindRateLimit, Type: "rate_limit_error", Message: "slow down",
		}},
		{"error without fields", handlerStream(evStart, ev("error", `{"type":"error"}`)), "", llm.Error{
			Kind: llm.KindStream, Message: `the upstream sent an error event: {"type":"error"}`,
		}},
		{"error body with a 200", serveJSON(200, nil, fixture(t, "anthropic/error-529-overloaded.json")), "", llm.Error{
			Kind: llm.KindOverloaded, Type: "overloaded_error", Message: "Overloaded",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, tt.h)
			s, err := newClient(t, u, Config{Name: "up"}).Chat(t.Context(), chatReq(true))
			var a llm.Answer
			if err == nil {
				a, err = drain(t, s)
			}
			if string(a.Text) != tt.text {
				t.Errorf("text = %q, want %q", a.Text, tt.text)
			}
			var got *llm.Error
			if !errors.As(err, &got) {
				t.Fatalf("err = %v, want *llm.Error", err)
			}
			want := tt.want
			want.Provider = "up"
			if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(llm.Error{}, "Err")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestChatPrefill checks a continuation: the prefill goes out without its
// trailing whitespace, which Anthropic rejects, and the whitespace the
// model then starts with is not sent again.
func TestChatPrefill(t *testing.T) {
	tests := []struct {
		name    string
		prefill string
		deltas  []string
		want    string
		sent    string
	}{
		{"space", "Hello ", []string{" world", "."}, "world.", "Hello"},
		{"space in its own delta", "Hello ", []string{" ", "world."}, "world.", "Hello"},
		{"two whitespace characters over two deltas", "Hello \n", []string{" ", "\nworld."}, "world.", "Hello"},
		{"model does not repeat it", "Hello ", []string{"world."}, "world.", "Hello"},
		{"model repeats part of it", "Hello \n", []string{" world."}, "world.", "Hello"},
		{"no whitespace", "Hel", []string{"lo world."}, "lo world.", "Hel"},
	}
	for _, tt := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				var h http.HandlerFunc
				if stream {
					evs := []string{evStart, evBlock}
					for _, d := range tt.deltas {
						b, _ := json.Marshal(d)
						evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+string(b)+`}}`))
					}
					h = handlerStream(append(evs, evStop, evDelta, evMsgStop)...)
				} else {
					b, _ := json.Marshal(strings.Join(tt.deltas, ""))
					h = serveJSON(200, nil, []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":`+string(b)+`}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}`))
				}
				u := newUpstream(t, h)
				r := chatReq(stream)
				r.Continue = true
				r.Messages = append(r.Messages, llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{llm.TextPart(tt.prefill)}})
				s, err := newClient(t, u, Config{}).Chat(t.Context(), r)
				if err != nil {
					t.Fatal(err)
				}
				a, err := drain(t, s)
				if err != io.EOF {
					t.Fatal(err)
				}
				if string(a.Text) != tt.want {
					t.Errorf("text = %q, want %q", a.Text, tt.want)
				}
				var body struct {
					Messages []struct {
						Role    string `json:"role"`
						Content string `json:"content"`
					} `json:"messages"`
				}
				json.Unmarshal(u.seen()[0].Body, &body)
				if last := body.Messages[len(body.Messages)-1]; last.Role != "assistant" || last.Content != tt.sent {
					t.Errorf("prefill sent as %+v, want %q", last, tt.sent)
				}
			})
		}
	}
	if !New(Config{}, nil).Prefills() {
		t.Error("Prefills() = false")
	}
}

// TestChatBody checks the body Anthropic receives for a request from an
// OpenAI client and for one from an Anthropic client.
func TestChatBody(t *testing.T) {
	chatBody := `{"model":"claude-sonnet-4-5","messages":[
		{"role":"system","content":"Be brief."},
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"18C"}],
		"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object"}}}],
		"temperature":1.5,"seed":4,"n":1,"stream":true}`
	messagesBody := `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"top_k":5,"stream":true}`
	tests := []struct {
		name    string
		decode  func([]byte) (*llm.Request, error)
		body    string
		want    map[string]string
		without []string
	}{
		{"from chat", wire.DecodeChatRequest, chatBody, map[string]string{
			"system":      `"Be brief."`,
			"temperature": `1`,
			"max_tokens":  `4096`,
			"messages": `[{"role":"user","content":"Weather in Paris?"},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"weather","input":{"city":"Paris"}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"18C"}]}]`,
		}, []string{"seed", "n", "stream_options"}},
		{"from messages", wire.DecodeMessagesRequest, messagesBody, map[string]string{"top_k": `5`, "max_tokens": `100`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, serveSSE(fixture(t, "anthropic/stream-text.sse")))
			r, err := tt.decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			s, err := newClient(t, u, Config{}).Chat(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			drain(t, s)
			var got map[string]json.RawMessage
			if err := json.Unmarshal(u.seen()[0].Body, &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if string(got[k]) != want {
					t.Errorf("%s = %s\nwant %s", k, got[k], want)
				}
			}
			for _, k := range tt.without {
				if _, ok := got[k]; ok {
					t.Errorf("%s sent", k)
				}
			}
		})
	}
}

func TestCountTokens(t *testing.T) {
	u := newUpstream(t, serveJSON(200, nil, []byte(`{"input_tokens":2095}`)))
	c := newClient(t, u, Config{Keys: []string{"k"}})
	r := chatReq(true)
	r.MaxTokens = new(int)
	n, err := c.CountTokens(t.Context(), r)
	if err != nil || n != 2095 {
		t.Fatalf("CountTokens = %d, %v", n, err)
	}
	got := u.seen()[0]
	if got.Path != "/v1/messages/count_tokens" || got.Header.Get("X-Api-Key") != "k" || got.Header.Get("Anthropic-Version") != DefaultVersion {
		t.Errorf("request: %s %v", got.Path, got.Header)
	}
	if want := `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`; string(got.Body) != want {
		t.Errorf("body = %s, want %s", got.Body, want)
	}

	for _, tt := range []struct {
		name   string
		status int
		body   string
		kind   llm.Kind
	}{
		{"not found", 404, `{"type":"error","error":{"type":"not_found_error","message":"model: x"}}`, llm.KindNotFound},
		{"overloaded", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, llm.KindOverloaded},
		{"not a count", 200, `{"tokens":1}`, llm.KindStream},
		{"error with a 200", 200, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, llm.KindOverloaded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, serveJSON(tt.status, nil, []byte(tt.body)))
			if _, err := newClient(t, u, Config{}).CountTokens(t.Context(), chatReq(false)); kindOf(err) != tt.kind {
				t.Errorf("err = %v (kind %v), want kind %v", err, kindOf(err), tt.kind)
			}
		})
	}
}

// stall is a handler that never answers, until the client leaves.
func stall(arrived chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			arrived <- struct{}{}
		}
		<-r.Context().Done()
	}
}

func TestChatHeaderTimeout(t *testing.T) {
	u := newUpstream(t, stall(nil))
	_, err := newClient(t, u, Config{HeaderTimeout: 50 * time.Millisecond}).Chat(t.Context(), chatReq(true))
	if kindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrHeaderTimeout) {
		t.Errorf("err = %v (kind %v), want a header timeout", err, kindOf(err))
	}
}

// TestChatIdleTimeoutServer checks a real upstream that goes silent after
// its first events.
func TestChatIdleTimeoutServer(t *testing.T) {
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, evStart+evBlock+evHel)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := newClient(t, u, Config{HeaderTimeout: time.Minute, IdleTimeout: 100 * time.Millisecond}).Chat(t.Context(), chatReq(true))
	if err != nil {
		t.Fatal(err)
	}
	a, err := drain(t, s)
	if string(a.Text) != "Hel" {
		t.Errorf("text = %q, want Hel", a.Text)
	}
	if kindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
		t.Errorf("err = %v (kind %v), want an idle timeout", err, kindOf(err))
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeUpstream returns an HTTP client whose upstream sends chunks, each
// after its delay, and then stays silent. Like net/http, it fails a body
// read once the request's context ends. It runs under synctest.
func fakeUpstream(chunks []string, delays []time.Duration) *http.Client {
	return &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			<-r.Context().Done()
			pw.CloseWithError(r.Context().Err())
		}()
		go func() {
			for i, c := range chunks {
				time.Sleep(delays[i])
				if _, err := io.WriteString(pw, c); err != nil {
					return
				}
			}
		}()
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
	})}
}

// TestChatIdleTimeout checks that a stream that goes silent between events
// fails as a timeout after IdleTimeout, and that pings within it keep a
// slow answer alive.
func TestChatIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := []string{evStart + evBlock + evHel, evPing, evPing, evLo}
		delays := []time.Duration{0, 8 * time.Second, 8 * time.Second, 8 * time.Second}
		c := New(Config{Name: "up", BaseURL: "http://up/v1", IdleTimeout: 10 * time.Second, HeaderTimeout: 5 * time.Second}, fakeUpstream(chunks, delays))
		s, err := c.Chat(t.Context(), chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text string
		for range 3 { // message_start, Hel, lo
			ev, err := s.Recv()
			if err != nil {
				t.Fatalf("Recv after %q: %v", text, err)
			}
			text += ev.Text
		}
		last := time.Now()
		_, err = s.Recv()
		if kindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
			t.Errorf("err = %v (kind %v), want an idle timeout", err, kindOf(err))
		}
		if d := time.Since(last); d != 10*time.Second {
			t.Errorf("timed out after %v of silence, want 10s", d)
		}
		if text != "Hello" {
			t.Errorf("text = %q", text)
		}
	})
}

func TestChatHeaderTimeoutExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hc := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}
		c := New(Config{Name: "up", BaseURL: "http://up/v1", HeaderTimeout: 7 * time.Second}, hc)
		start := time.Now()
		_, err := c.Chat(t.Context(), chatReq(false))
		if kindOf(err) != llm.KindTimeout || time.Since(start) != 7*time.Second {
			t.Errorf("err = %v (kind %v) after %v, want a timeout after 7s", err, kindOf(err), time.Since(start))
		}
	})
}

// TestChatCanceled checks that a client leaving is not the upstream's fault.
func TestChatCanceled(t *testing.T) {
	t.Run("before headers", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		u := newUpstream(t, stall(arrived))
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-arrived
			cancel()
		}()
		_, err := newClient(t, u, Config{HeaderTimeout: time.Minute}).Chat(ctx, chatReq(true))
		if kindOf(err) != llm.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v (kind %v), want canceled", err, kindOf(err))
		}
	})
	t.Run("during the stream", func(t *testing.T) {
		u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, evStart+evBlock+evHel)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		ctx, cancel := context.WithCancel(t.Context())
		s, err := newClient(t, u, Config{IdleTimeout: time.Minute}).Chat(ctx, chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = drain(t, s)
		if kindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v (kind %v), want canceled", err, kindOf(err))
		}
	})
}

func TestChatKeysAndHeaders(t *testing.T) {
	u := newUpstream(t, serveJSON(200, nil, fixture(t, "anthropic/response-text.json")))
	c := newClient(t, u, Config{Keys: []string{"k1", "k2", "k3"}, Version: "2026-10-21",
		Headers: map[string]string{"anthropic-beta": "a,b"}})
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			s, err := c.Chat(t.Context(), chatReq(false))
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	got := map[string]int{}
	for _, r := range u.seen() {
		got[r.Header.Get("X-Api-Key")]++
		if r.Header.Get("Anthropic-Version") != "2026-10-21" || r.Header.Get("Anthropic-Beta") != "a,b" {
			t.Errorf("headers %v", r.Header)
		}
	}
	if diff := cmp.Diff(map[string]int{"k1": 10, "k2": 10, "k3": 10}, got); diff != "" {
		t.Errorf("key use (-want +got):\n%s", diff)
	}
}

func TestChatBaseURL(t *testing.T) {
	u := newUpstream(t, serveJSON(200, nil, fixture(t, "anthropic/response-text.json")))
	for _, base := range []string{u.URL + "/v1", u.URL + "/v1/"} {
		s, err := New(Config{Name: "up", BaseURL: base}, u.Client()).Chat(t.Context(), chatReq(false))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, r := range u.seen() {
		if r.Path != "/v1/messages" {
			t.Errorf("path = %s", r.Path)
		}
	}
	if c := New(Config{}, nil); c.url != "https://api.anthropic.com/v1/messages" || c.cfg.Version != "2023-06-01" {
		t.Errorf("defaults: %s, %s", c.url, c.cfg.Version)
	}
}
