package h1

import (
	"bufio"
	"bytes"
	stdcmp "cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// summary is what the tests compare of a response.
type summary struct {
	Status           string
	StatusCode       int
	Proto            string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	Body             string
	Trailer          http.Header
	Conns            int64 // server-side connections after two requests
}

func TestRoundTripResponses(t *testing.T) {
	tests := []struct {
		name   string
		method string
		resp   string // with \n for CRLF
		lfOnly bool   // send resp with bare LF line ends
		close  bool   // the server closes after responding
		want   summary
	}{
		{
			name: "content-length",
			resp: "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 11\n\n{\"ok\":true}",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {"11"}},
				ContentLength: 11, Body: `{"ok":true}`, Conns: 1},
		},
		{
			name: "chunked",
			resp: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 99\n\n5\nhello\n6;ext=1\n world\n0\n\n",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1", Header: http.Header{},
				ContentLength: -1, TransferEncoding: []string{"chunked"}, Body: "hello world", Conns: 1},
		},
		{
			name: "chunked with trailer",
			resp: "HTTP/1.1 200 OK\nTrailer: x-usage\nTransfer-Encoding: chunked\n\n2\nhi\n0\nX-Usage: 12\nX-Other: 1\n\n",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1", Header: http.Header{},
				ContentLength: -1, TransferEncoding: []string{"chunked"}, Body: "hi",
				Trailer: http.Header{"X-Usage": {"12"}}, Conns: 1},
		},
		{
			name:  "close-delimited",
			resp:  "HTTP/1.1 200 OK\n\nuntil close",
			close: true,
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1", Header: http.Header{},
				ContentLength: -1, Close: true, Body: "until close", Conns: 2},
		},
		{
			name: "connection close",
			resp: "HTTP/1.1 200 OK\nConnection: close\nContent-Length: 2\n\nhi",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header:        http.Header{"Connection": {"close"}, "Content-Length": {"2"}},
				ContentLength: 2, Close: true, Body: "hi", Conns: 2},
		},
		{
			name: "HTTP/1.0",
			resp: "HTTP/1.0 200 OK\nContent-Length: 2\n\nhi",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.0",
				Header:        http.Header{"Content-Length": {"2"}},
				ContentLength: 2, Close: true, Body: "hi", Conns: 2},
		},
		{
			name: "HTTP/1.0 keep-alive",
			resp: "HTTP/1.0 200 OK\nConnection: Keep-Alive\nContent-Length: 2\n\nhi",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.0",
				Header:        http.Header{"Connection": {"Keep-Alive"}, "Content-Length": {"2"}},
				ContentLength: 2, Body: "hi", Conns: 1},
		},
		{
			name: "1xx skipped",
			resp: "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </a>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"2"}}, ContentLength: 2, Body: "hi", Conns: 1},
		},
		{
			name: "204",
			resp: "HTTP/1.1 204 No Content\n\n",
			want: summary{Status: "204 No Content", StatusCode: 204, Proto: "HTTP/1.1", Header: http.Header{}, Conns: 1},
		},
		{
			name: "304 ignores Content-Length",
			resp: "HTTP/1.1 304 Not Modified\nContent-Length: 5\n\n",
			want: summary{Status: "304 Not Modified", StatusCode: 304, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"5"}}, Conns: 1},
		},
		{
			name:   "HEAD",
			method: "HEAD",
			resp:   "HTTP/1.1 200 OK\nContent-Length: 10\n\n",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"10"}}, ContentLength: 10, Conns: 1},
		},
		{
			name: "empty content-length body",
			resp: "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"0"}}, Conns: 1},
		},
		{
			name: "header fields canonicalized",
			resp: "HTTP/1.1 429 Too Many Requests\ncontent-type: text/plain\nX-Multi: a\nx-multi: b\nX-Fold: a\n  b\nX-Space: \t v \t\nretry-after-ms: 20\nContent-Length: 0\n\n",
			want: summary{Status: "429 Too Many Requests", StatusCode: 429, Proto: "HTTP/1.1",
				Header: http.Header{
					"Content-Type":   {"text/plain"},
					"X-Multi":        {"a", "b"},
					"X-Fold":         {"a b"},
					"X-Space":        {"v"},
					"Retry-After-Ms": {"20"},
					"Content-Length": {"0"},
				}, Conns: 1},
		},
		{
			name: "status without reason",
			resp: "HTTP/1.1 200\nContent-Length: 0\n\n",
			want: summary{Status: "200", StatusCode: 200, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"0"}}, Conns: 1},
		},
		{
			name:   "bare LF line ends",
			resp:   "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
			lfOnly: true,
			want: summary{Status: "200 OK", StatusCode: 200, Proto: "HTTP/1.1",
				Header: http.Header{"Content-Length": {"2"}}, ContentLength: 2, Body: "hi", Conns: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.resp
			if !tt.lfOnly {
				resp = crlf(resp)
			}
			srv := newRawServer(t, canned(resp, tt.close))
			tr := newTransport(t)
			method := stdcmp.Or(tt.method, "GET")
			var got summary
			for range 2 {
				r, err := tr.RoundTrip(newRequest(t, context.Background(), method, srv.url+"/x", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Fatalf("read body: %v", err)
				}
				r.Body.Close()
				got = summary{r.Status, r.StatusCode, r.Proto, r.Header, r.ContentLength,
					r.TransferEncoding, r.Close, string(b), r.Trailer, 0}
			}
			got.Conns = srv.conns.Load()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripGoServer(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		method  string
		want    summary
	}{
		{
			name: "json",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id":"x"}`)
			},
			want: summary{StatusCode: 200, Body: `{"id":"x"}`, ContentLength: 10, Conns: 1},
		},
		{
			name: "chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				io.WriteString(w, "b")
			},
			want: summary{StatusCode: 200, Body: "ab", ContentLength: -1, TransferEncoding: []string{"chunked"}, Conns: 1},
		},
		{
			name: "early hints",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "ok")
			},
			want: summary{StatusCode: 200, Body: "ok", ContentLength: 2, Conns: 1},
		},
		{
			name: "no content",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			},
			want: summary{StatusCode: 204, Conns: 1},
		},
		{
			name:   "head",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "42")
			},
			want: summary{StatusCode: 200, ContentLength: 42, Conns: 1},
		},
		{
			name: "close",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			},
			want: summary{StatusCode: 200, Body: "bye", ContentLength: 3, Close: true, Conns: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, tt.handler)
			tr := newTransport(t)
			var got summary
			for range 3 {
				r, err := tr.RoundTrip(newRequest(t, context.Background(), stdcmp.Or(tt.method, "GET"), up.URL, nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Fatalf("read body: %v", err)
				}
				r.Body.Close()
				got = summary{StatusCode: r.StatusCode, ContentLength: r.ContentLength,
					TransferEncoding: r.TransferEncoding, Close: r.Close, Body: string(b)}
			}
			got.Conns = up.conns.Load()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSSEUnbuffered checks that each flushed event reaches the caller
// while the server waits for the caller to have read it: no read waits for
// more data than has arrived.
func TestSSEUnbuffered(t *testing.T) {
	const events = 5
	step := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-step:
			case <-r.Context().Done():
				return
			}
		}
	})
	tr := newTransport(t)
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), "POST", up.URL, strings.NewReader(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for i := range events {
		want := fmt.Sprintf("data: {\"i\":%d}\n\n", i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("event %d = %q, want %q", i, got, want)
		}
		step <- struct{}{}
	}
	if n, err := resp.Body.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v; want 0, EOF", n, err)
	}
	if n := idleCount(tr); n != 1 {
		t.Errorf("idle conns after EOF = %d, want 1", n)
	}
}

