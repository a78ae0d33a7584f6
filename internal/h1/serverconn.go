package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// maxDiscard is how much of a request body the handler left unread
	// is read and dropped to keep the connection; past it the conn closes.
	maxDiscard = 256 << 10
	// maxKeptServerBuffer bounds each scratch buffer a connection keeps
	// between requests. As large as a burst may be (maxHeld): a stream's
	// burst from a fast upstream is often over 16 KiB, and making the
	// buffers anew for every stream was half the bytes keel allocated per
	// stream (BenchmarkServe: 104 → 55 KB and −7 % time per stream). An
	// idle connection holds at most twice this.
	maxKeptServerBuffer = maxHeld
)

// Connection states, for Shutdown: only an idle connection may be closed
// under a client, since one in a request finishes it first.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// serverConn is one server connection, served by one goroutine.
type serverConn struct {
	s     *Server
	nc    net.Conn
	br    *bufio.Reader
	state atomic.Int32

	head []byte // request head scratch
	out  []byte // response bytes not yet written
	held []byte // response body held before the head is committed

	watch watcher
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	c := &serverConn{s: s, nc: nc}
	c.br = bufio.NewReaderSize(connReader{c}, 4<<10)
	c.watch.c = c
	return c
}

func (c *serverConn) serve() {
	defer func() {
		c.nc.Close()
		c.s.removeConn(c)
	}()
	for first := true; c.next(first); first = false {
		req, body, err := c.readRequest()
		if err != nil {
			c.reject(err)
			return
		}
		if !c.serveRequest(req, body) || c.s.shutdown.Load() || !c.state.CompareAndSwap(connActive, connIdle) {
			return
		}
		c.trim()
	}
}

// next waits for the first byte of the next request and marks the
// connection active. A new connection waits no longer than for the rest of
// a head, as in net/http: the idle timeout is for keep-alive.
func (c *serverConn) next(first bool) bool {
	if c.br.Buffered() == 0 {
		d := c.s.idleTimeout()
		if first {
			d = c.s.headerTimeout()
		}
		c.nc.SetReadDeadline(time.Now().Add(d))
		if _, err := c.br.Peek(1); err != nil {
			return false
		}
	}
	return c.state.CompareAndSwap(connIdle, connActive)
}

// trim drops scratch buffers that grew large, between requests.
func (c *serverConn) trim() {
	for _, b := range []*[]byte{&c.head, &c.out, &c.held} {
		if cap(*b) > maxKeptServerBuffer {
			*b = nil
		}
	}
}

// statusError is a request the server refuses before a handler sees it.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// reject answers a request that could not be read, when the client is to
// blame; the connection then closes, since where the next request would
// start is unknown.
func (c *serverConn) reject(err error) {
	var se *statusError
	if !errors.As(err, &se) {
		return // the client went away or timed out: no one to tell
	}
	b := appendStatus(c.out[:0], se.code)
	b = fmt.Appendf(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(se.msg), se.msg)
	c.nc.SetDeadline(time.Now().Add(lingerTime))
	if _, err := c.nc.Write(b); err != nil {
		return
	}
	c.lingerClose()
}

// lingerTime bounds a refused request's answer and lingerClose.
const lingerTime = 500 * time.Millisecond

// lingerClose prepares to close a connection the client may still be
// sending on. As net/http does: closing with unread bytes would send a
// reset, which can destroy the answer before the client reads it. So end
// the sending side and read what the client still sends, for a moment.
func (c *serverConn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		c.nc.SetReadDeadline(time.Now().Add(lingerTime))
		cw.CloseWrite()
		io.Copy(io.Discard, c.nc)
	}
}

