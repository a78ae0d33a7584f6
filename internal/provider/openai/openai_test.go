package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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

func chatReq(stream bool) *llm.Request { return providertest.Hi("m", stream) }

var ignoreEvents = cmpopts.IgnoreFields(llm.Answer{}, "Events")

func TestChatStream(t *testing.T) {
	tests := []struct {
		file string
		want llm.Answer
	}{
		{"openai-chat/stream-text-usage.sse", llm.Answer{
			ID: "chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0", Model: "gpt-4.1-nano-2025-04-14", Created: 1770933892,
			Text: []byte("**Holiday Name:** Harmony Day\n\n"), Finish: llm.FinishStop,
			Usage: llm.Usage{Input: 16, Output: 300}, HasUsage: true,
		}},
		{"openai-chat/stream-tool-call.sse", llm.Answer{
			ID: "chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62", Model: "gpt-4o-2024-08-06", Created: 1727346182,
			ToolCalls: []llm.ToolCall{{ID: "call_4XzlGBLtUe9dy3GVNV4jhq7h", Name: "get_weather", Arguments: `{"city":"New York City"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 44, Output: 16}, HasUsage: true,
		}},
		{"openai-chat/stream-finish-length.sse", llm.Answer{
			ID: "chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh", Model: "gpt-4o-2024-08-06", Created: 1727346171,
			Text: []byte(`{"`), Finish: llm.FinishLength, Usage: llm.Usage{Input: 79, Output: 1}, HasUsage: true,
		}},
		{"mistral/stream-text.sse", llm.Answer{
			ID: "5319bd0299614c679a0068a4f2c8ffd0", Model: "mistral-small-latest", Created: 1769088720,
			Text: []byte("Hello, world! This is a test response."), Finish: llm.FinishStop,
			Usage: llm.Usage{Input: 13, Output: 8}, HasUsage: true,
		}},
		{"mistral/stream-tool-call.sse", llm.Answer{
			ID: "b3999b8c93e04e11bcbff7bcab829667", Model: "mistral-small-latest", Created: 1769088854,
			ToolCalls: []llm.ToolCall{{ID: "gSIMJiOkT", Name: "weather", Arguments: `{"location": "San Francisco"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 124, Output: 22}, HasUsage: true,
		}},
		{"openai-compatible/stream-tool-call-index1.sse", llm.Answer{
			ID: "msg_sanitized", Model: "claude-haiku-4-5-20251001",
			Text:      []byte("Reading it."),
			ToolCalls: []llm.ToolCall{{ID: "toolu_sanitized", Name: "read_file", Arguments: `{"path": "a.txt"}`}},
			Finish:    llm.FinishToolCalls,
		}},
		{"openai-compatible/stream-reasoning-content-tool-call.sse", llm.Answer{
			ID: "7027d986-3c59-a37a-9a5f-50713e01c8a6", Model: "grok-3-mini", Created: 1770772293,
			Reasoning: []byte("First, the"),
			ToolCalls: []llm.ToolCall{{ID: "call_79382389", Name: "weather", Arguments: `{"location":"San Francisco"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 307, Output: 253, Cached: 306, Reasoning: 227}, HasUsage: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.Serve(t, tt.file))
			c := newClient(t, u, Config{})
			got, err := providertest.Chat(t, c, chatReq(true))
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want io.EOF", err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if n := c.Malformed.Load(); n != 0 {
				t.Errorf("Malformed = %d", n)
			}
			r := u.Requests()[0]
			if r.Path != "/v1/chat/completions" || r.Header.Get("Accept") != "text/event-stream" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request: path %s, headers %v", r.Path, r.Header)
			}
		})
	}
}

// TestChatStreamRelay checks that the chunks of an OpenAI stream reach the
// consumer as the upstream's bytes, for relaying without re-encoding.
func TestChatStreamRelay(t *testing.T) {
	stream := providertest.Fixture(t, "openai-chat/stream-text-usage.sse")
	u := providertest.NewUpstream(t, providertest.SSE(string(stream)))
	s, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for ev := range strings.SplitSeq(string(stream), "\n\n") {
		data, _ := strings.CutPrefix(ev, "data: ")
		if data == "[DONE]" || data == "" {
			continue
		}
		got, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Raw) != data || got.Wire != llm.WireChatChunk {
			t.Errorf("Raw = %s (wire %v), want %s", got.Raw, got.Wire, data)
		}
	}
}

func TestChatNonStream(t *testing.T) {
	tests := []struct {
		file  string
		want  llm.Answer
		relay bool
	}{
		{"openai-chat/response-basic.json", llm.Answer{
			ID: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", Model: "gpt-5.4", Created: 1741569952,
			Text: []byte("Hello! How can I assist you today?"), Finish: llm.FinishStop,
			Usage: llm.Usage{Input: 19, Output: 10}, HasUsage: true,
		}, true},
		{"openai-chat/response-tool-calls-parallel.json", llm.Answer{
			ID: "chatcmpl-ABfvyvfNWKcl7Ohqos4UFrmMs1v4C", Model: "gpt-4o-2024-08-06", Created: 1727346166,
			ToolCalls: []llm.ToolCall{
				{ID: "call_fdNz3vOBKYgOIpMdWotB9MjY", Name: "GetWeatherArgs", Arguments: `{"city": "Edinburgh", "country": "GB", "units": "c"}`},
				{ID: "call_h1DWI1POMJLb0KwIyQHWXD4p", Name: "get_stock_price", Arguments: `{"ticker": "AAPL", "exchange": "NASDAQ"}`},
			},
			Finish: llm.FinishToolCalls, Usage: llm.Usage{Input: 149, Output: 60}, HasUsage: true,
		}, true},
		{"mistral/response-tool-call.json", llm.Answer{
			ID: "b3999b8c93e04e11bcbff7bcab829667", Model: "mistral-small-latest", Created: 1769088854,
			ToolCalls: []llm.ToolCall{{ID: "gSIMJiOkT", Name: "weather", Arguments: `{"location": "San Francisco"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 124, Output: 22}, HasUsage: true,
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := providertest.Fixture(t, tt.file)
			u := providertest.NewUpstream(t, providertest.JSON(200, nil, body))
			s, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(false))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if relay := bytes.Equal(ev.Raw, body) && ev.Wire == llm.WireChatCompletion; relay != tt.relay {
				t.Errorf("relayable = %v, want %v", relay, tt.relay)
			}
			var a llm.Answer
			a.Add(ev)
			if diff := cmp.Diff(tt.want, a, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("second Recv = %v, want io.EOF", err)
			}
			if r := u.Requests()[0]; r.Header.Get("Accept") != "application/json" {
				t.Errorf("Accept = %q", r.Header.Get("Accept"))
			}
			s.Close()
		})
	}
}

// TestChatNonStreamErrorBody checks an error sent with a 200: the vendor's
// message reaches the consumer.
func TestChatNonStreamErrorBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		want llm.Error
	}{
		{"error object", `{"error":{"message":"upstream provider failed","type":"server_error","code":"502"}}`, llm.Error{
			Kind: llm.KindStream, Type: "server_error", Code: "502", Message: "upstream provider failed",
		}},
		{"context length", `{"error":{"message":"too long","code":"context_length_exceeded"}}`, llm.Error{
			Kind: llm.KindContextLength, Code: "context_length_exceeded", Message: "too long",
		}},
		{"not JSON", `<html>`, llm.Error{Kind: llm.KindStream, Message: "the upstream sent an undecodable answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.JSON(200, nil, []byte(tt.body)))
			_, err := newClient(t, u, Config{Name: "up"}).Chat(t.Context(), chatReq(false))
			want := tt.want
			want.Provider = "up"
			providertest.CheckError(t, err, want)
		})
	}
}

func TestChatStatusErrors(t *testing.T) {
	var rateLimit struct {
		Status  int
		Headers map[string]string
		Body    json.RawMessage
	}
	if err := json.Unmarshal(providertest.Fixture(t, "openai-chat/error-429-rate-limit.http.json"), &rateLimit); err != nil {
		t.Fatal(err)
	}
	file := func(p string) []byte { return providertest.Fixture(t, p) }
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   []byte
		want   llm.Error
	}{
		{"rate limit", rateLimit.Status, rateLimit.Headers, rateLimit.Body, llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "tokens", Code: "rate_limit_exceeded",
			Message:    "Rate limit reached for gpt-4o-mini in organization org-xxxx on tokens per min (TPM): Limit 30000, Used 28039, Requested 3906. Please try again in 1.75s.",
			RetryAfter: 1750 * time.Millisecond,
		}},
		{"rate limit in seconds", 429, map[string]string{"Retry-After": "3"}, []byte(`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`), llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "requests", Code: "rate_limit_exceeded", Message: "slow down", RetryAfter: 3 * time.Second,
		}},
		{"insufficient quota", 429, nil, file("openai-chat/error-429-insufficient-quota.json"), llm.Error{
			Kind: llm.KindQuota, Status: 429, Type: "insufficient_quota", Code: "insufficient_quota",
			Message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
		}},
		{"context length", 400, nil, []byte(`{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`), llm.Error{
			Kind: llm.KindContextLength, Status: 400, Type: "invalid_request_error", Param: "messages", Code: "context_length_exceeded",
			Message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
		}},
		{"context length, vLLM", 400, nil, file("openai-compatible/error-vllm-legacy-flat.json"), llm.Error{
			Kind: llm.KindContextLength, Status: 400, Type: "BadRequestError", Code: "400",
			Message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
		}},
		{"context length, llama.cpp", 400, nil, file("openai-compatible/error-llamacpp.json"), llm.Error{
			Kind: llm.KindContextLength, Status: 400, Type: "exceed_context_size_error", Code: "400",
			Message: "the request exceeds the available context size, try increasing it",
		}},
		{"content filter", 400, nil, []byte(`{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}`), llm.Error{
			Kind: llm.KindContentFilter, Status: 400, Param: "prompt", Code: "content_filter",
			Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
		}},
		{"llama.cpp loading", 503, nil, file("openai-compatible/error-llamacpp-loading-503.json"), llm.Error{
			Kind: llm.KindOverloaded, Status: 503, Type: "unavailable_error", Code: "503", Message: "Loading model",
		}},
		{"invalid key", 401, nil, file("openai-chat/error-401-invalid-key.json"), llm.Error{
			Kind: llm.KindAuth, Status: 401, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "Incorrect API key provided: sk-xxxx. You can find your API key at https://platform.openai.com/account/api-keys.",
		}},
		{"unsupported param", 400, nil, file("openai-chat/error-400-unsupported-param.json"), llm.Error{
			Kind: llm.KindInvalid, Status: 400, Type: "invalid_request_error", Param: "max_tokens", Code: "unsupported_parameter",
			Message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
		}},
		{"mistral validation", 422, nil, file("mistral/error-422-tool-call-id.json"), llm.Error{
			Kind: llm.KindInvalid, Status: 422, Type: "invalid_request_error",
			Message: "Tool call id was call_search but must be a-z, A-Z, 0-9, with a length of 9.",
		}},
		{"ollama not found", 404, nil, file("ollama/openai-compat-error-404.json"), llm.Error{
			Kind: llm.KindNotFound, Status: 404, Type: "not_found_error", Message: `model "llama9" not found, try pulling it first`,
		}},
		{"proxy html", 502, nil, []byte("<html>bad gateway</html>"), llm.Error{
			Kind: llm.KindServer, Status: 502, Message: "<html>bad gateway</html>",
		}},
		{"empty body", 500, nil, nil, llm.Error{
			Kind: llm.KindServer, Status: 500, Message: "upstream returned status 500",
		}},
		{"overloaded", 529, nil, []byte(`{"error":{"message":"Overloaded","type":"overloaded_error"}}`), llm.Error{
			Kind: llm.KindOverloaded, Status: 529, Type: "overloaded_error", Message: "Overloaded",
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

func data(s string) string { return "data: " + s + "\n\n" }

const (
	chunkRole   = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
	chunkHel    = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`
	chunkLo     = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`
	chunkFinish = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
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
		{"complete", providertest.SSE(data(chunkRole), data(chunkHel), data(chunkLo), data(chunkFinish), data("[DONE]")),
			"Hello", io.EOF, 0, 0},
		{"finish without [DONE]", providertest.SSE(data(chunkRole), data(chunkHel), data(chunkLo), data(chunkFinish)),
			"Hello", io.EOF, 0, 0},
		{"keep-alive comments", providertest.SSE(": ping\n\n", data(chunkHel), ": ping\n\n", data(chunkLo), data(chunkFinish), data("[DONE]")),
			"Hello", io.EOF, 0, 0},
		{"ends before the finish", providertest.SSE(data(chunkRole), data(chunkHel)),
			"Hel", nil, llm.KindStream, 0},
		{"[DONE] before the finish", providertest.SSE(data(chunkRole), data(chunkHel), data("[DONE]")),
			"Hel", nil, llm.KindStream, 0},
		{"empty body", providertest.SSE(),
			"", nil, llm.KindStream, 0},
		{"malformed chunk skipped", providertest.SSE(data(chunkRole), data(chunkHel), data(`{"id":"c","choices":[{"delta":{"content":"garbl`), data(chunkLo), data(chunkFinish), data("[DONE]")),
			"Hello", io.EOF, 0, 1},
		{"non-JSON chunks skipped", providertest.SSE(data(chunkHel), data("hello"), data(`[1]`), data(chunkLo), data(chunkFinish), data("[DONE]")),
			"Hello", io.EOF, 0, 2},
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
	for _, cut := range []string{
		data(chunkHel) + `data: {"id":"c","choices":[{"delta":{"content":"lo`, // inside a line
		data(chunkHel) + "data: " + chunkLo + "\n",                            // before the blank line
		data(chunkHel) + data(chunkFinish)[:20],                               // inside the finish chunk
		data(chunkHel),                                                        // between events
	} {
		t.Run(fmt.Sprintf("%q", cut[len(cut)-10:]), func(t *testing.T) {
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
		{"openai", providertest.Serve(t, "openai-chat/stream-midstream-error.sse"), "Hel", llm.Error{
			Kind: llm.KindStream, Type: "server_error",
			Message: "The server had an error while processing your request. Sorry about that!",
		}},
		{"mistral flat", providertest.SSE(data(chunkHel), data(`{"object":"error","message":"Service unavailable","type":"internal_error","param":null,"code":"1000"}`)), "Hel", llm.Error{
			Kind: llm.KindStream, Type: "internal_error", Code: "1000", Message: "Service unavailable",
		}},
		{"ollama string", providertest.SSE(data(chunkHel), data(`{"error":"model runner has unexpectedly stopped"}`)), "Hel", llm.Error{
			Kind: llm.KindStream, Message: "model runner has unexpectedly stopped",
		}},
		{"quota in band", providertest.SSE(data(`{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}`)), "", llm.Error{
			Kind: llm.KindQuota, Type: "insufficient_quota", Code: "insufficient_quota", Message: "quota",
		}},
		{"finish_reason error", providertest.SSE(data(chunkHel), data(`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"error"}]}`), data("[DONE]")), "Hel", llm.Error{
			Kind: llm.KindStream, Type: "server_error", Message: `the upstream ended the answer with finish_reason "error"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.h)
			a, err := providertest.Chat(t, newClient(t, u, Config{Name: "up"}), chatReq(true))
			if string(a.Text) != tt.text {
				t.Errorf("text = %q, want %q", a.Text, tt.text)
			}
			want := tt.want
			want.Provider = "up"
			providertest.CheckError(t, err, want)
		})
	}
}

// TestChatHeaderTimeout checks a server that never answers.
func TestChatHeaderTimeout(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Stall)
	_, err := newClient(t, u, Config{HeaderTimeout: 50 * time.Millisecond}).Chat(t.Context(), chatReq(true))
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrHeaderTimeout) {
		t.Errorf("err = %v (kind %v), want a header timeout", err, providertest.KindOf(err))
	}
}

// TestChatIdleTimeoutServer checks a real upstream that goes silent after
// its first chunk (TestChatIdleTimeout times it exactly).
func TestChatIdleTimeoutServer(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.StallAfter(data(chunkHel)))
	a, err := providertest.Chat(t, newClient(t, u, Config{HeaderTimeout: time.Minute, IdleTimeout: 100 * time.Millisecond}), chatReq(true))
	if string(a.Text) != "Hel" {
		t.Errorf("text = %q, want Hel", a.Text)
	}
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
		t.Errorf("err = %v (kind %v), want an idle timeout", err, providertest.KindOf(err))
	}
}

// TestChatCanceled checks that a client leaving is not the upstream's fault,
// whether it leaves before the headers or during the stream.
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
		u := providertest.NewUpstream(t, providertest.StallAfter(data(chunkHel)))
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

// TestChatIdleTimeout checks that a stream that goes silent between chunks
// fails as a timeout after IdleTimeout, and that chunks arriving within it
// keep a long answer alive.
func TestChatIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := []string{data(chunkHel), data(chunkLo), data(chunkLo), data(chunkLo)}
		delays := []time.Duration{0, 8 * time.Second, 8 * time.Second, 8 * time.Second}
		c := New(Config{Name: "up", BaseURL: "http://up/v1", IdleTimeout: 10 * time.Second, HeaderTimeout: 5 * time.Second}, providertest.Trickle(chunks, delays))
		s, err := c.Chat(t.Context(), chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text string
		for range chunks {
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
		if text != "Hellololo" {
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

func TestChatKeysRoundRobin(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "openai-chat/response-basic.json"))
	c := newClient(t, u, Config{Keys: []string{"k1", "k2", "k3"}})
	for range 6 {
		s, err := c.Chat(t.Context(), chatReq(false))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	var got []string
	for _, r := range u.Requests() {
		got = append(got, r.Header.Get("Authorization"))
	}
	want := []string{"Bearer k1", "Bearer k2", "Bearer k3", "Bearer k1", "Bearer k2", "Bearer k3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authorization (-want +got):\n%s", diff)
	}
}

// TestChatKeysConcurrent checks that concurrent calls share the keys
// evenly.
func TestChatKeysConcurrent(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "openai-chat/response-basic.json"))
	c := newClient(t, u, Config{Keys: []string{"k1", "k2", "k3"}})
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
		got[r.Header.Get("Authorization")]++
	}
	if diff := cmp.Diff(map[string]int{"Bearer k1": 10, "Bearer k2": 10, "Bearer k3": 10}, got); diff != "" {
		t.Errorf("key use (-want +got):\n%s", diff)
	}
}

func TestChatHeaders(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "openai-chat/response-basic.json"))
	c := newClient(t, u, Config{Headers: map[string]string{"OpenAI-Organization": "org-1", "X-Title": "keel"}})
	s, err := c.Chat(t.Context(), chatReq(false))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	h := u.Requests()[0].Header
	for k, want := range map[string]string{"Openai-Organization": "org-1", "X-Title": "keel", "Content-Type": "application/json", "Authorization": ""} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestChatBaseURL(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "openai-chat/response-basic.json"))
	for _, base := range []string{u.URL + "/v1", u.URL + "/v1/"} {
		c := New(Config{Name: "up", BaseURL: base}, u.Client())
		s, err := c.Chat(t.Context(), chatReq(false))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, r := range u.Requests() {
		if r.Path != "/v1/chat/completions" {
			t.Errorf("path = %s", r.Path)
		}
	}
	if c := New(Config{Dialect: Dialects["mistral"]}, nil); c.url("m", "chat/completions") != "https://api.mistral.ai/v1/chat/completions" {
		t.Errorf("default url = %s", c.url("m", "chat/completions"))
	}
}

// historyRequest is a turn with tool-call history under OpenAI-style ids,
// and fields a strict upstream rejects.
const historyRequest = `{
	"model": "mistral-small-latest",
	"messages": [
		{"role": "developer", "content": "Be brief.", "name": "ops"},
		{"role": "user", "name": "ann", "content": [{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
		{"role": "assistant", "content": null, "tool_calls": [
			{"id":"call_4XzlGBLtUe9dy3GVNV4jhq7h","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"gSIMJiOkT","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
		{"role": "tool", "tool_call_id": "call_4XzlGBLtUe9dy3GVNV4jhq7h", "name": "weather", "content": "18C"},
		{"role": "tool", "tool_call_id": "gSIMJiOkT", "name": "weather", "content": "25C"},
		{"role": "assistant", "content": "Paris 18C, Rome 25C.", "reasoning_content": "easy"},
		{"role": "user", "content": "Thanks"}
	],
	"tools": [{"type":"function","function":{"name":"weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
	"tool_choice": "auto",
	"parallel_tool_calls": true,
	"response_format": {"type": "text"},
	"temperature": 0.3, "top_p": 0.9, "stop": ["END"], "seed": 42,
	"max_completion_tokens": 256,
	"user": "u-1",
	"stream": true, "stream_options": {"include_usage": true},
	"n": 1, "logit_bias": {"1": 1}, "metadata": {"a": "b"}, "store": true
}`

// mistralRequest is the part of Mistral's request schema keel uses;
// decoding with DisallowUnknownFields stands in for Mistral's 422
// extra_forbidden (mistral/error-422-extra-inputs.json).
type mistralRequest struct {
	Model    string            `json:"model"`
	Messages []json.RawMessage `json:"messages"` // a mistralMessage by role
	Tools    []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			Strict      *bool           `json:"strict"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	ResponseFormat    *struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
	} `json:"response_format"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	MaxTokens   *int     `json:"max_tokens"`
	Stream      bool     `json:"stream"`
	Stop        []string `json:"stop"`
	RandomSeed  *int64   `json:"random_seed"`
}

// mistralMessage is Mistral's message, all roles in one; mistralFields
// lists the fields each role allows.
type mistralMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCallID string          `json:"tool_call_id"`
	Prefix     bool            `json:"prefix"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

var mistralFields = map[string][]string{
	"system":    {"role", "content"},
	"user":      {"role", "content"},
	"assistant": {"role", "content", "tool_calls", "prefix"},
	"tool":      {"role", "content", "tool_call_id", "name"},
}

type mistralPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// TestChatMistralBody checks the body a Mistral upstream receives: only
// fields it knows, its names for the output limit and seed, and tool-call
// ids it accepts that still pair calls with results.
func TestChatMistralBody(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "mistral/stream-text.sse"))
	c := newClient(t, u, Config{Dialect: Dialects["mistral"], Keys: []string{"mk"}})
	req, err := wire.DecodeChatRequest([]byte(historyRequest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := providertest.Chat(t, c, req); err != io.EOF {
		t.Fatalf("stream: %v", err)
	}
	body := u.Requests()[0].Body
	var got mistralRequest
	if err := decodeStrict(body, &got); err != nil {
		t.Fatalf("Mistral would reject the body: %v\n%s", err, body)
	}
	msgs := make([]mistralMessage, len(got.Messages))
	for i, raw := range got.Messages {
		m := &msgs[i]
		if err := decodeStrict(raw, m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var keys map[string]json.RawMessage
		json.Unmarshal(raw, &keys)
		for k := range keys {
			if !slices.Contains(mistralFields[m.Role], k) {
				t.Errorf("message %d: Mistral forbids %s on %s messages: %s", i, k, m.Role, raw)
			}
		}
		if len(m.Content) > 0 && m.Content[0] == '[' {
			var parts []mistralPart
			if err := decodeStrict(m.Content, &parts); err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
	}
	if got.MaxTokens == nil || *got.MaxTokens != 256 || got.RandomSeed == nil || *got.RandomSeed != 42 || !got.Stream {
		t.Errorf("max_tokens, random_seed, stream = %v, %v, %v", got.MaxTokens, got.RandomSeed, got.Stream)
	}
	if msgs[0].Role != "system" {
		t.Errorf("developer sent as %q", msgs[0].Role)
	}
	if msgs[3].Name != "weather" {
		t.Errorf("tool message name = %q", msgs[3].Name)
	}

	calls := msgs[2].ToolCalls
	results := []string{msgs[3].ToolCallID, msgs[4].ToolCallID}
	if len(calls) != 2 || calls[0].ID != results[0] || calls[1].ID != results[1] {
		t.Fatalf("tool calls %+v do not pair with results %v", calls, results)
	}
	if calls[1].ID != "gSIMJiOkT" {
		t.Errorf("a valid Mistral id was rewritten to %q", calls[1].ID)
	}
	for _, tc := range calls {
		if len(tc.ID) != 9 || !isAlnum(tc.ID) || tc.Type != "function" {
			t.Errorf("tool call id %q (type %q) would get Mistral's 422", tc.ID, tc.Type)
		}
	}
	if h := u.Requests()[0].Header.Get("Authorization"); h != "Bearer mk" {
		t.Errorf("Authorization = %q", h)
	}
}

// TestChatOpenAIBody checks the body an OpenAI upstream receives for the
// same turn: the client's extra fields pass through, and usage is asked for.
func TestChatOpenAIBody(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Serve(t, "openai-chat/stream-text-usage.sse"))
	req, err := wire.DecodeChatRequest([]byte(historyRequest))
	if err != nil {
		t.Fatal(err)
	}
	req.IncludeUsage = false
	providertest.Chat(t, newClient(t, u, Config{Dialect: Dialects["openai"]}), req)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(u.Requests()[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"max_completion_tokens": `256`, "seed": `42`, "user": `"u-1"`, "stream_options": `{"include_usage":true}`,
		"n": `1`, "logit_bias": `{"1": 1}`, "metadata": `{"a": "b"}`, "store": `true`,
	} {
		if string(got[k]) != want {
			t.Errorf("%s = %s, want %s", k, got[k], want)
		}
	}
	if _, ok := got["max_tokens"]; ok {
		t.Errorf("max_tokens sent to OpenAI")
	}
}

func TestMistralToolCallID(t *testing.T) {
	ids := []string{"", "call_4XzlGBLtUe9dy3GVNV4jhq7h", "call_DNYTawLBoN8fj3KN6qU9N1Ou", "toolu_01", "gSIMJiO", "gSIMJiOkT0", "gSIMJiOk_", "ünïcödé12"}
	out := map[string]string{}
	for _, id := range ids {
		got := MistralToolCallID(id)
		if len(got) != 9 || !isAlnum(got) {
			t.Errorf("MistralToolCallID(%q) = %q, want 9 alphanumerics", id, got)
		}
		if again := MistralToolCallID(id); again != got {
			t.Errorf("MistralToolCallID(%q) not stable: %q, %q", id, got, again)
		}
		if prev, dup := out[got]; dup {
			t.Errorf("%q and %q both map to %q", prev, id, got)
		}
		out[got] = id
	}
	for _, id := range []string{"gSIMJiOkT", "000000000", "ABCDEFGHI"} {
		if got := MistralToolCallID(id); got != id {
			t.Errorf("MistralToolCallID(%q) = %q, want it kept", id, got)
		}
	}
}

func TestDialects(t *testing.T) {
	for name, d := range Dialects {
		u, err := url.Parse(d.BaseURL)
		if d.Deployments && d.BaseURL == "" && d.Name == name {
			continue // Azure: the base URL is the customer's resource
		}
		if d.Name != name || err != nil || !strings.HasSuffix(u.Path, "/v1") {
			t.Errorf("%s: name %q, base URL %q", name, d.Name, d.BaseURL)
		}
		if d.Local != (u.Hostname() == "127.0.0.1") {
			t.Errorf("%s: Local = %v for %s", name, d.Local, d.BaseURL)
		}
		if w := d.Wire.MaxTokensField; w != "" && w != "max_tokens" && w != "max_completion_tokens" {
			t.Errorf("%s: MaxTokensField %q", name, w)
		}
	}
}

// TestJSONReplyToStream checks that a server answering a stream request
// with a JSON body (an error sent with 200, or a whole answer) is read as
// such, not taken for a cut stream. Regression: the vendor's message was
// lost as "the upstream stream was cut".
func TestJSONReplyToStream(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, nil, []byte(`{"error":{"message":"model is loading","type":"unavailable_error","code":503}}`)))
	_, err := newClient(t, u, Config{}).Chat(t.Context(), chatReq(true))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindOverloaded || e.Message != "model is loading" {
		t.Errorf("err = %v, want the vendor's overloaded error", err)
	}
}
