package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/provider/providertest"
)

// serveJSON is providertest.JSON with the Content-Type Gemini answers
// with; header is set over it.
func serveJSON(status int, header map[string]string, body []byte) http.HandlerFunc {
	h := map[string]string{"Content-Type": "application/json; charset=UTF-8"}
	maps.Copy(h, header)
	return providertest.JSON(status, h, body)
}

// newClient returns a client of u that logs nothing, named "up" unless cfg
// says otherwise.
func newClient(u *providertest.Upstream, cfg Config) *Client {
	if cfg.Name == "" {
		cfg.Name = "up"
	}
	cfg.BaseURL = u.URL + "/v1beta"
	cfg.Log = providertest.Quiet()
	return New(cfg, u.Client())
}

func chatReq(stream bool) *llm.Request { return providertest.Hi("gemini-x", stream) }

var ignoreEvents = cmpopts.IgnoreFields(llm.Answer{}, "Events", "Created")

func TestChatStream(t *testing.T) {
	tests := []struct {
		file string
		want llm.Answer
	}{
		{"gemini/stream-text.sse", llm.Answer{
			ID: "bH6LaZW8Fp_3nsEPqtaSwQ4", Model: "gemini-3-pro-preview",
			Text: []byte("There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"), Finish: llm.FinishStop,
			Usage: llm.Usage{Input: 9, Output: 208, Reasoning: 185}, HasUsage: true,
		}},
		{"gemini/stream-function-call.sse", llm.Answer{
			ID: "b36LacjwM668nsEP2tbsgQQ", Model: "gemini-3-pro-preview",
			ToolCalls: []llm.ToolCall{{ID: "call_iT2reLoerfHRU0A9IQxaBBiK", Name: "weather", Arguments: `{"location":"San Francisco"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 29, Output: 60, Reasoning: 45}, HasUsage: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.Serve(t, tt.file))
			c := newClient(u, Config{Keys: []string{"gk"}})
			start := time.Now().Unix()
			got, err := providertest.Chat(t, c, chatReq(true))
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want io.EOF", err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if got.Created < start || got.Created > time.Now().Unix() {
				t.Errorf("Created = %d, want the time of the request", got.Created)
			}
			r := u.Requests()[0]
			if r.Path != "/v1beta/models/gemini-x:streamGenerateContent" || r.Query != "alt=sse" {
				t.Errorf("request to %s?%s", r.Path, r.Query)
			}
			for k, want := range map[string]string{"X-Goog-Api-Key": "gk", "Accept": "text/event-stream", "Content-Type": "application/json", "Authorization": ""} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if want := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`; string(r.Body) != want {
				t.Errorf("body %s, want %s", r.Body, want)
			}
		})
	}
}

func TestChatNonStream(t *testing.T) {
	tests := []struct {
		file string
		want llm.Answer
	}{
		{"gemini/response-text.json", llm.Answer{
			ID: "Un6LacrVMcjUxs0PmJfWoQc", Model: "gemini-3-pro-preview",
			Text:   []byte("There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y."),
			Finish: llm.FinishStop, Usage: llm.Usage{Input: 9, Output: 272, Reasoning: 244}, HasUsage: true,
		}},
		{"gemini/response-function-call.json", llm.Answer{
			ID: "m36LaZGyCLz1xs0PtNSB-QU", Model: "gemini-3-pro-preview",
			ToolCalls: []llm.ToolCall{{ID: "call_XPotADlCZHLWXHFM1MLez7ST", Name: "weather", Arguments: `{"location":"San Francisco"}`}},
			Finish:    llm.FinishToolCalls, Usage: llm.Usage{Input: 29, Output: 908, Reasoning: 893}, HasUsage: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			u := providertest.NewUpstream(t, serveJSON(200, nil, providertest.Fixture(t, tt.file)))
			got, err := providertest.Chat(t, newClient(u, Config{}), chatReq(false))
			if err != io.EOF {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEvents); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if got.Created == 0 {
				t.Errorf("no Created")
			}
			r := u.Requests()[0]
			if r.Path != "/v1beta/models/gemini-x:generateContent" || r.Query != "" || r.Header.Get("Accept") != "application/json" || r.Header.Get("X-Goog-Api-Key") != "" {
				t.Errorf("request to %s?%s, headers %v", r.Path, r.Query, r.Header)
			}
		})
	}
}

// TestChatPromptBlocked checks that a prompt Gemini refuses is the vendor's
// content filter, before any of the answer: the router's policy for
// refusals applies (failover_on_content_filter).
func TestChatPromptBlocked(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		u := providertest.NewUpstream(t, providertest.Serve(t, "gemini/stream-prompt-blocked.sse"))
		a, err := providertest.Chat(t, newClient(u, Config{}), chatReq(true))
		var e *llm.Error
		if !errors.As(err, &e) || e.Kind != llm.KindContentFilter || e.Code != "PROHIBITED_CONTENT" || a.Events != 0 {
			t.Errorf("err = %v (%+v) after %d events, want a content filter error first", err, e, a.Events)
		}
	})
	t.Run("whole", func(t *testing.T) {
		u := providertest.NewUpstream(t, serveJSON(200, nil, []byte(`{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}`)))
		_, err := newClient(u, Config{}).Chat(t.Context(), chatReq(false))
		if providertest.KindOf(err) != llm.KindContentFilter {
			t.Errorf("err = %v, want a content filter error", err)
		}
	})
}