// stepConn is a net.Conn whose reads return parts one at a time, as if
// each arrived in its own segment, and then io.EOF.
type stepConn struct {
	fakeConn
	parts []string
	reads int
}

func (c *stepConn) Read(p []byte) (int, error) {
	if c.reads == len(c.parts) {
		return 0, io.EOF
	}
	n := copy(p, c.parts[c.reads])
	c.reads++
	return n, nil
}

// TestChunkedEndNotWaited: the last chunk's data is returned at once even
// when the trailer section after it has not arrived. Regression: Read held
// the data back while it waited for the blank line ending the trailer.
func TestChunkedEndNotWaited(t *testing.T) {
	tests := []struct {
		name      string
		parts     []string // the first holds the head
		wantReads int      // conn reads by the first body Read
		wantErr   error    // from the first body Read
		trailer   http.Header
	}{
		{
			name:      "trailer section arrives later",
			parts:     []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", "\r\n"},
			wantReads: 1,
		},
		{
			name: "trailer field arrives later",
			parts: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n",
				"\r\n"},
			wantReads: 1,
			trailer:   http.Header{"X-T": {"1"}},
		},
		{
			name:      "end buffered",
			parts:     []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"},
			wantReads: 1,
			wantErr:   io.EOF,
			trailer:   http.Header{"X-T": {"1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := &stepConn{parts: tt.parts}
			c := newConn(&Transport{IdleConnTimeout: -1}, "upstream:80", nc)
			resp, err := c.readResponse(newRequest(t, context.Background(), "GET", "http://upstream/", nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 64)
			n, err := resp.Body.Read(buf)
			if string(buf[:n]) != "hello" || err != tt.wantErr {
				t.Fatalf("Read = %q, %v; want %q, %v", buf[:n], err, "hello", tt.wantErr)
			}
			if nc.reads != tt.wantReads {
				t.Errorf("conn reads = %d, want %d: Read waited for more than it returned", nc.reads, tt.wantReads)
			}
			if n, err := resp.Body.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("second Read = %d, %v; want 0, EOF", n, err)
			}
			if diff := cmp.Diff(tt.trailer, resp.Trailer); diff != "" {
				t.Errorf("trailer mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestHead(t *testing.T) {
	tests := []struct {
		name  string
		max   int // Transport.MaxIdleConnsPerHost
		setup func(r *http.Request)
		want  []string // request line, then sorted header lines
	}{
		{
			name: "minimal GET",
			want: []string{"GET /v1/models?x=1 HTTP/1.1", "Host: HOST"},
		},
		{
			name: "caller headers",
			setup: func(r *http.Request) {
				r.Header.Set("User-Agent", "keel")
				r.Header.Set("Authorization", "Bearer k")
				r.Header.Add("X-Multi", "a")
				r.Header.Add("X-Multi", "b")
				r.Header.Set("X-Inject", "a\r\nEvil: 1")
				r.Header.Set("Content-Length", "999")
				r.Header.Set("Host", "ignored")
			},
			want: []string{"GET /v1/models?x=1 HTTP/1.1", "Authorization: Bearer k", "Host: HOST",
				"User-Agent: keel", "X-Inject: a  Evil: 1", "X-Multi: a", "X-Multi: b"},
		},
		{
			// Regression: framing fields under non-canonical keys went
			// out beside h1's own, so the upstream saw Content-Length
			// and Transfer-Encoding both: request smuggling.
			name: "non-canonical framing keys ignored",
			setup: func(r *http.Request) {
				r.Header["content-length"] = []string{"5"}
				r.Header["transfer-encoding"] = []string{"chunked"}
				r.Header["trailer"] = []string{"X-T"}
				r.Header["host"] = []string{"evil"}
				r.Header["user-agent"] = []string{""}
			},
			want: []string{"GET /v1/models?x=1 HTTP/1.1", "Host: HOST"},
		},
		{
			name:  "non-canonical Connection: close",
			setup: func(r *http.Request) { r.Header["connection"] = []string{"close"}; r.Close = true },
			want:  []string{"GET /v1/models?x=1 HTTP/1.1", "Host: HOST", "connection: close"},
		},
		{
			name:  "empty User-Agent suppressed",
			setup: func(r *http.Request) { r.Header.Set("User-Agent", "") },
			want:  []string{"GET /v1/models?x=1 HTTP/1.1", "Host: HOST"},
		},
		{
			name:  "Host override",
			setup: func(r *http.Request) { r.Host = "api.example" },
			want:  []string{"GET /v1/models?x=1 HTTP/1.1", "Host: api.example"},
		},
		{
			name:  "req.Close",
			setup: func(r *http.Request) { r.Close = true },
			want:  []string{"GET /v1/models?x=1 HTTP/1.1", "Connection: close", "Host: HOST"},
		},
		{
			name: "keep-alive disabled",
			max:  -1,
			want: []string{"GET /v1/models?x=1 HTTP/1.1", "Connection: close", "Host: HOST"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			heads := make(chan []string, 1)
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				var lines []string
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					l = strings.TrimSuffix(l, "\r\n")
					if l == "" {
						break
					}
					lines = append(lines, l)
				}
				slices.Sort(lines[1:])
				heads <- lines
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			})
			tr := &Transport{MaxIdleConnsPerHost: tt.max}
			t.Cleanup(tr.CloseIdleConnections)
			req := newRequest(t, context.Background(), "GET", srv.url+"/v1/models?x=1", nil)
			if tt.setup != nil {
				tt.setup(req)
			}
			fetch(t, tr, req.URL.String()) // warm: the pool must not change the head
			<-heads
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-heads
			want := slices.Clone(tt.want)
			for i := range want {
				want[i] = strings.ReplaceAll(want[i], "HOST", strings.TrimPrefix(srv.url, "http://"))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request head mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// recordConn is a net.Conn that records what is written to it and reads
// nothing.
type recordConn struct {
	fakeConn
	w *bytes.Buffer
}

func (c recordConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// TestRequestHeadRejected: a request whose head cannot be written as given
// fails without a byte reaching the upstream. Regression: a RawQuery or
// Opaque set by hand with CR LF in it went out as is, and could inject
// header fields or a second request.
func TestRequestHeadRejected(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *http.Request)
	}{
		{"CRLF in RawQuery", func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /x" }},
		{"LF in RawQuery", func(r *http.Request) { r.URL.RawQuery = "a\nb" }},
		{"NUL in RawQuery", func(r *http.Request) { r.URL.RawQuery = "a\x00b" }},
		{"CRLF in Opaque", func(r *http.Request) { r.URL.Opaque = "/a\r\nX-Evil: 1" }},
		{"space in method", func(r *http.Request) { r.Method = "GET /x HTTP/1.1\r\n" }},
		{"space in Host", func(r *http.Request) { r.Host = "a b" }},
		{"CRLF in Host", func(r *http.Request) { r.Host = "a\r\nX-Evil: 1" }},
		{"colon in field name", func(r *http.Request) { r.Header["X-A: 1\r\nX-B"] = []string{"v"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wire bytes.Buffer
			tr := &Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
				return recordConn{fakeConn{strings.NewReader("")}, &wire}, nil
			}}
			req := newRequest(t, context.Background(), "GET", "http://upstream/v1/models", nil)
			tt.setup(req)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("RoundTrip succeeded, want error")
			}
			if wire.Len() > 0 {
				t.Errorf("wrote %q", wire.String())
			}
		})
	}
}

// echo is what the echo handler reports about a request it received.
type echo struct {
	Method           string
	ContentLength    int64
	TransferEncoding []string
	Len              int
	Sum              string
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(b)
	json.NewEncoder(w).Encode(echo{r.Method, r.ContentLength, r.TransferEncoding, len(b), hex.EncodeToString(sum[:8])})
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func TestRequestBody(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16) // 2 MiB: streamed
	mid := bytes.Repeat([]byte("x"), 200<<10)                   // chunked, flushed in parts
	tests := []struct {
		name string
		req  func(url string) *http.Request
		want echo
	}{
		{
			name: "bytes with Content-Length",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, strings.NewReader(`{"model":"m"}`))
			},
			want: echo{"POST", 13, nil, 13, sum([]byte(`{"model":"m"}`))},
		},
		{
			name: "unknown length is chunked",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, io.NopCloser(strings.NewReader("hello")))
			},
			want: echo{"POST", -1, []string{"chunked"}, 5, sum([]byte("hello"))},
		},
		{
			name: "ContentLength 0 with a body is unknown",
			req: func(url string) *http.Request {
				r := newRequest(t, context.Background(), "PUT", url, nil)
				r.Body = io.NopCloser(strings.NewReader("hi"))
				return r
			},
			want: echo{"PUT", -1, []string{"chunked"}, 2, sum([]byte("hi"))},
		},
		{
			name: "large body streamed",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, bytes.NewReader(big))
			},
			want: echo{"POST", int64(len(big)), nil, len(big), sum(big)},
		},
		{
			name: "large chunked body",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, io.NopCloser(bytes.NewReader(mid)))
			},
			want: echo{"POST", -1, []string{"chunked"}, len(mid), sum(mid)},
		},
		{
			name: "POST without body",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, nil)
			},
			want: echo{"POST", 0, nil, 0, sum(nil)},
		},
		{
			name: "GET without body",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "GET", url, nil)
			},
			want: echo{"GET", 0, nil, 0, sum(nil)},
		},
	}
	up := newUpstream(t, echoHandler)
	tr := newTransport(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tr.RoundTrip(tt.req(up.URL))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got echo
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("server saw (-want +got):\n%s", diff)
			}
		})
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("server conns = %d, want 1", n)
	}
}

