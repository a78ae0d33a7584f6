package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/provider/providertest"
	"github.com/keel-ai/keel/internal/wire"
)

// newClient returns a client of u, named "up" and logging nothing unless
// cfg says otherwise.
func newClient(t *testing.T, u *providertest.Upstream, cfg Config) *Client {
	if cfg.Name == "" {
		cfg.Name = "up"
	}
	cfg.BaseURL = u.URL + "/v1"
	if cfg.Log == nil {
		cfg.Log = providertest.Quiet()
	}
	return New(cfg, u.Client())
}

func chatReq(stream bool) *llm.Request { return providertest.Hi("claude-sonnet-4-5", stream) }

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
			u := providertest.NewUpstream(t, providertest.Serve(t, tt.file))
			c := newClient(t, u, Config{Keys: []string{"sk-ant"}})
			got, err := providertest.Chat(t, c, chatReq(true))
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
			r := u.Requests()[0]
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
	u := providertest.NewUpstream(t, providertest.SSE(stream))
	a, err := providertest.Chat(t, newClient(t, u, Config{}), chatReq(true))
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
			u := providertest.NewUpstream(t, providertest.Serve(t, tt.file))
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
			r := u.Requests()[0]
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
	if err := json.Unmarshal(providertest.Fixture(t, "anthropic/error-429-rate-limit.http.json"), &rateLimit); err != nil {
		t.Fatal(err)
	}
	type statusCase struct {
		name   string
		status int
		header map[string]string
		body   []byte
		want   llm.Error
	}
	// passed is a case of an Anthropic error body whose type and message
	// the adapter must pass on as they are.
	passed := func(name string, status int, kind llm.Kind, typ, msg string) statusCase {
		body := []byte(`{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_1"}`)
		return statusCase{name, status, nil, body, llm.Error{Kind: kind, Status: status, Type: typ, Message: msg}}
	}
	tests := []statusCase{
		{"rate limit", rateLimit.Status, rateLimit.Headers, rateLimit.Body, llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "rate_limit_error",
			Message: "This request would exceed your account's rate limit. Please try again later.", RetryAfter: 7 * time.Second,
		}},
		{"overloaded", 529, map[string]string{"X-Should-Retry": "false"}, providertest.Fixture(t, "anthropic/error-529-overloaded.json"), llm.Error{
			Kind: llm.KindOverloaded, Status: 529, Type: "overloaded_error", Message: "Overloaded",
		}},
		{"invalid", 400, nil, providertest.Fixture(t, "anthropic/error-400-invalid-request.json"), llm.Error{
			Kind: llm.KindInvalid, Status: 400, Type: "invalid_request_error", Message: "max_tokens: Field required",
		}},
		passed("prompt too long", 400, llm.KindContextLength, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
		passed("input and max_tokens too long", 400, llm.KindContextLength, "invalid_request_error", "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000"),
		passed("content filter", 400, llm.KindContentFilter, "invalid_request_error", "Output blocked by content filtering policy"),
		passed("credit balance", 400, llm.KindQuota, "invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
		passed("billing", 402, llm.KindQuota, "billing_error", "pay up"),
		passed("bad key", 401, llm.KindAuth, "authentication_error", "invalid x-api-key"),
		passed("permission", 403, llm.KindAuth, "permission_error", "no"),
		passed("not found", 404, llm.KindNotFound, "not_found_error", "model: claude-9"),
		passed("too large", 413, llm.KindInvalid, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
		passed("api error", 500, llm.KindServer, "api_error", "Internal server error"),
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
				u := providertest.NewUpstream(t, providertest.JSON(tt.status, tt.header, tt.body))
				s, err := newClient(t, u, Config{Name: "up"}).Chat(t.Context(), chatReq(stream))
				if err == nil {
					s.Close()
					t.Fatal("Chat succeeded")
				}
				want := tt.want
				want.Provider = "up"
				providertest.CheckError(t, err, want)
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
		{"complete", providertest.SSE(evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"pings anywhere", providertest.SSE(evPing, evStart, evPing, evBlock, evHel, evPing, evLo, evStop, evPing, evDelta, evPing, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"keep-alive comments", providertest.SSE(": ping\n\n", evStart, evBlock, evHel, ": x\n\n", evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 0},
		{"stop reason without message_stop", providertest.SSE(evStart, evBlock, evHel, evLo, evStop, evDelta),
			"Hello", io.EOF, 0, 0},
		{"data after message_stop is not read", providertest.SSE(evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop, evHel),
			"Hello", io.EOF, 0, 0},
		{"ends before the stop reason", providertest.SSE(evStart, evBlock, evHel, evLo, evStop),
			"Hello", nil, llm.KindStream, 0},
		{"ends inside a block", providertest.SSE(evStart, evBlock, evHel),
			"Hel", nil, llm.KindStream, 0},
		{"empty body", providertest.SSE(),
			"", nil, llm.KindStream, 0},
		{"malformed event skipped", providertest.SSE(evStart, evBlock, evHel,
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00`), evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 1},
		{"non-JSON events skipped", providertest.SSE(evStart, evBlock, evHel, ev("content_block_delta", "hello"), ev("x", "[1]"), evLo, evStop, evDelta, evMsgStop),
			"Hello", io.EOF, 0, 2},
		{"data-only stream", providertest.SSE(strings.ReplaceAll(strings.Join([]string{evStart, evBlock, evHel, evLo, evStop, evDelta, evMsgStop}, ""), "event: ", ": was event ")),
			"Hello", io.EOF, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.h)
			c := newClient(t, u, Config{})
			a, err := providertest.Chat(t, c, chatReq(true))
			if string(a.Text) != tt.wantText {
				t.Errorf("text = %q, want %q", a.Text, tt.wantText)
			}
			switch {
			case tt.wantErr != nil && err != tt.wantErr:
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (providertest.KindOf(err) != tt.wantKind || errors.Is(err, io.EOF)):
				t.Errorf("err = %v (kind %v), want kind %v", err, providertest.KindOf(err), tt.wantKind)
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
			u := providertest.NewUpstream(t, providertest.Cut(t, cut))
			a, err := providertest.Chat(t, newClient(t, u, Config{}), chatReq(true))
			if string(a.Text) != "Hel" {
				t.Errorf("text = %q, want Hel", a.Text)
			}
			if providertest.KindOf(err) != llm.KindStream || errors.Is(err, io.EOF) {
				t.Errorf("err = %v (kind %v), want a stream error", err, providertest.KindOf(err))
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
		{"overloaded", providertest.Serve(t, "anthropic/stream-error-overloaded.sse"), "Hello", llm.Error{
			Kind: llm.KindOverloaded, Type: "overloaded_error", Message: "Overloaded",
		}},
		{"api error", providertest.SSE(evStart, evBlock, evHel, ev("error", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`)), "Hel", llm.Error{
			Kind: llm.KindStream, Type: "api_error", Message: "Internal server error",
		}},
		{"rate limit before any content", providertest.SSE(ev("error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)), "", llm.Error{
			Kind: llm.KindRateLimit, Type: "rate_limit_error", Message: "slow down",
		}},
		{"error without fields", providertest.SSE(evStart, ev("error", `{"type":"error"}`)), "", llm.Error{
			Kind: llm.KindStream, Message: `the upstream sent an error event: {"type":"error"}`,
		}},
		{"error body with a 200", providertest.Serve(t, "anthropic/error-529-overloaded.json"), "", llm.Error{
			Kind: llm.KindOverloaded, Type: "overloaded_error", Message: "Overloaded",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.h)
			s, err := newClient(t, u, Config{Name: "up"}).Chat(t.Context(), chatReq(true))
			var a llm.Answer
			if err == nil {
				a, err = providertest.Drain(t, s)
			}
			if string(a.Text) != tt.text {
				t.Errorf("text = %q, want %q", a.Text, tt.text)
			}
			want := tt.want
			want.Provider = "up"
			providertest.CheckError(t, err, want)
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
					h = providertest.SSE(append(evs, evStop, evDelta, evMsgStop)...)
				} else {
					b, _ := json.Marshal(strings.Join(tt.deltas, ""))
					h = providertest.JSON(200, nil, []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":`+string(b)+`}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}`))
				}
				u := providertest.NewUpstream(t, h)
				r := chatReq(stream)
				r.Continue = true
				r.Messages = append(r.Messages, llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{llm.TextPart(tt.prefill)}})
				a, err := providertest.Chat(t, newClient(t, u, Config{}), r)
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
				json.Unmarshal(u.Requests()[0].Body, &body)
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
			u := providertest.NewUpstream(t, providertest.Serve(t, "anthropic/stream-text.sse"))
			r, err := tt.decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			providertest.Chat(t, newClient(t, u, Config{}), r)
			var got map[string]json.RawMessage
			if err := json.Unmarshal(u.Requests()[0].Body, &got); err != nil {
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
	u := providertest.NewUpstream(t, providertest.JSON(200, nil, []byte(`{"input_tokens":2095}`)))
	c := newClient(t, u, Config{Keys: []string{"k"}})
	r := chatReq(true)
	r.MaxTokens = new(int)
	n, err := c.CountTokens(t.Context(), r)
	if err != nil || n != 2095 {
		t.Fatalf("CountTokens = %d, %v", n, err)
	}
	got := u.Requests()[0]
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
			u := providertest.NewUpstream(t, providertest.JSON(tt.status, nil, []byte(tt.body)))
			if _, err := newClient(t, u, Config{}).CountTokens(t.Context(), chatReq(false)); providertest.KindOf(err) != tt.kind {
				t.Errorf("err = %v (kind %v), want kind %v", err, providertest.KindOf(err), tt.kind)
			}
		})
	}
}

func TestChatHeaderTimeout(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Stall)
	_, err := newClient(t, u, Config{HeaderTimeout: 50 * time.Millisecond}).Chat(t.Context(), chatReq(true))
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrHeaderTimeout) {
		t.Errorf("err = %v (kind %v), want a header timeout", err, providertest.KindOf(err))
	}
}

// TestChatIdleTimeoutServer checks a real upstream that goes silent after
// its first events.
func TestChatIdleTimeoutServer(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.StallAfter(evStart+evBlock+evHel))
	a, err := providertest.Chat(t, newClient(t, u, Config{HeaderTimeout: time.Minute, IdleTimeout: 100 * time.Millisecond}), chatReq(true))
	if string(a.Text) != "Hel" {
		t.Errorf("text = %q, want Hel", a.Text)
	}
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
		t.Errorf("err = %v (kind %v), want an idle timeout", err, providertest.KindOf(err))
	}
}

