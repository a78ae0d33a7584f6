package drill

import (
	"fmt"
	"time"

	"github.com/keel-ai/keel/internal/sim"
)

// The simulated model names of the drill's two targets.
const (
	Primary  = "primary"
	Fallback = "fallback"
)

// Continue is how the chaos drill's fallback continues a broken answer.
type Continue string

// The fallback's continuation modes.
const (
	// ContinueReject: the fallback rejects assistant prefill (400), as many
	// vendors do. keel is told to prefill, is refused, learns it and
	// restarts, so every continuation takes the restart path.
	ContinueReject Continue = "reject"
	// ContinuePrefill: the fallback continues an assistant prefill where it
	// ends, and keel trims any repeat at the seam.
	ContinuePrefill Continue = "prefill"
	// ContinueRestart: keel asks the fallback for the whole answer again and
	// suppresses the part the client already has.
	ContinueRestart Continue = "restart"
)

// ParseContinue parses a Continue by name.
func ParseContinue(s string) (Continue, error) {
	switch c := Continue(s); c {
	case ContinueReject, ContinuePrefill, ContinueRestart:
		return c, nil
	}
	return "", fmt.Errorf("drill: continuation %q is not one of reject, prefill, restart", s)
}

// Target is the continue setting of the fallback's keel target in mode c.
func (c Continue) Target() string {
	if c == ContinueRestart {
		return "restart"
	}
	return "prefill"
}

// chaosShares are the chaos drill's rate faults with the share of the
// primary's attempts each should strike (30% together; the flap adds its
// window). Cuts and stalls come at several points of the answer.
//
// A 429 with Retry-After cools the target for every request until it
// passes (router: coolUntil), so at hundreds of attempts a second a frequent
// one-second Retry-After would keep the primary out of the drill almost all
// the time; like OpenAI, the drill's 429 sends retry-after-ms next to
// Retry-After, and it is rarer than the others.
func chaosShares(tokens int) []struct {
	f     sim.Fault
	share float64
} {
	return []struct {
		f     sim.Fault
		share float64
	}{
		{sim.Fault{Name: "429-retry-after", Kind: sim.FaultHTTPError, Status: 429, RetryAfter: 200 * time.Millisecond, RetryAfterMS: 200}, 0.01},
		{sim.Fault{Name: "429", Kind: sim.FaultHTTPError, Status: 429}, 0.03},
		{sim.Fault{Name: "500", Kind: sim.FaultHTTPError, Status: 500}, 0.03},
		{sim.Fault{Name: "503", Kind: sim.FaultHTTPError, Status: 503}, 0.03},
		{sim.Fault{Name: "reset", Kind: sim.FaultReset}, 0.025},
		{sim.Fault{Name: "hang", Kind: sim.FaultHang}, 0.02},
		// The first token never comes in time: the role chunk, then silence.
		{sim.Fault{Name: "slow-first-token", Kind: sim.FaultStall, After: 0, For: 10 * time.Second}, 0.015},
		{sim.Fault{Name: "cut-early", Kind: sim.FaultCut, After: 1}, 0.015},
		{sim.Fault{Name: "cut-mid", Kind: sim.FaultCut, After: tokens / 2}, 0.015},
		{sim.Fault{Name: "cut-late", Kind: sim.FaultCut, After: tokens - 1}, 0.015},
		{sim.Fault{Name: "stall-mid", Kind: sim.FaultStall, After: tokens / 3, For: 10 * time.Second}, 0.025},
		{sim.Fault{Name: "malformed", Kind: sim.FaultMalformed, After: tokens / 4}, 0.02},
		{sim.Fault{Name: "no-done", Kind: sim.FaultNoDone}, 0.02},
		{sim.Fault{Name: "context-length", Kind: sim.FaultContextLength}, 0.015},
		{sim.Fault{Name: "content-filter", Kind: sim.FaultContentFilter}, 0.015},
	}
}

// chaosLatency is the drill's latency: realistic in shape, scaled down so
// that 2000 requests take seconds.
func chaosLatency(tokens int) sim.Profile {
	return sim.Profile{
		Headers: sim.Dist[time.Duration]{Kind: sim.Lognormal, Median: 50 * time.Millisecond, Sigma: 0.5, Min: 5 * time.Millisecond, Max: time.Second},
		TTFT:    sim.Dist[time.Duration]{Kind: sim.Lognormal, Median: 100 * time.Millisecond, Sigma: 0.5, Min: 10 * time.Millisecond, Max: time.Second},
		TPS:     sim.Dist[float64]{Kind: sim.Lognormal, Median: 100, Sigma: 0.25, Min: 30, Max: 300},
		Tokens:  tokens,
	}
}

