// Package router is keel's reliability engine. It turns a model name into
// an ordered plan of targets and serves a request over them: retries with
// budgets, failover, circuit breakers, hedged requests, latency-aware
// selection, and mid-stream continuation. The policy — what to do after a
// failure — is decide in failure.go; the mechanism is here and in
// stream.go.
package router

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// Continuation is how a target continues a broken answer.
type Continuation uint8

// The continuation methods.
const (
	// ContinueAuto asks the provider (llm.Prefiller), else restarts.
	ContinueAuto Continuation = iota
	// ContinuePrefill sends the partial answer as an assistant prefill.
	ContinuePrefill
	// ContinueRestart asks for the whole answer again; keel suppresses what
	// the client already has and checks that it matches.
	ContinueRestart
)

// Target is one provider and the upstream model to ask for.
type Target struct {
	Provider llm.Provider
	Model    string
	// Group marks equivalent targets: adjacent targets with the same
	// non-zero Group form one tier, balanced by latency; the router fails
	// over from tier to tier in order. Zero is a tier of its own.
	Group int
	// Weight biases selection within a tier. If zero, 1.
	Weight int
	// Continue is how this target continues a broken answer.
	Continue Continuation
}

// String returns "provider/model", the form x-keel-target shows.
func (t Target) String() string { return t.Provider.Name() + "/" + t.Model }

func (t Target) prefills() bool {
	switch t.Continue {
	case ContinuePrefill:
		return true
	case ContinueRestart:
		return false
	}
	p, ok := t.Provider.(llm.Prefiller)
	return ok && p.Prefills()
}

// Route is the ordered targets behind one model name.
type Route struct {
	Name    string
	Targets []Target
	Policy  Policy
}

// Router resolves model names to routes and serves requests over them. It
// is safe for concurrent use once built.
type Router struct {
	routes    map[string]*Route
	providers map[string]llm.Provider
	// owners maps a bare upstream model name to the provider that lists it.
	owners map[string]llm.Provider
	policy Policy
	log    *slog.Logger
	now    func() time.Time

	breaker Breaker
	mu      sync.Mutex
	health  map[targetKey]*health
}

