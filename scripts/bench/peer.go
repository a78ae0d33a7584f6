package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/keel-ai/keel/internal/h1"
)

// The Go peers run in the bench binary itself: `bench -PEER LISTEN
// UPSTREAM` serves that peer instead of benchmarking, and -peer goproxy or
// -peer h1proxy re-executes the bench that way.
//
//   - goproxy is net/http/httputil's ReverseProxy on net/http's server and
//     transport: Go's standard library with no logic of its own, the
//     ceiling for any gateway built on net/http on this machine.
//   - h1proxy is the same ReverseProxy on keel's own HTTP/1.1 server and
//     transport (internal/h1): the ceiling for keel's HTTP layers with
//     none of keel's work (decoding, routing, recording) on top.
var goPeers = map[string]bool{"goproxy": true, "h1proxy": true}

// serveGoPeer runs the Go peer named from listen to upstream.
func serveGoPeer(ctx context.Context, peer, listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // flush every write: streams pass through
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", rp)
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
	if peer == "h1proxy" {
		rp.Transport = &h1.Transport{MaxIdleConnsPerHost: 512, ReadBufferSize: 64 << 10}
		srv = &h1.Server{Handler: mux}
	} else {
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, ReadBufferSize: 64 << 10}
		srv = &http.Server{Handler: mux}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startGoPeer starts the Go peer named as a child process.
func startGoPeer(peer, dir, listen, upstream string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(peer, dir, self, "-"+peer, listen, upstream)
}
