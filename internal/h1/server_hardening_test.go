package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stdReading is what a request reader made of raw: the fields that decide
// framing and the connection's fate, or that it refused raw.
type stdReading struct {
	Refused          bool
	Len              int64
	TransferEncoding []string
	Close            bool
	Body, Rest       string
}

// readBoth reads raw with the server's reader and with net/http's.
func readBoth(raw string) (got, want stdReading) {
	req, body, rest, err := parseServerRequest([]byte(raw))
	if err != nil {
		got.Refused = true
	} else {
		got = stdReading{false, req.ContentLength, req.TransferEncoding, req.Close, string(body), string(rest)}
	}
	br := bufio.NewReader(strings.NewReader(raw))
	sreq, err := http.ReadRequest(br)
	if err != nil {
		return got, stdReading{Refused: true}
	}
	sbody, err := io.ReadAll(sreq.Body)
	if err != nil {
		return got, stdReading{Refused: true}
	}
	srest, _ := io.ReadAll(br)
	return got, stdReading{false, sreq.ContentLength, sreq.TransferEncoding, sreq.Close, string(sbody), string(srest)}
}

// TestServerFramingFieldsASCII is the regression test for framing fields
// compared with Unicode rules where HTTP's are ASCII: strings.EqualFold
// took "chun\u212aed" (KELVIN SIGN) for chunked and strings.TrimSpace
// took "3\u00a0" for a Content-Length of 3, both of which net/http, and
// any proxy in front, refuse. A reader that disagrees with the proxy
// about where a request ends is the door to request smuggling. An
// HTTP/1.0 "Connection: keep-alive, close" was also kept alive where
// net/http closes it.
func TestServerFramingFieldsASCII(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"Kelvin sign in chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun\u212aed\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"long s in chunked is not it either", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \u017f\r\n\r\n"},
		{"no-break space after Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\u00a0\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"next line after Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\u0085\r\n\r\nabc"},
		{"repeated Content-Length differing by a no-break space", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: \u00a03\r\n\r\nabc"},
		{"long s in close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: clo\u017fe\r\n\r\n"},
		{"Kelvin sign in keep-alive", "GET / HTTP/1.0\r\nConnection: \u212aeep-alive\r\n\r\n"},
		{"HTTP/1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := readBoth(tt.raw)
			if want.Refused {
				if !got.Refused {
					t.Errorf("accepted what net/http refuses: %+v", got)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("reading differs from net/http's (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTransportFramingFieldsASCII: the Transport shares contentLength and
// read Transfer-Encoding with the same Unicode rules; net/http refuses
// these responses.
func TestTransportFramingFieldsASCII(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\u00a0\r\n\r\nabc",
	} {
		if _, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil); err == nil {
			t.Fatalf("net/http accepts %q", raw)
		}
		if resp, body, err := readAll(t, []byte(raw), "GET"); err == nil {
			t.Errorf("%q: read as %d %v body %q, want an error", raw, resp.ContentLength, resp.TransferEncoding, body)
		}
	}
}

// TestTransportHTTP10CloseWins: in an HTTP/1.0 response, close wins over
// keep-alive, as in net/http, so the connection is not reused.
func TestTransportHTTP10CloseWins(t *testing.T) {
	raw := "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx"
	want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil || !want.Close {
		t.Fatalf("net/http: close %v, %v", want != nil && want.Close, err)
	}
	if resp, _, err := readAll(t, []byte(raw), "GET"); err != nil || !resp.Close {
		t.Errorf("Close = %v (%v), want true", resp != nil && resp.Close, err)
	}
}

// TestServerHalfClosedClientGetsAnswer is the regression test for an
// answer dropped because the watch saw the client's side of the
// connection end: a client may half-close after its request and still
// read the answer, which net/http delivers. The request's context is
// canceled all the same, and the connection not kept.
func TestServerHalfClosedClientGetsAnswer(t *testing.T) {
	gone := make(chan bool, 1)
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !<-gone || r.Context().Err() == nil {
			t.Error("the watch did not see the client's end, or did not cancel the request")
		}
		io.WriteString(w, "answer")
	}), func(s *Server) {
		s.WatchAfter = time.Millisecond
		s.watchHook = func(_, g bool) { gone <- g }
	})
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer for a half-closed client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "answer" || !resp.Close {
		t.Errorf("got %q, close %v; want the answer, and Connection: close", body, resp.Close)
	}
}

// readHeadFields reads a response head and returns its status line and
// fields as sent, with no reader's cleanup between.
func readHeadFields(t *testing.T, br *bufio.Reader) (string, textproto.MIMEHeader) {
	t.Helper()
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	return line, h
}

// TestServerUnreadBodyConnectionClose is the regression test for answers
// framed for keep-alive on a connection the server then closed because
// the handler left the body unread: an Expect: 100-continue body never
// asked for, or one too large to drain. The client, told nothing, would
// send its next request into a closing connection. As net/http does, the
// rest of the body is now settled before the head goes out, and a
// Content-Length body known to be too large is not read at all.
func TestServerUnreadBodyConnectionClose(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "no thanks")
	}))
	tests := []struct {
		name      string
		head      string
		body      string // sent after the head, while the answer is read
		wantClose bool
	}{
		{"expect never answered", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", "", true},
		{"length too large to drain, never sent", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n", "", true},
		{"chunked too large to drain", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
			strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("x", 64<<10)), 5) + "0\r\n\r\n", true},
		{"small body drained", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\n\r\n", strings.Repeat("x", 1024), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialH1(t, addr)
			c.send(tt.head)
			go io.WriteString(c.c, tt.body) // may not fit the socket buffers
			line, h := readHeadFields(t, c.br)
			if line != "HTTP/1.1 200 OK" {
				t.Fatalf("status line %q", line)
			}
			if got := h.Get("Connection") == "close"; got != tt.wantClose {
				t.Errorf("Connection: close sent %v, want %v (head %v)", got, tt.wantClose, h)
			}
			if tt.wantClose {
				return
			}
			io.CopyN(io.Discard, c.br, int64(len("no thanks")))
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if _, body := c.read("GET"); body != "no thanks" {
				t.Errorf("next request: %q", body)
			}
		})
	}
}

