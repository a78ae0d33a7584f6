package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// maxBufferedBody is the largest request body with a known length that
	// is written together with the head in one write; a larger one is
	// streamed after the head, and only GetBody can replay it.
	maxBufferedBody = 1 << 20
	// flushAt is how much of a chunked request body is buffered before a
	// write.
	flushAt = 64 << 10
	// maxKeptBuffer bounds the write buffer a connection keeps between
	// requests, so that one large request does not pin memory on every
	// idle connection.
	maxKeptBuffer = 64 << 10
)

// conn is one HTTP/1.1 connection. It is owned by one request at a time,
// from take or dial until its response is done; while idle it belongs to
// the Transport's pool.
type conn struct {
	t    *Transport
	addr string
	nc   net.Conn
	br   *bufio.Reader
	wbuf []byte // request scratch, kept between requests
	hbuf []byte // response head scratch, kept between requests

	// reused reports that the conn served a request before the current
	// one, so that a failure before the response may be a stale conn.
	reused bool

	// canceled holds the error of the context that closed the conn.
	canceled atomic.Pointer[error]

	// Pool state, guarded by t.mu.
	pooled bool
	idleAt time.Time
	timer  *time.Timer
}

func newConn(t *Transport, addr string, nc net.Conn) *conn {
	return &conn{t: t, addr: addr, nc: nc, br: bufio.NewReaderSize(nc, t.readBufferSize())}
}

// watch arranges for c to be closed when ctx is done. The returned stop
// function releases the watch and reports whether it did so before ctx
// fired; it is nil when ctx can never be done.
func (c *conn) watch(ctx context.Context) func() bool {
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() {
		err := ctx.Err()
		c.canceled.Store(&err)
		c.nc.Close()
	})
}

// wrap annotates a read or write failure, preferring the context's error
// when the context closed the connection.
func (c *conn) wrap(op string, err error) error {
	if p := c.canceled.Load(); p != nil {
		return fmt.Errorf("h1: %s: %w", op, *p)
	}
	return fmt.Errorf("h1: %s: %w", op, err)
}

func (c *conn) close() { c.nc.Close() }

func (c *conn) poolLocked(timeout time.Duration) {
	c.pooled = true
	c.reused = true
	if timeout < 0 {
		return
	}
	c.idleAt = time.Now()
	if c.timer == nil {
		c.timer = time.AfterFunc(timeout, func() { c.t.expire(c) })
		return
	}
	c.timer.Reset(timeout)
}

func (c *conn) unpoolLocked() {
	c.pooled = false
	if c.timer != nil {
		c.timer.Stop()
	}
}

// writeRequest writes req's head and body in as few writes as it can, and
// closes body. It returns the bytes written when the whole request fitted
// in one buffer, so that a retry can send them again; a write failure is a
// *staleError.
func (c *conn) writeRequest(req *http.Request, body io.ReadCloser, keepAlive bool) ([]byte, error) {
	defer closeBody(body)
	b, err := appendHead(c.wbuf[:0], req, keepAlive)
	if err != nil {
		return nil, err
	}
	switch {
	case body == nil:
		if m := req.Method; m == "POST" || m == "PUT" || m == "PATCH" {
			b = append(b, "Content-Length: 0\r\n"...)
		}
		b = append(b, "\r\n"...)
	case req.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n\r\n"...)
		if req.ContentLength > maxBufferedBody {
			return nil, c.streamBody(b, body, req.ContentLength)
		}
		n := len(b)
		b = slices.Grow(b, int(req.ContentLength))[:n+int(req.ContentLength)]
		if m, err := io.ReadFull(body, b[n:]); err != nil {
			return nil, bodyLengthError(req.ContentLength, int64(m), err)
		}
	default:
		// net/http treats ContentLength 0 with a body as unknown, too.
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
		var streamed bool
		if b, streamed, err = c.appendChunked(b, body); err != nil {
			return nil, err
		}
		if streamed {
			return nil, c.write(b)
		}
	}
	err = c.write(b)
	return b, err
}

// write writes b and keeps b's array as the next request's scratch if it
// is not too large.
func (c *conn) write(b []byte) error {
	_, err := c.nc.Write(b)
	if cap(b) <= maxKeptBuffer {
		c.wbuf = b[:0]
	} else {
		c.wbuf = nil
	}
	if err != nil {
		return &staleError{err: c.wrap("write request", err), write: true}
	}
	return nil
}

