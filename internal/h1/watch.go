package h1

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClientGone is the cause of a request context canceled because the
// client closed its connection.
var ErrClientGone = errors.New("h1: client closed the connection")

// watcher watches a connection for the client going away while a handler
// runs, and cancels the request's context when it does. net/http starts a
// reader goroutine for this on every request; the watch starts only once
// the request body has been read and the handler has run for WatchAfter,
// so that a quick request costs a timer reset and no goroutine. A client
// that leaves a stream is found sooner anyway, by the next write failing.
type watcher struct {
	c *serverConn // set once, with the connection

	mu      sync.Mutex
	cancelf context.CancelCauseFunc // nil between requests
	timer   *time.Timer
	armed   bool
	running bool
	done    chan struct{} // closed when a running watch returns
	gone    bool          // the watch saw the connection end

	// stolen reports that the watch read b, the first byte of a pipelined
	// request, which connReader hands back. Only the connection's
	// goroutine reads it, after end.
	stolen bool
	b      [1]byte
}

// begin starts a request; arm starts the watch's timer.
func (w *watcher) begin(cancel context.CancelCauseFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancelf = cancel
}

// cancel cancels the current request, if any, with err.
func (w *watcher) cancel(err error) {
	w.mu.Lock()
	f := w.cancelf
	w.mu.Unlock()
	if f != nil {
		f(err)
	}
}

// arm starts the timer, once the request body has been read to its end.
func (w *watcher) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelf == nil || w.stolen || w.c.br.Buffered() > 0 {
		// The handler has returned (drain read the body's end), or a
		// pipelined request is waiting: the client is there.
		return
	}
	w.armed = true
	d := w.c.s.watchAfter()
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.run)
		return
	}
	w.timer.Reset(d)
}

// run is the watch: a read that ends with the connection, or with a byte
// of a pipelined request, or when end interrupts it.
func (w *watcher) run() {
	w.mu.Lock()
	if !w.armed || w.running {
		w.mu.Unlock()
		return
	}
	w.armed, w.running = false, true
	w.done = make(chan struct{})
	c, cancel, done := w.c, w.cancelf, w.done
	w.mu.Unlock()

	n, err := c.nc.Read(w.b[:])
	w.mu.Lock()
	w.running = false
	switch {
	case n == 1:
		w.stolen = true
	case err != nil && !isTimeout(err):
		w.gone = true
		cancel(ErrClientGone)
	}
	stolen, gone := w.stolen, w.gone
	w.mu.Unlock()
	close(done)
	if h := c.s.watchHook; h != nil {
		h(stolen, gone)
	}
}

// end stops the watch when the handler returns, and reports whether the
// connection is still worth using.
func (w *watcher) end() bool {
	w.mu.Lock()
	w.armed, w.cancelf = false, nil
	if w.timer != nil {
		w.timer.Stop()
	}
	running, done := w.running, w.done
	w.mu.Unlock()
	if running {
		w.c.nc.SetReadDeadline(time.Unix(1, 0)) // interrupts the read
		<-done
		w.c.nc.SetReadDeadline(time.Time{})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.gone
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
