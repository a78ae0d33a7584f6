package router

import (
	"bytes"
	"errors"
	"io"

	"github.com/keel-ai/keel/internal/llm"
)

// restart tracks a restarted answer while it retraces what the client
// already has: its text and tool calls must match, and are suppressed.
type restart struct {
	pos   int // bytes of sent text matched so far
	calls int // sent tool calls matched so far
	acc   llm.Answer
}

// errDiverged ends a stream whose restarted answer differs from what was
// sent: splicing it would give the client an answer no model wrote.
func errDiverged(provider string) error {
	return &llm.Error{Kind: llm.KindStream, Provider: provider,
		Message: "the answer broke off, and the fallback's restarted answer diverged from the text already sent; the answer is incomplete"}
}

// Recv returns the next event of the answer. After a break it continues the
// answer on another target (issue 3: mid-stream continuation); where that is
// impossible it returns an explicit error, never a clean end.
func (s *Stream) Recv() (*llm.Event, error) {
	for {
		if len(s.out) > 0 {
			s.evBuf = s.out[0]
			s.out = s.out[1:]
			s.track(&s.evBuf)
			return &s.evBuf, nil
		}
		if s.done || s.cur == nil {
			return nil, io.EOF
		}
		ev, err := s.pull()
		if err == io.EOF {
			if err := s.finish(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			if err := s.resume(err); err != nil {
				s.done = true
				return nil, err
			}
			continue
		}
		if s.restart == nil && s.overlap == nil && !s.hold && !s.seamed {
			s.track(ev) // the fast path: relay as it is
			return ev, nil
		}
		if err := s.shape(ev); err != nil {
			s.done = true
			return nil, err
		}
	}
}

// Buffered reports whether the next event is already at hand.
func (s *Stream) Buffered() bool {
	if len(s.out) > 0 || len(s.pre) > 0 {
		return true
	}
	if s.cur == nil || s.cur.stream == nil || s.done {
		return false
	}
	b, ok := s.cur.stream.(llm.Buffered)
	return ok && b.Buffered()
}

// pull returns the current attempt's next event: first those read while
// racing for the first token, then the stream's.
func (s *Stream) pull() (*llm.Event, error) {
	if len(s.pre) > 0 {
		s.evBuf = s.pre[0]
		s.pre = s.pre[1:]
		return &s.evBuf, nil
	}
	return s.cur.stream.Recv()
}

// track notes what the client is given, for a later continuation.
func (s *Stream) track(ev *llm.Event) {
	if isToken(ev) && ev.Finish == "" {
		s.tokens++
	}
	s.sent.Text = append(s.sent.Text, ev.Text...)
	if len(ev.ToolCalls) > 0 {
		s.sent.Add(&llm.Event{ToolCalls: ev.ToolCalls})
	}
	if ev.Finish != "" {
		s.sent.Finish = ev.Finish
	}
}

// finish ends the current attempt at its clean end, releasing whatever is
// still held.
func (s *Stream) finish() error {
	if s.restart != nil {
		// The restarted answer ended before retracing what was sent.
		return errDiverged(s.cur.slot.t.Provider.Name())
	}
	s.flushOverlap()
	s.release(nil)
	s.done = true
	s.endRecord(s.cur.rec, s.rt.now(), nil)
	s.cur.slot.h.done()
	return nil
}

// shape processes one event on the slow path: retracing a restart, trimming
// a prefill's repeat, holding tool calls, fixing usage after a seam. Events
// for the client are queued on s.out.
func (s *Stream) shape(ev *llm.Event) error {
	e := copyEvent(ev)
	e.Raw, e.Wire = nil, llm.WireNone
	if r := s.restart; r != nil {
		if !s.retrace(r, &e) {
			return errDiverged(s.cur.slot.t.Provider.Name())
		}
		if r.pos < len(s.sent.Text) || r.calls < len(s.sent.ToolCalls) {
			return nil // still retracing; the rest of e was suppressed
		}
		s.restart = nil
	}
	if s.overlap != nil && e.Text != "" {
		s.overlap = append(s.overlap, e.Text...)
		e.Text = ""
		if len(s.overlap) < overlapWindow && e.Finish == "" && len(e.ToolCalls) == 0 {
			return nil
		}
		s.flushOverlap()
	} else if s.overlap != nil && isToken(&e) {
		s.flushOverlap()
	}
	if e.Usage != nil && s.seamed {
		// Usage describes the answer delivered: the tokens before the seam
		// plus the continuation's, whose prompt included them.
		u := *e.Usage
		u.Input = max(u.Input-s.preSeam, 0)
		u.Output += s.preSeam
		e.Usage = &u
	}
	if s.hold {
		calls := e.ToolCalls
		e.ToolCalls = nil
		for _, d := range calls {
			s.release(&d)
			if len(s.held) > 0 && s.held[len(s.held)-1].Index == d.Index {
				h := &s.held[len(s.held)-1]
				h.Arguments += d.Arguments
				if d.ID != "" {
					h.ID = d.ID
				}
				if d.Name != "" {
					h.Name = d.Name
				}
				continue
			}
			s.held = append(s.held, d)
		}
		if e.Finish != "" {
			s.release(nil)
		}
	}
	if isToken(&e) || e.Usage != nil {
		s.out = append(s.out, e)
	}
	return nil
}

// release queues every held tool call other than the one d continues, each
// whole in one event: a call is complete once the next one starts or the
// answer finishes.
func (s *Stream) release(d *llm.ToolCallDelta) {
	keep := 0
	for _, h := range s.held {
		if d != nil && h.Index == d.Index {
			s.held[keep] = h
			keep++
			continue
		}
		if h.Arguments == "" {
			h.Arguments = "{}"
		}
		s.out = append(s.out, llm.Event{ID: s.cur.id, ToolCalls: []llm.ToolCallDelta{h}})
	}
	s.held = s.held[:keep]
}

// retrace matches a restarted answer's event against what was sent and
// strips the part already delivered from e. It reports false on a
// divergence.
func (s *Stream) retrace(r *restart, e *llm.Event) bool {
	if t := e.Text; t != "" {
		rest := s.sent.Text[r.pos:]
		n := min(len(t), len(rest))
		if t[:n] != string(rest[:n]) {
			return false
		}
		r.pos += n
		e.Text = t[n:]
	}
	if r.pos < len(s.sent.Text) {
		e.Reasoning = "" // reasoning is not retraced: it was delivered once already
	}
	if len(e.ToolCalls) > 0 {
		r.acc.Add(&llm.Event{ToolCalls: e.ToolCalls})
		var keep []llm.ToolCallDelta
		for _, d := range e.ToolCalls {
			if d.Index >= len(s.sent.ToolCalls) {
				keep = append(keep, d)
			}
		}
		e.ToolCalls = keep
		// A sent call is matched once the restart moved past it.
		for r.calls < len(s.sent.ToolCalls) && r.calls < len(r.acc.ToolCalls)-1 {
			if !sameCall(s.sent.ToolCalls[r.calls], r.acc.ToolCalls[r.calls]) {
				return false
			}
			r.calls++
		}
	}
	if e.Finish != "" {
		for r.calls < len(s.sent.ToolCalls) && r.calls < len(r.acc.ToolCalls) {
			if !sameCall(s.sent.ToolCalls[r.calls], r.acc.ToolCalls[r.calls]) {
				return false
			}
			r.calls++
		}
		if r.pos < len(s.sent.Text) || r.calls < len(s.sent.ToolCalls) {
			return false
		}
	}
	return true
}

// sameCall compares two tool calls by what they do; ids differ between
// upstreams.
func sameCall(a, b llm.ToolCall) bool {
	return a.Name == b.Name && a.Arguments == b.Arguments
}

// overlapWindow is how much continuation text is held to find a repeat of
// the text before the seam.
const overlapWindow = 32

// minOverlap is the shortest repeat trimmed. Prefill continuations from
// the vendors keel knows are exact, so a short match is the answer really
// repeating itself ("wren wren"), not a repeat of the seam: trimming it
// would silently drop text (regression, keel drill). Only a long repeat is
// taken for the model restating what it was given.
const minOverlap = 16

// flushOverlap trims the longest repeat of the sent text's end from the
// start of the held continuation text, and queues the rest.
func (s *Stream) flushOverlap() {
	if s.overlap == nil {
		return
	}
	held := s.overlap
	s.overlap = nil
	sent := s.sent.Text
	for k := min(len(held), len(sent)); k >= minOverlap; k-- {
		if bytes.Equal(sent[len(sent)-k:], held[:k]) && (k == len(sent) || sent[len(sent)-k-1] == ' ') {
			held = held[k:]
			break
		}
	}
	if len(held) > 0 {
		s.out = append(s.out, llm.Event{ID: s.cur.id, Text: string(held)})
	}
}

// resume continues the answer after the current attempt broke (issue 3,
// behaviours 8 and 9).
func (s *Stream) resume(cause error) error {
	a := s.cur
	now := s.rt.now()
	s.endRecord(a.rec, now, cause)
	v := decide(cause, situation{policy: s.pol, tries: s.tries[a.slot], next: s.peekSlot() != nil, left: s.pol.Total})
	if v.upstream {
		a.slot.h.strike(now)
	}
	a.slot.h.done()
	a.stream.Close()
	a.cancel(nil)
	if isKind(cause, llm.KindCanceled) || s.ctx.Err() != nil {
		return cause
	}
	if s.peekSlot() == nil && v.retry {
		// The only target left is this one: give it one more go.
		s.plan = append(s.plan, a.slot)
	}
	if s.peekSlot() == nil {
		return brokeOff(cause, "no target is left to continue it")
	}
	// Tool calls held but not yet released are dropped: the continuation
	// produces them afresh, whole.
	s.held = s.held[:0]
	s.rt.log.Warn("stream broke mid-answer; continuing on another target", "route", s.route.Name, "target", a.slot.t.String(), "err", cause)
	if err := s.race(); err != nil {
		return brokeOff(cause, "continuing it failed: "+err.Error())
	}
	if s.cur.prefill {
		s.overlap = []byte{}
		s.seamed, s.preSeam = true, s.tokens
	} else {
		s.restart = &restart{}
		s.seamed = false
	}
	return nil
}

// brokeOff is the explicit error a client gets when its stream broke and
// could not be continued.
func brokeOff(cause error, why string) error {
	var e *llm.Error
	if errors.As(cause, &e) {
		c := *e
		c.Kind = llm.KindStream
		c.Message = "the answer broke off mid-stream and " + why + " (" + e.Error() + ")"
		return &c
	}
	return &llm.Error{Kind: llm.KindStream, Message: "the answer broke off mid-stream and " + why, Err: cause}
}
