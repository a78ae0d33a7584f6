package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveH1 serves h on a loopback port until the test ends.
func serveH1(t *testing.T, h http.Handler, opts ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h}
	for _, o := range opts {
		o(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// client is one raw connection to a server under test.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialH1(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, raw); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one response to a request with the given method.
func (c *client) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection.
func (c *client) closed() bool {
	_, err := c.br.ReadByte()
	return err == io.EOF
}

// describe answers with the request's method, URI, body and selected fields.
var describe = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s host=%s len=%d te=%v x=%q body=%s", r.Method, r.RequestURI, r.Host, r.ContentLength, r.TransferEncoding, r.Header.Values("X"), b)
})

func TestServerRejects(t *testing.T) {
	big := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	tests := []struct {
		name, raw string
		want      int
	}{
		{"garbage", "garbage\r\n\r\n", 400},
		{"HTTP/2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"bad version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control byte in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
		{"leading fold", "GET / HTTP/1.1\r\n X: a\r\nHost: a\r\n\r\n", 400},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"conflicting Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400},
		{"negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"gzip transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
		{"head over 1 MiB", big, 431},
	}
	var called atomic.Int64
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Add(1) }))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialH1(t, addr)
			go io.WriteString(c.c, tt.raw) // a 1 MiB head may not fit the socket buffers
			resp, _ := c.read("GET")
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if !c.closed() {
				t.Error("connection left open after a refused request")
			}
		})
	}
	if n := called.Load(); n != 0 {
		t.Errorf("handler called %d times for refused requests", n)
	}
}

func TestServerAccepts(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"bare LF", "GET /a?b=c HTTP/1.1\nHost: h\nX: 1\n\n", "GET /a?b=c host=h len=0 te=[] x=[\"1\"] body="},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", "GET / host= len=0 te=[] x=[] body="},
		{"absolute form", "GET http://abs/p HTTP/1.1\r\nHost: h\r\n\r\n", "GET http://abs/p host=abs len=0 te=[] x=[] body="},
		{"repeated equal Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "POST / host=h len=3 te=[] x=[] body=abc"},
		{"folded value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "GET / host=h len=0 te=[] x=[\"a b\"] body="},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n", "POST / host=h len=-1 te=[chunked] x=[] body=abcde"},
		{"chunked with a trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: v\r\n\r\n", "h1: trailer fields in a request are not supported\n"},
	}
	_, addr := serveH1(t, describe)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialH1(t, addr)
			c.send(tt.raw)
			resp, body := c.read("GET")
			if body != tt.want {
				t.Errorf("got %d %q, want %q", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestServerKeepAlive sends requests back to back on one connection, the
// second before the first is answered, and a third after a chunked body.
func TestServerKeepAlive(t *testing.T) {
	_, addr := serveH1(t, describe)
	c := dialH1(t, addr)
	c.send("POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
	for i, want := range []string{"POST /1 host=h len=5 te=[] x=[] body=hello", "GET /2 host=h len=0 te=[] x=[] body="} {
		if resp, body := c.read("GET"); body != want || resp.Close {
			t.Errorf("response %d: %q (close %v), want %q", i+1, body, resp.Close, want)
		}
	}
	c.send("POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nGET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if _, body := c.read("GET"); body != "POST /3 host=h len=-1 te=[chunked] x=[] body=ok" {
		t.Errorf("chunked request: %q", body)
	}
	resp, _ := c.read("GET")
	if !resp.Close || !c.closed() {
		t.Error("Connection: close did not close the connection")
	}
}

func TestServerExpectContinue(t *testing.T) {
	ignore := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "no thanks") })
	mux := http.NewServeMux()
	mux.Handle("/echo", describe)
	mux.Handle("/ignore", ignore)
	_, addr := serveH1(t, mux)

	c := dialH1(t, addr)
	c.send("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	if line, _ := c.br.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, want 100 Continue", line)
	}
	c.br.ReadString('\n')
	c.send("hi")
	if _, body := c.read("POST"); !strings.HasSuffix(body, "body=hi") {
		t.Errorf("body = %q", body)
	}

	// A handler that never reads the body: no 100, and the connection
	// closes, since the client may never send it.
	c = dialH1(t, addr)
	c.send("POST /ignore HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	resp, body := c.read("POST")
	if resp.StatusCode != 200 || body != "no thanks" || !c.closed() {
		t.Errorf("got %d %q, closed %v; want 200 without 100 Continue, then close", resp.StatusCode, body, c.closed())
	}
}

// TestServerUnreadBody: a small body the handler ignores is drained and
// the connection kept; a large one closes it.
func TestServerUnreadBody(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for _, tt := range []struct {
		n        int
		wantKept bool
	}{{1 << 10, true}, {maxDiscard + 1, false}} {
		c := dialH1(t, addr)
		go io.WriteString(c.c, fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", tt.n, strings.Repeat("x", tt.n)))
		c.read("POST")
		if tt.wantKept {
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if _, body := c.read("GET"); body != "ok" {
				t.Errorf("%d-byte body: next request got %q", tt.n, body)
			}
		} else if !c.closed() {
			t.Errorf("%d-byte body: connection kept", tt.n)
		}
	}
}

func TestServerFraming(t *testing.T) {
	large := strings.Repeat("z", maxHeld+1)
	tests := []struct {
		name     string
		method   string
		h        http.HandlerFunc
		wantCL   int64
		wantTE   []string
		wantBody string
		wantHdr  map[string]string
	}{
		{"small body gets Content-Length", "GET", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>hi") },
			8, nil, "<html>hi", map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"nothing written", "GET", func(w http.ResponseWriter, r *http.Request) {}, 0, nil, "", nil},
		{"flushed body is chunked", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "bc")
		}, -1, []string{"chunked"}, "abc", map[string]string{"Content-Type": "text/event-stream"}},
		{"large body is chunked", "GET", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, large) }, -1, []string{"chunked"}, large, nil},
		{"handler's Content-Length", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			io.WriteString(w, "c")
			if _, err := io.WriteString(w, "d"); err != http.ErrContentLength {
				t.Errorf("write past Content-Length: %v", err)
			}
		}, 3, nil, "abc", nil},
		{"HEAD", "HEAD", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "abcd") }, 4, nil, "", nil},
		{"204", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				t.Errorf("write to a 204: %v", err)
			}
		}, 0, nil, "", nil},
		{"newlines in a value cannot split the head", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Evil", "a\r\nInjected: 1")
		}, 0, nil, "", map[string]string{"X-Evil": "a  Injected: 1", "Injected": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := serveH1(t, tt.h)
			c := dialH1(t, addr)
			c.send(tt.method + " / HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, body := c.read(tt.method)
			if resp.ContentLength != tt.wantCL || fmt.Sprint(resp.TransferEncoding) != fmt.Sprint(tt.wantTE) || body != tt.wantBody {
				t.Errorf("got Content-Length %d, Transfer-Encoding %v, body %.20q; want %d, %v, %.20q",
					resp.ContentLength, resp.TransferEncoding, body, tt.wantCL, tt.wantTE, tt.wantBody)
			}
			for k, v := range tt.wantHdr {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if resp.Header.Get("Date") == "" || resp.Close {
				t.Errorf("Date %q, Close %v", resp.Header.Get("Date"), resp.Close)
			}
			// The connection still serves the next request.
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if resp, _ := c.read("GET"); resp.StatusCode/100 != 2 {
				t.Errorf("next request: %d", resp.StatusCode)
			}
		})
	}
}

