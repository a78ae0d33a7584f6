package openai

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider/providertest"
)

func TestAzureURL(t *testing.T) {
	tests := []struct {
		base, version, model, op string
		want                     string
	}{
		{"https://res.openai.azure.com", "", "gpt-4o", "chat/completions",
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=" + DefaultAPIVersion},
		{"https://res.openai.azure.com/", "2025-04-01-preview", "emb-small", "embeddings",
			"https://res.openai.azure.com/openai/deployments/emb-small/embeddings?api-version=2025-04-01-preview"},
		{"https://res.openai.azure.com/openai/", "", "gpt-4o", "chat/completions",
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=" + DefaultAPIVersion},
		{"https://res.cognitiveservices.azure.com", "", "my dep/1", "chat/completions",
			"https://res.cognitiveservices.azure.com/openai/deployments/my%20dep%2F1/chat/completions?api-version=" + DefaultAPIVersion},
		{"https://res.openai.azure.com", "2024-10-21&x=1", "gpt-4o", "chat/completions",
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21%26x%3D1"},
		{"https://res.openai.azure.com", "v1", "gpt-4o", "chat/completions",
			"https://res.openai.azure.com/openai/v1/chat/completions"},
		{"https://res.openai.azure.com/openai", "v1", "emb", "embeddings",
			"https://res.openai.azure.com/openai/v1/embeddings"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c := New(Config{Dialect: Dialects["azure"], BaseURL: tt.base, APIVersion: tt.version}, nil)
			if got := c.url(tt.model, tt.op); got != tt.want {
				t.Errorf("url = %s\nwant  %s", got, tt.want)
			}
		})
	}
	// Other dialects ignore APIVersion and the model.
	c := New(Config{Dialect: Dialects["openai"], APIVersion: "2024-10-21"}, nil)
	if got := c.url("gpt-4o", "embeddings"); got != "https://api.openai.com/v1/embeddings" {
		t.Errorf("openai url = %s", got)
	}
}

// newAzure serves h as an Azure resource and returns a client of it, and
// the upstream, which records what each request arrived with.
func newAzure(t *testing.T, h http.HandlerFunc, cfg Config) (*Client, *providertest.Upstream) {
	u := providertest.NewUpstream(t, h)
	cfg.Name, cfg.Dialect, cfg.BaseURL = "azure-east", Dialects["azure"], u.URL
	return New(cfg, u.Client()), u
}

// azureStream is how Azure streams a chat answer: a first chunk with no
// choices and no id carrying the prompt's filter results, then OpenAI's
// chunks with content_filter_results on each choice.
const azureStream = `data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}

data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1x","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}

data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hello!"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1x","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}

data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-AZ1x","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":null}

data: {"choices":[],"created":1733000000,"id":"chatcmpl-AZ1x","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":{"completion_tokens":2,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":0,"rejected_prediction_tokens":0},"prompt_tokens":10,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":12}}

data: [DONE]

`

// TestAzureChat checks what Azure sees of a chat request: the deployment
// URL, the api-version, the api-key header and no Authorization; and that
// its stream decodes.
func TestAzureChat(t *testing.T) {
	c, u := newAzure(t, providertest.SSE(azureStream), Config{
		Keys: []string{"k1", "k2"}, APIVersion: "2025-04-01-preview", Headers: map[string]string{"X-Ms-Client-Request-Id": "r1"},
	})
	r := chatReq(true)
	r.Model = "gpt-4o-east"
	a, err := providertest.Chat(t, c, r)
	if err != io.EOF {
		t.Fatalf("err = %v, want a complete answer", err)
	}
	want := llm.Answer{
		ID: "chatcmpl-AZ1x", Model: "gpt-4o-2024-08-06", Created: 1733000000,
		Text: []byte("Hello!"), Finish: llm.FinishStop, Usage: llm.Usage{Input: 10, Output: 2}, HasUsage: true,
	}
	if diff := cmp.Diff(want, a, ignoreEvents); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if _, err := c.Embed(t.Context(), &llm.EmbedRequest{Model: "emb-east", Input: []string{"a"}}); err == nil {
		t.Error("Embed of a chat stream succeeded")
	}
	got := u.Requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	for i, want := range []providertest.Request{
		{Path: "/openai/deployments/gpt-4o-east/chat/completions", Query: "api-version=2025-04-01-preview", Header: http.Header{
			"Api-Key": {"k1"}, "Accept": {"text/event-stream"}, "Content-Type": {"application/json"}, "X-Ms-Client-Request-Id": {"r1"},
		}},
		{Path: "/openai/deployments/emb-east/embeddings", Query: "api-version=2025-04-01-preview", Header: http.Header{
			"Api-Key": {"k2"}, "Accept": {"application/json"}, "Content-Type": {"application/json"}, "X-Ms-Client-Request-Id": {"r1"},
		}},
	} {
		g := got[i]
		if g.Path != want.Path || g.Query != want.Query {
			t.Errorf("request %d: %s?%s, want %s?%s", i, g.Path, g.Query, want.Path, want.Query)
		}
		for k, v := range want.Header {
			if g.Header.Get(k) != v[0] {
				t.Errorf("request %d: %s = %q, want %q", i, k, g.Header.Get(k), v[0])
			}
		}
		if v := g.Header.Get("Authorization"); v != "" {
			t.Errorf("request %d: Authorization = %q, want none", i, v)
		}
	}
}

// TestAzureEmbed checks an embeddings call to a deployment, asking for
// base64.
func TestAzureEmbed(t *testing.T) {
	c, u := newAzure(t, serveEmbeddings(t), Config{Keys: []string{"k"}})
	e, err := c.Embed(t.Context(), &llm.EmbedRequest{Model: "text-embedding-3-small", Input: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Vectors) != 2 || len(e.Vectors[0]) != 8 {
		t.Errorf("got %d vectors", len(e.Vectors))
	}
	g := u.Requests()[0]
	if g.Path != "/openai/deployments/text-embedding-3-small/embeddings" || g.Query != "api-version="+DefaultAPIVersion || g.Header.Get("Api-Key") != "k" {
		t.Errorf("Azure saw %s?%s with api-key %q", g.Path, g.Query, g.Header.Get("Api-Key"))
	}
}

// TestAzureEntraID checks that a bearer token in Headers, with no keys,
// reaches Azure as it is.
func TestAzureEntraID(t *testing.T) {
	c, u := newAzure(t, serveEmbeddings(t), Config{Headers: map[string]string{"Authorization": "Bearer eyJ0"}})
	if _, err := c.Embed(t.Context(), embedReq("a", "b")); err != nil {
		t.Fatal(err)
	}
	if h := u.Requests()[0].Header; h.Get("Authorization") != "Bearer eyJ0" || h.Get("Api-Key") != "" {
		t.Errorf("Authorization %q, api-key %q", h.Get("Authorization"), h.Get("Api-Key"))
	}
}

// azureContentFilter is Azure's refusal of a prompt by its content filter.
const azureContentFilter = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":true,"detected":true},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}}}`

func TestAzureErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   llm.Error
	}{
		{"content filter", 400, nil, azureContentFilter, llm.Error{
			Kind: llm.KindContentFilter, Status: 400, Param: "prompt", Code: "content_filter",
			Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
		}},
		{"rate limit", 429, map[string]string{"Retry-After": "6", "X-Ratelimit-Remaining-Tokens": "0"},
			`{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}`,
			llm.Error{Kind: llm.KindRateLimit, Status: 429, Code: "429", RetryAfter: 6 * time.Second,
				Message: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}},
		{"no deployment", 404, nil,
			`{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`,
			llm.Error{Kind: llm.KindNotFound, Status: 404, Code: "DeploymentNotFound",
				Message: "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}},
		{"bad key", 401, nil,
			`{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}`,
			llm.Error{Kind: llm.KindAuth, Status: 401, Code: "401",
				Message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}},
		{"context length", 400, nil,
			`{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			llm.Error{Kind: llm.KindContextLength, Status: 400, Type: "invalid_request_error", Param: "messages", Code: "context_length_exceeded",
				Message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages."}},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				c, _ := newAzure(t, providertest.JSON(tt.status, tt.header, []byte(tt.body)), Config{Keys: []string{"k"}})
				s, err := c.Chat(t.Context(), chatReq(stream))
				if err == nil {
					s.Close()
					t.Fatal("Chat succeeded")
				}
				want := tt.want
				want.Provider = "azure-east"
				providertest.CheckError(t, err, want)
			})
		}
	}
}

// TestAzureFilteredAnswer checks an answer Azure's output filter cut
// short: a complete answer that finished with content_filter.
func TestAzureFilteredAnswer(t *testing.T) {
	stream := strings.Replace(azureStream, `"delta":{},"finish_reason":"stop"`, `"delta":{},"finish_reason":"content_filter"`, 1)
	c, _ := newAzure(t, providertest.SSE(stream), Config{})
	a, err := providertest.Chat(t, c, chatReq(true))
	if err != io.EOF || a.Finish != llm.FinishContentFilter {
		t.Errorf("finish %q, err %v; want content_filter, io.EOF", a.Finish, err)
	}
}

// TestAzureStreamPreamble checks that the chunk Azure opens a stream with,
// which has no id, is not passed on: the first event names the answer.
// Regression: a chat client saw every chunk with id "chatcmpl-keel" and
// model "".
func TestAzureStreamPreamble(t *testing.T) {
	c, _ := newAzure(t, providertest.SSE(azureStream), Config{})
	s, err := c.Chat(t.Context(), chatReq(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "chatcmpl-AZ1x" || ev.Model != "gpt-4o-2024-08-06" || ev.Raw == nil {
		t.Errorf("first event: id %q, model %q, raw %q", ev.ID, ev.Model, ev.Raw)
	}
}
