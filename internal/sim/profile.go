package sim

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Config is the simulator's whole setup. The zero value is usable: every
// model answers at once with a DefaultTokens-token answer and no faults.
type Config struct {
	// Seed seeds every random choice (latencies, rate faults). Runs with
	// the same Seed and the same sequence of requests per model behave the
	// same.
	Seed int64
	// Profiles maps a model name to its behaviour. A request may also pick
	// a profile by name with the x-sim-profile header.
	Profiles map[string]Profile
	// Default is the profile for model names not in Profiles. Its zero
	// value answers at once, without faults.
	Default Profile
	// LogLimit is how many attempts the attempt log keeps (the most recent
	// ones). If zero, 10000 is used. Negative disables the log.
	LogLimit int
}

// Profile is how one simulated model behaves. The zero value answers at
// once (no latency, unlimited speed) with DefaultTokens tokens.
type Profile struct {
	// Headers is the time from request arrival to response headers.
	Headers Dist[time.Duration]
	// TTFT is the time from response headers to the first token.
	TTFT Dist[time.Duration]
	// TPS is the streaming speed in tokens per second, sampled once per
	// attempt. Zero means unlimited: all tokens at once.
	TPS Dist[float64]
	// Tokens is the answer length. If zero, DefaultTokens is used.
	Tokens int
	// Faults are tried in order on every attempt; the first one that
	// applies is injected (see Fault).
	Faults []Fault
	// RejectPrefill makes the model answer 400 invalid_request_error to a
	// request whose last message is an assistant message.
	RejectPrefill bool
	// Restart makes the model ignore an assistant prefill and answer from
	// the beginning, as models that cannot continue a message do.
	Restart bool
}

// DistKind names a distribution.
type DistKind string

// The distributions. The zero DistKind is Fixed.
const (
	// Fixed always gives Value.
	Fixed DistKind = "fixed"
	// Uniform gives a value in [Min, Max).
	Uniform DistKind = "uniform"
	// Lognormal gives Median·e^(Sigma·N(0,1)), a heavy right tail for
	// large Sigma, clamped to [Min, Max] (Max zero: no upper bound).
	Lognormal DistKind = "lognormal"
)

// Dist is a distribution of durations (latencies) or of float64s (speeds).
// The zero value is fixed at zero.
type Dist[T time.Duration | float64] struct {
	Kind DistKind
	// Value is the value of a Fixed distribution.
	Value T
	// Min and Max bound a Uniform distribution, and clamp a Lognormal one
	// (Max zero: no upper bound).
	Min, Max T
	// Median and Sigma shape a Lognormal distribution.
	Median T
	Sigma  float64
}

// sample draws from d. Fixed distributions do not consume randomness.
func (d Dist[T]) sample(r *prng) T {
	switch d.Kind {
	case Uniform:
		return T(float64(d.Min) + float64(d.Max-d.Min)*r.float64())
	case Lognormal:
		v := T(float64(d.Median) * math.Exp(d.Sigma*r.norm()))
		v = max(v, d.Min)
		if d.Max > 0 {
			v = min(v, d.Max)
		}
		return v
	}
	return d.Value
}

func (d Dist[T]) validate(path string) error {
	switch d.Kind {
	case "", Fixed:
		if d.Value < 0 {
			return fmt.Errorf("%s.value: %v is negative", path, d.Value)
		}
	case Uniform:
		if d.Min < 0 || d.Max < d.Min {
			return fmt.Errorf("%s: uniform needs 0 <= min <= max, got min %v, max %v", path, d.Min, d.Max)
		}
	case Lognormal:
		if d.Median <= 0 {
			return fmt.Errorf("%s.median: lognormal needs median > 0, got %v", path, d.Median)
		}
		if d.Sigma < 0 || math.IsNaN(d.Sigma) || math.IsInf(d.Sigma, 0) {
			return fmt.Errorf("%s.sigma: want a finite sigma >= 0, got %v", path, d.Sigma)
		}
		if d.Min < 0 || (d.Max > 0 && d.Max < d.Min) {
			return fmt.Errorf("%s: lognormal needs 0 <= min <= max, got min %v, max %v", path, d.Min, d.Max)
		}
	default:
		return fmt.Errorf("%s.dist: unknown distribution %q (want fixed, uniform or lognormal)", path, d.Kind)
	}
	return nil
}

