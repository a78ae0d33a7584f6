// Package llmtest provides hand-written fakes of llm's interfaces for tests
// of the packages that consume them.
package llmtest

import (
	"context"
	"io"

	"github.com/keel-ai/keel/internal/llm"
)

// Provider is a fake llm.Provider whose Chat calls ChatFn.
type Provider struct {
	NameV  string
	ChatFn func(ctx context.Context, r *llm.Request) (llm.Stream, error)
}

var _ llm.Provider = (*Provider)(nil)

func (p *Provider) Name() string { return p.NameV }

func (p *Provider) Chat(ctx context.Context, r *llm.Request) (llm.Stream, error) {
	return p.ChatFn(ctx, r)
}

// Stream replays Events, then returns Err (io.EOF if nil).
type Stream struct {
	Events []llm.Event
	Err    error
	Closed bool
	i      int
}

var _ llm.Stream = (*Stream)(nil)

// Recv returns the next event.
func (s *Stream) Recv() (*llm.Event, error) {
	if s.i < len(s.Events) {
		s.i++
		return &s.Events[s.i-1], nil
	}
	if s.Err != nil {
		return nil, s.Err
	}
	return nil, io.EOF
}

// Close marks the stream closed.
func (s *Stream) Close() error {
	s.Closed = true
	return nil
}

// Text returns a stream answering text in the given pieces, then finishing.
func Text(model string, pieces ...string) *Stream {
	s := &Stream{}
	for _, p := range pieces {
		s.Events = append(s.Events, llm.Event{ID: "fake-1", Model: model, Text: p})
	}
	s.Events = append(s.Events, llm.Event{ID: "fake-1", Model: model, Finish: llm.FinishStop, Usage: &llm.Usage{Input: 3, Output: len(pieces)}})
	return s
}
