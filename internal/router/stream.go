package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// Causes with which the router cancels an attempt's context.
var (
	errFirstToken = errors.New("no first token in time")
	errLost       = errors.New("another attempt answered first")
)

// Serve starts an answer to r over route: it runs attempts — retries,
// failovers, hedges — until one produces its first token, so that nothing
// has reached the client before a failover. The returned Stream is never
// nil; it carries the attempt log even when Serve fails.
func (rt *Router) Serve(ctx context.Context, route *Route, r *llm.Request) (*Stream, error) {
	s := &Stream{rt: rt, route: route, pol: route.Policy, req: r, needs: r.Needs()}
	s.ctx, s.cancel = context.WithTimeout(ctx, s.pol.Total)
	s.plan = rt.plan(route.Targets)
	s.tries = make(map[*slot]int, len(s.plan))
	s.hold = r.Stream && len(r.Tools) > 0 && len(s.plan) > 1
	if s.pol.HoldToolCalls != nil {
		s.hold = *s.pol.HoldToolCalls && len(r.Tools) > 0
	}
	if err := s.race(); err != nil {
		s.done = true
		return s, err
	}
	s.first = s.cur.slot.t
	return s, nil
}

// Stream is the answer the router serves: one uninterrupted sequence of
// events, whichever targets it took. It is used by one goroutine.
//
// Unlike STYLE.md's rule, it keeps the request's context: Recv has no
// context parameter (llm.Stream is pull-based), yet a broken stream must
// start new attempts within the request's lifetime.
type Stream struct {
	rt     *Router
	ctx    context.Context
	cancel context.CancelFunc
	route  *Route
	pol    Policy
	req    *llm.Request
	needs  []llm.Feature // what req needs of a target

	plan     []*slot
	deferred []*slot // targets whose breaker was open, the last resort
	tries    map[*slot]int
	launched int
	// contextFailovers counts moves made because a prompt was too long.
	contextFailovers int
	// limited counts the rate limits met, for the backoff.
	limited int
	records []chat.Attempt
	wg      sync.WaitGroup // reapers of losing attempts

	first Target
	cur   *attempt
	pre   []llm.Event // the winner's events up to its first token
	done  bool

	// What the client has been given, for continuation.
	sent   llm.Answer
	tokens int // token-bearing events delivered; estimates usage at a seam
	// Seam state: how the current attempt relates to what was sent.
	restart *restart // set while a restarted answer retraces the sent text
	overlap []byte   // prefill continuation text held to trim a repeat
	seamed  bool     // a prefill seam happened; usage needs adjusting
	preSeam int      // tokens delivered before the last prefill seam

	// Tool calls held until complete.
	hold  bool
	held  []llm.ToolCallDelta
	out   []llm.Event // events ready for the client, owned by the Stream
	evBuf llm.Event
}

// attempt is one upstream call.
type attempt struct {
	slot    *slot
	req     *llm.Request
	rec     int // index into Stream.records
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer // the first-token deadline
	start   time.Time
	prefill bool
	probe   bool
	// ttft is the time from start to the first token, once won.
	ttft time.Duration

	// Set by run before it reports.
	stream llm.Stream
	pre    []llm.Event
	id     string // the upstream's response id
	err    error
}

// isToken reports whether ev carries part of the answer (not just a role
// or usage).
func isToken(ev *llm.Event) bool {
	return ev.Text != "" || ev.Reasoning != "" || len(ev.ToolCalls) > 0 || ev.Finish != ""
}

// run calls the upstream and reads up to the first token. It always reports
// on results, which has room for every attempt.
func (a *attempt) run(results chan<- *attempt) {
	st, err := a.slot.t.Provider.Chat(a.ctx, a.req)
	if err == nil {
		for {
			ev, rerr := st.Recv()
			if rerr == io.EOF {
				rerr = &llm.Error{Kind: llm.KindStream, Provider: a.slot.t.Provider.Name(), Message: "the upstream ended the answer before its first token"}
			}
			if rerr != nil {
				err = rerr
				break
			}
			a.pre = append(a.pre, copyEvent(ev))
			if a.id == "" {
				a.id = ev.ID
			}
			if isToken(ev) {
				break
			}
		}
		if err == nil && a.timer != nil && !a.timer.Stop() {
			// The first-token deadline fired as the token arrived: it is
			// cancelling this attempt's context, so the stream is dead.
			// Regression (keel drill): a winner whose timer fired after
			// its first token broke off with "canceled".
			err = errFirstToken
		}
		if err != nil {
			st.Close()
		} else {
			a.stream = st
		}
	}
	if err == errFirstToken || err != nil && context.Cause(a.ctx) == errFirstToken {
		err = &llm.Error{Kind: llm.KindTimeout, Provider: a.slot.t.Provider.Name(), Message: "no first token in time", Err: err}
	}
	a.err = err
	results <- a
}

