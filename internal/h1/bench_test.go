package h1

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upstreamEnv makes the test binary serve benchUpstream instead of running
// tests, so that a benchmark can put the upstream in another process.
const upstreamEnv = "H1_BENCH_UPSTREAM"

func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) == "1" {
		serveUpstreamProcess()
		return
	}
	os.Exit(m.Run())
}

// serveUpstreamProcess serves benchUpstream on loopback, prints its address,
// and exits when stdin closes.
func serveUpstreamProcess() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go http.Serve(ln, benchUpstream())
	io.Copy(io.Discard, os.Stdin)
}

// benchUpstream answers /json with a small chat completion and /sse with a
// 50-event stream (~10 KB) written in one go.
func benchUpstream() http.Handler {
	answer := `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?"},` +
		`"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}`
	var sse strings.Builder
	for i := range 50 {
		fmt.Fprintf(&sse, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,`+
			`"model":"m","choices":[{"index":0,"delta":{"content":"token %02d "},"finish_reason":null}]}`+"\n\n", i)
	}
	stream := []byte(sse.String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(stream)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
}

// startUpstreamProcess runs benchUpstream in a child process and returns
// its base URL; cleanup stops it.
func startUpstreamProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), upstreamEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + strings.TrimSpace(addr)
}

// BenchmarkRoundTrip compares net/http's Transport with this one on what
// keel relays: a small JSON answer and a 50-event SSE stream, one request
// at a time, with the upstream in the same process: cpu-ns/op counts both
// ends. The -rt variants call RoundTrip directly instead of going through
// http.Client.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(benchUpstream())
	defer srv.Close()
	benchClients(b, srv.URL, 0)
}

// BenchmarkRoundTripParallel is BenchmarkRoundTrip with 4 callers per
// core, as on a busy gateway.
func BenchmarkRoundTripParallel(b *testing.B) {
	srv := httptest.NewServer(benchUpstream())
	defer srv.Close()
	benchClients(b, srv.URL, 4)
}

// BenchmarkRoundTripUpstream puts the upstream in a child process, so that
// cpu-ns/op is the client's CPU alone: keel's side of the exchange.
func BenchmarkRoundTripUpstream(b *testing.B) {
	url := startUpstreamProcess(b)
	b.Run("seq", func(b *testing.B) { benchClients(b, url, 0) })
	b.Run("par", func(b *testing.B) { benchClients(b, url, 4) })
}

// benchClients runs the json and sse requests through each client against
// base; par > 0 runs par callers per core in parallel.
func benchClients(b *testing.B, base string, par int) {
	reqBody := []byte(`{"model":"m","messages":[{"role":"user","content":"Hello"}],"stream":true}`)
	// nethttp is configured as provider.NewHTTPClient configures it.
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	nethttp := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		ReadBufferSize:      64 << 10,
	}
	defer nethttp.CloseIdleConnections()
	h1 := &Transport{DialContext: d.DialContext}
	defer h1.CloseIdleConnections()
	clients := []struct {
		name string
		do   func(*http.Request) (*http.Response, error)
	}{
		{"nethttp", (&http.Client{Transport: nethttp}).Do},
		{"h1", (&http.Client{Transport: h1}).Do},
		{"nethttp-rt", nethttp.RoundTrip},
		{"h1-rt", h1.RoundTrip},
	}
	for _, path := range []string{"json", "sse"} {
		for _, c := range clients {
			b.Run(path+"/"+c.name, func(b *testing.B) {
				url := base + "/" + path
				b.ReportAllocs()
				cpu0 := cpuTime()
				if par > 0 {
					b.SetParallelism(par)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							call(b, c.do, url, reqBody)
						}
					})
				} else {
					for b.Loop() {
						call(b, c.do, url, reqBody)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// call makes one request as keel does, with a cancelable context and a
// JSON body, and reads the whole answer.
func call(b *testing.B, do func(*http.Request) (*http.Response, error), url string, reqBody []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(reqBody))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := do(req)
	if err != nil {
		b.Error(err)
		return
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Error(err)
	}
	resp.Body.Close()
}

// cpuTime returns the process's user plus system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