// TestServerHTTP10Stream: an HTTP/1.0 client cannot take chunks, so a
// flushed body runs until the connection closes.
func TestServerHTTP10Stream(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		io.WriteString(w, "b")
	}))
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	all, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(all), "\r\n\r\n")
	if body != "ab" || strings.Contains(head, "chunked") || strings.Contains(head, "Content-Length") {
		t.Errorf("response %q", all)
	}
}

// TestServerFlushReachesClient: a flushed event reaches the client while
// the handler is still running.
func TestServerFlushReachesClient(t *testing.T) {
	release := make(chan struct{})
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: 1\n\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "data: 2\n\n")
	}))
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: 1\n\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: 2\n\n" {
		t.Errorf("rest %q", rest)
	}
}

// canceled waits for r's context to be canceled and returns the cause.
func canceled(r *http.Request) error {
	select {
	case <-r.Context().Done():
		return context.Cause(r.Context())
	case <-time.After(10 * time.Second):
		return errors.New("never canceled")
	}
}

// TestServerClientGone: a client that hangs up while its handler waits
// cancels the request's context, with ErrClientGone as the cause.
func TestServerClientGone(t *testing.T) {
	cause := make(chan error, 1)
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		cause <- canceled(r)
	}), func(s *Server) { s.WatchAfter = time.Millisecond })
	c := dialH1(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
	c.c.Close()
	if err := <-cause; err != ErrClientGone {
		t.Errorf("cause = %v, want ErrClientGone", err)
	}
}

// TestServerPipelinedDuringWatch: the watch reads the first byte of a
// request sent while a handler runs, and the byte is not lost.
func TestServerPipelinedDuringWatch(t *testing.T) {
	entered, stole := make(chan struct{}), make(chan bool, 1)
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			if !<-stole {
				t.Error("the watch did not read the pipelined request")
			}
		}
		io.WriteString(w, r.URL.Path)
	}), func(s *Server) {
		s.WatchAfter = time.Millisecond
		s.watchHook = func(stolen, gone bool) { stole <- stolen && !gone }
	})
	c := dialH1(t, addr)
	c.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if _, body := c.read("GET"); body != want {
			t.Errorf("got %q, want %q", body, want)
		}
	}
}

func TestServerShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	}))
	idle := dialH1(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	idle.read("GET")
	busy := dialH1(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Error("idle connection not closed")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, body := busy.read("GET")
	if body != "done" || !resp.Close {
		t.Errorf("in-flight request: %q, close %v; want done and Connection: close", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting after Shutdown")
	}
}

func TestServerPanic(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "ok")
	}))
	c := dialH1(t, addr)
	c.send("GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if !c.closed() {
		t.Error("connection open after a panic")
	}
	c = dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := c.read("GET"); body != "ok" {
		t.Errorf("after a panic: %q", body)
	}
}

// TestServerIdleTimeout: a keep-alive connection with no next request
// closes after IdleTimeout.
func TestServerIdleTimeout(t *testing.T) {
	_, addr := serveH1(t, describe, func(s *Server) { s.IdleTimeout = 20 * time.Millisecond })
	c := dialH1(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c.read("GET")
	if !c.closed() {
		t.Error("idle connection not closed")
	}
}
