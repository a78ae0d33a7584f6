package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keel-ai/keel/internal/auth"
	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/config"
	"github.com/keel-ai/keel/internal/h1"
	"github.com/keel-ai/keel/internal/httpapi"
	"github.com/keel-ai/keel/internal/journal"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/sim"
	"github.com/keel-ai/keel/internal/store/sqlite"
	"github.com/keel-ai/keel/internal/turn"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if _, set := lookupEnv("GOGC"); !set {
		// A gateway's heap is mostly short-lived per-request garbage over a
		// small live set: collecting at 3× the live heap instead of 2×
		// cuts keel's CPU per stream by about a tenth (scripts/bench:
		// peak RSS under 32 streams 44 → 60 MB; at 5× it was 86 MB for no
		// further gain). GOGC in the environment overrides.
		debug.SetGCPercent(200)
	}

	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "keel.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	// Issue 2: open on loopback with no keys; anywhere else, keys first.
	ks, err := db.Keys(ctx)
	if err != nil {
		return err
	}
	var authn httpapi.Authenticator
	switch {
	case len(activeKeys(ks)) > 0:
		authn = auth.NewAuthenticator(db, auth.Options{})
	case !isLoopback(cfg.Listen):
		return fmt.Errorf("listen %s is not a loopback address and no API keys exist: create one with `keel keys create --name NAME`, or listen on 127.0.0.1", cfg.Listen)
	default:
		log.Warn("no API keys exist: keel is open to anyone on this machine (loopback only)")
	}

	if len(cfg.Providers) == 0 {
		cfg.Providers = config.Detect(lookupEnv)
		cfg.Defaults()
	}
	if len(cfg.Providers) == 0 {
		base, srv, err := startSim(log)
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg.Providers = []config.Provider{{Name: "sim", Type: "sim", BaseURL: base, Models: builtinModels()}}
		cfg.Defaults()
		log.Warn("NO PROVIDERS CONFIGURED: answers come from keel's built-in SIMULATOR, not a real model. " +
			"Set OPENAI_API_KEY (or another vendor's key) or configure providers in keel.yaml.")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rt, simulated, err := buildRouter(cfg, log, reg)
	if err != nil {
		return err
	}

	jr := journal.New(db, log, journal.Options{})
	var draining atomic.Bool
	var responses chat.ResponseStore
	if r := cfg.Store.Responses; r == nil || *r {
		responses = db
	}
	api := httpapi.New(httpapi.Config{
		Responses:    responses,
		Turns:        &turn.Runner{Router: rt, Recorder: jr, RecordContent: cfg.Store.RecordContent},
		Router:       rt,
		Auth:         authn,
		Simulated:    simulated,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Log:          log,
		Registry:     reg,
		Ready:        func() bool { return !draining.Load() },
	})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := newServer(cfg.HTTPServer, api, log)
	log.Info("keel listening", "addr", "http://"+ln.Addr().String(), "providers", providerNames(cfg.Providers), "data_dir", cfg.DataDir, "version", version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Issue 2: stop accepting, let in-flight streams finish up to the
	// grace period, then flush the record of everything served.
	draining.Store(true)
	log.Info("shutting down: draining in-flight requests", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("grace period over: closing remaining connections", "err", err)
		srv.Close()
	}
	fctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := jr.Close(fctx); err != nil {
		log.Error("flushing request records", "err", err)
	}
	log.Info("keel stopped")
	return nil
}

// server is what serve needs of an HTTP server: *h1.Server and
// *http.Server both are one.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newServer returns the HTTP server config.Config.HTTPServer names.
func newServer(kind string, h http.Handler, log *slog.Logger) server {
	if kind == "net/http" {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	return &h1.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Log: log}
}

// buildRouter builds the providers and routes the config names. It returns
// the names of simulated providers too.
func buildRouter(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*router.Router, map[string]bool, error) {
	simulated := map[string]bool{}
	byName := map[string]llm.Provider{}
	var provs []router.Provider
	for i, p := range cfg.Providers {
		prov, malformed, err := newProvider(i, p, log)
		if err != nil {
			return nil, nil, err
		}
		simulated[p.Name] = providerType(p) == "sim"
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keel_upstream_malformed_chunks_total", Help: "Upstream stream chunks that could not be decoded and were skipped.",
			ConstLabels: prometheus.Labels{"provider": p.Name},
		}, malformed))
		byName[p.Name] = prov
		provs = append(provs, router.Provider{Provider: prov, Models: p.Models})
	}
	var routes []router.Route
	for _, m := range cfg.Models {
		pol := policy(m.Reliability)
		pol.ContextFallbacks = targets(m.ContextFallbacks, byName)
		routes = append(routes, router.Route{Name: m.Name, Targets: targets(m.Targets, byName), Policy: pol})
	}
	b := cfg.Breaker
	return router.New(routes, provs, router.Options{
		Log:    log,
		Policy: policy(cfg.Reliability),
		Breaker: router.Breaker{
			Failures: b.Failures, Ratio: b.Ratio, Window: b.Window, MinRequests: b.MinRequests,
			Open: b.Open, MaxOpen: b.MaxOpen, RetryRatio: b.RetryRatio, MinRetries: b.MinRetriesPerSec,
			HedgeRatio: b.HedgeRatio,
		},
	}), simulated, nil
}

// targets flattens configured targets into the router's: the members of an
// "any" group share a group number.
func targets(ts []config.Target, byName map[string]llm.Provider) []router.Target {
	var out []router.Target
	for i, t := range ts {
		members, group := []config.Target{t}, 0
		if len(t.Any) > 0 {
			members, group = t.Any, i+1
		}
		for _, m := range members {
			cont := router.ContinueAuto
			switch m.Continue {
			case "prefill":
				cont = router.ContinuePrefill
			case "restart":
				cont = router.ContinueRestart
			}
			out = append(out, router.Target{Provider: byName[m.Provider], Model: m.Model, Group: group, Weight: m.Weight, Continue: cont})
		}
	}
	return out
}

func policy(r config.Reliability) router.Policy {
	return router.Policy{
		FirstToken: r.FirstToken, Total: r.Total, Attempts: r.Attempts,
		Backoff: r.Backoff, MaxBackoff: r.MaxBackoff,
		RetryAfterWait: r.RetryAfterWait, MaxRetryAfter: r.MaxRetryAfter,
		Hedge: r.Hedge, HedgeDelay: r.HedgeDelay, HedgeMin: r.HedgeMin, HedgeMax: r.HedgeMax,
		FailoverContentFilter: r.FailoverContentFilter, StreamUpstream: r.StreamUpstream, HoldToolCalls: r.HoldToolCalls,
	}
}

// startSim serves the built-in simulator on a loopback port, so that the
// quick start works offline through the very code path real vendors use.
func startSim(log *slog.Logger) (string, *http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: sim.New(sim.Builtin(), sim.WithLogger(log)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/v1", srv, nil
}

func builtinModels() []string {
	var ms []string
	for name := range sim.Builtin().Profiles {
		ms = append(ms, name)
	}
	slices.Sort(ms)
	return ms
}

func providerNames(ps []config.Provider) []string {
	var ns []string
	for _, p := range ps {
		ns = append(ns, p.Name)
	}
	return ns
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