// streamBody writes head and then n bytes of body.
func (c *conn) streamBody(head []byte, body io.Reader, n int64) error {
	if err := c.write(head); err != nil {
		return err
	}
	m, err := io.Copy(c.nc, io.LimitReader(body, n))
	if err != nil {
		return c.wrap("write request body", err)
	}
	if m != n {
		return bodyLengthError(n, m, nil)
	}
	return nil
}

// appendChunked appends body to b in chunked encoding, writing out what
// it has whenever it holds more than flushAt bytes.
func (c *conn) appendChunked(b []byte, body io.Reader) (out []byte, streamed bool, err error) {
	const chunk = 16 << 10
	for {
		// Reserve room for the largest chunk header, read the data after
		// it, then slide the data back behind the actual header.
		const hdr = 4 + 2 // "4000\r\n"
		n := len(b)
		b = slices.Grow(b, hdr+chunk+2)[:n+hdr+chunk]
		m, rerr := body.Read(b[n+hdr:])
		if m > 0 {
			h := strconv.AppendInt(b[n:n:n+hdr], int64(m), 16)
			h = append(h, "\r\n"...)
			copy(b[n+len(h):], b[n+hdr:n+hdr+m])
			b = append(b[:n+len(h)+m], "\r\n"...)
		} else {
			b = b[:n]
		}
		if rerr == io.EOF {
			return append(b, "0\r\n\r\n"...), streamed, nil
		}
		if rerr != nil {
			return nil, false, fmt.Errorf("h1: read request body: %w", rerr)
		}
		if len(b) >= flushAt {
			if err := c.write(b); err != nil {
				return nil, false, err
			}
			b = c.wbuf[:0]
			streamed = true
		}
	}
}

func bodyLengthError(want, got int64, err error) error {
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("h1: read request body: %w", err)
	}
	return fmt.Errorf("h1: ContentLength=%d with Body length %d", want, got)
}

// appendHead appends the request line and header fields, without the
// blank line that ends them.
func appendHead(b []byte, req *http.Request, keepAlive bool) ([]byte, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	if !validToken(method) {
		return nil, fmt.Errorf("h1: invalid method %q", method)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validHost(host) {
		return nil, fmt.Errorf("h1: invalid Host %q", host)
	}
	b = append(b, method...)
	b = append(b, ' ')
	n := len(b)
	b = appendRequestURI(b, req)
	// RawQuery and Opaque are sent as they are; like net/http, refuse
	// control bytes there rather than let a URL built by hand inject a
	// header field or a second request.
	if !validRequestURI(b[n:]) {
		return nil, fmt.Errorf("h1: invalid control character in request URI %q", clip(string(b[n:])))
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	sentClose := false
	for k, vs := range req.Header {
		// Field names are case-insensitive: a "content-length" key set on
		// the map directly is the field h1 frames the body with, and must
		// not reach the wire beside it.
		ck := http.CanonicalHeaderKey(k)
		switch ck {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		case "Connection":
			sentClose = sentClose || hasToken(vs, "close")
		}
		if !validToken(k) {
			return nil, fmt.Errorf("h1: invalid header field name %q", k)
		}
		for _, v := range vs {
			if v == "" && ck == "User-Agent" {
				continue
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if (req.Close || !keepAlive) && !sentClose {
		b = append(b, "Connection: close\r\n"...)
	}
	return b, nil
}

// appendRequestURI appends req.URL.RequestURI() without building it as a
// string first.
func appendRequestURI(b []byte, req *http.Request) []byte {
	u := req.URL
	if u.Opaque != "" {
		return append(b, u.RequestURI()...)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	b = append(b, p...)
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	return b
}

// validRequestURI reports whether u holds no control bytes.
func validRequestURI(u []byte) bool {
	for _, c := range u {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendValue appends a header value, replacing CR and LF with spaces as
// net/http does, so that a value cannot inject fields.
func appendValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	n := len(b)
	b = append(b, v...)
	for i := n; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

// reqClose reports whether req asks for the connection to close after it.
func reqClose(req *http.Request) bool {
	return req.Close || hasToken(req.Header["Connection"], "close")
}
