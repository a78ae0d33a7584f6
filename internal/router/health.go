package router

import (
	"math"
	"slices"
	"sync"
	"time"
)

// BreakerState is a circuit breaker's state.
type BreakerState int

// The breaker states, in the order /metrics reports them (0, 1, 2).
const (
	Closed BreakerState = iota
	HalfOpen
	Open
)

func (s BreakerState) String() string {
	return [...]string{"closed", "half_open", "open"}[s]
}

// Breaker configures every target's circuit breaker and budgets. Zero
// fields take the defaults noted.
type Breaker struct {
	// Failures in a row that open the breaker. If zero, 5.
	Failures int
	// Ratio of failures over Window, with at least MinRequests, that opens
	// the breaker. If zero, 0.5, 10s and 10.
	Ratio       float64
	Window      time.Duration
	MinRequests int
	// Open is how long the breaker stays open before a half-open probe; it
	// doubles each time a probe fails, up to MaxOpen. If zero, 5s and 20s,
	// so traffic returns within 20s of a recovery.
	Open    time.Duration
	MaxOpen time.Duration
	// RetryRatio caps same-target retries at this share of requests over
	// Window, plus MinRetries per second of it, so retries can never become
	// a storm. If zero, 0.2 and 1.
	RetryRatio float64
	MinRetries float64
	// HedgeRatio caps hedged attempts at this share of requests. If zero,
	// 0.05.
	HedgeRatio float64
}

func (b Breaker) defaults() Breaker {
	if b.Failures == 0 {
		b.Failures = 5
	}
	if b.Ratio == 0 {
		b.Ratio = 0.5
	}
	if b.Window == 0 {
		b.Window = 10 * time.Second
	}
	if b.MinRequests == 0 {
		b.MinRequests = 10
	}
	if b.Open == 0 {
		b.Open = 5 * time.Second
	}
	if b.MaxOpen == 0 {
		b.MaxOpen = 20 * time.Second
	}
	if b.RetryRatio == 0 {
		b.RetryRatio = 0.2
	}
	if b.MinRetries == 0 {
		b.MinRetries = 1
	}
	if b.HedgeRatio == 0 {
		b.HedgeRatio = 0.05
	}
	return b
}

// ewmaDecay is the time constant of the peak-EWMA latency estimate.
const ewmaDecay = 10 * time.Second

// samples is how many recent times to first token the p95 is taken over.
const samples = 128

// health is one target's shared state: its circuit breaker, latency
// estimates, rate-limit cooldown and budgets. It is safe for concurrent use.
type health struct {
	cfg Breaker

	mu       sync.Mutex
	state    BreakerState
	inRow    int // consecutive failures
	win      window
	openedAt time.Time
	openFor  time.Duration
	probing  bool
	// coolUntil is set from a 429's Retry-After: new requests prefer other
	// targets until then.
	coolUntil time.Time
	// noPrefill is learnt when the target rejects an assistant prefill.
	noPrefill bool

	ewma     float64 // peak-EWMA of time to first token, in ns
	ewmaAt   time.Time
	inflight int
	ttft     [samples]time.Duration
	nttft    int
	p95      time.Duration
}

func newHealth(cfg Breaker) *health {
	return &health{cfg: cfg, win: newWindow(cfg.Window)}
}

// admit reports whether a new request may use the target now. In
// half-open state it admits one probe at a time; probe reports whether this
// is it.
func (h *health) admit(now time.Time) (ok, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.coolUntil) {
		return false, false
	}
	switch h.state {
	case Open:
		if now.Sub(h.openedAt) < h.openFor {
			return false, false
		}
		h.state = HalfOpen
		fallthrough
	case HalfOpen:
		if h.probing {
			return false, false
		}
		h.probing = true
		return true, true
	}
	return true, false
}

// begin counts a request starting on the target.
func (h *health) begin(now time.Time) {
	h.mu.Lock()
	h.inflight++
	h.win.at(now).requests++
	h.mu.Unlock()
}

// succeed records a good attempt that has ended, and its time to first
// token (0 if none).
func (h *health) succeed(now time.Time, ttft time.Duration, probe bool) {
	h.firstToken(now, ttft, probe)
	h.done()
}

// firstToken records that an attempt produced its first token: the target
// answers, which is what its breaker and latency estimates are about. A
// stream that breaks later counts a strike of its own. (Recording success
// only at a stream's end let fast failures open the breaker before any
// success was seen: keel drill.)
func (h *health) firstToken(now time.Time, ttft time.Duration, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inRow = 0
	if probe || h.state == HalfOpen {
		h.state, h.probing, h.openFor = Closed, false, 0
	}
	if ttft > 0 {
		h.observeLocked(now, ttft)
	}
}

// done ends an attempt that produced its first token.
func (h *health) done() {
	h.mu.Lock()
	h.inflight--
	h.mu.Unlock()
}