// closeTracker records whether a request body was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestRequestBodyClosed(t *testing.T) {
	up := newUpstream(t, echoHandler)
	tests := []struct {
		name string
		url  string
	}{
		{"success", up.URL},
		{"bad scheme", "https://example.invalid/"},
		{"dial failure", "http://127.0.0.1:1/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &closeTracker{Reader: strings.NewReader("x")}
			req := newRequest(t, context.Background(), "POST", tt.url, body)
			resp, err := newTransport(t).RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if !body.closed {
				t.Error("request body not closed")
			}
		})
	}
}

func TestScheme(t *testing.T) {
	_, err := newTransport(t).RoundTrip(newRequest(t, context.Background(), "GET", "https://example.invalid/", nil))
	if err == nil || !strings.Contains(err.Error(), "unsupported protocol scheme") {
		t.Fatalf("https: err = %v, want unsupported scheme", err)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tr := &Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			t.Error("dialed")
			return nil, errors.New("no")
		}}
		_, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://upstream/", nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("during dial", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		tr := &Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		_, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://upstream/", nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("before headers", func(t *testing.T) {
		got := make(chan struct{})
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hang" {
				close(got)
				<-r.Context().Done()
				return
			}
			io.WriteString(w, "ok")
		})
		tr := newTransport(t)
		fetch(t, tr, up.URL) // a pooled conn for the hanging request to reuse
		ctx, cancel := context.WithCancelCause(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			<-got
			cancel(errors.New("client left"))
		})
		_, err := tr.RoundTrip(newRequest(t, ctx, "GET", up.URL+"/hang", nil))
		wg.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := idleCount(tr); n != 0 {
			t.Errorf("idle conns = %d, want 0", n)
		}
		if _, body := fetch(t, tr, up.URL); body != "ok" {
			t.Errorf("next request body = %q", body)
		}
		if n := up.conns.Load(); n != 2 {
			t.Errorf("server conns = %d, want 2: the canceled conn must not be reused", n)
		}
	})
	t.Run("mid body", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hang" {
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			io.WriteString(w, "ok")
		})
		tr := newTransport(t)
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", up.URL+"/hang", nil))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len("data: 1\n\n"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(cancel) // concurrently with the blocked Read below
		_, err = resp.Body.Read(buf)
		wg.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read err = %v, want context.Canceled", err)
		}
		if _, err := resp.Body.Read(buf); err == nil {
			t.Fatal("Read after failure succeeded")
		}
		resp.Body.Close()
		if _, body := fetch(t, tr, up.URL); body != "ok" {
			t.Errorf("next request body = %q", body)
		}
		if n := up.conns.Load(); n != 2 {
			t.Errorf("server conns = %d, want 2: the canceled conn must not be reused", n)
		}
	})
	t.Run("after body", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		tr := newTransport(t)
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", up.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel() // must not close the pooled conn
		fetch(t, tr, up.URL)
		if n := up.conns.Load(); n != 1 {
			t.Errorf("server conns = %d, want 1", n)
		}
	})
}