// copyEvent returns a copy of ev that owns its memory.
func copyEvent(ev *llm.Event) llm.Event {
	c := *ev
	c.ToolCalls = slices.Clone(ev.ToolCalls)
	c.Raw = slices.Clone(ev.Raw)
	if ev.Usage != nil {
		u := *ev.Usage
		c.Usage = &u
	}
	return c
}

// race runs attempts until one produces its first token, and makes it
// s.cur. It returns the last failure when every option is spent.
func (s *Stream) race() error {
	results := make(chan *attempt, s.pol.Attempts+1)
	running := map[*attempt]bool{}
	var last error
	var hedgeC, retryC <-chan time.Time
	var retrySlot *slot // the target the pending attempt goes to, and why
	var retryWhy string
	stop := func(t **time.Timer, c *<-chan time.Time) {
		if *t != nil {
			(*t).Stop()
		}
		*c = nil
	}
	var hedgeT, retryT *time.Timer

	launch := func(sl *slot, reason string) bool {
		if s.launched >= s.pol.Attempts {
			return false
		}
		a := s.start(sl, reason)
		running[a] = true
		// Hedge a late first token on the next target (issue 3: hedged
		// requests), on by default when there is one.
		stop(&hedgeT, &hedgeC)
		d := s.hedgeDelay(sl)
		if d == 0 && len(running) == 1 {
			// Nothing can race this attempt: run it here and save a
			// goroutine; results has room, so run never blocks on it.
			a.run(results)
			return true
		}
		go a.run(results)
		if d > 0 {
			hedgeT = time.NewTimer(d)
			hedgeC = hedgeT.C
		}
		return true
	}
	next := func(reason string) bool {
		sl := s.nextSlot(reason != "hedge")
		return sl != nil && launch(sl, reason)
	}
	if !next("first") {
		return &llm.Error{Kind: llm.KindInvalid, Status: 400, Message: "no target of this route can take the request: " + s.skipped()}
	}
	for {
		select {
		case a := <-results:
			delete(running, a)
			if a.err == nil {
				stop(&hedgeT, &hedgeC)
				stop(&retryT, &retryC)
				s.win(a, running, results)
				return nil
			}
			last = a.err
			v := s.failed(a)
			if s.launched >= s.pol.Attempts {
				v = verdict{} // the attempt budget is spent: nothing to wait for
			}
			switch {
			case a.prefill && isKind(a.err, llm.KindInvalid):
				// 14: the target rejects assistant prefill. Learn it, and
				// restart cleanly on the same target at once.
				a.slot.h.mu.Lock()
				a.slot.h.noPrefill = true
				a.slot.h.mu.Unlock()
				launch(a.slot, "restart")
			case v.retry && a.slot.h.takeRetry(s.rt.now()):
				stop(&retryT, &retryC)
				retrySlot, retryWhy = a.slot, "retry"
				retryT = time.NewTimer(v.wait)
				retryC = retryT.C
			case v.failover && v.wait > 0:
				// Backing off from rate limits: the next target waits too.
				if sl := s.nextSlot(true); sl != nil {
					stop(&retryT, &retryC)
					retrySlot, retryWhy = sl, "failover"
					retryT = time.NewTimer(v.wait)
					retryC = retryT.C
				}
			case v.context:
				s.contextFailovers++
				s.plan = s.rt.plan(s.pol.ContextFallbacks)
				s.deferred = nil
				next("context")
			case v.failover || v.retry:
				if v.failover && isKind(a.err, llm.KindContextLength) {
					s.contextFailovers++
				}
				next("failover")
			}
			if len(running) == 0 && retryC == nil {
				return last
			}
		case <-hedgeC:
			hedgeC = nil
			if len(s.plan) > 0 && len(running) > 0 && s.lead(running).slot.h.takeHedge(s.rt.now()) {
				next("hedge")
			}
		case <-retryC:
			retryC = nil
			if !launch(retrySlot, retryWhy) && len(running) == 0 {
				return last
			}
		case <-s.ctx.Done():
			stop(&hedgeT, &hedgeC)
			stop(&retryT, &retryC)
			s.reap(running, results, context.Canceled)
			if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
				return &llm.Error{Kind: llm.KindTimeout, Message: fmt.Sprintf("the request's deadline (%s) passed", s.pol.Total), Err: last}
			}
			return &llm.Error{Kind: llm.KindCanceled, Message: "the client went away", Err: s.ctx.Err()}
		}
	}
}

// skipped lists why targets were skipped, for the error when none is left.
func (s *Stream) skipped() string {
	var why []string
	for _, a := range s.records {
		if a.Outcome == chat.OutcomeSkipped {
			why = append(why, a.Provider+"/"+a.Model+": "+a.Error)
		}
	}
	if len(why) == 0 {
		return "every attempt is spent"
	}
	return strings.Join(why, "; ")
}

