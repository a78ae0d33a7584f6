package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/keel-ai/keel/internal/config"
	"github.com/keel-ai/keel/internal/sim"
)

// simulate runs `keel sim`: the vendor simulator as its own server, for
// benchmarks, drills and trying keel's failover by hand.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "address to serve on")
	path := fs.String("config", "", "simulator profiles (YAML); default: the built-in profiles")
	seed := fs.Int64("seed", 0, "seed for latency and fault draws (overrides the config's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := sim.Builtin()
	if *path != "" {
		var err error
		if cfg, err = sim.LoadConfig(*path); err != nil {
			return err
		}
	}
	if *seed != 0 {
		cfg.Seed = *seed
	}
	log := newLogger(config.Log{Level: "warn", Format: "text"}, stderr)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.New(cfg, sim.WithLogger(log)), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "keel sim: SIMULATED vendor at http://%[1]s/v1 (OpenAI chat completions and embeddings, Anthropic messages); Gemini at http://%[1]s/v1beta\n", ln.Addr())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