// TestClosedIdleConnSkipped: a pooled connection the server closed while
// it sat idle is found before a request is sent on it, so the request,
// a POST without GetBody included, goes out once, on a fresh connection.
func TestClosedIdleConnSkipped(t *testing.T) {
	payload := []byte(`{"model":"m","messages":[]}`)
	tests := []struct {
		name    string
		req     func(url string) *http.Request
		wantErr bool
	}{
		{
			name: "GET",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "GET", url, nil)
			},
		},
		{
			name: "POST with GetBody",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, bytes.NewReader(payload))
			},
		},
		{
			name: "POST buffered without GetBody",
			req: func(url string) *http.Request {
				r := newRequest(t, context.Background(), "POST", url, bytes.NewReader(payload))
				r.GetBody = nil
				return r
			},
		},
		{
			name: "POST chunked without GetBody",
			req: func(url string) *http.Request {
				return newRequest(t, context.Background(), "POST", url, io.NopCloser(bytes.NewReader(payload)))
			},
		},
		{
			name: "large POST without GetBody",
			req: func(url string) *http.Request {
				r := newRequest(t, context.Background(), "POST", url, bytes.NewReader(make([]byte, 4<<20)))
				r.GetBody = nil
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, echoHandler)
			tr := newTransport(t)
			fetch(t, tr, up.URL)
			// The server drops its idle conns, as one with a short
			// keep-alive timeout does.
			up.CloseClientConnections()
			resp, err := tr.RoundTrip(tt.req(up.URL))
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("RoundTrip succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status = %d", resp.StatusCode)
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("server conns = %d, want 2", n)
			}
		})
	}
}

