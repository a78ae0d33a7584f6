// Package sse reads and writes Server-Sent Events as the LLM APIs use them
// (../shared/wire/README.md §0): "event:" and "data:" fields, comments,
// and one blank line after every event.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Event is one dispatched event. Its slices are valid until the next call
// to Next.
type Event struct {
	// Name is the "event:" field; empty when the stream sends data only.
	Name []byte
	// Data is the "data:" lines, joined with "\n".
	Data []byte
}

// ErrLineTooLong reports a line longer than the Reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// Reader pulls events from an SSE body. The zero value is not usable; call
// NewReader.
type Reader struct {
	r    *bufio.Reader
	max  int
	name []byte
	data []byte
	line []byte
}

// NewReader returns a Reader over r that rejects lines longer than max
// bytes. If max is zero, 8 MiB is used.
func NewReader(r io.Reader, max int) *Reader {
	if max == 0 {
		max = 8 << 20
	}
	return &Reader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// Buffered reports whether a whole event has already been read from the
// body but not yet returned by Next, so that Next will not block.
func (r *Reader) Buffered() bool {
	n := r.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := r.r.Peek(n)
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

// Next returns the next event. It returns io.EOF when the body ends on an
// event boundary, and io.ErrUnexpectedEOF when the body ends inside an
// event: a stream cut mid-event is never mistaken for a complete one.
func (r *Reader) Next() (Event, error) {
	r.name, r.data = r.name[:0], r.data[:0]
	started, hasData := false, false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && started {
				err = io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData || len(r.name) > 0 {
				return Event{Name: r.name, Data: r.data}, nil
			}
			started = false
			continue
		}
		started = true
		if line[0] == ':' {
			continue // comment, e.g. a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = append(r.name, value...)
		}
		// id and retry are of no use to keel's clients of upstreams.
	}
}

// readLine returns the next line without its terminator (\n, \r\n or \r is
// not supported alone: no LLM API sends it).
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line = append(r.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(r.line) > r.max {
				return nil, ErrLineTooLong
			}
			line, err = r.r.ReadSlice('\n')
			r.line = append(r.line, line...)
		}
		line = r.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF // a partial last line
		}
		return nil, err
	}
	if len(line) > r.max {
		return nil, ErrLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// AppendEvent appends one event with an optional name, ending with the blank
// line every event needs. data must not contain newlines (JSON never does).
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}