// lead returns any running attempt (the one a hedge would back up).
func (s *Stream) lead(running map[*attempt]bool) *attempt {
	for a := range running {
		return a
	}
	return nil
}

func isKind(err error, k llm.Kind) bool {
	var e *llm.Error
	return errors.As(err, &e) && e.Kind == k
}

// hedgeDelay returns how long to wait for sl's first token before hedging,
// or 0 for no hedge.
func (s *Stream) hedgeDelay(sl *slot) time.Duration {
	hedge := len(s.route.Targets) > 1
	if s.pol.Hedge != nil {
		hedge = *s.pol.Hedge
	}
	if !hedge || len(s.plan) == 0 {
		return 0
	}
	if s.pol.HedgeDelay > 0 {
		return s.pol.HedgeDelay
	}
	d := sl.h.hedgeDelay()
	if d == 0 {
		return 0 // too few samples to know what "late" is
	}
	return min(max(d, s.pol.HedgeMin), s.pol.HedgeMax)
}

// peekSlot returns the next target the plan would use, or nil.
func (s *Stream) peekSlot() *slot {
	if len(s.plan) > 0 {
		return s.plan[0]
	}
	if len(s.deferred) > 0 {
		return s.deferred[0]
	}
	return nil
}

// nextSlot takes the next target from the plan. A target that lacks a
// feature the request needs is skipped, and the attempt log says why
// (issue 4). A target whose breaker is open or that is cooling down after a
// 429 is deferred to the end, tried only when nothing else is left: during
// an outage no latency is spent on the dead target.
func (s *Stream) nextSlot(lastResort bool) *slot {
	now := s.rt.now()
	for len(s.plan) > 0 {
		sl := s.plan[0]
		s.plan = s.plan[1:]
		if f, ok := lacks(sl.t, s.needs); ok {
			s.records = append(s.records, chat.Attempt{Provider: sl.t.Provider.Name(), Model: sl.t.Model, Start: now,
				Reason: "skipped", Outcome: chat.OutcomeSkipped, Error: "the target does not support " + f.String()})
			continue
		}
		ok, probe := sl.h.admit(now)
		if ok {
			sl.probe = probe
			return sl
		}
		s.deferred = append(s.deferred, sl)
	}
	if lastResort && len(s.deferred) > 0 {
		sl := s.deferred[0]
		s.deferred = s.deferred[1:]
		return sl
	}
	return nil
}

// lacks reports a feature in needs that t does not support.
func lacks(t Target, needs []llm.Feature) (llm.Feature, bool) {
	c, ok := t.Provider.(llm.Capable)
	if !ok {
		return 0, false
	}
	for _, f := range needs {
		if !c.Supports(t.Model, f) {
			return f, true
		}
	}
	return 0, false
}

// start begins an attempt on sl: the request it gets (a continuation where
// one is needed), its record, its health accounting and its deadline.
func (s *Stream) start(sl *slot, reason string) *attempt {
	s.launched++
	s.tries[sl]++
	now := s.rt.now()
	a := &attempt{slot: sl, start: now, probe: sl.probe}
	sl.probe = false
	a.req, a.prefill = s.request(sl)
	a.ctx, a.cancel = context.WithCancelCause(s.ctx)
	if s.pol.FirstToken > 0 && a.req.Stream {
		// A whole answer's first token is its last: only the total
		// bounds it (stream_upstream: false).
		a.timer = time.AfterFunc(s.pol.FirstToken, func() { a.cancel(errFirstToken) })
	}
	a.rec = len(s.records)
	s.records = append(s.records, chat.Attempt{Provider: sl.t.Provider.Name(), Model: sl.t.Model, Start: now, Reason: reason})
	sl.h.begin(now)
	return a
}

// request builds what an attempt on sl sends: the client's request with
// the target's model, or, after a break, a continuation of the answer.
func (s *Stream) request(sl *slot) (*llm.Request, bool) {
	r := s.req.Clone()
	r.Model = sl.t.Model
	if s.pol.StreamUpstream == nil || *s.pol.StreamUpstream {
		r.Stream = true
	}
	if len(s.sent.Text) == 0 || len(s.sent.ToolCalls) > 0 {
		return r, false // nothing to continue, or tool calls to retrace
	}
	sl.h.mu.Lock()
	noPrefill := sl.h.noPrefill
	sl.h.mu.Unlock()
	if noPrefill || !sl.t.prefills() {
		return r, false
	}
	r.Messages = append(slices.Clip(r.Messages), llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{llm.TextPart(string(s.sent.Text))}})
	r.Continue = true
	if r.MaxTokens != nil {
		// The continuation may only write what is left of the client's
		// limit (regression, e2e: a continued answer overran max_tokens).
		left := max(*r.MaxTokens-s.tokens, 1)
		r.MaxTokens = &left
	}
	return r, true
}