func TestChatStatusErrors(t *testing.T) {
	file := func(p string) []byte { return providertest.Fixture(t, p) }
	status := func(code int, st, msg string) []byte {
		return fmt.Appendf(nil, `{"error":{"code":%d,"message":%q,"status":%q}}`, code, msg, st)
	}
	type statusCase struct {
		name   string
		status int
		header map[string]string
		body   []byte
		want   llm.Error
	}
	// passed is a case of a Google error, sent with its code as the HTTP
	// status, whose status and message the adapter must pass on as they are.
	passed := func(name string, code int, kind llm.Kind, st, msg string) statusCase {
		return statusCase{name, code, nil, status(code, st, msg), llm.Error{Kind: kind, Status: code, Type: st, Message: msg}}
	}
	tests := []statusCase{
		{"bad key", 400, nil, file("gemini/error-400-invalid-argument.json"), llm.Error{
			Kind: llm.KindAuth, Status: 400, Type: "INVALID_ARGUMENT", Code: "API_KEY_INVALID", Message: "API key not valid. Please pass a valid API key.",
		}},
		{"rate limit", 429, nil, file("gemini/error-429-resource-exhausted.json"), llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "RESOURCE_EXHAUSTED", Message: "You exceeded your current quota, please check your plan.",
			RetryAfter: 34400 * time.Millisecond,
		}},
		{"rate limit, header hint", 429, map[string]string{"Retry-After": "3"}, status(429, "RESOURCE_EXHAUSTED", "slow down"), llm.Error{
			Kind: llm.KindRateLimit, Status: 429, Type: "RESOURCE_EXHAUSTED", Message: "slow down", RetryAfter: 3 * time.Second,
		}},
		{"daily quota", 429, nil, []byte(`{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20s"}]}}`), llm.Error{
			Kind: llm.KindQuota, Status: 429, Type: "RESOURCE_EXHAUSTED", Message: "You exceeded your current quota.", RetryAfter: 20 * time.Second,
		}},
		passed("no free tier", 429, llm.KindQuota, "RESOURCE_EXHAUSTED", "Quota exceeded for metric: generate_content_free_tier_requests, limit: 0"),
		{"overloaded", 503, nil, file("gemini/error-503-unavailable.json"), llm.Error{
			Kind: llm.KindOverloaded, Status: 503, Type: "UNAVAILABLE", Message: "The model is overloaded. Please try again later.",
		}},
		passed("internal", 500, llm.KindServer, "INTERNAL", "An internal error has occurred."),
		passed("deadline", 504, llm.KindTimeout, "DEADLINE_EXCEEDED", "Deadline expired."),
		passed("not found", 404, llm.KindNotFound, "NOT_FOUND", "models/gemini-x is not found"),
		passed("permission", 403, llm.KindAuth, "PERMISSION_DENIED", "denied"),
		passed("unauthenticated", 401, llm.KindAuth, "UNAUTHENTICATED", "no"),
		passed("context length", 400, llm.KindContextLength, "INVALID_ARGUMENT", "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."),
		passed("invalid", 400, llm.KindInvalid, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'"),
		passed("location", 400, llm.KindInvalid, "FAILED_PRECONDITION", "User location is not supported for the API use."),
		{"array body", 503, nil, []byte(`[{"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}}]`), llm.Error{
			Kind: llm.KindOverloaded, Status: 503, Type: "UNAVAILABLE", Message: "busy",
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
				u := providertest.NewUpstream(t, serveJSON(tt.status, tt.header, tt.body))
				s, err := newClient(u, Config{Name: "up"}).Chat(t.Context(), chatReq(stream))
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
	chunkHel    = `{"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],"responseId":"r","modelVersion":"m"}`
	chunkLo     = `{"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"index":0}],"responseId":"r","modelVersion":"m"}`
	chunkFinish = `{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2},"responseId":"r","modelVersion":"m"}`
	chunkUsage  = `{"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":3},"responseId":"r","modelVersion":"m"}`
)

// TestChatStreamEnds checks how the end of an upstream body is read: only
// an answer that finished is complete, since Gemini sends no end marker.
func TestChatStreamEnds(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		wantText  string
		wantErr   error    // io.EOF, or nil when wantKind applies
		wantKind  llm.Kind // of the *llm.Error
		malformed int64
	}{
		{"complete", data(chunkHel) + data(chunkLo) + data(chunkFinish), "Hello", io.EOF, 0, 0},
		{"usage after the finish", data(chunkHel) + data(chunkLo) + data(chunkFinish) + data(chunkUsage), "Hello", io.EOF, 0, 0},
		{"keep-alive comments", ": ping\n\n" + data(chunkHel) + ": ping\n\n" + data(chunkLo) + data(chunkFinish), "Hello", io.EOF, 0, 0},
		{"CRLF framing", strings.ReplaceAll(data(chunkHel)+data(chunkLo)+data(chunkFinish), "\n", "\r\n"), "Hello", io.EOF, 0, 0},
		{"ends before the finish", data(chunkHel) + data(chunkLo), "Hello", nil, llm.KindStream, 0},
		{"empty body", "", "", nil, llm.KindStream, 0},
		{"malformed chunk skipped", data(chunkHel) + data(`{"candidates":[{"content":{"parts":[{"text":"garbl`) + data(chunkLo) + data(chunkFinish), "Hello", io.EOF, 0, 1},
		{"non-JSON chunks skipped", data(chunkHel) + data("hello") + data(`[1]`) + data(chunkLo) + data(chunkFinish), "Hello", io.EOF, 0, 2},
		{"in-band error", data(chunkHel) + data(`{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`), "Hel", nil, llm.KindServer, 0},
		{"in-band invalid is a stream error", data(chunkHel) + data(`{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT"}}`), "Hel", nil, llm.KindStream, 0},
		{"malformed function call", data(chunkHel) + data(`{"candidates":[{"content":{"parts":[]},"finishReason":"MALFORMED_FUNCTION_CALL"}]}`), "Hel", nil, llm.KindStream, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.SSE(tt.stream))
			c := newClient(u, Config{})
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
		data(chunkHel) + `data: {"candidates":[{"content":{"parts":[{"text":"lo`, // inside a line
		data(chunkHel) + "data: " + chunkLo + "\n",                               // before the blank line
		data(chunkHel) + data(chunkFinish)[:40],                                  // inside the finish chunk
		data(chunkHel),                                                           // between events
	} {
		t.Run(fmt.Sprintf("%q", cut[len(cut)-10:]), func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.Cut(t, cut))
			a, err := providertest.Chat(t, newClient(u, Config{}), chatReq(true))
			if string(a.Text) != "Hel" {
				t.Errorf("text = %q, want Hel", a.Text)
			}
			if providertest.KindOf(err) != llm.KindStream || errors.Is(err, io.EOF) {
				t.Errorf("err = %v (kind %v), want a stream error", err, providertest.KindOf(err))
			}
		})
	}
}

