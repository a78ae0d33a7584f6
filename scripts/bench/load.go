package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// target is one endpoint under test: the simulator itself, or keel in
// front of it. Each has its own connection pool, so neither warms the
// other's.
type target struct {
	name   string
	url    string // .../v1/chat/completions
	client *http.Client
	dials  atomic.Int64 // connections opened: with keep-alive, about one per worker
}

func newTarget(name, url string, conns int) *target {
	t := &target{name: name, url: url}
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // loopback only, whatever the environment says
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			t.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	t.client = &http.Client{Transport: tr}
	return t
}

func (t *target) close() { t.client.CloseIdleConnections() }

// call is one kind of request and what its complete answer looks like.
type call struct {
	model  string
	stream bool
	tokens int    // content chunks a stream must carry
	body   []byte // the request
	// want is the answer's text. A non-streaming body must contain it as a
	// JSON string; a stream's content deltas must add up to it exactly.
	want     string
	wantJSON []byte
}

const prompt = "Write a short line about the sea."

func newCall(model string, stream bool, tokens int) *call {
	body, _ := json.Marshal(map[string]any{
		"model":    model,
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	return &call{model: model, stream: stream, tokens: tokens, body: body}
}

// learn fetches the canonical answer for c's model from t (the simulator,
// non-streaming), so that every later answer can be checked against it.
func (c *call) learn(ctx context.Context, t *target) error {
	body, _ := json.Marshal(map[string]any{
		"model":    c.model,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", c.model, resp.StatusCode, tail(b, 300))
	}
	var r struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Choices) != 1 || r.Choices[0].Message.Content == "" {
		return fmt.Errorf("%s: unexpected answer (%v): %s", c.model, err, tail(b, 300))
	}
	c.want = r.Choices[0].Message.Content
	q, _ := json.Marshal(c.want)
	c.wantJSON = q
	return nil
}

// worker holds one sender's reusable buffers. It is not safe for
// concurrent use.
type worker struct {
	buf  bytes.Buffer
	br   *bufio.Reader
	text []byte
}

func newWorker() *worker { return &worker{br: bufio.NewReaderSize(nil, 64<<10)} }

var (
	dataPrefix   = []byte("data:")
	donePayload  = []byte("[DONE]")
	errorPrefix  = []byte(`{"error"`)
	contentKey   = []byte(`"content":"`)
	finishedStop = []byte(`"finish_reason":"stop"`)
)

// do sends c to t and reads and checks the whole answer. first is when the
// first content chunk of a stream had been read; end is when the answer
// was complete (the body read, or a stream's [DONE]).
func (w *worker) do(ctx context.Context, t *target, c *call) (first, end time.Time, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(c.body))
	if err != nil {
		return first, end, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return first, end, err
	}
	defer resp.Body.Close()
	if !c.stream {
		w.buf.Reset()
		_, err = w.buf.ReadFrom(resp.Body)
		end = time.Now()
		switch {
		case err != nil:
			return first, end, fmt.Errorf("read body: %w", err)
		case resp.StatusCode != http.StatusOK:
			return first, end, fmt.Errorf("status %d: %s", resp.StatusCode, tail(w.buf.Bytes(), 200))
		case !bytes.Contains(w.buf.Bytes(), c.wantJSON):
			return first, end, fmt.Errorf("incomplete answer: %s", tail(w.buf.Bytes(), 200))
		}
		return first, end, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return first, end, fmt.Errorf("status %d: %s", resp.StatusCode, tail(b, 200))
	}
	w.br.Reset(resp.Body)
	w.text = w.text[:0]
	var chunks int
	var done, stopped bool
	for {
		line, rerr := w.br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			return first, end, errors.New("SSE line over 64 KiB")
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 && line[0] != ':' {
			p, ok := bytes.CutPrefix(line, dataPrefix)
			if !ok {
				continue // event:, id: and retry: fields carry no content
			}
			p = bytes.TrimPrefix(p, []byte(" "))
			switch {
			case done:
				return first, end, fmt.Errorf("data after [DONE]: %.200s", p)
			case bytes.Equal(p, donePayload):
				done, end = true, time.Now()
			case bytes.HasPrefix(p, errorPrefix):
				return first, end, fmt.Errorf("in-band error: %.300s", p)
			default:
				if s := content(p); len(s) > 0 {
					if chunks == 0 {
						first = time.Now()
					}
					chunks++
					w.text = append(w.text, s...)
				}
				if bytes.Contains(p, finishedStop) {
					stopped = true
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return first, end, fmt.Errorf("read stream: %w", rerr)
		}
	}
	switch {
	case !done:
		return first, end, fmt.Errorf("stream ended without [DONE] after %d chunks", chunks)
	case !stopped:
		return first, end, errors.New(`stream had no finish_reason "stop"`)
	case chunks != c.tokens:
		return first, end, fmt.Errorf("stream had %d content chunks, want %d", chunks, c.tokens)
	case string(w.text) != c.want:
		return first, end, fmt.Errorf("stream text %q, want %q", w.text, c.want)
	}
	return first, end, nil
}

// content is the (still JSON-escaped) value of the first "content" string
// in an SSE chunk, or nil. The role chunk's "" and the finish chunk's
// empty delta both give nil.
func content(p []byte) []byte {
	i := bytes.Index(p, contentKey)
	if i < 0 {
		return nil
	}
	s := p[i+len(contentKey):]
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return s[:j]
		}
	}
	return nil
}

// result is what one load run against one target measured. Latencies are
// of successful requests only.
type result struct {
	lat     []time.Duration // open loop: from the scheduled time; else from the send
	svc     []time.Duration // open loop: from the actual send (service time)
	slip    []time.Duration // open loop: actual send minus scheduled time
	ttft    []time.Duration // streams: send to first content chunk
	errs    int
	errMsg  string        // the first error
	elapsed time.Duration // measured wall time (closed loop: the fixed duration)
	late    int           // closed loop: completions after the deadline, not counted
	dials   int64         // connections the client opened
	// interleaved: the run alternated targets, so elapsed is the pair's
	// wall time and gives no rate.
	interleaved bool
	cpu         cpuUse
}

// cpuUse is the CPU time each process spent during a run; others is what
// every other process on the machine used, as far as /proc/stat's tick
// sampling can tell.
type cpuUse struct{ keel, sim, bench, others time.Duration }

func (r *result) add(o *result) {
	r.lat = append(r.lat, o.lat...)
	r.svc = append(r.svc, o.svc...)
	r.slip = append(r.slip, o.slip...)
	r.ttft = append(r.ttft, o.ttft...)
	if r.errMsg == "" {
		r.errMsg = o.errMsg
	}
	r.errs += o.errs
	r.elapsed += o.elapsed
	r.late += o.late
	r.dials += o.dials
	r.interleaved = r.interleaved || o.interleaved
	r.cpu.keel += o.cpu.keel
	r.cpu.sim += o.cpu.sim
	r.cpu.bench += o.cpu.bench
	r.cpu.others += o.cpu.others
}

// errLog keeps an error count and the first message, for many goroutines.
type errLog struct {
	n   atomic.Int64
	mu  sync.Mutex
	msg string
}

func (e *errLog) record(t *target, err error) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.msg = t.name + ": " + err.Error()
		e.mu.Unlock()
	}
}

