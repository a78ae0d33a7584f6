package h1

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxHeld is how much of a response body is held before the head goes
// out, and how much is buffered between writes after that.
const maxHeld = 64 << 10

// responseWriter is the http.ResponseWriter of one request. The body is
// held until the handler flushes, writes more than maxHeld bytes, or
// returns: a response complete by then goes out with Content-Length in
// one write, any other with chunked transfer encoding. Like net/http's, it
// must not be used after the handler returns, nor from two goroutines at
// once.
type responseWriter struct {
	c      *serverConn
	req    *http.Request
	header http.Header
	status int
	keep   bool // the connection may serve another request

	wroteHeader bool
	committed   bool // the head is in c.out, or gone
	chunked     bool
	noBody      bool
	cl          int64 // the handler's Content-Length; -1 if none
	written     int64
	err         error // a failed write: the client is gone
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code)) // as net/http does
	}
	if w.wroteHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once; the final one follows.
		b := appendStatus(w.c.out, code)
		w.c.out = append(appendFields(b, w.header), "\r\n"...)
		w.write()
		return
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = w.req.Method == "HEAD" || code == http.StatusNoContent || code == http.StatusNotModified
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.err != nil:
		return 0, w.err
	case w.noBody && w.req.Method == "HEAD":
		w.written += int64(len(p))
		return len(p), nil
	case w.noBody:
		return 0, http.ErrBodyNotAllowed
	case w.cl >= 0 && w.written+int64(len(p)) > w.cl:
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	c := w.c
	if !w.committed {
		if len(c.held)+len(p) <= maxHeld {
			c.held = append(c.held, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	w.appendBody(p)
	if len(c.out) >= maxHeld && !w.write() {
		return 0, w.err
	}
	return len(p), nil
}

// Flush writes what the handler has written so far.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError is Flush reporting a failed write; http.ResponseController
// finds it.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.committed {
		w.commit(false, nil)
	}
	if !w.write() {
		return w.err
	}
	return nil
}

// commit puts the head in c.out, followed by the body held so far. final
// means the handler has returned, so the held body is all there is; next
// is the write that did not fit, sniffed when nothing was held.
func (w *responseWriter) commit(final bool, next []byte) {
	c, h := w.c, w.header
	w.committed = true
	if hasToken(h["Connection"], "close") || c.s.shutdown.Load() {
		w.keep = false
	}
	// The server owns the framing fields: Content-Length is what
	// WriteHeader read, as in net/http, or the held body's length; never
	// one set later beside chunked, and none on a 204 or 304 (RFC 9110
	// section 8.6).
	cl := int64(-1)
	switch {
	case w.status == http.StatusNoContent || w.status == http.StatusNotModified:
	case w.noBody: // HEAD
		if w.cl >= 0 {
			cl = w.cl
		} else if final && w.written > 0 {
			cl = w.written
		}
	case w.cl >= 0:
		cl = w.cl
	case final:
		cl = int64(len(c.held))
	case w.req.ProtoMinor == 1:
		w.chunked = true
	default:
		w.keep = false // HTTP/1.0: the body ends where the connection does
	}
	sniff := c.held
	if len(sniff) == 0 {
		sniff = next
	}
	if _, ok := h["Content-Type"]; !ok && len(sniff) > 0 && !w.noBody && h.Get("Content-Encoding") == "" {
		h["Content-Type"] = []string{http.DetectContentType(sniff)}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{date()}
	}
	b := appendFields(appendStatus(c.out, w.status), h)
	if cl >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, cl, 10)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case !w.keep && w.req.ProtoMinor == 1 && !hasToken(h["Connection"], "close"):
		b = append(b, "Connection: close\r\n"...)
	case w.keep && w.req.ProtoMinor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	c.out = append(b, "\r\n"...)
	w.appendBody(c.held)
	c.held = c.held[:0]
}

// appendBody appends p to c.out in the response's framing.
func (w *responseWriter) appendBody(p []byte) {
	c := w.c
	switch {
	case len(p) == 0:
	case w.chunked:
		c.out = strconv.AppendInt(c.out, int64(len(p)), 16)
		c.out = append(c.out, "\r\n"...)
		c.out = append(c.out, p...)
		c.out = append(c.out, "\r\n"...)
	default:
		c.out = append(c.out, p...)
	}
}

// finish completes the response once the handler has returned, and
// reports whether the connection may serve another request.
func (w *responseWriter) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return false
	}
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked {
		w.c.out = append(w.c.out, "0\r\n\r\n"...)
	}
	if w.cl >= 0 && w.written < w.cl && !w.noBody {
		w.keep = false // the client waits for bytes that will not come
	}
	return w.write() && w.keep
}

// write writes c.out to the connection. A failure cancels the request: the
// client is gone.
func (w *responseWriter) write() bool {
	c := w.c
	if len(c.out) == 0 {
		return true
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		w.err = err
		c.watch.cancel(err)
		return false
	}
	return true
}

func appendStatus(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

// headerNewlines turns CR and LF in header values into spaces, as
// net/http does, so that no value can split a response.
var headerNewlines = strings.NewReplacer("\r", " ", "\n", " ")

// appendFields appends header fields sorted by key, dropping keys that are
// not tokens, and Content-Length and Transfer-Encoding, which the server
// owns.
func appendFields(b []byte, h http.Header) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range h {
		if k != "Content-Length" && k != "Transfer-Encoding" && validToken(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if strings.ContainsAny(v, "\r\n") {
				v = headerNewlines.Replace(v)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// date returns the Date header's value for now, formatted at most once a
// second.
func date() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.unix == now {
		return d.s
	}
	d := &cachedDate{now, time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	unix int64
	s    string
}

// dateCache is shared by every Server: the time is the same for all.
var dateCache atomic.Pointer[cachedDate]
