package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/llm/llmtest"
)

// fails returns a provider that fails every call with kind (and status).
func fails(name string, kind llm.Kind, status int) *llmtest.Provider {
	return &llmtest.Provider{NameV: name, ChatFn: func(ctx context.Context, r *llm.Request) (llm.Stream, error) {
		return nil, &llm.Error{Kind: kind, Status: status, Provider: name, Message: kind.String()}
	}}
}

// answers returns a provider that answers "hello world".
func answers(name string) *llmtest.Provider {
	return &llmtest.Provider{NameV: name, ChatFn: func(ctx context.Context, r *llm.Request) (llm.Stream, error) {
		return llmtest.Text(r.Model, "hello ", "world"), nil
	}}
}

func drain(t *testing.T, s *Stream) (string, error) {
	t.Helper()
	var a llm.Answer
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return string(a.Text), nil
		}
		if err != nil {
			return string(a.Text), err
		}
		a.Add(ev)
	}
}

func TestServeFailover(t *testing.T) {
	type attempt struct {
		Provider string
		Outcome  chat.Outcome
		Status   int
	}
	tests := []struct {
		name         string
		primary      llm.Provider
		wantText     string
		wantStatus   int // of the error, if any
		wantAttempts []attempt
	}{
		{"healthy primary", answers("a"), "hello world", 0,
			[]attempt{{"a", chat.OutcomeOK, 0}}},
		{"503 retries once, then fails over", fails("a", llm.KindOverloaded, 503), "hello world", 0,
			[]attempt{{"a", "overloaded", 503}, {"a", "overloaded", 503}, {"b", chat.OutcomeOK, 0}}},
		{"429 backs off, then fails over", fails("a", llm.KindRateLimit, 429), "hello world", 0,
			[]attempt{{"a", "rate_limit", 429}, {"a", "rate_limit", 429}, {"b", chat.OutcomeOK, 0}}},
		{"reset fails over", fails("a", llm.KindConnect, 0), "hello world", 0,
			[]attempt{{"a", "connect", 0}, {"b", chat.OutcomeOK, 0}}},
		{"header timeout fails over", fails("a", llm.KindTimeout, 0), "hello world", 0,
			[]attempt{{"a", "timeout", 0}, {"b", chat.OutcomeOK, 0}}},
		{"400 is final", fails("a", llm.KindInvalid, 400), "", 400,
			[]attempt{{"a", "invalid", 400}}},
		{"stream that dies before its first event fails over", &llmtest.Provider{NameV: "a", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
			return &llmtest.Stream{Err: &llm.Error{Kind: llm.KindStream, Provider: "a"}}, nil
		}}, "hello world", 0,
			[]attempt{{"a", "stream", 0}, {"b", chat.OutcomeOK, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				route := Route{Name: "m", Targets: []Target{{Provider: tt.primary, Model: "up-a"}, {Provider: answers("b"), Model: "up-b"}}}
				rt := New([]Route{route}, nil, Options{Log: quiet})
				r, err := rt.Resolve("m")
				if err != nil {
					t.Fatal(err)
				}
				s, err := rt.Serve(context.Background(), r, &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("hi")}}}})
				var text string
				if err == nil {
					text, err = drain(t, s)
				}
				var le *llm.Error
				switch {
				case tt.wantStatus == 0 && err != nil:
					t.Fatalf("err = %v, want none", err)
				case tt.wantStatus != 0 && (!errors.As(err, &le) || le.Status != tt.wantStatus):
					t.Fatalf("err = %v, want status %d", err, tt.wantStatus)
				}
				if text != tt.wantText {
					t.Errorf("text = %q, want %q", text, tt.wantText)
				}
				var got []attempt
				for _, a := range s.Attempts() {
					got = append(got, attempt{a.Provider, a.Outcome, a.Status})
				}
				if diff := cmp.Diff(tt.wantAttempts, got); diff != "" {
					t.Errorf("attempts (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestServeSendsUpstreamModel checks that each target gets its own model
// name, not the route's.
func TestServeSendsUpstreamModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen []string
		p := func(name string, fail bool) *llmtest.Provider {
			return &llmtest.Provider{NameV: name, ChatFn: func(ctx context.Context, r *llm.Request) (llm.Stream, error) {
				seen = append(seen, r.Model)
				if fail {
					return nil, &llm.Error{Kind: llm.KindServer, Status: 500}
				}
				return llmtest.Text(r.Model, "x"), nil
			}}
		}
		req := &llm.Request{Model: "route"}
		rt := New([]Route{{Name: "route", Targets: []Target{{Provider: p("a", true), Model: "model-a"}, {Provider: p("b", false), Model: "model-b"}}}}, nil, Options{})
		r, _ := rt.Resolve("route")
		s, err := rt.Serve(context.Background(), r, req)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"model-a", "model-a", "model-b"}, seen); diff != "" {
			t.Errorf("models sent (-want +got):\n%s", diff)
		}
		if req.Model != "route" {
			t.Errorf("the client's request was modified: model = %q", req.Model)
		}
		if got := s.Target().String(); got != "b/model-b" {
			t.Errorf("target = %q, want b/model-b", got)
		}
	})
}

