package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const (
	// maxHeadSize bounds a response's status line and header fields.
	maxHeadSize = 1 << 20
	// max1xx bounds the interim responses skipped before the final one.
	max1xx = 5
	// maxKeptHead bounds the head scratch a connection keeps.
	maxKeptHead = 16 << 10
	// maxPresizedFields bounds the header fields parseHeader makes room
	// for before it reads them.
	maxPresizedFields = 64
)

var errHeadTooLarge = errors.New("h1: head larger than 1 MiB")

// framing says how a response body is delimited.
type framing int

const (
	noBody framing = iota
	lengthBody
	chunkedBody
	untilClose // read until the server closes the connection
)

// readResponse reads the response to req, skipping interim 1xx responses,
// and returns it with a Body that reads from c. reqClose reports that the
// request asked for the connection to close. stop releases the request's
// context watch; readResponse passes it to the body or, for a response
// without one, calls it and settles c. On error the caller closes c; a
// failure before any byte arrived is a *staleError.
func (c *conn) readResponse(req *http.Request, stop func() bool) (*http.Response, error) {
	if _, err := c.br.Peek(1); err != nil {
		return nil, &staleError{err: c.wrap("read response", err)}
	}
	var (
		resp *http.Response
		fr   framing
		n    int64
	)
	for i := 0; ; i++ {
		head, err := readHead(c.br, c.hbuf[:0])
		if cap(head) <= maxKeptHead {
			c.hbuf = head[:0]
		}
		if err != nil {
			if err == errHeadTooLarge {
				return nil, err
			}
			return nil, c.wrap("read response head", err)
		}
		resp, fr, n, err = parseHead(string(head), req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("h1: unsupported 101 Switching Protocols")
		}
		if i == max1xx {
			return nil, errors.New("h1: too many 1xx informational responses")
		}
	}
	keep := !resp.Close && !reqClose(req)
	b := &body{c: c, stop: stop, mode: fr, n: n, keep: keep}
	if fr == noBody {
		resp.Body = http.NoBody
		b.finish()
		return resp, nil
	}
	if fr == chunkedBody {
		b.cr = newChunkedReader(c.br)
		b.trailer = resp.Trailer
	}
	resp.Body = b
	return resp, nil
}

// readHead appends one response head, up to and including its blank line,
// to buf and returns it.
func readHead(br *bufio.Reader, buf []byte) ([]byte, error) {
	start := 0 // where the current line began in buf
	for {
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > maxHeadSize {
			return buf, errHeadTooLarge
		}
		switch err {
		case nil:
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return buf, io.ErrUnexpectedEOF
		default:
			return buf, err
		}
		if l := buf[start:]; start > 0 && (len(l) == 1 || len(l) == 2 && l[0] == '\r') {
			return buf, nil
		}
		start = len(buf)
	}
}

// parseHead parses a response head read by readHead: the status line and
// header fields. It also returns how the body is framed and, for
// lengthBody, its length.
func parseHead(s string, req *http.Request) (*http.Response, framing, int64, error) {
	line, s := cutLine(s)
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return nil, 0, 0, fmt.Errorf("h1: malformed status line %q", clip(line))
	}
	status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(status, " ")
	if len(code) != 3 || !isDigits(code) || code[0] == '0' {
		return nil, 0, 0, fmt.Errorf("h1: malformed status code %q", clip(code))
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok || major != 1 {
		return nil, 0, 0, fmt.Errorf("h1: malformed HTTP version %q", clip(proto))
	}
	resp := &http.Response{
		Status:     status,
		StatusCode: int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'),
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Request:    req,
	}
	h, err := parseHeader(s)
	if err != nil {
		return nil, 0, 0, err
	}
	resp.Header = h
	if resp.StatusCode < 200 {
		return resp, noBody, 0, nil
	}

	// As net/http: close wins over keep-alive, in HTTP/1.0 too.
	resp.Close = hasToken(h["Connection"], "close") || minor == 0 && !hasToken(h["Connection"], "keep-alive")
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok && minor > 0 {
		if len(te) != 1 || !equalFoldASCII(te[0], "chunked") {
			return nil, 0, 0, fmt.Errorf("h1: unsupported transfer encoding %q", clip(strings.Join(te, ",")))
		}
		chunked = true
		resp.TransferEncoding = []string{"chunked"}
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length")
		// Like net/http, announced trailer fields move to resp.Trailer,
		// whose values the body fills in at EOF.
		if vv, ok := h["Trailer"]; ok {
			resp.Trailer = make(http.Header)
			for _, v := range vv {
				for v != "" {
					var k string
					k, v, _ = strings.Cut(v, ",")
					if k = trim(k); validToken(k) {
						resp.Trailer[http.CanonicalHeaderKey(k)] = nil
					}
				}
			}
			delete(h, "Trailer")
		}
	}
	cl, err := contentLength(h["Content-Length"])
	if err != nil {
		return nil, 0, 0, err
	}
	switch {
	case req.Method == "HEAD":
		resp.ContentLength = cl
		return resp, noBody, 0, nil
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
		return resp, noBody, 0, nil
	case chunked:
		resp.ContentLength = -1
		return resp, chunkedBody, 0, nil
	case cl == 0:
		return resp, noBody, 0, nil
	case cl > 0:
		resp.ContentLength = cl
		return resp, lengthBody, cl, nil
	default:
		resp.ContentLength = -1
		resp.Close = true
		return resp, untilClose, 0, nil
	}
}