// TestServerFramingFieldsOwned is the regression test for Content-Length
// fields the server wrote as the handler left them: on a 204, which must
// not carry one (RFC 9110 section 8.6), on a 304, and next to
// Transfer-Encoding: chunked when the handler set the field after
// WriteHeader, a message any proxy in front may frame differently from
// the client. net/http frames from what it read at WriteHeader.
func TestServerFramingFieldsOwned(t *testing.T) {
	tests := []struct {
		name   string
		h      http.HandlerFunc
		wantCL []string
		wantTE []string
	}{
		{"204 with Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusNoContent)
		}, nil, nil},
		{"304 with Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusNotModified)
		}, nil, nil},
		{"Content-Length set after WriteHeader, then flushed", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
		}, nil, []string{"chunked"}},
		{"Content-Length set after WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
		}, []string{"5"}, nil},
		{"Content-Length given twice", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Length"] = []string{"5", "6"}
			io.WriteString(w, "hello")
		}, []string{"5"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := serveH1(t, tt.h)
			c := dialH1(t, addr)
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			_, h := readHeadFields(t, c.br)
			if diff := cmp.Diff(tt.wantCL, h["Content-Length"]); diff != "" {
				t.Errorf("Content-Length (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTE, h["Transfer-Encoding"]); diff != "" {
				t.Errorf("Transfer-Encoding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerInterimHasNoContentLength: a 1xx must not carry the
// Content-Length the handler set for the final answer (RFC 9110 section
// 8.6), which net/http leaves out.
func TestServerInterimHasNoContentLength(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a>; rel=preload")
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "hello")
	}))
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	line, h := readHeadFields(t, c.br)
	if line != "HTTP/1.1 103 Early Hints" || h.Get("Link") == "" || h["Content-Length"] != nil {
		t.Errorf("interim %q %v; want 103 with Link and no Content-Length", line, h)
	}
	if _, h := readHeadFields(t, c.br); h.Get("Content-Length") != "5" {
		t.Errorf("final answer's head %v, want Content-Length: 5", h)
	}
}