func (e *errLog) into(r *result) {
	r.errs = int(e.n.Load())
	e.mu.Lock()
	r.errMsg = e.msg
	e.mu.Unlock()
}

// openLoop sends c to t at a constant rate for d, wrk2-style: request i is
// due at start + i/rate whatever happened before it, a scheduler goroutine
// hands it to a pool of workers, and its latency counts from when it was
// due, not from when a worker got round to sending it. A stall of the
// server (or of the client) is so charged to every request it held up,
// which a closed loop would silently omit (coordinated omission). If every
// worker is busy, due requests queue and their wait counts too.
func openLoop(ctx context.Context, t *target, c *call, rate int, d time.Duration, workers int) *result {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n) // room for all: the scheduler never blocks
	lat := make([]time.Duration, n)
	svc := make([]time.Duration, n)
	slip := make([]time.Duration, n)
	rctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	var el errLog
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := newWorker()
			for j := range jobs {
				sent := time.Now()
				_, end, err := w.do(rctx, t, c)
				if err != nil {
					el.record(t, err)
					lat[j.i] = -1
					continue
				}
				lat[j.i] = end.Sub(j.due)
				svc[j.i] = end.Sub(sent)
				slip[j.i] = sent.Sub(j.due)
			}
		})
	}
	start := time.Now().Add(interval)
	sent := 0
	sched := make(chan struct{})
	go func() {
		defer close(sched)
		defer close(jobs)
		defer preciseSleeper()()
		for i := range n {
			due := start.Add(time.Duration(i) * interval)
			sleepUntil(due)
			if rctx.Err() != nil {
				return
			}
			jobs <- job{i, due}
			sent++
		}
	}()
	<-sched
	wg.Wait()
	r := &result{elapsed: time.Since(start)}
	el.into(r)
	for i := range sent {
		if lat[i] >= 0 {
			r.lat = append(r.lat, lat[i])
			r.svc = append(r.svc, svc[i])
			r.slip = append(r.slip, slip[i])
		}
	}
	r.errs += n - sent
	return r
}