// TestStaleConnRetry: a server that closes a kept-alive connection after
// reading the next request, before answering (it closed it at the same
// moment the request went out). Like net/http, keel's transport sends a
// GET again on a fresh connection, and never a POST, which the upstream
// may have acted on: that failure is reported.
func TestStaleConnRetry(t *testing.T) {
	for _, tt := range []struct {
		method    string
		wantErr   bool
		wantConns int64
	}{
		{"GET", false, 2},
		{"POST", true, 1},
	} {
		t.Run(tt.method, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				http.ReadRequest(br) // then close without answering
			})
			tr := newTransport(t)
			fetch(t, tr, srv.url)
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(`{}`)
			}
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), tt.method, srv.url, body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("RoundTrip error = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil {
				if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
					t.Errorf("body = %q", b)
				}
				resp.Body.Close()
			}
			if n := srv.conns.Load(); n != tt.wantConns {
				t.Errorf("server conns = %d, want %d", n, tt.wantConns)
			}
		})
	}
}

// TestFreshConnNotRetried: a failure on a fresh connection is the
// upstream's, not a stale keep-alive, and is reported.
func TestFreshConnNotRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		http.ReadRequest(br) // then close without answering
	})
	_, err := newTransport(t).RoundTrip(newRequest(t, context.Background(), "GET", srv.url, nil))
	if err == nil {
		t.Fatal("RoundTrip succeeded, want error")
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("server conns = %d, want 1", n)
	}
}

