package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

// goProxyArg, as the first argument, makes the bench binary the goproxy
// peer instead: `bench -goproxy LISTEN UPSTREAM`. The bench re-executes
// itself that way for -peer goproxy.
const goProxyArg = "-goproxy"

// serveGoProxy runs net/http/httputil's ReverseProxy from listen to
// upstream: Go's standard library with no logic of its own, the ceiling
// for any gateway built on net/http on this machine.
func serveGoProxy(ctx context.Context, listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, ReadBufferSize: 64 << 10}
	rp.FlushInterval = -1 // flush every write: streams pass through
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", rp)
	srv := &http.Server{Addr: listen, Handler: mux}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startGoProxy starts the goproxy peer as a child process.
func startGoProxy(dir, listen, upstream string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc("goproxy", dir, self, goProxyArg, listen, upstream)
}
