package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/llm/llmtest"
	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/turn"
)

// recorder is a fake turn.Recorder.
type recorder struct{ got []*chat.Request }

func (r *recorder) Record(c *chat.Request) { r.got = append(r.got, c) }

// fakeAuth accepts the key "good".
type fakeAuth struct{}

func (fakeAuth) Authenticate(ctx context.Context, h http.Header) (*chat.Key, error) {
	if h.Get("Authorization") == "Bearer good" {
		return &chat.Key{ID: "key_1"}, nil
	}
	return nil, chat.Errorf(chat.EUnauthorized, "invalid API key")
}

func newServer(t *testing.T, p llm.Provider, a Authenticator) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	// One attempt per request: these tests are of the API layer; the
	// router's retries are tested in package router.
	rt := router.New(nil, []router.Provider{{Provider: p, Models: []string{"m"}}},
		router.Options{Policy: router.Policy{Attempts: 1}, Log: slog.New(slog.DiscardHandler)})
	s := New(Config{
		Turns: &turn.Runner{Router: rt, Recorder: rec}, Router: rt, Auth: a,
		MaxBodyBytes: 1 << 10, Log: slog.New(slog.DiscardHandler),
		Simulated: map[string]bool{"sim": true},
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, rec
}

func post(t *testing.T, url, body string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type envelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeEnvelope(t *testing.T, r io.Reader) envelope {
	t.Helper()
	b, _ := io.ReadAll(r)
	var e envelope
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Errorf("error envelope lacks %q: %s", k, b)
		}
	}
	json.Unmarshal(b, &e)
	return e
}

const hello = `{"model":"m","messages":[{"role":"user","content":"hi"}]`