func TestCloseBeforeEOF(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		read      int
		wantConns int64
	}{
		{
			name:      "rest buffered: conn kept",
			handler:   func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "0123456789") },
			read:      3,
			wantConns: 1,
		},
		{
			name: "large rest: conn closed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(8<<20))
				w.Write(make([]byte, 8<<20))
			},
			read:      1,
			wantConns: 2,
		},
		{
			name: "open stream: conn closed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			read:      1,
			wantConns: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, tt.handler)
			tr := newTransport(t)
			for range 2 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL, nil))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(resp.Body, make([]byte, tt.read)); err != nil {
					t.Fatal(err)
				}
				if err := resp.Body.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if n := up.conns.Load(); n != tt.wantConns {
				t.Errorf("server conns = %d, want %d", n, tt.wantConns)
			}
		})
	}
}

func TestBodyClose(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	tr := newTransport(t)
	for _, readFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("readFirst=", readFirst), func(t *testing.T) {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL, nil))
			if err != nil {
				t.Fatal(err)
			}
			if readFirst {
				io.ReadAll(resp.Body)
			}
			for i := range 2 {
				if err := resp.Body.Close(); err != nil {
					t.Fatalf("Close #%d: %v", i, err)
				}
			}
			if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, errReadClosed) {
				t.Fatalf("Read after Close: err = %v, want %v", err, errReadClosed)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("flush") {
			io.WriteString(w, r.URL.RawQuery)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, r.URL.RawQuery)
	})
	tr := newTransport(t)
	const workers, requests = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range requests {
				q := fmt.Sprintf("g=%d&i=%d", g, i)
				want := q
				if i%2 == 0 {
					q += "&flush"
					want = q + q
				}
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL+"/?"+q, nil))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					errs <- fmt.Errorf("body %q, %v; want %q", b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.conns.Load(); n > workers {
		t.Errorf("server conns = %d, want at most %d", n, workers)
	}
}

