package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/provider/providertest"
	"github.com/keel-ai/keel/internal/sim"
	"github.com/keel-ai/keel/internal/wire"
)

// embedFixtures are the embeddings answers the wire package is tested
// against.
const embedFixtures = "../../wire/testdata/embeddings"

func embedFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(embedFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func embedReq(inputs ...string) *llm.EmbedRequest {
	return &llm.EmbedRequest{Model: "text-embedding-3-small", Input: inputs}
}

// bitsEqual compares vectors bit for bit: -0 is not 0.
var bitsEqual = cmp.Comparer(func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })

// serveEmbeddings answers in the format the request asked for, from the
// fixtures holding the same two vectors as floats and as base64.
func serveEmbeddings(t *testing.T) http.HandlerFunc {
	float, b64 := embedFixture(t, "openai-float.json"), embedFixture(t, "openai-base64.json")
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			EncodingFormat string `json:"encoding_format"`
		}
		body := float
		if json.NewDecoder(r.Body).Decode(&req) == nil && req.EncodingFormat == "base64" {
			body = b64
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// TestEmbed checks each dialect's embeddings request and that its answer,
// as floats or base64, decodes to the same vectors.
func TestEmbed(t *testing.T) {
	want, err := wire.DecodeEmbeddings(embedFixture(t, "openai-float.json"))
	if err != nil {
		t.Fatal(err)
	}
	dims := 8
	tests := []struct {
		dialect string
		// body is the request the upstream must see.
		body string
	}{
		{"openai", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8,"encoding_format":"base64","user":"u"}`},
		{"sim", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8,"encoding_format":"base64","user":"u"}`},
		{"vllm", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8,"encoding_format":"base64","user":"u"}`},
		{"ollama", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8,"encoding_format":"base64","user":"u"}`},
		{"together", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8,"user":"u"}`},
		{"mistral", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":8}`},
	}
	for _, tt := range tests {
		t.Run(tt.dialect, func(t *testing.T) {
			u := providertest.NewUpstream(t, serveEmbeddings(t))
			c := newClient(t, u, Config{Dialect: Dialects[tt.dialect], Keys: []string{"k"}})
			r := &llm.EmbedRequest{Model: "text-embedding-3-small", Input: []string{"a", "b"}, Dimensions: &dims, User: "u"}
			got, err := c.Embed(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, bitsEqual); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			s := u.Requests()[0]
			if s.Path != "/v1/embeddings" || string(s.Body) != tt.body {
				t.Errorf("upstream saw %s %s\nwant /v1/embeddings %s", s.Path, s.Body, tt.body)
			}
			for k, v := range map[string]string{"Authorization": "Bearer k", "Content-Type": "application/json", "Accept": "application/json"} {
				if got := s.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if r.User != "u" {
				t.Errorf("Embed changed the request: user %q", r.User)
			}
		})
	}
}

