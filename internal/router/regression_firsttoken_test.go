package router_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/llm/llmtest"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/router"
)

// slowFirst is an upstream whose first token arrives after delay; later
// reads fail the way the OpenAI adapter's do once its context is canceled.
type slowFirst struct {
	ctx   context.Context
	delay time.Duration
	i     int
}

func (s *slowFirst) Recv() (*llm.Event, error) {
	words := []string{"Hello ", "there ", "friend."}
	if s.i == 0 {
		time.Sleep(s.delay)
	} else if s.ctx.Err() != nil {
		return nil, provider.TransportError(s.ctx, "a", s.ctx.Err())
	}
	if s.i == len(words) {
		s.i++
		return &llm.Event{Finish: llm.FinishStop}, nil
	}
	if s.i > len(words) {
		return nil, io.EOF
	}
	s.i++
	return &llm.Event{ID: "x", Text: words[s.i-1]}, nil
}
func (s *slowFirst) Close() error { return nil }

// TestFirstTokenAtTheDeadline is a regression test (found by keel drill):
// a first token arriving at the very instant of the first-token deadline
// used to win the race while the deadline's timer still fired, and the
// answer then died mid-stream with "canceled". Now the attempt either wins
// and completes, or times out before anything reaches the client.
func TestFirstTokenAtTheDeadline(t *testing.T) {
	for _, delay := range []time.Duration{1900 * time.Millisecond, 2 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) { reproFirstToken(t, delay) })
	}
}

func reproFirstToken(t *testing.T, delay time.Duration) {
	failed := 0
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			p := &llmtest.Provider{NameV: "a", ChatFn: func(ctx context.Context, r *llm.Request) (llm.Stream, error) {
				return &slowFirst{ctx: ctx, delay: delay}, nil
			}}
			rt := router.New([]router.Route{{Name: "r", Targets: []router.Target{{Provider: p, Model: "m"}}}}, nil,
				router.Options{Policy: router.Policy{FirstToken: 2 * time.Second}, Log: slog.New(slog.DiscardHandler)})
			route, _ := rt.Resolve("r")
			s, err := rt.Serve(context.Background(), route, &llm.Request{Model: "r", Stream: true})
			defer s.Close()
			var text string
			for err == nil {
				var ev *llm.Event
				if ev, err = s.Recv(); err == nil {
					text += ev.Text
				}
			}
			if err != io.EOF && text != "" {
				failed++
				t.Logf("client got %q, then %v", text, err)
			}
		})
	}
	if failed > 0 {
		t.Errorf("%d of 20 answers broke off after their first token with a cancellation", failed)
	}
}