// parseHeader parses header field lines up to the blank line, like
// net/textproto: keys are canonicalized, values trimmed, and obsolete line
// folding is joined with a space.
func parseHeader(s string) (http.Header, error) {
	n := strings.Count(s, "\n") - 1
	if n <= 0 {
		return make(http.Header), nil
	}
	// Sized for a usual head: a 1 MiB one of short repeated lines must not
	// buy a map slot and a string for each line up front, 60 times its size.
	n = min(n, maxPresizedFields)
	h := make(http.Header, n)
	// One array backs every single-valued field.
	strs := make([]string, n)
	var last string
	for {
		var line string
		line, s = cutLine(s)
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			vv := h[last]
			if len(vv) == 0 {
				return nil, fmt.Errorf("h1: malformed header line %q", clip(line))
			}
			v := trim(line)
			if !validValue(v) {
				return nil, fmt.Errorf("h1: malformed header value %q", clip(line))
			}
			// As textproto: joined by a space and trimmed on the left only,
			// so an empty continuation leaves a trailing space, and
			// "chunked " is refused as net/http refuses it.
			vv[len(vv)-1] = strings.TrimLeft(vv[len(vv)-1]+" "+v, " \t")
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !validToken(k) {
			return nil, fmt.Errorf("h1: malformed header line %q", clip(line))
		}
		v = trim(v)
		if !validValue(v) {
			return nil, fmt.Errorf("h1: malformed header value %q", clip(line))
		}
		k = http.CanonicalHeaderKey(k)
		last = k
		if vv := h[k]; vv == nil && len(strs) > 0 {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = v
			h[k] = vv
		} else {
			h[k] = append(vv, v)
		}
	}
}

// contentLength parses Content-Length field values; absent is -1.
// Repeated values must agree.
func contentLength(vv []string) (int64, error) {
	if len(vv) == 0 {
		return -1, nil
	}
	// ASCII rules only: a Unicode space such as U+00A0 is no space to
	// net/http or a proxy in front, so trimming it would let a bad
	// Content-Length through as a good one.
	v := trim(vv[0])
	for _, o := range vv[1:] {
		if trim(o) != v {
			return 0, errors.New("h1: conflicting Content-Length values")
		}
	}
	if !isDigits(v) {
		return 0, fmt.Errorf("h1: bad Content-Length %q", clip(v))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("h1: bad Content-Length %q", clip(v))
	}
	return n, nil
}

// cutLine splits s after its first line, trimming the line's CRLF or LF.
func cutLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}

// trim removes the spaces and tabs around a header value.
func trim(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// hasToken reports whether the comma-separated field values vv contain
// tok, ignoring ASCII case.
func hasToken(vv []string, tok string) bool {
	for _, v := range vv {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if equalFoldASCII(trim(t), tok) {
				return true
			}
		}
	}
	return false
}

// equalFoldASCII is strings.EqualFold for protocol tokens: only ASCII
// letters fold, as in net/http, where strings.EqualFold would take
// "chun\u212aed" (KELVIN SIGN) for "chunked".
func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// validToken reports whether s is an RFC 9110 token, as field names and
// methods must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validValue reports whether a field value holds no control bytes other
// than tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether a Host field value holds no spaces or control
// bytes.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
