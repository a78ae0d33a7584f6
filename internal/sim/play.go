package sim

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// encoder renders replies and errors in one wire format. It only appends
// bytes; the engine decides when they are written, delayed or cut off. One
// encoder serves one request.
type encoder interface {
	// contentType is the Content-Type of a successful response.
	contentType(stream bool) string
	// appendError appends the body of an error response.
	appendError(b []byte, fl *failure) []byte
	// The stream events, in order: start; one piece per token, with a
	// garbage event possibly in between; finish (with usage where the
	// format sends it); done (the end marker) unless the fault is no_done.
	appendStart(b []byte, rep *reply) []byte
	appendPiece(b []byte, rep *reply, piece string) []byte
	appendGarbage(b []byte) []byte
	appendFinish(b []byte, rep *reply, u usage) []byte
	appendDone(b []byte) []byte
	// appendWhole appends a non-streaming response body.
	appendWhole(b []byte, rep *reply, u usage) []byte
}

// refuser is implemented by encoders whose format refuses a prompt with a
// successful response, not an error status: Gemini's promptFeedback with a
// blockReason. A content_filter fault is then that response.
type refuser interface {
	appendRefusal(b []byte, stream bool) []byte
}

// usage is the token accounting of a reply.
type usage struct {
	prompt, completion int
}

// run is one attempt in flight: it applies the profile's latency and the
// chosen fault to a reply, writing through an encoder. A run belongs to one
// handler goroutine.
type run struct {
	s   *Server
	ctx context.Context
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc encoder
	rec Attempt
	seq uint64
	gen uint64
	buf []byte

	timer *time.Timer
	// dirty is set when bytes were written since the last flush.
	dirty bool
	// broken is set when a write or flush failed: the client is gone.
	broken bool
	// ended is set once the attempt is recorded.
	ended bool
}

// serve runs one chat attempt for model with the decoded request req.
// invalid, if set, is a request error found while decoding: the attempt is
// logged and answered with it at once, without latency or faults.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, enc encoder, arrived time.Time, model string, req *request, invalid *failure) {
	prof, pname, found := s.profile(model, r.Header.Get("X-Sim-Profile"))
	rn := run{
		s:   s,
		ctx: r.Context(),
		w:   w,
		rc:  http.NewResponseController(w),
		enc: enc,
		// Room for any one event, so writing a stream reuses one buffer.
		buf: make([]byte, 0, 2048),
		rec: Attempt{
			Model:       model,
			Profile:     pname,
			Stream:      req.stream,
			Arrived:     arrived,
			RequestID:   r.Header.Get("X-Request-Id"),
			KeelAttempt: r.Header.Get("X-Keel-Attempt"),
		},
	}
	first, start := s.arrive(&rn)
	defer rn.end()

	switch {
	case !found:
		rn.fail(&failure{status: 400, kind: failInvalid, param: "x-sim-profile",
			message: "unknown simulator profile " + strconv.Quote(pname)})
		return
	case invalid != nil:
		rn.fail(invalid)
		return
	case prof.RejectPrefill && len(req.messages) > 0 && req.messages[len(req.messages)-1].role == roleAssistant:
		rn.fail(&failure{status: 400, kind: failPrefill, param: "messages"})
		return
	}

	n := rn.rec.Number
	var draws, lat prng
	draws.seed(s.cfg.Seed, model, n, 1)
	lat.seed(s.cfg.Seed, model, n, 0)
	f := pick(prof.Faults, n, &draws, arrived, first, start)
	headers := prof.Headers.sample(&lat)
	ttft := prof.TTFT.sample(&lat)
	var per time.Duration
	if tps := prof.TPS.sample(&lat); tps > 0 {
		per = time.Duration(float64(time.Second) / tps)
	}

	kind := FaultKind("")
	if f != nil {
		kind = f.Kind
		rn.rec.Fault = f.name()
	}
	if kind == FaultHang {
		<-rn.ctx.Done()
		return
	}
	if !rn.wait(headers) {
		return
	}
	if kind == FaultReset {
		rn.reset()
		return
	}
	if f != nil {
		if fl, ok := failureOf(f); ok {
			rn.fail(&fl)
			return
		}
	}
	rep := compose(req, prof)
	rep.attempt = mix(uint64(s.cfg.Seed) ^ hashString(0, model) ^ uint64(n)<<32)
	if req.stream {
		rn.stream(&rep, f, ttft, per)
	} else {
		rn.whole(&rep, f, ttft, per)
	}
}

// stream sends rep as a stream: headers, then after ttft the start event
// and the first token, then a token every per.
func (rn *run) stream(rep *reply, f *Fault, ttft, per time.Duration) {
	rn.header(200, rn.enc.contentType(true))
	if !rn.wait(ttft) {
		return
	}
	rn.emit(rn.enc.appendStart(rn.buf[:0], rep))
	n := len(rep.pieces)
	at := -1 // the token index before which f strikes
	if f != nil && (f.Kind == FaultCut || f.Kind == FaultStall || f.Kind == FaultMalformed) {
		at = min(f.After, n)
	}
	for i := 0; i <= n; i++ {
		if i == at {
			switch f.Kind {
			case FaultCut:
				rn.abort()
			case FaultStall:
				if !rn.stall(f.For) {
					return
				}
			case FaultMalformed:
				rn.emit(rn.enc.appendGarbage(rn.buf[:0]))
			}
		}
		if i == n {
			break
		}
		if i > 0 && !rn.wait(per) {
			return
		}
		rn.emit(rn.enc.appendPiece(rn.buf[:0], rep, rep.pieces[i]))
		if rn.broken {
			return
		}
		rn.rec.Tokens++
		if i == 0 {
			rn.rec.FirstToken = rn.s.now()
		}
	}
	rn.emit(rn.enc.appendFinish(rn.buf[:0], rep, usage{rep.promptTokens, rn.rec.Tokens}))
	if f == nil || f.Kind != FaultNoDone {
		rn.emit(rn.enc.appendDone(rn.buf[:0]))
		rn.rec.Completed = !rn.broken
	}
	// No flush: net/http flushes the rest with the body's terminating
	// chunk when the handler returns, in one write. A flush here cost the
	// client a wake-up for the terminator alone (scripts/bench: about 50 µs
	// of keel's added p50, since its upstream calls stream).
}