func TestBadRequests(t *testing.T) {
	srv, _ := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return llmtest.Text("m", "x"), nil
	}}, nil)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantParam  string
		wantCode   string
	}{
		{"not json", `{`, 400, "", ""},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model", ""},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"hi"}]}`, 400, "messages[0].role", ""},
		{"bad temperature", hello + `,"temperature":3}`, 400, "temperature", ""},
		{"wrong type", hello + `,"stream":"yes"}`, 400, "stream", ""},
		{"too large", `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			e := decodeEnvelope(t, resp.Body)
			if e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Errorf("error = %+v", e.Error)
			}
			if got := deref(e.Error.Param); got != tt.wantParam {
				t.Errorf("param = %q, want %q", got, tt.wantParam)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestAuth(t *testing.T) {
	srv, rec := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return llmtest.Text("m", "x"), nil
	}}, fakeAuth{})
	for _, key := range []string{"", "Bearer bad"} {
		resp := post(t, srv.URL, hello+"}", "Authorization", key)
		if resp.StatusCode != 401 {
			t.Fatalf("key %q: status = %d, want 401", key, resp.StatusCode)
		}
		if e := decodeEnvelope(t, resp.Body); e.Error.Type != "authentication_error" || deref(e.Error.Code) != "invalid_api_key" {
			t.Errorf("key %q: error = %+v", key, e.Error)
		}
	}
	resp := post(t, srv.URL, hello+"}", "Authorization", "Bearer good")
	if resp.StatusCode != 200 {
		t.Fatalf("good key: status = %d", resp.StatusCode)
	}
	io.ReadAll(resp.Body)
	if len(rec.got) != 1 || rec.got[0].KeyID != "key_1" {
		t.Errorf("records = %+v, want one with key_1", rec.got)
	}
}

func TestStream(t *testing.T) {
	srv, rec := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(_ context.Context, r *llm.Request) (llm.Stream, error) {
		return llmtest.Text("up-"+r.Model, "hello ", "world"), nil
	}}, nil)
	resp := post(t, srv.URL, hello+`,"stream":true,"stream_options":{"include_usage":true}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	for h, want := range map[string]string{"Content-Type": "text/event-stream", "X-Keel-Target": "p/m"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	b, _ := io.ReadAll(resp.Body)
	events := strings.Split(string(b), "\n\n")
	if events[len(events)-1] != "" || events[len(events)-2] != "data: [DONE]" {
		t.Fatalf("stream does not end with [DONE] and a blank line: %q", b)
	}
	var text string
	var usage *struct {
		TotalTokens int `json:"total_tokens"`
	}
	for _, e := range events[:len(events)-2] {
		var c struct {
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(e, "data: ")), &c); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		if c.Object != "chat.completion.chunk" || c.Model != "up-m" {
			t.Errorf("chunk object/model = %q/%q", c.Object, c.Model)
		}
		for _, ch := range c.Choices {
			text += ch.Delta.Content
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	if text != "hello world" {
		t.Errorf("text = %q", text)
	}
	if usage == nil || usage.TotalTokens != 5 {
		t.Errorf("usage = %+v, want total 5", usage)
	}
	if len(rec.got) != 1 || rec.got[0].Status != 200 || rec.got[0].OutputTokens != 2 || rec.got[0].ServedModel != "m" {
		t.Errorf("record = %+v", rec.got)
	}
}

// TestStreamErrorInBand checks that a stream that breaks after the 200 ends
// with an in-band error and without [DONE].
func TestStreamErrorInBand(t *testing.T) {
	srv, rec := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return &llmtest.Stream{
			Events: []llm.Event{{ID: "x", Model: "m", Text: "partial"}},
			Err:    &llm.Error{Kind: llm.KindStream, Provider: "p", Message: "the upstream stream was cut"},
		}, nil
	}}, nil)
	resp := post(t, srv.URL, hello+`,"stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	if strings.Contains(s, "[DONE]") {
		t.Errorf("a broken stream ended with [DONE]: %q", s)
	}
	events := strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n")
	last := strings.TrimPrefix(events[len(events)-1], "data: ")
	if e := decodeEnvelope(t, strings.NewReader(last)); !strings.Contains(e.Error.Message, "broke off") || !strings.Contains(e.Error.Message, "the upstream stream was cut") {
		t.Errorf("in-band error = %+v", e.Error)
	}
	if !strings.HasSuffix(s, "\n\n") {
		t.Errorf("the error event lacks its blank line: %q", s)
	}
	if len(rec.got) != 1 || rec.got[0].Status != 502 {
		t.Errorf("record = %+v, want status 502", rec.got)
	}
}

func TestNonStream(t *testing.T) {
	srv, _ := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return llmtest.Text("up-m", "hello ", "world"), nil
	}}, nil)
	resp := post(t, srv.URL, hello+"}")
	var got struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Role    string  `json:"role"`
				Content string  `json:"content"`
				Refusal *string `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Object != "chat.completion" || got.Model != "up-m" || len(got.Choices) != 1 ||
		got.Choices[0].Message.Content != "hello world" || got.Choices[0].FinishReason != "stop" ||
		got.Usage.PromptTokens != 3 || got.Usage.CompletionTokens != 2 {
		t.Errorf("got %+v", got)
	}
	if r := got.Choices[0].Message.Refusal; r != nil {
		t.Errorf("refusal = %q, want null", *r)
	}
}

func TestUpstreamErrorKeepsStatusAndMessage(t *testing.T) {
	srv, _ := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return nil, &llm.Error{Kind: llm.KindRateLimit, Status: 429, Provider: "p", Type: "tokens", Code: "rate_limit_exceeded", Message: "Rate limit reached", RetryAfter: 1500e6}
	}}, nil)
	resp := post(t, srv.URL, hello+"}")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("status = %d, Retry-After = %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e := decodeEnvelope(t, resp.Body)
	if diff := cmp.Diff([]string{"Rate limit reached", "tokens", "rate_limit_exceeded"}, []string{e.Error.Message, e.Error.Type, deref(e.Error.Code)}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestModelsAndMisc(t *testing.T) {
	srv, _ := newServer(t, &llmtest.Provider{NameV: "sim"}, nil)
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID        string `json:"id"`
			Simulated bool   `json:"simulated"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "m" || !list.Data[0].Simulated {
		t.Errorf("models = %+v", list)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/v1/nope": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
}

// TestRecordContent checks issue 2's privacy default: prompt and
// completion text reach the record only when the config asks for it.
func TestRecordContent(t *testing.T) {
	for _, record := range []bool{false, true} {
		rec := &recorder{}
		p := &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
			return llmtest.Text("m", "hello ", "world"), nil
		}}
		rt := router.New(nil, []router.Provider{{Provider: p}}, router.Options{Log: slog.New(slog.DiscardHandler)})
		srv := httptest.NewServer(New(Config{
			Turns: &turn.Runner{Router: rt, Recorder: rec, RecordContent: record}, Router: rt,
			MaxBodyBytes: 1 << 10, Log: slog.New(slog.DiscardHandler),
		}))
		resp := post(t, srv.URL, hello+`,"stream":true}`)
		io.ReadAll(resp.Body)
		srv.Close()
		if len(rec.got) != 1 {
			t.Fatalf("records = %d", len(rec.got))
		}
		got := []string{rec.got[0].Prompt, rec.got[0].Completion}
		want := []string{"", ""}
		if record {
			want = []string{"hi", "hello world"}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record_content=%v: (-want +got):\n%s", record, diff)
		}
	}
}

// gatedStream answers "a", then an event that encodes to nothing, both at
// hand at once, then waits for gate before the rest.
type gatedStream struct {
	gate chan struct{}
	i    int
}

func (s *gatedStream) Recv() (*llm.Event, error) {
	s.i++
	switch s.i {
	case 1:
		return &llm.Event{ID: "g", Model: "m", Text: "a"}, nil
	case 2:
		return &llm.Event{ID: "g", Model: "m"}, nil
	case 3:
		<-s.gate
		return &llm.Event{ID: "g", Model: "m", Text: "b", Finish: llm.FinishStop}, nil
	}
	return nil, io.EOF
}

func (s *gatedStream) Buffered() bool { return s.i < 2 }
func (s *gatedStream) Close() error   { return nil }

// TestStreamFlushesBeforeWaiting: what was written while more events were
// at hand goes out before keel waits for the upstream again, even when the
// last of those events writes nothing (regression: it held "a" back until
// the next event arrived).
func TestStreamFlushesBeforeWaiting(t *testing.T) {
	gate := make(chan struct{})
	srv, _ := newServer(t, &llmtest.Provider{NameV: "p", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		return &gatedStream{gate: gate}, nil
	}}, nil)
	// The request runs on its own goroutine: held-back bytes would hold
	// back the response headers too.
	got := make(chan string, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(hello+`,"stream":true}`))
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil || strings.Contains(line, `"content":"a"`) {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, `"content":"a"`) {
			t.Errorf("stream ended before \"a\": %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Error("\"a\" was held back while keel waited for the upstream")
	}
	close(gate)
}