// Chaos returns the simulator setup of the chaos drill: model Primary fails
// about 30% of its attempts, across every fault class keel handles, and
// flaps once (503s for 250ms, 2s in); model Fallback continues broken
// answers as c says, and breaks mid-stream itself (cut early, cut midway, or
// stalled) on fallbackFaults of its attempts, 0 for a healthy fallback, so
// that continuations also land on the primary. tokens is the answer length
// (at least 4).
func Chaos(seed int64, tokens int, c Continue, fallbackFaults float64) sim.Config {
	tokens = max(tokens, 4)
	primary := chaosLatency(tokens)
	primary.Faults = []sim.Fault{{Name: "flap", Kind: sim.FaultFlap, Start: 2 * time.Second, Down: 250 * time.Millisecond, FromStart: true}}
	// Faults are tried in order, each with its own draw: the rate of each
	// is its share of the attempts the earlier ones left.
	left := 1.0
	for _, s := range chaosShares(tokens) {
		f := s.f
		f.Rate = s.share / left
		left -= s.share
		primary.Faults = append(primary.Faults, f)
	}
	fallback := chaosLatency(tokens)
	fallback.RejectPrefill = c == ContinueReject
	if fallbackFaults > 0 {
		third := fallbackFaults / 3
		fallback.Faults = []sim.Fault{
			{Name: "fallback-cut-early", Kind: sim.FaultCut, After: 2, Rate: third},
			{Name: "fallback-cut-mid", Kind: sim.FaultCut, After: tokens / 2, Rate: third / (1 - third)},
			{Name: "fallback-stall", Kind: sim.FaultStall, After: 2 * tokens / 3, For: 10 * time.Second, Rate: third / (1 - 2*third)},
		}
	}
	return sim.Config{
		Seed:     seed,
		LogLimit: 1 << 20,
		Profiles: map[string]sim.Profile{Primary: primary, Fallback: fallback},
		Default:  chaosLatency(tokens),
	}
}

// HedgeProfile is a latency profile of the hedging drill, given to both
// targets.
type HedgeProfile struct {
	Name string `json:"name"`
	// About says what the profile is, for the report.
	About   string      `json:"about"`
	Profile sim.Profile `json:"-"`
}

// HedgeProfiles returns the hedging drill's profiles: "stragglers-2%" and
// "stragglers-4%", a tight lognormal time to first token (median 150ms,
// sigma 0.4) with 2% or 4% of attempts stalled 3s before their first token,
// which hedging is for; and "lognormal", a pure heavy tail (median 150ms,
// sigma 1.0, like sim-heavytail), where a hedge at the p95 can at best cut
// the p99 to about 0.65 of itself. At 4% stragglers the hedges a p95 delay
// asks for (4% stragglers + 1% of the rest) use the whole 5% budget, so some
// stragglers go unhedged: the drill shows that edge.
func HedgeProfiles(tokens int) []HedgeProfile {
	base := sim.Profile{
		Headers: sim.Dist[time.Duration]{Value: 5 * time.Millisecond},
		TPS:     sim.Dist[float64]{Value: 200},
		Tokens:  tokens,
	}
	strag := func(rate float64) sim.Profile {
		p := base
		p.TTFT = sim.Dist[time.Duration]{Kind: sim.Lognormal, Median: 150 * time.Millisecond, Sigma: 0.4, Max: 3 * time.Second}
		p.Faults = []sim.Fault{{Name: "straggler", Kind: sim.FaultStall, After: 0, For: 3 * time.Second, Rate: rate}}
		return p
	}
	heavy := base
	heavy.TTFT = sim.Dist[time.Duration]{Kind: sim.Lognormal, Median: 150 * time.Millisecond, Sigma: 1.0, Max: 20 * time.Second}
	return []HedgeProfile{
		{Name: "stragglers-2%", About: "TTFT lognormal(150ms, σ0.4) + 2% stalled 3s before the first token", Profile: strag(0.02)},
		{Name: "stragglers-4%", About: "TTFT lognormal(150ms, σ0.4) + 4% stalled 3s before the first token", Profile: strag(0.04)},
		{Name: "lognormal", About: "TTFT lognormal(150ms, σ1.0)", Profile: heavy},
	}
}

// HedgeSim returns the simulator setup for p: both targets behave alike.
func HedgeSim(seed int64, p HedgeProfile) sim.Config {
	return sim.Config{
		Seed:     seed,
		LogLimit: 1 << 20,
		Profiles: map[string]sim.Profile{Primary: p.Profile, Fallback: p.Profile},
		Default:  p.Profile,
	}
}