// TestChatIdleTimeout checks that a stream that goes silent between events
// fails as a timeout after IdleTimeout, and that pings within it keep a
// slow answer alive.
func TestChatIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := []string{evStart + evBlock + evHel, evPing, evPing, evLo}
		delays := []time.Duration{0, 8 * time.Second, 8 * time.Second, 8 * time.Second}
		c := New(Config{Name: "up", BaseURL: "http://up/v1", IdleTimeout: 10 * time.Second, HeaderTimeout: 5 * time.Second}, providertest.Trickle(chunks, delays))
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
		if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
			t.Errorf("err = %v (kind %v), want an idle timeout", err, providertest.KindOf(err))
		}
		if d := time.Since(last); d != 10*time.Second {
			t.Errorf("timed out after %v of silence, want 10s", d)
		}
		if text != "Hello" {
			t.Errorf("text = %q", text)
		}
	})
}

// TestChatHeaderTimeoutExact: a stream's headers are bounded by the header
// deadline to the instant; a whole answer's only by the caller.
func TestChatHeaderTimeoutExact(t *testing.T) {
	providertest.CheckHeaderDeadline(t, func(header time.Duration, hc *http.Client) llm.Provider {
		return New(Config{Name: "up", BaseURL: "http://up/v1", HeaderTimeout: header}, hc)
	}, chatReq)
}