// strike counts a failure of an attempt already counted as answering: a
// stream that broke mid-answer.
func (h *health) strike(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inRow++
	h.win.at(now).failures++
	s := h.win.sum(now)
	if h.state == Closed && (h.inRow >= h.cfg.Failures || (s.requests >= h.cfg.MinRequests && float64(s.failures) >= h.cfg.Ratio*float64(s.requests))) {
		h.tripLocked(now)
	}
}

// observe records a lower bound on the time to first token of an attempt
// that was cancelled before it answered.
func (h *health) observe(now time.Time, wait time.Duration) {
	h.mu.Lock()
	h.observeLocked(now, wait)
	h.mu.Unlock()
}

// fail records an attempt that failed through the upstream's fault.
func (h *health) fail(now time.Time, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight--
	h.inRow++
	h.win.at(now).failures++
	if probe {
		h.probing = false
	}
	if h.state == HalfOpen {
		h.tripLocked(now)
		return
	}
	s := h.win.sum(now)
	if h.inRow >= h.cfg.Failures || (s.requests >= h.cfg.MinRequests && float64(s.failures) >= h.cfg.Ratio*float64(s.requests)) {
		if h.state == Closed {
			h.tripLocked(now)
		}
	}
}

// release ends an attempt without a verdict: the client left, or a hedge
// lost the race.
func (h *health) release(probe bool) {
	h.mu.Lock()
	h.inflight--
	if probe {
		h.probing = false
	}
	h.mu.Unlock()
}

func (h *health) tripLocked(now time.Time) {
	switch {
	case h.openFor == 0:
		h.openFor = h.cfg.Open
	default:
		h.openFor = min(2*h.openFor, h.cfg.MaxOpen)
	}
	h.state, h.openedAt, h.probing = Open, now, false
}

// isOpen reports whether the breaker is open.
func (h *health) isOpen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state == Open
}

// cool keeps new requests away until the Retry-After has passed.
func (h *health) cool(until time.Time) {
	h.mu.Lock()
	if until.After(h.coolUntil) {
		h.coolUntil = until
	}
	h.mu.Unlock()
}

// observeLocked folds one time to first token into the peak-EWMA (a slow
// sample counts at once; fast ones decay it) and the p95 sample ring.
func (h *health) observeLocked(now time.Time, ttft time.Duration) {
	v := float64(ttft)
	if h.ewmaAt.IsZero() || v > h.ewma {
		h.ewma = v
	} else {
		w := math.Exp(-float64(now.Sub(h.ewmaAt)) / float64(ewmaDecay))
		h.ewma = h.ewma*w + v*(1-w)
	}
	h.ewmaAt = now
	h.ttft[h.nttft%samples] = ttft
	h.nttft++
	if h.nttft%16 == 0 || h.nttft < 16 {
		n := min(h.nttft, samples)
		s := slices.Clone(h.ttft[:n])
		slices.Sort(s)
		h.p95 = s[(n*95-1)/100]
	}
}

// cost is the load balancer's score: expected wait, inflated by the work
// already in flight (peak-EWMA, as Finagle and Linkerd do). Unmeasured
// targets cost nothing, so they get tried.
func (h *health) cost() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ewma * float64(h.inflight+1)
}

// hedgeDelay returns the observed p95 time to first token, or 0 if too
// few samples exist.
func (h *health) hedgeDelay() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nttft < 20 {
		return 0
	}
	return h.p95
}

// takeRetry spends from the retry budget.
func (h *health) takeRetry(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.win.sum(now)
	limit := h.cfg.RetryRatio*float64(s.requests) + h.cfg.MinRetries*h.cfg.Window.Seconds()
	if float64(s.retries) >= limit {
		return false
	}
	h.win.at(now).retries++
	return true
}

// takeHedge spends from the hedge budget: hedges may add at most
// HedgeRatio extra requests.
func (h *health) takeHedge(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.win.sum(now)
	if float64(s.hedges+1) > h.cfg.HedgeRatio*float64(s.requests) {
		return false
	}
	h.win.at(now).hedges++
	return true
}

// TargetStatus is a target's health as /metrics and the status endpoint
// show it.
type TargetStatus struct {
	Target   string        `json:"target"`
	State    string        `json:"breaker"`
	Inflight int           `json:"inflight"`
	EWMA     time.Duration `json:"ttft_ewma_ns"`
	P95      time.Duration `json:"ttft_p95_ns"`
	Requests int           `json:"window_requests"`
	Failures int           `json:"window_failures"`
	Cooling  bool          `json:"cooling_down"`
	breaker  BreakerState
}

// Breaker returns the breaker state as a number: 0 closed, 1 half-open,
// 2 open.
func (s TargetStatus) Breaker() BreakerState { return s.breaker }

func (h *health) status(name string, now time.Time) TargetStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.win.sum(now)
	st := h.state
	if st == Open && now.Sub(h.openedAt) >= h.openFor {
		st = HalfOpen
	}
	return TargetStatus{
		Target: name, State: st.String(), breaker: st, Inflight: h.inflight,
		EWMA: time.Duration(h.ewma), P95: h.p95, Requests: s.requests, Failures: s.failures,
		Cooling: now.Before(h.coolUntil),
	}
}