// failed records a failed attempt and returns what to do next.
func (s *Stream) failed(a *attempt) verdict {
	now := s.rt.now()
	if a.timer != nil {
		a.timer.Stop()
	}
	a.cancel(nil)
	s.endRecord(a.rec, now, a.err)
	left := s.pol.Total
	if dl, ok := s.ctx.Deadline(); ok {
		left = dl.Sub(now)
	}
	if isKind(a.err, llm.KindRateLimit) {
		s.limited++
	}
	v := decide(a.err, situation{
		policy: s.pol, tries: s.tries[a.slot], next: s.peekSlot() != nil,
		left: left, contextFailovers: s.contextFailovers, limited: s.limited,
	})
	if v.upstream {
		a.slot.h.fail(now, a.probe)
		if v.retry && a.slot.h.isOpen() {
			// The failure opened the breaker (or a probe failed): the
			// target is down, so move on rather than retry it.
			v.retry, v.failover = false, s.peekSlot() != nil
		}
	} else {
		a.slot.h.release(a.probe)
	}
	if v.cool > 0 {
		a.slot.h.cool(now.Add(v.cool))
	}
	s.rt.log.Warn("upstream attempt failed", "route", s.route.Name, "target", a.slot.t.String(), "err", a.err,
		"retry", v.retry, "failover", v.failover || v.context)
	return v
}

// win makes a the current attempt and cancels the others.
func (s *Stream) win(a *attempt, losers map[*attempt]bool, results chan *attempt) {
	now := s.rt.now()
	a.ttft = now.Sub(a.start)
	s.cur, s.pre = a, a.pre
	a.slot.h.firstToken(now, a.ttft, a.probe)
	for l := range losers {
		// A target that lost the race is still good for a continuation
		// (regression, keel drill: a cut after a hedged start found no
		// target left). And its wait so far is a lower bound on its time
		// to first token: without it, the p95 that sets the hedge delay
		// would only ever see the winners, and drift down.
		s.plan = append([]*slot{l.slot}, s.plan...)
		s.tries[l.slot]--
		l.slot.h.observe(now, now.Sub(l.start))
	}
	s.reap(losers, results, errLost)
}

// reap cancels the running attempts, records them as canceled, and closes
// their streams in the background as they report.
func (s *Stream) reap(running map[*attempt]bool, results chan *attempt, cause error) {
	if len(running) == 0 {
		return
	}
	now := s.rt.now()
	for a := range running {
		a.cancel(cause)
		if a.timer != nil {
			a.timer.Stop()
		}
		s.endRecord(a.rec, now, context.Canceled)
	}
	n := len(running)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for range n {
			a := <-results
			if a.stream != nil {
				a.stream.Close()
			}
			a.slot.h.release(a.probe)
		}
	}()
}

// endRecord fills in how attempt i ended.
func (s *Stream) endRecord(i int, now time.Time, err error) { settle(&s.records[i], now, err) }

// settle fills in how an attempt ended at now, with err or nil.
func settle(r *chat.Attempt, now time.Time, err error) {
	r.Duration = now.Sub(r.Start)
	r.Outcome = chat.OutcomeOK
	var e *llm.Error
	switch {
	case err == nil:
	case errors.As(err, &e) && e.Kind != llm.KindCanceled:
		r.Outcome, r.Status, r.Error = chat.Outcome(e.Kind.String()), e.Status, e.Message
	case errors.As(err, &e), errors.Is(err, context.Canceled):
		r.Outcome = chat.OutcomeCanceled
	default:
		r.Outcome = chat.Outcome(llm.KindUnknown.String())
	}
}

// Target returns the target that started the answer; zero if none did.
func (s *Stream) Target() Target { return s.first }

// Served returns the target serving the answer now: after a seam, the one
// that continued it.
func (s *Stream) Served() Target {
	if s.cur == nil {
		return Target{}
	}
	return s.cur.slot.t
}

// Attempts returns every attempt made so far, failed ones included.
func (s *Stream) Attempts() []chat.Attempt { return s.records }

// Close releases the upstream and waits for the attempts it cancelled.
// Closing before the end marks the current attempt canceled.
func (s *Stream) Close() error {
	if s.cur != nil && !s.done {
		s.done = true
		s.endRecord(s.cur.rec, s.rt.now(), context.Canceled)
		s.cur.slot.h.done()
	}
	if s.cur != nil && s.cur.stream != nil {
		s.cur.stream.Close()
		s.cur.cancel(nil)
	}
	s.cancel()
	s.wg.Wait()
	return nil
}
