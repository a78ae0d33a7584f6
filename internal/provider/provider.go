// Package provider holds what every vendor adapter shares: the tuned HTTP
// client, deadlines on a call, and the reading of rate-limit hints. The
// adapters themselves are its subpackages, one per wire format.
package provider

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keel-ai/keel/internal/h1"
	"github.com/keel-ai/keel/internal/llm"
)

// NewHTTPClient returns a client for one upstream: connect bounds dialing,
// and connections are pooled generously, since every request keel serves is
// an upstream request. Deadlines on headers and chunks are per call (see
// Deadline), not on the client.
//
// Plain http:// upstreams with no proxy in the way (local and LAN servers:
// Ollama, vLLM, llama.cpp, the simulator) go through h1, whose calling
// goroutine does all the work: net/http's per-connection goroutines and
// the hand-offs between them were about a fifth of keel's CPU per request
// (scripts/bench, perf). Everything else, TLS and HTTP/2 included, goes
// through net/http.
func NewHTTPClient(connect time.Duration) *http.Client {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &schemes{
		plain: &h1.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 512},
		std: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   connect,
			ExpectContinueTimeout: time.Second,
			// A streamed answer arrives in bursts of many chunks;
			// net/http's 4 KiB default would read a burst in several
			// system calls.
			ReadBufferSize: 64 << 10,
		},
	}}
}

// schemes sends plain http:// requests with no proxy through plain, and
// the rest through std.
type schemes struct {
	plain *h1.Transport
	std   *http.Transport
}

func (s *schemes) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.pick(req).RoundTrip(req)
}

func (s *schemes) pick(req *http.Request) http.RoundTripper {
	if req.URL.Scheme == "http" {
		if s.std.Proxy == nil {
			return s.plain
		}
		if proxy, err := s.std.Proxy(req); err == nil && proxy == nil {
			return s.plain
		}
	}
	return s.std
}

// CloseIdleConnections closes both transports' idle connections (called
// by http.Client.CloseIdleConnections).
func (s *schemes) CloseIdleConnections() {
	s.plain.CloseIdleConnections()
	s.std.CloseIdleConnections()
}

// Errors a Deadline cancels a call with, so that classification can tell a
// silent upstream from a client that left.
var (
	ErrHeaderTimeout = errors.New("no response headers in time")
	ErrIdleTimeout   = errors.New("no data from upstream in time")
)

// Deadline watches one upstream call: it cancels the call's context when
// headers take longer than header, or when the body goes silent for longer
// than idle. The zero durations disable each.
type Deadline struct {
	cancel context.CancelCauseFunc
	idle   time.Duration
	mu     sync.Mutex
	timer  *time.Timer
	cause  error
}

// HeaderTimeout is the header deadline of a call: d for a stream, none for
// a whole answer, whose headers come only once all of it is written (the
// router's total bounds such a call).
func HeaderTimeout(d time.Duration, stream bool) time.Duration {
	if stream {
		return d
	}
	return 0
}

// StartDeadline derives the call's context from parent and starts the
// header clock.
func StartDeadline(parent context.Context, header, idle time.Duration) (context.Context, *Deadline) {
	ctx, cancel := context.WithCancelCause(parent)
	d := &Deadline{cancel: cancel, idle: idle}
	if header > 0 {
		d.arm(header, ErrHeaderTimeout)
	}
	return ctx, d
}

func (d *Deadline) arm(after time.Duration, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cause = cause
	if d.timer == nil {
		d.timer = time.AfterFunc(after, d.fire)
		return
	}
	d.timer.Reset(after)
}

func (d *Deadline) fire() {
	d.mu.Lock()
	cause := d.cause
	d.mu.Unlock()
	d.cancel(cause)
}

// Body wraps a response body so that every read restarts the idle clock. It
// switches the deadline from headers to idle.
func (d *Deadline) Body(b io.ReadCloser) io.ReadCloser {
	if d.idle <= 0 {
		d.mu.Lock()
		if d.timer != nil {
			d.timer.Stop()
		}
		d.mu.Unlock()
		return &deadlineBody{b, d}
	}
	d.arm(d.idle, ErrIdleTimeout)
	return &deadlineBody{b, d}
}