// TestChatJSONReplyToStream checks a stream request answered with JSON: a
// whole answer as an array (no alt=sse honoured) or an error with a 200.
func TestChatJSONReplyToStream(t *testing.T) {
	u := providertest.NewUpstream(t, serveJSON(200, nil, []byte("["+chunkHel+",\r\n"+chunkLo+",\r\n"+chunkFinish+"]")))
	a, err := providertest.Chat(t, newClient(u, Config{}), chatReq(true))
	if err != io.EOF || string(a.Text) != "Hello" || a.Finish != llm.FinishStop {
		t.Errorf("answer %q, %q, %v", a.Text, a.Finish, err)
	}

	u = providertest.NewUpstream(t, serveJSON(200, nil, []byte(`{"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}}`)))
	_, err = newClient(u, Config{}).Chat(t.Context(), chatReq(true))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindOverloaded || e.Message != "busy" {
		t.Errorf("err = %v, want the vendor's overloaded error", err)
	}

	u = providertest.NewUpstream(t, serveJSON(200, nil, []byte(`<html>`)))
	_, err = newClient(u, Config{}).Chat(t.Context(), chatReq(false))
	if providertest.KindOf(err) != llm.KindStream {
		t.Errorf("err = %v, want a stream error", err)
	}
}

// TestChatHeaderTimeoutExact: a stream's headers are bounded by the header
// deadline to the instant; a whole answer's only by the caller.
func TestChatHeaderTimeoutExact(t *testing.T) {
	providertest.CheckHeaderDeadline(t, func(header time.Duration, hc *http.Client) llm.Provider {
		return New(Config{Name: "up", BaseURL: "http://up/v1beta", HeaderTimeout: header}, hc)
	}, chatReq)
}

