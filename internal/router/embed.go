package router

import (
	"context"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// Embed serves an embeddings request over route: targets that cannot embed
// are skipped, and failures are retried or failed over by the same policy
// as chat (decide), with the same breakers and budgets. It returns the
// attempt log with the answer or the last error.
func (rt *Router) Embed(ctx context.Context, route *Route, r *llm.EmbedRequest) (*llm.Embeddings, []chat.Attempt, error) {
	pol := route.Policy
	ctx, cancel := context.WithTimeout(ctx, pol.Total)
	defer cancel()
	plan := rt.plan(route.Targets)
	var recs []chat.Attempt
	var last error = &llm.Error{Kind: llm.KindInvalid, Status: 400, Message: "no target of this route serves embeddings"}
	tries := map[*slot]int{}
	for len(plan) > 0 && len(recs) < pol.Attempts+len(route.Targets) {
		sl := plan[0]
		now := rt.now()
		e, ok := sl.t.Provider.(llm.Embedder)
		if c, capable := sl.t.Provider.(llm.Capable); capable && ok {
			ok = c.Supports(sl.t.Model, llm.FeatureEmbeddings)
		}
		if !ok {
			recs = append(recs, chat.Attempt{Provider: sl.t.Provider.Name(), Model: sl.t.Model, Start: now,
				Reason: "skipped", Outcome: chat.OutcomeSkipped, Error: "the target does not serve embeddings"})
			plan = plan[1:]
			continue
		}
		admitted, probe := sl.h.admit(now)
		if !admitted && len(plan) > 1 {
			plan = append(plan[1:], sl) // try the healthy ones first
			continue
		}
		tries[sl]++
		sl.h.begin(now)
		req := *r
		req.Model = sl.t.Model
		out, err := e.Embed(ctx, &req)
		end := rt.now()
		a := chat.Attempt{Provider: sl.t.Provider.Name(), Model: sl.t.Model, Start: now, Reason: "first"}
		if len(recs) > 0 {
			a.Reason = "failover"
			if tries[sl] > 1 {
				a.Reason = "retry"
			}
		}
		settle(&a, end, err)
		recs = append(recs, a)
		if err == nil {
			sl.h.succeed(end, end.Sub(now), probe)
			return out, recs, nil
		}
		last = err
		v := decide(err, situation{policy: pol, tries: tries[sl], next: len(plan) > 1, left: pol.Total})
		if v.upstream {
			sl.h.fail(end, probe)
		} else {
			sl.h.release(probe)
		}
		switch {
		case v.retry && sl.h.takeRetry(end):
			if !sleep(ctx, v.wait) {
				return nil, recs, last
			}
		case v.failover:
			plan = plan[1:]
		default:
			return nil, recs, last
		}
	}
	return nil, recs, last
}

// sleep waits d or until ctx ends, reporting whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
