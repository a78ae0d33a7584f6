package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
