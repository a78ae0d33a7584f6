package router_test

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/sim"
)

// TestAdaptiveHedgeCutsStragglers checks hedging at its default, adaptive
// delay (the target's observed p95 time to first token): at 100 requests a
// second, when 2% of attempts straggle for 3 s before their first token,
// hedges to the equivalent fallback cut the p99 to well under the straggle,
// for at most 5% extra requests.
func TestAdaptiveHedgeCutsStragglers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		strag := sim.Profile{
			TTFT:   sim.Dist[time.Duration]{Kind: sim.Lognormal, Median: 150 * time.Millisecond, Sigma: 0.4},
			Faults: []sim.Fault{{Kind: sim.FaultStall, After: 0, For: 3 * time.Second, Rate: 0.02}},
		}
		w := newWorld(t, map[string]sim.Profile{"a": strag, "b": strag},
			map[string][]target{"r": {{"pa", "a", false}, {"pb", "b", false}}}, router.Options{})
		w.concurrent = true
		const n, warm = 1500, 300
		var mu sync.Mutex
		var ttfts []time.Duration
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := w.ask("r", "hi", true)
				w.complete(r, "hi")
				if i >= warm { // once the p95 is known
					mu.Lock()
					ttfts = append(ttfts, r.ttft)
					mu.Unlock()
				}
			}()
			time.Sleep(10 * time.Millisecond)
		}
		wg.Wait()
		synctest.Wait()
		slices.Sort(ttfts)
		p99 := ttfts[len(ttfts)*99/100]
		extra := float64(len(w.sim.Attempts(""))-n) / n
		t.Logf("p99 time to first token %v, extra attempts %.1f%%", p99, 100*extra)
		if p99 > time.Second {
			t.Errorf("p99 time to first token %v: hedging did not cut the 3 s stragglers", p99)
		}
		if extra > 0.055 {
			t.Errorf("hedging cost %.1f%% extra attempts, want at most 5%%", 100*extra)
		}
	})
}