func TestMaxIdleConnsPerHost(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tests := []struct {
		max, want int
	}{{1, 1}, {0, 3}, {-1, 0}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			tr := &Transport{MaxIdleConnsPerHost: tt.max}
			t.Cleanup(tr.CloseIdleConnections)
			var resps []*http.Response
			for range 3 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL, nil))
				if err != nil {
					t.Fatal(err)
				}
				resps = append(resps, resp)
			}
			for _, resp := range resps {
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if n := idleCount(tr); n != tt.want {
				t.Errorf("idle conns = %d, want %d", n, tt.want)
			}
			tr.CloseIdleConnections()
			if n := idleCount(tr); n != 0 {
				t.Errorf("idle conns after CloseIdleConnections = %d", n)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	huge := "HTTP/1.1 200 OK\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\n", 1100) + "\n"
	tests := []struct {
		name    string
		resp    string
		close   bool // close after writing resp
		bodyErr bool // RoundTrip succeeds; reading the body fails
	}{
		{name: "no space in status line", resp: "HTTP/1.1200OK\n\n"},
		{name: "bad status code", resp: "HTTP/1.1 2x0 OK\n\n"},
		{name: "short status code", resp: "HTTP/1.1 20 OK\n\n"},
		{name: "status code below 100", resp: "HTTP/1.1 099 Low\n\n"},
		{name: "bad version", resp: "HTTP/x 200 OK\n\n"},
		{name: "HTTP/2 version", resp: "HTTP/2.0 200 OK\n\n"},
		{name: "not HTTP", resp: "SSH-2.0-OpenSSH_9.6\n\n"},
		{name: "header line without colon", resp: "HTTP/1.1 200 OK\nbogus\n\n"},
		{name: "space in field name", resp: "HTTP/1.1 200 OK\nBad Key: v\n\n"},
		{name: "fold before any field", resp: "HTTP/1.1 200 OK\n  fold\n\n"},
		{name: "control byte in value", resp: "HTTP/1.1 200 OK\nX: a\x00b\n\n"},
		{name: "head over 1 MiB", resp: huge},
		{name: "conflicting Content-Length", resp: "HTTP/1.1 200 OK\nContent-Length: 1\nContent-Length: 2\n\nx"},
		{name: "negative Content-Length", resp: "HTTP/1.1 200 OK\nContent-Length: -1\n\n"},
		{name: "non-numeric Content-Length", resp: "HTTP/1.1 200 OK\nContent-Length: 1e3\n\n"},
		{name: "unsupported transfer encoding", resp: "HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n"},
		{name: "101", resp: "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n"},
		{name: "too many 1xx", resp: strings.Repeat("HTTP/1.1 100 Continue\n\n", 10) + "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		{name: "EOF before response", resp: "", close: true},
		{name: "EOF in head", resp: "HTTP/1.1 200 OK\nContent-Le", close: true},
		{name: "bad chunk size", resp: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nzz\nhello\n0\n\n", bodyErr: true},
		{name: "bad chunk end", resp: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhelloXX0\n\n", bodyErr: true},
		{name: "truncated chunked body", resp: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhel", close: true, bodyErr: true},
		{name: "truncated trailer", resp: "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n0\nX-T: 1", close: true, bodyErr: true},
		{name: "truncated length body", resp: "HTTP/1.1 200 OK\nContent-Length: 10\n\nhi", close: true, bodyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, canned(crlf(tt.resp), tt.close))
			resp, err := newTransport(t).RoundTrip(newRequest(t, context.Background(), "GET", srv.url, nil))
			if !tt.bodyErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("RoundTrip succeeded with status %d, want error", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			defer resp.Body.Close()
			if b, err := io.ReadAll(resp.Body); err == nil {
				t.Fatalf("body read %q without error", b)
			}
		})
	}
}

// TestStaleRetryDialsFresh: the retry after a stale conn dials rather than
// take another idle conn, which the server most likely closed as well.
func TestStaleRetryDialsFresh(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := newTransport(t)
	var resps []*http.Response
	for range 3 {
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, resp := range resps {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	up.CloseClientConnections()
	if _, body := fetch(t, tr, up.URL); body != "ok" {
		t.Fatalf("body = %q", body)
	}
	if n := up.conns.Load(); n != 4 {
		t.Errorf("server conns = %d, want 4", n)
	}
}

// TestCloseUnblocksRead: Close from another goroutine ends a Read that is
// waiting for the upstream, as a caller abandoning a stream does.
func TestCloseUnblocksRead(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	tr := newTransport(t)
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", up.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() { _, readErr = resp.Body.Read(buf) })
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if readErr == nil {
		t.Fatal("Read succeeded after Close")
	}
	if n := idleCount(tr); n != 0 {
		t.Errorf("idle conns = %d, want 0", n)
	}
}

// TestReuseUnderCloseAndCancel stresses connection reuse with every order
// of reading to the end, closing the body and canceling the context that
// keel's callers produce: an SSE stream closed at [DONE] before its chunk
// terminator arrived, canceled (Deadline.Stop) before or after Close, or
// after EOF, and Close or cancel racing a Read. Every request the server
// reads must be well-formed, and every response must carry its own
// request's data: a conn pooled twice, pooled after it was closed, or
// pooled with bytes of the last response unread would break one or the
// other. Run it with -race.
func TestReuseUnderCloseAndCancel(t *testing.T) {
	var bad atomic.Pointer[error]
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					bad.Store(&err)
				}
				return
			}
			id := req.URL.Query().Get("id")
			data := "data: " + id + "\n\n"
			chunks := fmt.Sprintf("%x\r\n%s\r\ne\r\ndata: [DONE]\n\n\r\n", len(data), data)
			switch req.URL.Query().Get("m") {
			case "length":
				body := data + "data: [DONE]\n\n"
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			case "together":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks+"0\r\n\r\n")
			case "trailer":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Id\r\n\r\n"+chunks)
				runtime.Gosched()
				io.WriteString(c, "0\r\nX-Id: "+id+"\r\n\r\n")
			default: // the terminator after [DONE], as a Go server sends it
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks)
				runtime.Gosched()
				io.WriteString(c, "0\r\n\r\n")
			}
		}
	})
	tr := newTransport(t)
	modes := []string{"length", "together", "trailer", "split"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 0))
			for i := range 100 {
				id := fmt.Sprintf("%d-%d", w, i)
				mode := modes[r.IntN(len(modes))]
				ctx, cancel := context.WithCancel(context.Background())
				resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.url+"/?id="+id+"&m="+mode, nil))
				if err != nil {
					cancel()
					t.Errorf("%s: %v", id, err)
					return
				}
				order := r.IntN(6)
				switch order {
				case 4:
					go resp.Body.Close()
				case 5:
					go cancel()
				}
				var got []byte
				buf := make([]byte, 1+r.IntN(64))
				for !bytes.Contains(got, []byte("[DONE]")) {
					n, err := resp.Body.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						break
					}
				}
				if want := "data: " + id + "\n\n"; order < 4 && !bytes.HasPrefix(got, []byte(want)) {
					t.Errorf("%s: body %q, want %q first", id, got, want)
				}
				switch order {
				case 0: // the stream ends at [DONE]
					resp.Body.Close()
					cancel()
				case 1: // Deadline.Stop, then Close, as openai's stream does
					cancel()
					resp.Body.Close()
				case 2, 3: // read to EOF, then cancel before or after Close
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						t.Errorf("%s: read to EOF: %v", id, err)
					}
					if mode == "trailer" && resp.Trailer.Get("X-Id") != id {
						t.Errorf("%s: trailer %q", id, resp.Trailer)
					}
					if order == 2 {
						cancel()
					}
					resp.Body.Close()
					cancel()
				default:
					resp.Body.Close()
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if p := bad.Load(); p != nil {
		t.Errorf("server read a malformed request: %v", *p)
	}
}

