package router

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/llm/llmtest"
)

// cutAfter returns a provider whose stream sends pieces, then breaks.
func cutAfter(name string, pieces ...string) *llmtest.Provider {
	return &llmtest.Provider{NameV: name, ChatFn: func(context.Context, *llm.Request) (llm.Stream, error) {
		s := &llmtest.Stream{Err: &llm.Error{Kind: llm.KindStream, Provider: name, Message: "cut"}}
		for _, p := range pieces {
			s.Events = append(s.Events, llm.Event{ID: name, Text: p})
		}
		return s, nil
	}}
}

// continues returns a provider that answers the prefill-continued or
// restarted request with the given pieces, recording what it was sent.
func continues(name string, got **llm.Request, pieces ...string) *llmtest.Provider {
	return &llmtest.Provider{NameV: name, ChatFn: func(_ context.Context, r *llm.Request) (llm.Stream, error) {
		*got = r
		return llmtest.Text(name, pieces...), nil
	}}
}

func collect(t *testing.T, rt *Router, model string) (string, error) {
	t.Helper()
	r, _ := rt.Resolve(model)
	s, err := rt.Serve(context.Background(), r, &llm.Request{Model: model, Stream: true,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("q")}}}})
	defer s.Close()
	var b strings.Builder
	for err == nil {
		var ev *llm.Event
		if ev, err = s.Recv(); err == nil {
			b.WriteString(ev.Text)
		}
	}
	if err == io.EOF {
		err = nil
	}
	return b.String(), err
}

func TestSeams(t *testing.T) {
	tests := []struct {
		name     string
		second   func(got **llm.Request) *llmtest.Provider
		cont     Continuation
		want     string
		wantErr  bool
		wantLast string // the prefill the second target saw, if any
	}{
		{"prefill continues exactly",
			func(g **llm.Request) *llmtest.Provider { return continues("b", g, "lazy ", "dog.") },
			ContinuePrefill, "the quick brown fox jumps over the lazy dog.", false, "the quick brown fox jumps over the "},
		{"prefill that restates the seam is trimmed",
			func(g **llm.Request) *llmtest.Provider {
				return continues("b", g, "brown fox jumps over the lazy ", "dog.")
			},
			ContinuePrefill, "the quick brown fox jumps over the lazy dog.", false, "the quick brown fox jumps over the "},
		{"a short repeat is the answer's own, and kept",
			func(g **llm.Request) *llmtest.Provider { return continues("b", g, "the end.") },
			ContinuePrefill, "the quick brown fox jumps over the the end.", false, "the quick brown fox jumps over the "},
		{"restart retraces and carries on",
			func(g **llm.Request) *llmtest.Provider {
				return continues("b", g, "the quick ", "brown fox jumps ", "over the lazy dog.")
			},
			ContinueRestart, "the quick brown fox jumps over the lazy dog.", false, ""},
		{"restart that diverges is an error, not a splice",
			func(g **llm.Request) *llmtest.Provider { return continues("b", g, "the slow brown fox.") },
			ContinueRestart, "the quick brown fox jumps over the ", true, ""},
		{"restart that ends early is an error",
			func(g **llm.Request) *llmtest.Provider { return continues("b", g, "the quick") },
			ContinueRestart, "the quick brown fox jumps over the ", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var got *llm.Request
				rt := New([]Route{{Name: "m", Targets: []Target{
					{Provider: cutAfter("a", "the quick ", "brown fox ", "jumps over the "), Model: "a"},
					{Provider: tt.second(&got), Model: "b", Continue: tt.cont},
				}}}, nil, Options{Log: quiet})
				text, err := collect(t, rt, "m")
				if (err != nil) != tt.wantErr {
					t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
				}
				if text != tt.want {
					t.Errorf("client got %q, want %q", text, tt.want)
				}
				last := got.Messages[len(got.Messages)-1]
				switch {
				case tt.wantLast != "" && (!got.Continue || last.Role != llm.RoleAssistant || last.Text() != tt.wantLast):
					t.Errorf("continuation request ends with %+v (continue=%v), want the prefill %q", last, got.Continue, tt.wantLast)
				case tt.wantLast == "" && (got.Continue || last.Role != llm.RoleUser):
					t.Errorf("restart request ends with %+v, want the client's own messages", last)
				}
			})
		})
	}
}