func TestChatHeaderTimeout(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.Stall)
	_, err := newClient(u, Config{HeaderTimeout: 50 * time.Millisecond}).Chat(t.Context(), chatReq(true))
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrHeaderTimeout) {
		t.Errorf("err = %v (kind %v), want a header timeout", err, providertest.KindOf(err))
	}
}

// TestChatIdleTimeoutServer checks a real upstream that goes silent after
// its first chunk.
func TestChatIdleTimeoutServer(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.StallAfter(data(chunkHel)))
	a, err := providertest.Chat(t, newClient(u, Config{HeaderTimeout: time.Minute, IdleTimeout: 100 * time.Millisecond}), chatReq(true))
	if string(a.Text) != "Hel" {
		t.Errorf("text = %q, want Hel", a.Text)
	}
	if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
		t.Errorf("err = %v (kind %v), want an idle timeout", err, providertest.KindOf(err))
	}
}

// TestChatIdleTimeout checks, under synctest, that a stream that goes
// silent fails after IdleTimeout exactly, and that chunks arriving within
// it keep a long answer alive.
func TestChatIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := []string{data(chunkHel), data(chunkLo), data(chunkLo)}
		hc := providertest.Trickle(chunks, []time.Duration{0, 8 * time.Second, 8 * time.Second})
		c := New(Config{Name: "up", BaseURL: "http://up/v1beta", IdleTimeout: 10 * time.Second, Log: providertest.Quiet()}, hc)
		s, err := c.Chat(t.Context(), chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for range 3 {
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		last := time.Now()
		_, err = s.Recv()
		if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) || time.Since(last) != 10*time.Second {
			t.Errorf("err = %v (kind %v) after %v, want an idle timeout after 10s", err, providertest.KindOf(err), time.Since(last))
		}
	})
}

// TestChatCanceled checks that a client leaving is not the upstream's fault.
func TestChatCanceled(t *testing.T) {
	t.Run("before headers", func(t *testing.T) {
		u := providertest.NewUpstream(t, providertest.Stall)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := newClient(u, Config{HeaderTimeout: time.Minute}).Chat(ctx, chatReq(true))
		if providertest.KindOf(err) != llm.KindTimeout {
			t.Errorf("err = %v (kind %v): a caller's deadline is a timeout", err, providertest.KindOf(err))
		}
		ctx, cancel = context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err = newClient(u, Config{}).Chat(ctx, chatReq(true))
		if providertest.KindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v (kind %v), want canceled", err, providertest.KindOf(err))
		}
	})
	t.Run("during the stream", func(t *testing.T) {
		u := providertest.NewUpstream(t, providertest.StallAfter(data(chunkHel)))
		ctx, cancel := context.WithCancel(t.Context())
		s, err := newClient(u, Config{}).Chat(ctx, chatReq(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err = providertest.Drain(t, s); providertest.KindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v (kind %v), want canceled", err, providertest.KindOf(err))
		}
	})
}