// Stop releases the deadline and cancels the call's context.
func (d *Deadline) Stop() {
	d.mu.Lock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
	d.cancel(context.Canceled)
}

type deadlineBody struct {
	io.ReadCloser
	d *Deadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.d.idle > 0 {
		b.d.mu.Lock()
		b.d.timer.Reset(b.d.idle)
		b.d.mu.Unlock()
	}
	return n, err
}

// TransportKind classifies an error from sending a request or reading its
// body: the client leaving, a deadline, or a broken connection.
func TransportKind(ctx context.Context, err error) llm.Kind {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrHeaderTimeout), errors.Is(cause, ErrIdleTimeout),
		errors.Is(ctx.Err(), context.DeadlineExceeded):
		return llm.KindTimeout
	case ctx.Err() != nil:
		return llm.KindCanceled
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return llm.KindTimeout
	}
	return llm.KindConnect
}

// TransportError wraps a transport failure as a classified *llm.Error.
func TransportError(ctx context.Context, provider string, err error) *llm.Error {
	k := TransportKind(ctx, err)
	if k == llm.KindTimeout {
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			err = cause
		}
	}
	return &llm.Error{Kind: k, Provider: provider, Err: err}
}

// StreamError translates why a stream's body ended into what its consumer
// must know: io.EOF only for a complete answer (one that finished), and
// otherwise a classified *llm.Error — the client leaving or a deadline, a
// body cut mid-event, or one that broke. Every adapter ends its streams
// through it.
func StreamError(ctx context.Context, provider string, finished bool, err error) error {
	switch {
	case err == io.EOF && finished:
		return io.EOF
	case err == io.EOF:
		return &llm.Error{Kind: llm.KindStream, Provider: provider, Message: "the upstream stream ended before the answer finished"}
	}
	var le *llm.Error
	switch {
	case errors.As(err, &le):
		return err
	case ctx.Err() != nil:
		return TransportError(ctx, provider, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &llm.Error{Kind: llm.KindStream, Provider: provider, Message: "the upstream stream was cut", Err: err}
	}
	return &llm.Error{Kind: llm.KindStream, Provider: provider, Message: "the upstream stream broke", Err: err}
}

// MaxBody bounds a non-streamed answer read whole.
const MaxBody = 64 << 20

// Single returns a Stream of one event: a non-streamed answer.
func Single(ev *llm.Event) llm.Stream { return &single{ev: ev} }

type single struct {
	ev   *llm.Event
	done bool
}

func (s *single) Recv() (*llm.Event, error) {
	if s.done {
		return nil, io.EOF
	}
	s.done = true
	return s.ev, nil
}

func (s *single) Close() error { return nil }

// RetryAfter reads the wait an upstream asked for: retry-after-ms first,
// then Retry-After in seconds or as an HTTP date. It returns 0 when there is
// none or it is unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if d := wait(f * float64(time.Millisecond)); d > 0 {
				return d
			}
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return wait(f * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// wait converts d nanoseconds to a Duration. Zero, negative, NaN and values
// too large for a Duration (Inf, 1e300, which would convert to a negative
// Duration) are no wait.
func wait(d float64) time.Duration {
	if d > 0 && d < math.MaxInt64 {
		return time.Duration(d)
	}
	return 0
}

// StatusKind is the default classification of an HTTP error status, for
// adapters to refine with the vendor's error codes.
func StatusKind(status int) llm.Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return llm.KindRateLimit
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusPaymentRequired:
		return llm.KindAuth
	case status == http.StatusNotFound:
		return llm.KindNotFound
	case status == http.StatusRequestTimeout:
		return llm.KindTimeout
	case status == http.StatusServiceUnavailable, status == 529:
		return llm.KindOverloaded
	case status >= 500, status == http.StatusConflict:
		return llm.KindServer
	case status >= 400:
		return llm.KindInvalid
	}
	return llm.KindUnknown
}