// TestEmbedNoEmbeddings checks that dialects without embeddings fail
// without a request, as not found, so that a router fails over.
func TestEmbedNoEmbeddings(t *testing.T) {
	for name, d := range Dialects {
		t.Run(name, func(t *testing.T) {
			u := providertest.NewUpstream(t, serveEmbeddings(t))
			c := newClient(t, u, Config{Dialect: d})
			if c.Supports("m", llm.FeatureEmbeddings) != !d.NoEmbeddings {
				t.Errorf("Supports(embeddings) = %v with NoEmbeddings %v", c.Supports("m", llm.FeatureEmbeddings), d.NoEmbeddings)
			}
			if !d.NoEmbeddings {
				return
			}
			_, err := c.Embed(t.Context(), embedReq("a"))
			if providertest.KindOf(err) != llm.KindNotFound {
				t.Errorf("err = %v (kind %v), want not_found", err, providertest.KindOf(err))
			}
			if n := len(u.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
	for _, name := range []string{"groq", "deepseek"} {
		if !Dialects[name].NoEmbeddings {
			t.Errorf("%s: NoEmbeddings not set", name)
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   llm.Error
	}{
		{"rate limit", 429, map[string]string{"Retry-After-Ms": "1500"},
			`{"error":{"message":"Rate limit reached for text-embedding-3-small","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			llm.Error{Kind: llm.KindRateLimit, Status: 429, Type: "requests", Code: "rate_limit_exceeded",
				Message: "Rate limit reached for text-embedding-3-small", RetryAfter: 1500 * time.Millisecond}},
		{"context length", 400, nil,
			`{"error":{"message":"This model's maximum context length is 8192 tokens, however you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length.","type":"invalid_request_error","param":null,"code":null}}`,
			llm.Error{Kind: llm.KindContextLength, Status: 400, Type: "invalid_request_error",
				Message: "This model's maximum context length is 8192 tokens, however you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length."}},
		{"model not found", 404, nil,
			`{"error":{"message":"The model ` + "`gpt-4o`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			llm.Error{Kind: llm.KindNotFound, Status: 404, Type: "invalid_request_error", Code: "model_not_found",
				Message: "The model `gpt-4o` does not exist or you do not have access to it."}},
		{"invalid key", 401, nil, string(providertest.Fixture(t, "openai-chat/error-401-invalid-key.json")),
			llm.Error{Kind: llm.KindAuth, Status: 401, Type: "invalid_request_error", Code: "invalid_api_key",
				Message: "Incorrect API key provided: sk-xxxx. You can find your API key at https://platform.openai.com/account/api-keys."}},
		{"mistral validation", 422, nil, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","dimensions"],"msg":"Extra inputs are not permitted"}]},"type":"invalid_request_error","param":null,"code":null}`,
			llm.Error{Kind: llm.KindInvalid, Status: 422, Type: "invalid_request_error",
				Message: `{"detail":[{"type":"extra_forbidden","loc":["body","dimensions"],"msg":"Extra inputs are not permitted"}]}`}},
		{"server", 503, nil, "", llm.Error{Kind: llm.KindOverloaded, Status: 503, Message: "upstream returned status 503"}},

		{"undecodable answer", 200, nil, `<html>`,
			llm.Error{Kind: llm.KindStream, Message: "the upstream sent an undecodable answer"}},
		{"error with 200", 200, nil, `{"error":"model runner has unexpectedly stopped"}`,
			llm.Error{Kind: llm.KindStream, Message: "model runner has unexpectedly stopped"}},
		{"fewer vectors than inputs", 200, nil, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"m"}`,
			llm.Error{Kind: llm.KindStream, Message: "the upstream returned 1 embeddings for 2 inputs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.JSON(tt.status, tt.header, []byte(tt.body)))
			_, err := newClient(t, u, Config{Name: "up"}).Embed(t.Context(), embedReq("a", "b"))
			want := tt.want
			want.Provider = "up"
			providertest.CheckError(t, err, want)
		})
	}
}

// TestEmbedCut checks that an answer cut short is a broken answer, not a
// decoding problem of the upstream's.
func TestEmbedCut(t *testing.T) {
	body := embedFixture(t, "openai-float.json")
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		rc := http.NewResponseController(w)
		rc.Flush()
		conn, _, err := rc.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	})
	_, err := newClient(t, u, Config{}).Embed(t.Context(), embedReq("a", "b"))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindStream || e.Message != "the upstream's answer was cut" {
		t.Errorf("err = %v, want a cut answer", err)
	}
}

func TestEmbedTimeouts(t *testing.T) {
	t.Run("headers", func(t *testing.T) {
		u := providertest.NewUpstream(t, providertest.Stall)
		_, err := newClient(t, u, Config{HeaderTimeout: 50 * time.Millisecond}).Embed(t.Context(), embedReq("a"))
		if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrHeaderTimeout) {
			t.Errorf("err = %v (kind %v), want a header timeout", err, providertest.KindOf(err))
		}
	})
	t.Run("body", func(t *testing.T) {
		u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"list","data":[`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		_, err := newClient(t, u, Config{HeaderTimeout: time.Minute, IdleTimeout: 50 * time.Millisecond}).Embed(t.Context(), embedReq("a"))
		if providertest.KindOf(err) != llm.KindTimeout || !errors.Is(err, provider.ErrIdleTimeout) {
			t.Errorf("err = %v (kind %v), want an idle timeout", err, providertest.KindOf(err))
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, h := providertest.CancelOnArrival(t)
		u := providertest.NewUpstream(t, h)
		_, err := newClient(t, u, Config{HeaderTimeout: time.Minute}).Embed(ctx, embedReq("a"))
		if providertest.KindOf(err) != llm.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v (kind %v), want canceled", err, providertest.KindOf(err))
		}
	})
}

func TestEmbedKeysRoundRobin(t *testing.T) {
	u := providertest.NewUpstream(t, serveEmbeddings(t))
	c := newClient(t, u, Config{Keys: []string{"k1", "k2"}})
	for range 2 {
		if _, err := c.Embed(t.Context(), embedReq("a", "b")); err != nil {
			t.Fatal(err)
		}
		s, err := c.Chat(t.Context(), chatReq(false))
		if err == nil {
			s.Close()
		}
	}
	var got []string
	for _, r := range u.Requests() {
		got = append(got, r.Header.Get("Authorization"))
	}
	if diff := cmp.Diff([]string{"Bearer k1", "Bearer k2", "Bearer k1", "Bearer k2"}, got); diff != "" {
		t.Errorf("Chat and Embed share the keys (-want +got):\n%s", diff)
	}
}

// TestEmbedSim runs Embed against the simulator, asking for base64 (the
// sim dialect) and for floats (a plain dialect): both must give the same
// vectors, bit for bit, and faults must classify as for chat.
func TestEmbedSim(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Config{Seed: 1, Profiles: map[string]sim.Profile{
		"limited": {Faults: []sim.Fault{{Kind: sim.FaultHTTPError, Status: 429, RetryAfter: 2 * time.Second, Always: true}}},
	}}))
	t.Cleanup(srv.Close)
	client := func(d Dialect) *Client {
		return New(Config{Name: "sim", Dialect: d, BaseURL: srv.URL + "/v1"}, srv.Client())
	}
	b64, float := client(Dialects["sim"]), client(Dialect{Name: "plain"})
	r := embedReq("The quick brown fox", "jumps over the lazy dog")
	a, err := b64.Embed(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := float.Embed(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b, bitsEqual); diff != "" {
		t.Errorf("base64 and float answers differ (-base64 +float):\n%s", diff)
	}
	if len(a.Vectors) != 2 || len(a.Vectors[0]) != 64 || a.Usage.Input == 0 || a.Model != r.Model {
		t.Errorf("got %d vectors of %d, usage %+v, model %q", len(a.Vectors), len(a.Vectors[0]), a.Usage, a.Model)
	}

	_, err = b64.Embed(t.Context(), &llm.EmbedRequest{Model: "limited", Input: []string{"a"}})
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimit || e.RetryAfter != 2*time.Second {
		t.Errorf("err = %v, want a rate limit with a 2s Retry-After", err)
	}
}