func TestChatKeysHeadersModels(t *testing.T) {
	u := providertest.NewUpstream(t, serveJSON(200, nil, providertest.Fixture(t, "gemini/response-text.json")))
	c := New(Config{Name: "up", BaseURL: u.URL + "/v1beta/", Keys: []string{"k1", "k2"}, Headers: map[string]string{"X-Goog-User-Project": "p"}, Log: providertest.Quiet()}, u.Client())
	var keys []string
	for _, model := range []string{"gemini-2.5-flash", "models/gemini-2.5-pro", "tunedModels/mine", "gemini-2.5-flash"} {
		r := chatReq(false)
		r.Model = model
		s, err := c.Chat(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	var paths []string
	for _, r := range u.Requests() {
		keys = append(keys, r.Header.Get("X-Goog-Api-Key"))
		paths = append(paths, r.Path)
		if r.Header.Get("X-Goog-User-Project") != "p" {
			t.Errorf("headers %v", r.Header)
		}
	}
	if diff := cmp.Diff([]string{"k1", "k2", "k1", "k2"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	want := []string{
		"/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent",
		"/v1beta/tunedModels/mine:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if c := New(Config{}, nil); c.base != DefaultBaseURL || c.Prefills() {
		t.Errorf("default base %s, prefills %v", c.base, c.Prefills())
	}
}

// TestChatInvalidRequest checks a request Gemini cannot be sent.
func TestChatInvalidRequest(t *testing.T) {
	u := providertest.NewUpstream(t, serveJSON(200, nil, nil))
	r := chatReq(true)
	r.Messages = append(r.Messages, llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: "[1]"}}})
	_, err := newClient(u, Config{}).Chat(t.Context(), r)
	if providertest.KindOf(err) != llm.KindInvalid || len(u.Requests()) != 0 {
		t.Errorf("err = %v after %d requests, want invalid before any", err, len(u.Requests()))
	}
}

func TestEmbed(t *testing.T) {
	u := providertest.NewUpstream(t, serveJSON(200, nil, []byte(`{"embeddings":[{"values":[0.1,0.2]},{"values":[-1,2e-3]}]}`)))
	dims := 2
	e, err := newClient(u, Config{Keys: []string{"gk"}}).Embed(t.Context(), &llm.EmbedRequest{Model: "text-embedding-004", Input: []string{"a", "b"}, Dimensions: &dims})
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.Embeddings{Model: "text-embedding-004", Vectors: [][]float32{{0.1, 0.2}, {-1, 0.002}}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r := u.Requests()[0]
	wantBody := `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]},"outputDimensionality":2},{"model":"models/text-embedding-004","content":{"parts":[{"text":"b"}]},"outputDimensionality":2}]}`
	if r.Path != "/v1beta/models/text-embedding-004:batchEmbedContents" || string(r.Body) != wantBody || r.Header.Get("X-Goog-Api-Key") != "gk" {
		t.Errorf("request %s %s %v", r.Path, r.Body, r.Header)
	}

	for _, tt := range []struct {
		name   string
		status int
		body   string
		kind   llm.Kind
	}{
		{"error", 400, `{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`, llm.KindInvalid},
		{"rate limit", 429, `{"error":{"code":429,"message":"slow","status":"RESOURCE_EXHAUSTED"}}`, llm.KindRateLimit},
		{"too few", 200, `{"embeddings":[{"values":[1]}]}`, llm.KindStream},
		{"not JSON", 200, `{"embeddings":`, llm.KindStream},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, serveJSON(tt.status, nil, []byte(tt.body)))
			_, err := newClient(u, Config{}).Embed(t.Context(), &llm.EmbedRequest{Model: "m", Input: []string{"a", "b"}})
			if providertest.KindOf(err) != tt.kind {
				t.Errorf("err = %v (kind %v), want %v", err, providertest.KindOf(err), tt.kind)
			}
		})
	}
}
