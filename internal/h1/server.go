package h1

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the zero values of Server's fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultWatchAfter        = 50 * time.Millisecond
)

// Server serves HTTP/1.1 over plain TCP to an http.Handler, one goroutine
// per connection; see the package doc for the contract. Set its fields
// before Serve; a Server must not be copied after first use.
type Server struct {
	// Handler answers every request. It must not be nil.
	Handler http.Handler

	// ReadHeaderTimeout bounds reading a request's head once its first
	// byte has arrived, and a new connection's wait for that byte. If
	// zero, DefaultReadHeaderTimeout is used.
	ReadHeaderTimeout time.Duration

	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. If zero, DefaultIdleTimeout is used.
	IdleTimeout time.Duration

	// WatchAfter is how long a handler may run, once the request body has
	// been read, before the server watches the connection for the client
	// going away. If zero, DefaultWatchAfter is used.
	WatchAfter time.Duration

	// Log receives handler panics and accept errors. If nil, they are
	// dropped.
	Log *slog.Logger

	// watchHook, for tests, is called when a watch ends.
	watchHook func(stolen, gone bool)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	drained   chan struct{} // closed when the last conn leaves during Shutdown
	shutdown  atomic.Bool
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, when it returns http.ErrServerClosed. It closes
// ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.addListener(ln) {
		return http.ErrServerClosed
	}
	defer s.removeListener(ln)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			// Like net/http: out of file descriptors or a timeout is
			// worth waiting out rather than giving up serving.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newServerConn(s, nc)
		if !s.addConn(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish and their connections to close, or for
// ctx, whose error it then returns. Like net/http's, it does not cancel
// the requests in flight; Close does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	// A connection between requests closes here; one in a request closes
	// itself when the request is done. Poll, since a connection may go
	// idle at any moment and net/http does the same.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-drained:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once, which cancels
// the requests in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.state.Store(connClosed)
		c.nc.Close()
		// Closing the conn alone reaches a handler only through a running
		// watch or its next write.
		c.watch.cancel(http.ErrServerClosed)
	}
	return nil
}

func (s *Server) addListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) removeListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) addConn(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[*serverConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) removeConn(c *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
}

func (s *Server) headerTimeout() time.Duration {
	return cmp.Or(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
}

func (s *Server) idleTimeout() time.Duration { return cmp.Or(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) watchAfter() time.Duration  { return cmp.Or(s.WatchAfter, DefaultWatchAfter) }

func (s *Server) warn(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Warn(msg, args...)
	}
}