func TestResolve(t *testing.T) {
	a, b := answers("a"), answers("b")
	one := New(nil, []Provider{{Provider: a}}, Options{})
	two := New([]Route{{Name: "fast", Targets: []Target{{Provider: b, Model: "b-fast"}}}},
		[]Provider{{Provider: a, Models: []string{"a-1"}}, {Provider: b}}, Options{})
	tests := []struct {
		name     string
		rt       *Router
		model    string
		want     string // first target, or "" for not found
		wantCode string
	}{
		{"single provider takes any name", one, "gpt-4o", "a/gpt-4o", ""},
		{"configured route", two, "fast", "b/b-fast", ""},
		{"provider/model", two, "b/anything", "b/anything", ""},
		{"listed model", two, "a-1", "a/a-1", ""},
		{"unknown with several providers", two, "nope", "", chat.ENotFound},
		{"unknown provider prefix", two, "zz/model", "", chat.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.rt.Resolve(tt.model)
			if tt.wantCode != "" {
				if chat.ErrorCode(err) != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Targets[0].String(); got != tt.want {
				t.Errorf("target = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCloseBeforeEndIsCanceled checks that a client leaving mid-answer is
// recorded as a cancellation, not an upstream failure.
func TestCloseBeforeEndIsCanceled(t *testing.T) {
	up := llmtest.Text("m", "a", "b", "c")
	p := &llmtest.Provider{NameV: "a", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) { return up, nil }}
	rt := New(nil, []Provider{{Provider: p}}, Options{})
	r, _ := rt.Resolve("m")
	s, err := rt.Serve(context.Background(), r, &llm.Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	s.Recv()
	s.Close()
	if !up.Closed {
		t.Error("upstream not closed")
	}
	if got := s.Attempts()[0].Outcome; got != chat.OutcomeCanceled {
		t.Errorf("outcome = %q, want canceled", got)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// noTools is a provider that lacks tool support.
type noTools struct{ *llmtest.Provider }

func (noTools) Supports(model string, f llm.Feature) bool { return f != llm.FeatureTools }

// TestSkipsTargetsLackingFeatures checks issue 4: a target that lacks a
// feature the request uses is skipped, and the attempt log says why.
func TestSkipsTargetsLackingFeatures(t *testing.T) {
	called := false
	a := noTools{&llmtest.Provider{NameV: "a", ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		called = true
		return llmtest.Text("a", "x"), nil
	}}}
	rt := New([]Route{{Name: "m", Targets: []Target{{Provider: a, Model: "a1"}, {Provider: answers("b"), Model: "b1"}}}}, nil, Options{Log: quiet})
	r, _ := rt.Resolve("m")
	req := &llm.Request{Model: "m", Tools: []llm.Tool{{Name: "f"}}}
	s, err := rt.Serve(context.Background(), r, req)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs := s.Attempts()
	if called || len(recs) != 2 || recs[0].Outcome != chat.OutcomeSkipped || recs[0].Error != "the target does not support tools" || recs[1].Provider != "b" {
		t.Errorf("called=%v attempts=%+v", called, recs)
	}
	// Without tools, a serves.
	s, err = rt.Serve(context.Background(), r, &llm.Request{Model: "m"})
	if err != nil || s.Target().Provider.Name() != "a" {
		t.Errorf("plain request: err %v, target %s", err, s.Target())
	}
	s.Close()
	// With no capable target left, a clear 400.
	only := New([]Route{{Name: "m", Targets: []Target{{Provider: a, Model: "a1"}}}}, nil, Options{Log: quiet})
	r, _ = only.Resolve("m")
	_, err = only.Serve(context.Background(), r, req)
	var le *llm.Error
	if !errors.As(err, &le) || le.Status != 400 || !strings.Contains(le.Message, "does not support tools") {
		t.Errorf("err = %v, want a 400 naming the missing feature", err)
	}
}

// embedder is a fake embedding provider.
type embedder struct {
	*llmtest.Provider
	fn func(*llm.EmbedRequest) (*llm.Embeddings, error)
}

func (e embedder) Embed(_ context.Context, r *llm.EmbedRequest) (*llm.Embeddings, error) {
	return e.fn(r)
}

func TestEmbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := embedder{&llmtest.Provider{NameV: "a"}, func(*llm.EmbedRequest) (*llm.Embeddings, error) {
			return nil, &llm.Error{Kind: llm.KindOverloaded, Status: 503}
		}}
		up := embedder{&llmtest.Provider{NameV: "c"}, func(r *llm.EmbedRequest) (*llm.Embeddings, error) {
			return &llm.Embeddings{Model: r.Model, Vectors: [][]float32{{1, 0}}}, nil
		}}
		chatOnly := answers("b")
		rt := New([]Route{{Name: "e", Targets: []Target{{Provider: down, Model: "a1"}, {Provider: chatOnly, Model: "b1"}, {Provider: up, Model: "c1"}}}}, nil, Options{Log: quiet})
		r, _ := rt.Resolve("e")
		out, recs, err := rt.Embed(context.Background(), r, &llm.EmbedRequest{Model: "e", Input: []string{"x"}})
		if err != nil || out.Model != "c1" {
			t.Fatalf("out %+v, err %v", out, err)
		}
		var got []string
		for _, a := range recs {
			got = append(got, a.Provider+":"+string(a.Outcome)+":"+a.Reason)
		}
		want := []string{"a:overloaded:first", "a:overloaded:retry", "b:skipped:skipped", "c:ok:failover"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
	})
}