// TestChatCanceled checks that a client leaving is not the upstream's fault.
func TestChatCanceled(t *testing.T) {
	t.Run("before headers", func(t *testing.T) {
		ctx, h := providertest.CancelOnArrival(t)
		u := providertest.NewUpstream(t, h)
		_, err := newClient(t, u, Config{HeaderTimeout: time.Minute}).Chat(ctx, chatReq(true))
		if providertest.KindOf(err) != llm.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v (kind %v), want canceled", err, providertest.KindOf(err))
		}
	})
	t.Run("during the stream", func(t *testing.T) {
		u := providertest.NewUpstream(t, providertest.StallAfter(evStart+evBlock+evHel))
		ctx, cancel := context.WithCancel(t.Context())
		s, err := newClient(t, u, Config{IdleTimeout: time.Minute}).Chat(ctx, chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = providertest.Drain(t, s)
		if providertest.KindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v (kind %v), want canceled", err, providertest.KindOf(err))
		}
	})
}

func TestChatKeysAndHeaders(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "anthropic/response-text.json"))
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
	for _, r := range u.Requests() {
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
	u := providertest.NewUpstream(t, providertest.Serve(t, "anthropic/response-text.json"))
	for _, base := range []string{u.URL + "/v1", u.URL + "/v1/"} {
		s, err := New(Config{Name: "up", BaseURL: base}, u.Client()).Chat(t.Context(), chatReq(false))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, r := range u.Requests() {
		if r.Path != "/v1/messages" {
			t.Errorf("path = %s", r.Path)
		}
	}
	if c := New(Config{}, nil); c.url != "https://api.anthropic.com/v1/messages" || c.cfg.Version != "2023-06-01" {
		t.Errorf("defaults: %s, %s", c.url, c.cfg.Version)
	}
}
