package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
)

// maxTrailer bounds the trailer section after a chunked body.
const maxTrailer = 64 << 10

var (
	errReadClosed = errors.New("h1: read on closed response body")
	errConcurrent = errors.New("h1: concurrent Read on response body")
)

// Body states. A body leaves open or reading exactly once, and whoever
// moves it out owns the connection's fate: back to the pool or closed.
const (
	stateOpen    int32 = iota
	stateReading       // a Read is in progress
	stateDone          // read to EOF; the conn has been settled
	stateFailed        // a Read failed; err is set and the conn closed
	stateClosed        // Close was called
)

// body is a response body read straight from its connection's buffer.
// Read must not be called concurrently with itself; Close may be called
// concurrently with Read, and unblocks it.
type body struct {
	c    *conn
	stop func() bool // releases the context watch; may be nil
	mode framing
	n    int64     // bytes left, for lengthBody
	cr   io.Reader // for chunkedBody
	keep bool      // the conn may serve another request after EOF

	// trailer is the response's Trailer, filled in at the end of a
	// chunked body; nil if the response announced none.
	trailer http.Header

	state atomic.Int32
	err   error // for stateFailed; written before the state
}

func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }

// Read reads from the connection. At the end of the body it returns
// io.EOF, with the last bytes when it can tell, and returns the connection
// to the pool.
func (b *body) Read(p []byte) (int, error) {
	if !b.state.CompareAndSwap(stateOpen, stateReading) {
		switch b.state.Load() {
		case stateDone:
			return 0, io.EOF
		case stateFailed:
			return 0, b.err
		case stateClosed:
			return 0, errReadClosed
		default:
			return 0, errConcurrent
		}
	}
	n, err := b.read(p)
	switch {
	case err == nil:
		if !b.state.CompareAndSwap(stateReading, stateOpen) && n == 0 {
			return 0, errReadClosed
		}
		return n, nil
	case err == io.EOF:
		if !b.state.CompareAndSwap(stateReading, stateDone) {
			return n, errReadClosed
		}
		b.finish()
		return n, io.EOF
	default:
		b.err = b.c.wrap("read response body", err)
		if !b.state.CompareAndSwap(stateReading, stateFailed) {
			return n, errReadClosed
		}
		b.abort()
		return n, b.err
	}
}

func (b *body) read(p []byte) (int, error) {
	br := b.c.br
	switch b.mode {
	case lengthBody:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err := br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case chunkedBody:
		n, err := b.cr.Read(p)
		if err == io.EOF && n > 0 && !trailerBuffered(br) {
			// The last chunk's data must not wait for the trailer
			// section to arrive; the next Read reads it, since the
			// chunked reader keeps returning io.EOF.
			return n, nil
		}
		if err == io.EOF {
			err = readTrailer(br, b.trailer)
			if err == nil {
				err = io.EOF
			}
		}
		return n, err
	default: // untilClose
		return br.Read(p)
	}
}

// Close closes the body. Closing before EOF closes the connection, unless
// the rest of the body is already buffered and can be skipped. Close is
// idempotent and may be called concurrently with Read.
func (b *body) Close() error {
	for {
		switch s := b.state.Load(); s {
		case stateClosed:
			return nil
		case stateOpen:
			if b.state.CompareAndSwap(stateOpen, stateClosed) {
				b.skip()
				return nil
			}
		case stateReading:
			if b.state.CompareAndSwap(stateReading, stateClosed) {
				// The Read in progress sees the closed state and leaves
				// the conn alone.
				b.abort()
				return nil
			}
		default:
			if b.state.CompareAndSwap(s, stateClosed) {
				return nil
			}
		}
	}
}

// skip settles the conn of a body closed before EOF: if the rest of a
// length-delimited body is already buffered, it is discarded and the conn
// kept; otherwise the conn is closed rather than wait for bytes nobody
// wants. (A chunked body whose end is buffered already returned io.EOF
// with its last data.)
func (b *body) skip() {
	if br := b.c.br; b.mode == lengthBody && b.n <= int64(br.Buffered()) {
		br.Discard(int(b.n))
		b.finish()
		return
	}
	b.abort()
}

// finish settles the conn at the end of the body: back to the pool if it
// can serve another request, closed otherwise.
func (b *body) finish() {
	if b.stop != nil && !b.stop() {
		// The context fired and is closing the conn.
		return
	}
	if b.keep {
		b.c.t.put(b.c)
		return
	}
	b.c.close()
}

// abort closes the conn of a body that will not reach EOF.
func (b *body) abort() {
	if b.stop != nil {
		b.stop()
	}
	b.c.close()
}

// trailerBuffered reports whether the trailer section after a chunked
// body's last chunk has arrived through its blank line, so that reading it
// cannot wait.
func trailerBuffered(br *bufio.Reader) bool {
	p, _ := br.Peek(br.Buffered())
	return bytes.HasPrefix(p, []byte("\n")) || bytes.HasPrefix(p, []byte("\r\n")) ||
		bytes.Contains(p, []byte("\n\n")) || bytes.Contains(p, []byte("\n\r\n"))
}

// readTrailer reads the trailer section after a chunked body's last
// chunk, through its blank line. It adds the fields announced in h to h
// and drops the rest.
func readTrailer(br *bufio.Reader, h http.Header) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		total += len(line)
		if total > maxTrailer {
			return errors.New("h1: trailer too large")
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return nil
		}
		if h == nil {
			continue
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || !validToken(k) {
			return errors.New("h1: malformed trailer line")
		}
		k = http.CanonicalHeaderKey(k)
		if _, announced := h[k]; announced {
			h[k] = append(h[k], trim(strings.TrimRight(v, "\r\n")))
		}
	}
}
