// Package turn runs one chat turn: route the request, stream the answer
// back, and record what happened. It is the straight line between the API
// handlers and the router; later issues add the persona step (custom
// instructions and memory) in front of the router.
package turn

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/router"
)

// Recorder receives each finished request's record. It must not block.
type Recorder interface {
	Record(r *chat.Request)
}

// Runner starts turns. Its fields are set once, before use.
type Runner struct {
	Router   *router.Router
	Recorder Recorder
	// RecordContent stores prompt and completion text in the record.
	RecordContent bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Meta is what the API layer knows of a request before the turn starts.
type Meta struct {
	ID    string
	KeyID string
	API   string
	Start time.Time
}

// Turn is one answer in progress. Recv until io.EOF or an error, then call
// Finish exactly once.
type Turn struct {
	run    *Runner
	rec    chat.Request
	req    *llm.Request
	stream *router.Stream
	usage  llm.Usage
	text   []byte
}

// Start routes req and waits until a target starts answering. It always
// returns a Turn, to be finished whether or not an error is returned; the
// error is a *chat.Error or an *llm.Error.
func (run *Runner) Start(ctx context.Context, m Meta, req *llm.Request) (*Turn, error) {
	t := &Turn{run: run, req: req, rec: chat.Request{
		ID: m.ID, Time: m.Start, KeyID: m.KeyID, API: m.API, Model: req.Model, Stream: req.Stream,
	}}
	route, err := run.Router.Resolve(req.Model)
	if err != nil {
		return t, err
	}
	t.stream, err = run.Router.Serve(ctx, route, req)
	return t, err
}

// Embed serves an embeddings request and records it.
func (run *Runner) Embed(ctx context.Context, m Meta, req *llm.EmbedRequest) (*llm.Embeddings, func(status int, err error), error) {
	rec := &chat.Request{ID: m.ID, Time: m.Start, KeyID: m.KeyID, API: m.API, Model: req.Model}
	finish := func(status int, err error) {
		rec.Status, rec.Duration = status, run.now().Sub(rec.Time)
		if err != nil {
			rec.Error = errorText(err)
		}
		if run.Recorder != nil {
			run.Recorder.Record(rec)
		}
	}
	route, err := run.Router.Resolve(req.Model)
	if err != nil {
		return nil, finish, err
	}
	out, attempts, err := run.Router.Embed(ctx, route, req)
	rec.Attempts = attempts
	if err != nil {
		return nil, finish, err
	}
	if n := len(attempts); n > 0 {
		rec.Provider, rec.ServedModel = attempts[n-1].Provider, attempts[n-1].Model
	}
	rec.InputTokens = out.Usage.Input
	return out, finish, nil
}

// Target names the provider and model serving the answer.
func (t *Turn) Target() string { return t.stream.Target().String() }

// Recv returns the next event, valid until the next call.
func (t *Turn) Recv() (*llm.Event, error) {
	ev, err := t.stream.Recv()
	if err != nil {
		return nil, err
	}
	if t.rec.TTFT == 0 && (ev.Text != "" || ev.Reasoning != "" || len(ev.ToolCalls) > 0) {
		t.rec.TTFT = t.run.now().Sub(t.rec.Time)
	}
	if ev.Usage != nil {
		t.usage = *ev.Usage
	}
	if t.run.RecordContent {
		t.text = append(t.text, ev.Text...)
	}
	return ev, nil
}

// Buffered reports whether the next event is already at hand.
func (t *Turn) Buffered() bool { return t.stream.Buffered() }

// TTFT returns the time from the request's start to its first token.
func (t *Turn) TTFT() time.Duration { return t.rec.TTFT }

// Usage returns the usage reported so far.
func (t *Turn) Usage() llm.Usage { return t.usage }

// Finish records the turn with the status the client got and the error it
// saw, if any, and releases the upstream.
func (t *Turn) Finish(status int, err error) {
	run := t.run
	r := &t.rec
	if t.stream != nil {
		t.stream.Close()
		r.Attempts = t.stream.Attempts()
		if served := t.stream.Served(); served.Provider != nil {
			// The target that finished the answer (after a seam, the one
			// that continued it).
			r.Provider, r.ServedModel = served.Provider.Name(), served.Model
		}
	}
	r.Status, r.Duration = status, run.now().Sub(r.Time)
	if err != nil {
		r.Error = errorText(err)
	}
	r.InputTokens, r.OutputTokens = t.usage.Input, t.usage.Output
	if run.RecordContent {
		var b strings.Builder
		for i := range t.req.Messages {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t.req.Messages[i].Text())
		}
		r.Prompt, r.Completion = b.String(), string(t.text)
	}
	if run.Recorder != nil {
		run.Recorder.Record(r)
	}
}

func (run *Runner) now() time.Time {
	if run.Now != nil {
		return run.Now()
	}
	return time.Now()
}

// errorText is what the record keeps of an error: the vendor's message or
// the user-facing one, never request content.
func errorText(err error) string {
	var le *llm.Error
	if errors.As(err, &le) {
		return le.Error()
	}
	return chat.ErrorMessage(err)
}