// readRequest reads a request's head and sets up its body.
func (c *serverConn) readRequest() (*http.Request, *requestBody, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.s.headerTimeout()))
	head, err := readHead(c.br, c.head[:0])
	c.head = head[:0]
	if err == errHeadTooLarge {
		return nil, nil, &statusError{http.StatusRequestHeaderFieldsTooLarge, "request head larger than 1 MiB"}
	}
	if err != nil {
		return nil, nil, err
	}
	c.nc.SetReadDeadline(time.Time{})
	req, n, err := parseRequest(string(head))
	if err != nil {
		return nil, nil, err
	}
	req.RemoteAddr = c.nc.RemoteAddr().String()
	body := &requestBody{c: c, n: n}
	switch {
	case n < 0:
		body.cr = newChunkedReader(c.br)
	case n == 0:
		body.eof = true
	}
	if n != 0 {
		req.Body = body
		// Issue 2: a client that asks before sending its body is told
		// to go ahead only when the handler reads it.
		body.expect = req.ProtoMinor == 1 && hasToken(req.Header["Expect"], "100-continue")
	} else {
		req.Body = http.NoBody
	}
	return req, body, nil
}

// parseRequest parses a request head read by readHead: the request line
// and header fields. It returns the body's length, -1 for chunked. It is
// stricter than net/http where leniency has let requests be smuggled: a
// request with both Content-Length and Transfer-Encoding, or a transfer
// coding other than chunked, is refused.
func parseRequest(s string) (req *http.Request, n int64, err error) {
	line, s := cutLine(s)
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !validToken(method) {
		return nil, 0, badRequest("malformed request line")
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		if major, _, ok := http.ParseHTTPVersion(proto); ok && major != 1 {
			return nil, 0, &statusError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
		}
		return nil, 0, badRequest("malformed HTTP version")
	}
	// validHost refuses what a request target may not hold either: spaces
	// and control bytes.
	if !validHost(target) {
		return nil, 0, badRequest("malformed request target")
	}
	if method == "CONNECT" {
		return nil, 0, &statusError{http.StatusMethodNotAllowed, "CONNECT is not supported"}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, 0, badRequest("malformed request target")
	}
	h, err := parseHeader(s)
	if err != nil {
		return nil, 0, badRequest("malformed header field")
	}
	req = &http.Request{
		Method: method, URL: u, RequestURI: target,
		Proto: proto, ProtoMajor: 1, ProtoMinor: minor,
		Header: h,
	}
	switch hosts := h["Host"]; {
	case len(hosts) > 1:
		return nil, 0, badRequest("too many Host headers")
	case len(hosts) == 0 && minor == 1:
		return nil, 0, badRequest("missing required Host header")
	case len(hosts) == 1:
		if !validHostHeader(hosts[0]) {
			return nil, 0, badRequest("malformed Host header")
		}
		req.Host = hosts[0]
	}
	if u.Host != "" {
		req.Host = u.Host // absolute form overrides Host, as in net/http
	}
	delete(h, "Host")
	// As net/http: close wins over keep-alive, in HTTP/1.0 too.
	req.Close = hasToken(h["Connection"], "close") || minor == 0 && !hasToken(h["Connection"], "keep-alive")

	cl, err := contentLength(h["Content-Length"])
	if err != nil {
		return nil, 0, badRequest("bad Content-Length")
	}
	if vv := h["Content-Length"]; len(vv) > 1 {
		h["Content-Length"] = vv[:1] // equal values, as contentLength checked
	}
	te, chunked := h["Transfer-Encoding"]
	switch {
	case !chunked:
		req.ContentLength = max(cl, 0)
		return req, req.ContentLength, nil
	case minor == 0:
		return nil, 0, badRequest("Transfer-Encoding in an HTTP/1.0 request")
	case cl >= 0:
		return nil, 0, badRequest("both Transfer-Encoding and Content-Length")
	case len(te) != 1 || !equalFoldASCII(te[0], "chunked"):
		return nil, 0, &statusError{http.StatusNotImplemented, "unsupported Transfer-Encoding"}
	}
	delete(h, "Transfer-Encoding")
	req.TransferEncoding = []string{"chunked"}
	req.ContentLength = -1
	return req, -1, nil
}