// whole sends rep as one response body once the whole answer would have
// been generated. A cut sends half the body and aborts; malformed sends a
// body that is not valid JSON; a stall adds its pause.
func (rn *run) whole(rep *reply, f *Fault, ttft, per time.Duration) {
	n := len(rep.pieces)
	if n > 0 {
		ttft += per * time.Duration(n-1)
	}
	if !rn.wait(ttft) {
		return
	}
	if f != nil && f.Kind == FaultStall && !rn.stall(f.For) {
		return
	}
	body := rn.enc.appendWhole(rn.buf[:0], rep, usage{rep.promptTokens, n})
	rn.header(200, rn.enc.contentType(false))
	rn.rec.FirstToken = rn.rec.Headers
	switch {
	case f != nil && f.Kind == FaultCut:
		rn.emit(body[:len(body)/2])
		rn.abort()
	case f != nil && f.Kind == FaultMalformed:
		rn.emit(body[:len(body)/2])
		return
	}
	rn.emit(body)
	rn.rec.Tokens = n
	rn.rec.Completed = !rn.broken
}

// fail sends an error response.
func (rn *run) fail(fl *failure) {
	if r, ok := rn.enc.(refuser); ok && fl.kind == failContentFilter {
		rn.header(200, rn.enc.contentType(rn.rec.Stream))
		rn.emit(r.appendRefusal(rn.buf[:0], rn.rec.Stream))
		return
	}
	h := rn.w.Header()
	if fl.retryAfter > 0 {
		if fl.retryAfterDate {
			h.Set("Retry-After", rn.s.now().Add(fl.retryAfter).UTC().Format(http.TimeFormat))
		} else {
			secs := int64(math.Ceil(fl.retryAfter.Seconds()))
			h.Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	}
	if fl.retryAfterMS > 0 {
		h.Set("Retry-After-Ms", strconv.Itoa(fl.retryAfterMS))
	}
	if fl.shouldRetry != nil {
		h.Set("X-Should-Retry", strconv.FormatBool(*fl.shouldRetry))
	}
	rn.header(fl.status, "application/json")
	rn.emit(rn.enc.appendError(rn.buf[:0], fl))
}

func (rn *run) header(status int, contentType string) {
	h := rn.w.Header()
	h.Set("Content-Type", contentType)
	if status == 200 && contentType != "application/json" {
		h.Set("Cache-Control", "no-cache")
	}
	rn.w.WriteHeader(status)
	rn.rec.Status = status
	rn.rec.Headers = rn.s.now()
	rn.dirty = true
}

// emit writes b. Events are flushed before every pause (see wait) and at
// the end, not one by one: when nothing waits between two events, as with
// sim-zero, a flush between them would only cost a syscall, and the bytes
// reach the client no later.
func (rn *run) emit(b []byte) {
	rn.buf = b[:0]
	if rn.broken {
		return
	}
	if _, err := rn.w.Write(b); err != nil {
		rn.broken = true
	}
	rn.dirty = true
}

func (rn *run) flush() {
	if !rn.dirty || rn.broken {
		return
	}
	rn.dirty = false
	if err := rn.rc.Flush(); err != nil {
		rn.broken = true
	}
}

// wait flushes what was written and pauses for d. It returns false if the
// client went away meanwhile.
func (rn *run) wait(d time.Duration) bool {
	if rn.broken {
		return false
	}
	if d <= 0 {
		return true
	}
	rn.flush()
	if rn.timer == nil {
		rn.timer = time.NewTimer(d)
	} else {
		rn.timer.Reset(d)
	}
	select {
	case <-rn.timer.C:
		return !rn.broken
	case <-rn.ctx.Done():
		return false
	}
}

// stall pauses for d, or until the client goes away if d is zero.
func (rn *run) stall(d time.Duration) bool {
	if d > 0 {
		return rn.wait(d)
	}
	rn.flush()
	<-rn.ctx.Done()
	return false
}

// abort ends the response abruptly after flushing what was written: the
// server closes the connection without terminating the chunked body, so
// the client reads an unexpected EOF.
func (rn *run) abort() {
	rn.flush()
	panic(http.ErrAbortHandler)
}

// reset closes the connection before any response, with an RST where the
// connection is TCP. Where the connection cannot be hijacked (HTTP/2), it
// aborts the stream instead.
func (rn *run) reset() {
	conn, _, err := rn.rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	// Record first, so whoever sees the reset also sees the attempt.
	rn.end()
	_ = conn.Close()
}

// end records the attempt, once. It runs deferred, so it also records
// attempts that abort by panicking, before net/http closes the connection.
func (rn *run) end() {
	if rn.ended {
		return
	}
	rn.ended = true
	if rn.timer != nil {
		rn.timer.Stop()
	}
	rn.rec.Ended = rn.s.now()
	if !rn.rec.Completed && (rn.broken || rn.ctx.Err() != nil) {
		rn.rec.Canceled = true
	}
	rn.s.finish(rn.seq, rn.gen, &rn.rec)
}