// preciseSleeper dedicates the calling goroutine's OS thread to
// sleepUntil, with 1 µs timer slack, until the returned func is called.
//
// Go's timers wake an otherwise idle program through the netpoller, whose
// epoll timeout has millisecond resolution: at 1,000 req/s a time.Sleep
// scheduler sends half a millisecond late on median, which would swamp the
// quarter-millisecond being measured. A nanosleep on a thread of its own
// wakes within tens of microseconds and burns no CPU.
//
// The thread is handed back rather than left to exit with the goroutine:
// the children's Pdeathsig fires when the thread that forked them exits,
// and that may be this one.
func preciseSleeper() (release func()) {
	const prSetTimerslack = 29
	runtime.LockOSThread()
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1000, 0)
	return func() {
		syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 0, 0) // 0 = the default again
		runtime.UnlockOSThread()
	}
}

// sleepUntil blocks the thread until t (see preciseSleeper).
func sleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err != nil && err != syscall.EINTR {
			time.Sleep(d)
			return
		}
	}
}

// closedLoop runs workers senders that each send c to t back to back for
// d. Only answers complete by the deadline count; those in flight then are
// finished (to leave the connections clean) but not counted.
func closedLoop(ctx context.Context, t *target, c *call, workers int, d time.Duration) *result {
	rctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	var (
		el   errLog
		mu   sync.Mutex
		wg   sync.WaitGroup
		r    = &result{elapsed: d}
		late atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			w := newWorker()
			var lat, ttft []time.Duration
			for rctx.Err() == nil {
				sent := time.Now()
				if !sent.Before(deadline) {
					break
				}
				first, end, err := w.do(rctx, t, c)
				if err != nil {
					el.record(t, err)
					continue
				}
				if end.After(deadline) {
					late.Add(1)
					break
				}
				lat = append(lat, end.Sub(sent))
				if c.stream {
					ttft = append(ttft, first.Sub(sent))
				}
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.ttft = append(r.ttft, ttft...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el.into(r)
	r.late = int(late.Load())
	return r
}

// sequential sends c n times to each target, one request at a time,
// alternating the two in ABBA order so that drift hits both alike.
func sequential(ctx context.Context, ts [2]*target, c *call, n int) [2]*result {
	rctx, cancel := context.WithTimeout(ctx, time.Duration(n)*time.Second+30*time.Second)
	defer cancel()
	rs := [2]*result{{}, {}}
	var els [2]errLog
	w := newWorker()
	for i := range n {
		for k := range 2 {
			j := k
			if i%2 == 1 {
				j = 1 - k
			}
			if rctx.Err() != nil {
				break
			}
			sent := time.Now()
			first, end, err := w.do(rctx, ts[j], c)
			if err != nil {
				els[j].record(ts[j], err)
				continue
			}
			rs[j].lat = append(rs[j].lat, end.Sub(sent))
			rs[j].ttft = append(rs[j].ttft, first.Sub(sent))
		}
	}
	for j := range 2 {
		els[j].into(rs[j])
	}
	return rs
}