// serveRequest runs the handler for one request and finishes its
// response. It reports whether the connection may serve another.
func (c *serverConn) serveRequest(req *http.Request, body *requestBody) (keep bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	req = req.WithContext(ctx)
	w := &responseWriter{c: c, req: req, header: make(http.Header, 4), cl: -1, keep: !req.Close}
	body.w = w
	c.watch.begin(cancel)
	if body.eof {
		c.watch.arm()
	}
	defer func() {
		if p := recover(); p != nil {
			// As in net/http: a panic ends the connection, and the client
			// sees it end without (the rest of) an answer.
			c.watch.end()
			if p != http.ErrAbortHandler {
				c.s.warn("handler panic", "panic", p, "stack", string(debug.Stack()))
			}
			keep = false
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	if !c.watch.end() {
		// The client's side has ended, but one that only half-closed still
		// reads the answer, which net/http delivers too.
		w.keep = false
	}
	if !w.committed && w.keep && !body.drain() {
		// As net/http does: settle the rest of the body before the head
		// goes out, so that a connection that will not serve another
		// request says so with Connection: close.
		w.keep = false
	}
	keep = w.finish() && body.drain()
	if !keep && !body.eof && w.err == nil {
		c.lingerClose() // the client may still be sending the body
	}
	return keep
}

// connReader reads the connection for its bufio.Reader, starting with a
// byte the watcher read while a handler ran.
type connReader struct{ c *serverConn }

func (r connReader) Read(p []byte) (int, error) {
	if w := &r.c.watch; w.stolen && len(p) > 0 {
		w.stolen = false
		p[0] = w.b[0]
		return 1, nil
	}
	return r.c.nc.Read(p)
}

// requestBody is a request body read from its connection's buffer. Like
// net/http's, it must not be read after the handler returns.
type requestBody struct {
	c      *serverConn
	w      *responseWriter
	n      int64     // bytes left with Content-Length
	cr     io.Reader // the chunked reader, for a chunked body
	eof    bool
	closed bool
	expect bool // send 100 Continue before the first read
	err    error
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *requestBody) read(p []byte) (int, error) {
	switch {
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if b.expect {
		b.expect = false
		if !b.w.committed {
			if _, err := io.WriteString(b.c.nc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	var n int
	var err error
	if b.cr != nil {
		n, err = b.cr.Read(p)
		if err == io.EOF {
			if terr := endChunked(b.c.br); terr != nil {
				err = terr
			}
		}
	} else {
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.c.br.Read(p)
		b.n -= int64(n)
		switch {
		case b.n == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
		b.c.watch.arm()
	case err != nil:
		b.err = err
	}
	return n, err
}

func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// drain reads and drops what the handler left of the body, up to
// maxDiscard, and reports whether the connection is still usable. Once it
// has failed it must not be called again.
func (b *requestBody) drain() bool {
	switch {
	case b.eof:
		return true
	case b.err != nil, b.expect:
		return false // the client may never send a body it was not asked for
	case b.cr == nil && b.n > maxDiscard:
		return false // known too large: reading it first would be in vain
	}
	n, err := io.Copy(io.Discard, io.LimitReader(readerFunc(b.read), maxDiscard+1))
	return err == nil && b.eof && n <= maxDiscard
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// endChunked reads the CRLF that ends a chunked body after its last chunk.
// Trailer fields are refused: keel's handlers have no use for them, and a
// server that skips them leniently could disagree with a proxy in front
// about where the request ends.
func endChunked(br *bufio.Reader) error {
	b, err := br.Peek(2)
	switch {
	case len(b) == 2 && b[0] == '\r' && b[1] == '\n':
		br.Discard(2)
		return nil
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	}
	return errTrailer
}

var errTrailer = errors.New("h1: trailer fields in a request are not supported")

// validHostHeader reports whether s holds only the bytes a Host field may,
// as net/http's server checks (golang.org/x/net/http/httpguts).
func validHostHeader(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0) {
			return false
		}
	}
	return true
}
