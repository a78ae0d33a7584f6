// Package router turns a model name into an ordered list of targets and
// serves a request from the first target that answers, failing over
// between them. The policy (what to do after a failure) is in failure.go;
// the mechanism (attempts, accounting) is here.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// Target is one provider and the upstream model to ask for.
type Target struct {
	Provider llm.Provider
	Model    string
}

// String returns "provider/model", the form x-keel-target shows.
func (t Target) String() string { return t.Provider.Name() + "/" + t.Model }

// Route is the ordered targets behind one model name.
type Route struct {
	Name    string
	Targets []Target
}

// Router resolves model names to routes and serves requests over them. It
// is safe for concurrent use once built.
type Router struct {
	routes    map[string]*Route
	providers map[string]llm.Provider
	// owners maps a bare upstream model name to the provider that lists it.
	owners map[string]llm.Provider
	log    *slog.Logger
	now    func() time.Time
}

// Options configure a Router.
type Options struct {
	// Log receives failover warnings. If nil, slog.Default().
	Log *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Provider is a provider with the models it lists (possibly none).
type Provider struct {
	llm.Provider
	Models []string
}

// New returns a Router over routes and providers.
func New(routes []Route, providers []Provider, o Options) *Router {
	rt := &Router{
		routes:    make(map[string]*Route, len(routes)),
		providers: make(map[string]llm.Provider, len(providers)),
		owners:    make(map[string]llm.Provider),
		log:       o.Log,
		now:       o.Now,
	}
	if rt.log == nil {
		rt.log = slog.Default()
	}
	if rt.now == nil {
		rt.now = time.Now
	}
	for i := range routes {
		rt.routes[routes[i].Name] = &routes[i]
	}
	for _, p := range providers {
		rt.providers[p.Name()] = p.Provider
		for _, m := range p.Models {
			if _, ok := rt.owners[m]; !ok {
				rt.owners[m] = p.Provider
			}
		}
	}
	return rt
}

// Resolve returns the route for a client's model name: a configured route;
// else "provider/model" addressed directly; else a model that a provider
// lists; else, with a single provider, that provider.
func (rt *Router) Resolve(model string) (*Route, error) {
	if r, ok := rt.routes[model]; ok {
		return r, nil
	}
	if prov, m, ok := strings.Cut(model, "/"); ok {
		if p, ok := rt.providers[prov]; ok && m != "" {
			return &Route{Name: model, Targets: []Target{{p, m}}}, nil
		}
	}
	if p, ok := rt.owners[model]; ok {
		return &Route{Name: model, Targets: []Target{{p, model}}}, nil
	}
	if len(rt.providers) == 1 {
		for _, p := range rt.providers {
			return &Route{Name: model, Targets: []Target{{p, model}}}, nil
		}
	}
	return nil, &chat.Error{Code: chat.ENotFound, Param: "model",
		Message: fmt.Sprintf("model %q is not configured; see GET /v1/models, or address a provider directly as \"provider/model\"", model)}
}

// Model is a name clients can ask for, and the provider of its first
// target.
type Model struct {
	Name     string
	Provider string
}

// Models returns the names clients can ask for: every route, and every
// model a provider lists.
func (rt *Router) Models() []Model {
	var ms []Model
	for name, r := range rt.routes {
		ms = append(ms, Model{name, r.Targets[0].Provider.Name()})
	}
	for m, p := range rt.owners {
		if _, ok := rt.routes[m]; !ok {
			ms = append(ms, Model{m, p.Name()})
		}
	}
	slices.SortFunc(ms, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
	return ms
}

// Serve starts an answer to r over route. It tries the targets in order
// until one produces its first event, so that nothing has reached the
// client before a failover. The returned Stream carries the attempt log.
func (rt *Router) Serve(ctx context.Context, route *Route, r *llm.Request) (*Stream, error) {
	s := &Stream{rt: rt, route: route}
	var last error
	for _, t := range route.Targets {
		err := s.start(ctx, t, r)
		if err == nil {
			return s, nil
		}
		last = err
		if decide(err) != failover {
			break
		}
		rt.log.Warn("upstream failed, failing over", "route", route.Name, "target", t.String(), "err", err)
	}
	return s, last
}

// Stream is the answer the router serves. It is used by one goroutine.
type Stream struct {
	rt       *Router
	route    *Route
	cur      llm.Stream
	target   Target
	first    *llm.Event
	attempts []chat.Attempt
	done     bool
}

// start makes one attempt at t and waits for its first event.
func (s *Stream) start(ctx context.Context, t Target, r *llm.Request) error {
	req := r.Clone()
	req.Model = t.Model
	s.attempts = append(s.attempts, chat.Attempt{Provider: t.Provider.Name(), Model: t.Model, Start: s.rt.now()})
	up, err := t.Provider.Chat(ctx, req)
	if err == nil {
		s.first, err = up.Recv()
		if err == io.EOF {
			err = &llm.Error{Kind: llm.KindStream, Provider: t.Provider.Name(), Message: "the upstream answered with nothing"}
		}
		if err != nil {
			up.Close()
		}
	}
	if err != nil {
		s.endAttempt(err)
		return err
	}
	s.cur, s.target = up, t
	return nil
}

// endAttempt records how the current attempt ended.
func (s *Stream) endAttempt(err error) {
	a := &s.attempts[len(s.attempts)-1]
	a.Duration = s.rt.now().Sub(a.Start)
	a.Outcome = chat.OutcomeOK
	var e *llm.Error
	switch {
	case err == nil:
	case errors.As(err, &e):
		a.Outcome, a.Status, a.Error = chat.Outcome(e.Kind.String()), e.Status, e.Message
		if e.Kind == llm.KindCanceled {
			a.Outcome = chat.OutcomeCanceled
		}
	case errors.Is(err, context.Canceled):
		a.Outcome = chat.OutcomeCanceled
	default:
		a.Outcome = chat.Outcome(llm.KindUnknown.String())
	}
}

// Recv returns the next event of the answer.
func (s *Stream) Recv() (*llm.Event, error) {
	if s.done || s.cur == nil {
		return nil, io.EOF
	}
	if ev := s.first; ev != nil {
		s.first = nil
		return ev, nil
	}
	ev, err := s.cur.Recv()
	if err != nil {
		s.done = true
		if err == io.EOF {
			s.endAttempt(nil)
		} else {
			s.endAttempt(err)
		}
	}
	return ev, err
}

// Close releases the upstream. Closing before the end marks the attempt
// canceled.
func (s *Stream) Close() error {
	if s.cur == nil {
		return nil
	}
	if !s.done {
		s.done = true
		s.endAttempt(context.Canceled)
	}
	return s.cur.Close()
}

// Target returns the target serving the answer; zero before one did.
func (s *Stream) Target() Target { return s.target }

// Attempts returns every attempt made so far, failed ones included.
func (s *Stream) Attempts() []chat.Attempt { return s.attempts }
