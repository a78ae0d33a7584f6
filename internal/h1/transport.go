package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Defaults for the zero values of Transport's fields.
const (
	DefaultMaxIdleConnsPerHost = 64
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultReadBufferSize      = 64 << 10
)

// Transport is an HTTP/1.1 client for http:// URLs whose calling goroutine
// does all the work; see the package doc for the contract.
//
// The zero value is ready to use. A Transport is safe for concurrent use
// and must not be copied after first use. Change its fields only before
// the first request.
type Transport struct {
	// DialContext opens a connection to addr ("host:port", port 80 if the
	// URL has none); network is always "tcp". It must return promptly once
	// ctx is done. If nil, a zero net.Dialer is used.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// MaxIdleConnsPerHost bounds the keep-alive connections kept per
	// host:port. If zero, DefaultMaxIdleConnsPerHost is used. Negative
	// disables keep-alive: every request asks for Connection: close.
	MaxIdleConnsPerHost int

	// IdleConnTimeout is how long a connection may sit idle in the pool
	// before it is closed. If zero, DefaultIdleConnTimeout is used.
	// Negative keeps idle connections until CloseIdleConnections.
	IdleConnTimeout time.Duration

	// ReadBufferSize is the size of each connection's read buffer, which
	// response bodies are read through. If zero or negative,
	// DefaultReadBufferSize is used.
	ReadBufferSize int

	dialer net.Dialer

	mu   sync.Mutex
	idle map[string]*idleList // by dial address; guarded by mu
}

var _ http.RoundTripper = (*Transport)(nil)

// idleList is one host's idle connections, most recently used last.
type idleList struct {
	conns []*conn
}

// staleError marks a failure on a connection before any byte of the
// response arrived: on a reused connection, most likely the server closed
// it while idle, so a fresh connection may cure it.
type staleError struct {
	err   error
	write bool // the request could not be written
}

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// RoundTrip sends req and returns its response, whose Body the caller must
// close. It implements http.RoundTripper: a non-2xx status is not an error,
// and req.Body is always closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req.Body)
		return nil, errors.New("h1: nil Request.URL")
	}
	if req.URL.Scheme != "http" {
		closeBody(req.Body)
		return nil, fmt.Errorf("h1: unsupported protocol scheme %q", req.URL.Scheme)
	}
	if req.URL.Host == "" {
		closeBody(req.Body)
		return nil, errors.New("h1: no Host in request URL")
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req.Body)
		return nil, fmt.Errorf("h1: %w", err)
	}
	addr := dialAddr(req)

	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		body = req.Body
	}
	// replay is the whole request as written by the first attempt, when it
	// fitted in one buffer; a retry writes it again without GetBody.
	var replay []byte
	for attempt := 0; ; attempt++ {
		c, err := t.conn(ctx, addr, attempt > 0)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		stop := c.watch(ctx)
		if replay != nil {
			err = c.write(replay)
		} else {
			replay, err = c.writeRequest(req, body, t.keepAlive())
			body = nil // writeRequest closed it
		}
		if err == nil {
			var resp *http.Response
			resp, err = c.readResponse(req, stop)
			if err == nil {
				return resp, nil
			}
		}
		c.close()
		if stop != nil {
			stop()
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("h1: %w", err)
		}
		var stale *staleError
		if attempt > 0 || !c.reused || !errors.As(err, &stale) || !stale.write && !idempotent(req) {
			return nil, err
		}
		// Like net/http, take a failure on a reused connection before any
		// byte of the response for the server having closed it, and try
		// once more on a fresh one: when the request could not be written,
		// or when it was but is safe to repeat (a POST the upstream may
		// have received is not sent twice). The request is sent again from
		// the buffer it was written from, or else from GetBody.
		if replay == nil {
			if req.GetBody == nil {
				return nil, err
			}
			nb, gerr := req.GetBody()
			if gerr != nil {
				return nil, fmt.Errorf("h1: rewind request body: %w", gerr)
			}
			body = nb
		}
	}
}

// CloseIdleConnections closes the connections waiting in the pool. It
// does not touch connections in use.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*conn
	for _, l := range t.idle {
		for i, c := range l.conns {
			c.unpoolLocked()
			all = append(all, c)
			l.conns[i] = nil
		}
		l.conns = l.conns[:0]
	}
	t.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

func (t *Transport) keepAlive() bool { return t.MaxIdleConnsPerHost >= 0 }

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost == 0 {
		return DefaultMaxIdleConnsPerHost
	}
	return t.MaxIdleConnsPerHost
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout == 0 {
		return DefaultIdleConnTimeout
	}
	return t.IdleConnTimeout
}

func (t *Transport) readBufferSize() int {
	if t.ReadBufferSize <= 0 {
		return DefaultReadBufferSize
	}
	return t.ReadBufferSize
}

// conn returns an idle connection to addr or dials a new one; fresh
// skips the pool, whose other conns may be as stale as the one that just
// failed.
func (t *Transport) conn(ctx context.Context, addr string, fresh bool) (*conn, error) {
	if !fresh {
		if c := t.take(addr); c != nil {
			return c, nil
		}
	}
	var nc net.Conn
	var err error
	if t.DialContext != nil {
		nc, err = t.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = t.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("h1: dial %s: %w", addr, cerr)
		}
		return nil, fmt.Errorf("h1: dial %s: %w", addr, err)
	}
	return newConn(t, addr, nc), nil
}

// take removes the most recently used idle connection to addr that the
// server has not closed from the pool, or returns nil. Closed ones are
// dropped.
func (t *Transport) take(addr string) *conn {
	for {
		c := t.pop(addr)
		if c == nil || c.alive() {
			return c
		}
		c.close()
	}
}

// pop removes the most recently used idle connection to addr.
func (t *Transport) pop(addr string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[addr]
	if l == nil || len(l.conns) == 0 {
		return nil
	}
	n := len(l.conns) - 1
	c := l.conns[n]
	l.conns[n] = nil
	l.conns = l.conns[:n]
	c.unpoolLocked()
	return c
}

// idempotent reports whether req may be sent twice, by net/http's rule.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	if !ok {
		_, ok = req.Header["X-Idempotency-Key"]
	}
	return ok
}

// put returns c to the pool, or closes it if the pool is full or c holds
// bytes nobody asked for.
func (t *Transport) put(c *conn) {
	if c.br.Buffered() > 0 || !t.keepAlive() {
		c.close()
		return
	}
	t.mu.Lock()
	l := t.idle[c.addr]
	if l == nil {
		if t.idle == nil {
			t.idle = make(map[string]*idleList)
		}
		l = &idleList{}
		t.idle[c.addr] = l
	}
	if len(l.conns) >= t.maxIdle() {
		t.mu.Unlock()
		c.close()
		return
	}
	l.conns = append(l.conns, c)
	c.poolLocked(t.idleTimeout())
	t.mu.Unlock()
}

// expire closes c if it is still idle and has been for the timeout.
func (t *Transport) expire(c *conn) {
	t.mu.Lock()
	timeout := t.idleTimeout()
	if !c.pooled || timeout < 0 || time.Since(c.idleAt) < timeout {
		t.mu.Unlock()
		return
	}
	l := t.idle[c.addr]
	if i := slices.Index(l.conns, c); i >= 0 {
		l.conns = slices.Delete(l.conns, i, i+1)
	}
	c.unpoolLocked()
	t.mu.Unlock()
	c.close()
}

// dialAddr returns req's host:port, adding port 80 when the URL has none.
func dialAddr(req *http.Request) string {
	u := req.URL
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}
