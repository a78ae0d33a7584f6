package router

import "time"

// Policy is a route's reliability settings: deadlines, retries, hedging and
// what to fail over on. Zero fields take the defaults in Defaults, so the
// zero Policy is the documented default behaviour (issue 3: every case is
// handled correctly with no tuning).
type Policy struct {
	// FirstToken bounds the wait from an attempt's start to its first
	// token. If zero, 60s. Negative disables.
	FirstToken time.Duration
	// Total bounds the whole request, every attempt and wait included. If
	// zero, 10m.
	Total time.Duration

	// Attempts caps the upstream attempts of one request, hedges and
	// continuations included. If zero, 6.
	Attempts int
	// Backoff is the first retry's base wait; it doubles per retry, with
	// jitter (between half and all of it), up to MaxBackoff. If zero,
	// 500ms and 4s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// RetryAfterWait is the longest Retry-After keel waits out on the same
	// target while another target could serve instead; longer hints fail
	// over at once. With no other target, keel waits up to MaxRetryAfter
	// (if it fits Total), else returns the 429. If zero, 2s and 10s.
	RetryAfterWait time.Duration
	MaxRetryAfter  time.Duration

	// Hedge sends a second attempt to the next target when the first token
	// is late. Nil means on for routes with more than one target.
	Hedge *bool
	// HedgeDelay is a fixed hedge delay. If zero, the target's observed p95
	// time to first token, clamped to [HedgeMin, HedgeMax] (200ms, 10s).
	HedgeDelay time.Duration
	HedgeMin   time.Duration
	HedgeMax   time.Duration

	// FailoverContentFilter fails over when a vendor's content filter
	// refuses the request. Off by default: the refusal is the answer.
	FailoverContentFilter bool
	// ContextFallbacks, if set, replace the route's remaining targets when
	// a target rejects the prompt as too long for its context.
	ContextFallbacks []Target

	// StreamUpstream serves non-streaming clients from streaming upstream
	// calls, so that first-token and idle deadlines, hedging and mid-stream
	// continuation protect them too. Nil means on.
	StreamUpstream *bool

	// HoldToolCalls holds each streamed tool call until it is complete and
	// releases it whole, so that a broken stream can never deliver a
	// corrupt call. Nil means on whenever the request offers tools and the
	// route can continue on another target.
	HoldToolCalls *bool
}

// Defaults returns p with every zero field set to its default.
func (p Policy) Defaults() Policy {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&p.FirstToken, 60*time.Second)
	set(&p.Total, 10*time.Minute)
	set(&p.Backoff, 500*time.Millisecond)
	set(&p.MaxBackoff, 4*time.Second)
	set(&p.RetryAfterWait, 2*time.Second)
	set(&p.MaxRetryAfter, 10*time.Second)
	set(&p.HedgeMin, 200*time.Millisecond)
	set(&p.HedgeMax, 10*time.Second)
	if p.Attempts == 0 {
		p.Attempts = 6
	}
	return p
}