// TestCloseAtLastEvent: a stream's consumer reads its last event and
// closes the body without another Read. When the terminating chunk came
// with the event, as it usually does, the Read that returned the event
// already consumed it and the connection is kept; when it has not arrived
// yet, Close does not wait for it, and the connection goes.
func TestCloseAtLastEvent(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	const event = "e\r\ndata: [DONE]\n\n\r\n"
	for _, tt := range []struct {
		name      string
		together  bool // the terminator is written with the event
		wantConns int64
	}{
		{"terminator buffered: conn kept", true, 1},
		{"terminator not yet sent: conn closed", false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if tt.together {
						io.WriteString(c, head+event+"0\r\n\r\n")
						continue
					}
					io.WriteString(c, head+event)
					<-release
					io.WriteString(c, "0\r\n\r\n")
				}
			})
			defer close(release)
			tr := newTransport(t)
			for range 2 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.url, nil))
				if err != nil {
					t.Fatal(err)
				}
				ev := make([]byte, len("data: [DONE]\n\n"))
				if _, err := io.ReadFull(resp.Body, ev); err != nil {
					t.Fatalf("read %q: %v", ev, err)
				}
				start := time.Now()
				if err := resp.Body.Close(); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("Close waited %v", d)
				}
			}
			if n := srv.conns.Load(); n != tt.wantConns {
				t.Errorf("server conns = %d, want %d", n, tt.wantConns)
			}
		})
	}
}
