package router_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/sim"
)

// TestLosingHedgeStaysAvailable is a regression test (found by keel
// drill): a hedge that lost the race for the first token used up its
// target, so when the winner broke mid-stream no target was left to
// continue on.
func TestLosingHedgeStaysAvailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			// First token at 200ms, then cut after 5 tokens.
			"primary": {TTFT: sim.Dist[time.Duration]{Value: 200 * time.Millisecond}, TPS: sim.Dist[float64]{Value: 100},
				Faults: []sim.Fault{{Kind: sim.FaultCut, After: 5, Always: true}}},
			// Healthy, first token at 500ms: loses the race to the primary.
			"fallback": {TTFT: sim.Dist[time.Duration]{Value: 500 * time.Millisecond}, TPS: sim.Dist[float64]{Value: 100}},
		}, map[string][]target{"r": {{"a", "primary", false}, {"b", "fallback", false}}},
			router.Options{Policy: router.Policy{HedgeDelay: 100 * time.Millisecond}, Breaker: router.Breaker{HedgeRatio: 1}})
		r := w.ask("r", "hello there", true)
		w.complete(r, "hello there")
	})
}

// TestCutWithoutHedge is TestLosingHedgeStaysAvailable's control.
func TestCutWithoutHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := false
		w := newWorld(t, map[string]sim.Profile{
			"primary": {TTFT: sim.Dist[time.Duration]{Value: 200 * time.Millisecond}, TPS: sim.Dist[float64]{Value: 100},
				Faults: []sim.Fault{{Kind: sim.FaultCut, After: 5, Always: true}}},
			"fallback": {TTFT: sim.Dist[time.Duration]{Value: 500 * time.Millisecond}, TPS: sim.Dist[float64]{Value: 100}},
		}, map[string][]target{"r": {{"a", "primary", false}, {"b", "fallback", false}}},
			router.Options{Policy: router.Policy{Hedge: &off}})
		w.complete(w.ask("r", "hello there", true), "hello there")
	})
}