// TestServerSniffsLargeFirstWrite is the regression test for a missing
// Content-Type when the handler's first write was over 64 KiB: the head
// went out before any body was held, so there was nothing to sniff.
// net/http sniffs the first write whatever its size.
func TestServerSniffsLargeFirstWrite(t *testing.T) {
	big := "<html>" + strings.Repeat("z", maxHeld)
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }))
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body := c.read("GET")
	if got := resp.Header.Get("Content-Type"); got != "text/html; charset=utf-8" || body != big {
		t.Errorf("Content-Type %q, body of %d bytes; want text/html and %d", got, len(body), len(big))
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestServerHeadMemory is the regression test for a head's fields costing
// 60 times the head's size: parseHeader sized its map and value array by
// the count of lines, so that a 1 MiB head of short repeated fields made
// a map of 350,000 slots for one key. A head may now cost no more than
// it does net/http, itself generous, besides readHead's copies of it.
func TestServerHeadMemory(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("A:\n", (maxHeadSize-100)/3) + "\r\n"
	ours := allocated(func() {
		if _, _, _, err := parseServerRequest([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	})
	std := allocated(func() {
		if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader([]byte(raw)))); err != nil {
			t.Fatal(err)
		}
	})
	if ours > std+8*uint64(len(raw)) {
		t.Errorf("a %d-byte head allocated %d MB, net/http %d MB", len(raw), ours>>20, std>>20)
	}
}

// TestServerCloseCancels is the regression test for Close leaving a
// request in flight uncanceled, as the package doc says it does not: only
// a running watch or a failed write would have noticed the connection
// closed, and a handler waiting on an upstream, before the watch starts or
// after it has ended on a pipelined request, does neither.
func TestServerCloseCancels(t *testing.T) {
	entered, cause := make(chan struct{}), make(chan error, 1)
	s, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		cause <- canceled(r)
	}), func(s *Server) { s.WatchAfter = time.Hour })
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	s.Close()
	if err := <-cause; err != http.ErrServerClosed {
		t.Errorf("cause = %v, want http.ErrServerClosed", err)
	}
}

// TestServerSilentConnection is the regression test for a new connection
// that sends nothing being held for IdleTimeout (2 minutes) where net/http
// gives it ReadHeaderTimeout (10 seconds in keel): idle grace is for
// keep-alive clients, and a silent connection costs an attacker nothing.
func TestServerSilentConnection(t *testing.T) {
	_, addr := serveH1(t, describe, func(s *Server) {
		s.ReadHeaderTimeout = 20 * time.Millisecond
		s.IdleTimeout = time.Hour
	})
	c := dialH1(t, addr)
	if !c.closed() {
		t.Error("a silent new connection outlived ReadHeaderTimeout")
	}
}

// TestServerObsFoldLikeNetHTTP is the regression test for FuzzRequest's
// testdata 1335fb05286773ca: a folded field whose continuation line is
// empty keeps a trailing space in net/http, which trims the joined value
// on the left only. Trimmed both sides, "Transfer-Encoding: chunked"
// folded so was read as chunked where net/http refuses the request.
func TestServerObsFoldLikeNetHTTP(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"folded chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n \r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"fuzz 1335fb05286773ca", "0 A: HTTP/1.0\n0:0\n \n\n"},
		{"empty then text", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n \r\n b\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _, _, err := parseServerRequest([]byte(tt.raw))
			want, werr := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			switch {
			case werr != nil && err == nil:
				t.Fatalf("accepted what net/http refuses (%v)", werr)
			case werr != nil:
				return
			case err != nil:
				t.Fatalf("refused what net/http reads: %v", err)
			}
			if diff := cmp.Diff(want.Header, req.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}