// Options configure a Router.
type Options struct {
	// Policy is the default for routes that set no field of their own and
	// for routes made up on the fly ("provider/model").
	Policy Policy
	// Breaker configures every target's breaker and budgets.
	Breaker Breaker
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

// New returns a Router over routes and providers. Route policies inherit
// every unset field from o.Policy.
func New(routes []Route, providers []Provider, o Options) *Router {
	rt := &Router{
		routes:    make(map[string]*Route, len(routes)),
		providers: make(map[string]llm.Provider, len(providers)),
		owners:    make(map[string]llm.Provider),
		policy:    o.Policy.Defaults(),
		log:       o.Log,
		now:       o.Now,
		breaker:   o.Breaker.defaults(),
		health:    make(map[targetKey]*health),
	}
	if rt.log == nil {
		rt.log = slog.Default()
	}
	if rt.now == nil {
		rt.now = time.Now
	}
	for i := range routes {
		r := routes[i]
		r.Policy = r.Policy.inherit(o.Policy).Defaults()
		rt.routes[r.Name] = &r
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
	direct := func(p llm.Provider, m string) *Route {
		return &Route{Name: model, Targets: []Target{{Provider: p, Model: m}}, Policy: rt.policy}
	}
	if prov, m, ok := strings.Cut(model, "/"); ok {
		if p, ok := rt.providers[prov]; ok && m != "" {
			return direct(p, m), nil
		}
	}
	if p, ok := rt.owners[model]; ok {
		return direct(p, model), nil
	}
	if len(rt.providers) == 1 {
		for _, p := range rt.providers {
			return direct(p, model), nil
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

// targetKey names a target's health: a struct rather than Target.String,
// which would build a string for every target of every request.
type targetKey struct{ provider, model string }

func (k targetKey) String() string { return k.provider + "/" + k.model }

// healthOf returns t's shared health, creating it on first use.
func (rt *Router) healthOf(t Target) *health {
	key := targetKey{t.Provider.Name(), t.Model}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	h, ok := rt.health[key]
	if !ok {
		h = newHealth(rt.breaker)
		rt.health[key] = h
	}
	return h
}

// Status returns every target's health, sorted by target.
func (rt *Router) Status() []TargetStatus {
	now := rt.now()
	rt.mu.Lock()
	keys := make([]targetKey, 0, len(rt.health))
	for k := range rt.health {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b targetKey) int { return strings.Compare(a.String(), b.String()) })
	hs := make([]*health, len(keys))
	for i, k := range keys {
		hs[i] = rt.health[k]
	}
	rt.mu.Unlock()
	out := make([]TargetStatus, len(keys))
	for i, h := range hs {
		out[i] = h.status(keys[i].String(), now)
	}
	return out
}

// slot is a target in one request's plan.
type slot struct {
	t     Target
	h     *health
	probe bool
}

// plan orders a route's targets for one request: tier by tier, each tier
// led by a power-of-two-choices pick over peak-EWMA cost and weight, the
// rest by cost.
func (rt *Router) plan(targets []Target) []*slot {
	out := make([]*slot, 0, len(targets))
	for i := 0; i < len(targets); {
		j := i + 1
		for g := targets[i].Group; g != 0 && j < len(targets) && targets[j].Group == g; j++ {
		}
		tier := make([]*slot, 0, j-i)
		for _, t := range targets[i:j] {
			tier = append(tier, &slot{t: t, h: rt.healthOf(t)})
		}
		out = append(out, order(tier)...)
		i = j
	}
	return out
}

// order sorts a tier by cost, then moves a power-of-two-choices pick to
// the front: two members drawn by weight, the cheaper one first. Drawing
// two rather than taking the cheapest keeps a momentarily fast target from
// taking all the traffic.
func order(tier []*slot) []*slot {
	if len(tier) < 2 {
		return tier
	}
	cost := make(map[*slot]float64, len(tier))
	for _, s := range tier {
		cost[s] = s.h.cost() / float64(weight(s.t))
	}
	slices.SortStableFunc(tier, func(a, b *slot) int {
		switch {
		case cost[a] < cost[b]:
			return -1
		case cost[a] > cost[b]:
			return 1
		}
		return 0
	})
	a, b := pick(tier), pick(tier)
	for b == a {
		b = (b + 1) % len(tier)
	}
	if cost[tier[b]] < cost[tier[a]] {
		a = b
	}
	first := tier[a]
	return append([]*slot{first}, slices.Delete(slices.Clone(tier), a, a+1)...)
}

// pick draws an index with probability proportional to weight.
func pick(tier []*slot) int {
	total := 0
	for _, s := range tier {
		total += weight(s.t)
	}
	n := rand.IntN(total)
	for i, s := range tier {
		if n -= weight(s.t); n < 0 {
			return i
		}
	}
	return len(tier) - 1
}

func weight(t Target) int { return max(t.Weight, 1) }

// inherit fills p's unset fields from d.
func (p Policy) inherit(d Policy) Policy {
	dur := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	dur(&p.FirstToken, d.FirstToken)
	dur(&p.Total, d.Total)
	dur(&p.Backoff, d.Backoff)
	dur(&p.MaxBackoff, d.MaxBackoff)
	dur(&p.RetryAfterWait, d.RetryAfterWait)
	dur(&p.MaxRetryAfter, d.MaxRetryAfter)
	dur(&p.HedgeDelay, d.HedgeDelay)
	dur(&p.HedgeMin, d.HedgeMin)
	dur(&p.HedgeMax, d.HedgeMax)
	if p.Attempts == 0 {
		p.Attempts = d.Attempts
	}
	if p.Hedge == nil {
		p.Hedge = d.Hedge
	}
	if p.StreamUpstream == nil {
		p.StreamUpstream = d.StreamUpstream
	}
	if p.HoldToolCalls == nil {
		p.HoldToolCalls = d.HoldToolCalls
	}
	p.FailoverContentFilter = p.FailoverContentFilter || d.FailoverContentFilter
	return p
}
