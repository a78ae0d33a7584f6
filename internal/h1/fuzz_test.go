package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeConn is a net.Conn that reads from a fixed response and discards
// writes.
type fakeConn struct{ io.Reader }

func (fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (fakeConn) Close() error                     { return nil }
func (fakeConn) LocalAddr() net.Addr              { return nil }
func (fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (fakeConn) SetDeadline(time.Time) error      { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) SetWriteDeadline(time.Time) error { return nil }

// readAll reads a response from raw as the answer to a request with the
// given method, and its body to the end.
func readAll(t testing.TB, raw []byte, method string) (*http.Response, []byte, error) {
	// A small buffer splits heads across fills; no idle timer, so that
	// millions of iterations do not leave millions of timers behind.
	tr := &Transport{ReadBufferSize: 512, IdleConnTimeout: -1}
	c := newConn(tr, "fuzz:80", fakeConn{bytes.NewReader(raw)})
	req, err := http.NewRequest(method, "http://fuzz/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.readResponse(req, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func fixtures(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob("testdata/responses/*.http")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	m := make(map[string][]byte)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

// TestFixtures reads each recorded response and checks it against
// net/http's reading of the same bytes.
func TestFixtures(t *testing.T) {
	for name, raw := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			resp, body, err := readAll(t, raw, "GET")
			if err != nil {
				t.Fatal(err)
			}
			want, wantBody := stdRead(t, raw)
			if resp.StatusCode != want.StatusCode || resp.ContentLength != want.ContentLength ||
				len(resp.Header) != len(want.Header) || !bytes.Equal(body, wantBody) {
				t.Errorf("got %d %d %v %q\nwant %d %d %v %q", resp.StatusCode, resp.ContentLength, resp.Header, body,
					want.StatusCode, want.ContentLength, want.Header, wantBody)
			}
		})
	}
}

// stdRead reads raw with net/http, skipping 1xx as the Transport does.
func stdRead(t testing.TB, raw []byte) (*http.Response, []byte) {
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("net/http: %v", err)
		}
		if resp.StatusCode >= 200 {
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("net/http body: %v", err)
			}
			return resp, b
		}
	}
}

// FuzzResponse feeds arbitrary bytes to the response reader: it must
// return errors, never panic, and what it accepts must be a final
// response.
func FuzzResponse(f *testing.F) {
	for _, raw := range fixtures(f) {
		f.Add(raw, false)
	}
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx",
		"HTTP/1.0 200 OK\nContent-Length: 1\n\nx",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		resp, _, err := readAll(t, raw, method)
		if err != nil {
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 999 {
			t.Fatalf("accepted status %d", resp.StatusCode)
		}
		if resp.Header == nil || resp.Body == nil {
			t.Fatal("nil Header or Body")
		}
		if !strings.HasPrefix(resp.Proto, "HTTP/1.") {
			t.Fatalf("accepted proto %q", resp.Proto)
		}
	})
}

// parseServerRequest reads one request from raw as the server does, with
// its body and whatever follows it.
func parseServerRequest(raw []byte) (req *http.Request, body, rest []byte, err error) {
	c := newServerConn(&Server{}, fakeConn{bytes.NewReader(raw)})
	c.br = bufio.NewReaderSize(connReader{c}, 512) // a small buffer splits heads across fills
	req, rb, err := c.readRequest()
	if err != nil {
		return nil, nil, nil, err
	}
	rb.w = &responseWriter{c: c, req: req}
	if body, err = io.ReadAll(req.Body); err != nil {
		return nil, nil, nil, err
	}
	rest, _ = io.ReadAll(c.br)
	return req, body, rest, nil
}

// FuzzRequest checks the server's request reader against net/http's: a
// request the server accepts, net/http must read alike, with the same
// fields, the same body, and the same bytes left over for the next
// request, so that the two never disagree on where a request ends.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"GET /v1/models HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n\r\n",
		"POST /v1/chat/completions HTTP/1.1\r\nhost: h\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n{}GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nnext",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcX",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET http://abs/p?q HTTP/1.0\nX: a\n b\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, body, rest, err := parseServerRequest(raw)
		if err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(raw))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v)", err)
		}
		wantBody, err := io.ReadAll(want.Body)
		if err != nil {
			t.Fatalf("read a body net/http refuses (%v)", err)
		}
		wantRest, _ := io.ReadAll(br)
		if req.Method != want.Method || req.RequestURI != want.RequestURI || req.Host != want.Host ||
			req.ContentLength != want.ContentLength || req.Close != want.Close ||
			strings.Join(req.TransferEncoding, ",") != strings.Join(want.TransferEncoding, ",") {
			t.Fatalf("got %s %s host %q len %d close %v te %v\nwant %s %s host %q len %d close %v te %v",
				req.Method, req.RequestURI, req.Host, req.ContentLength, req.Close, req.TransferEncoding,
				want.Method, want.RequestURI, want.Host, want.ContentLength, want.Close, want.TransferEncoding)
		}
		if len(req.Header) != len(want.Header) {
			t.Fatalf("header %v, want %v", req.Header, want.Header)
		}
		for k, vv := range want.Header {
			if strings.Join(req.Header[k], "\x00") != strings.Join(vv, "\x00") {
				t.Fatalf("header %s = %q, want %q", k, req.Header[k], vv)
			}
		}
		if !bytes.Equal(body, wantBody) || !bytes.Equal(rest, wantRest) {
			t.Fatalf("body %q rest %q, want %q %q", body, rest, wantBody, wantRest)
		}
	})
}