// Validate reports the first invalid setting, naming it by its YAML path,
// for example "profiles.flaky.faults[0].status".
func (c Config) Validate() error {
	if err := c.Default.validate("default"); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Profiles)) {
		p := c.Profiles[name]
		if err := p.validate("profiles." + name); err != nil {
			return err
		}
	}
	return nil
}

func (p *Profile) validate(path string) error {
	if err := p.Headers.validate(path + ".headers"); err != nil {
		return err
	}
	if err := p.TTFT.validate(path + ".ttft"); err != nil {
		return err
	}
	if err := p.TPS.validate(path + ".tps"); err != nil {
		return err
	}
	if p.Tokens < 0 {
		return fmt.Errorf("%s.tokens: %d is negative", path, p.Tokens)
	}
	for i := range p.Faults {
		if err := p.Faults[i].validate(fmt.Sprintf("%s.faults[%d]", path, i)); err != nil {
			return err
		}
	}
	if p.RejectPrefill && p.Restart {
		return fmt.Errorf("%s.restart: cannot be combined with reject_prefill", path)
	}
	return nil
}

// Builtin returns the built-in profiles, with Default set to "sim":
//
//   - sim: realistic; lognormal headers (median 150ms) and TTFT (median
//     250ms), about 60 tokens/s.
//   - sim-fast: fixed 5ms headers, 10ms TTFT, 500 tokens/s.
//   - sim-zero: no latency, unlimited speed. Benchmarks use it; its path
//     does not wait on timers.
//   - sim-heavytail: like sim, but TTFT is lognormal with median 200ms and
//     sigma 1.0, so one attempt in twenty takes over a second.
func Builtin() Config {
	sim := Profile{
		Headers: Dist[time.Duration]{Kind: Lognormal, Median: 150 * time.Millisecond, Sigma: 0.5, Min: 20 * time.Millisecond, Max: 3 * time.Second},
		TTFT:    Dist[time.Duration]{Kind: Lognormal, Median: 250 * time.Millisecond, Sigma: 0.5, Min: 30 * time.Millisecond, Max: 5 * time.Second},
		TPS:     Dist[float64]{Kind: Lognormal, Median: 60, Sigma: 0.25, Min: 15, Max: 200},
	}
	heavy := sim
	heavy.TTFT = Dist[time.Duration]{Kind: Lognormal, Median: 200 * time.Millisecond, Sigma: 1.0, Max: 30 * time.Second}
	return Config{
		Profiles: map[string]Profile{
			"sim": sim,
			"sim-fast": {
				Headers: Dist[time.Duration]{Value: 5 * time.Millisecond},
				TTFT:    Dist[time.Duration]{Value: 10 * time.Millisecond},
				TPS:     Dist[float64]{Value: 500},
			},
			"sim-zero":      {},
			"sim-heavytail": heavy,
		},
		Default: sim,
	}
}

// prng is a PCG generator with the two draws the simulator needs. It is a
// value type so an attempt's generator lives on its stack.
type prng struct {
	pcg rand.PCG
}

// seed derives an attempt's generator from the config seed, the model name,
// the 1-based attempt number and a stream number, so that latencies and
// fault draws are independent and reproducible.
func (r *prng) seed(seed int64, model string, attempt int, stream uint64) {
	r.pcg.Seed(uint64(seed)^hashString(0, model), uint64(attempt)<<8|stream)
}

// float64 returns a uniform value in [0, 1).
func (r *prng) float64() float64 {
	return float64(r.pcg.Uint64()>>11) / (1 << 53)
}

// norm returns a standard normal value (Box–Muller).
func (r *prng) norm() float64 {
	u := 1 - r.float64() // (0, 1]: keeps the log finite
	v := r.float64()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}
