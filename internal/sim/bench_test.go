package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discard is a ResponseWriter that counts and drops what it is given.
type discard struct {
	h http.Header
	n int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discard) Flush()                      {}

func benchBody(b *testing.B, stream bool) []byte {
	body, err := json.Marshal(chatReq("sim-zero", stream, []msg{{"system", "You are a helpful assistant."}, user("Hello! How are you today?")},
		map[string]any{"stream_options": map[string]any{"include_usage": stream}}))
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkServeZero measures the simulator's own cost per sim-zero
// request, without the network.
func BenchmarkServeZero(b *testing.B) {
	for _, stream := range []bool{true, false} {
		name := "json"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			s := New(Builtin())
			body := benchBody(b, stream)
			rd := bytes.NewReader(body)
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				clear(w.h)
				s.ServeHTTP(w, req)
			}
			b.SetBytes(int64(w.n) / int64(b.N))
		})
	}
}

// BenchmarkHTTPZero is the benchmark baseline: keel's overhead is measured
// against hitting sim-zero directly over loopback like this.
func BenchmarkHTTPZero(b *testing.B) {
	s := New(Builtin())
	ts := httptest.NewServer(s)
	defer ts.Close()
	tr := ts.Client().Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = 256
	body := benchBody(b, true)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := ts.Client().Post(ts.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
