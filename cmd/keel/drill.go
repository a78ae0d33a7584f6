package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keel-ai/keel/internal/config"
	chaosdrill "github.com/keel-ai/keel/internal/drill"
	"github.com/keel-ai/keel/internal/sim"
)

// drillRoute is the route the drill's keel serves, primary → fallback.
const drillRoute = "drill"

// drill runs `keel drill`, the chaos drill of issue 3: the simulator and
// `keel serve` in-process, a load of distinct prompts through keel, and
// every answer judged byte for byte. It exits non-zero when a floor is
// missed: 100% complete answers, no truncated successes, no broken seams.
// With -hedge it measures hedged requests instead.
func drill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("drill", stderr)
	n := fs.Int("n", 0, "requests to send (default 2000; 1000 per run with -hedge)")
	c := fs.Int("c", 200, "concurrency: requests in flight at most")
	seed := fs.Int64("seed", 1, "simulator seed (latencies and fault draws)")
	tokens := fs.Int("tokens", sim.DefaultTokens, "answer length in tokens (at least 4)")
	contName := fs.String("continue", string(chaosdrill.ContinueReject), "how the fallback continues a broken answer: reject (it refuses prefill, so keel restarts), prefill, or restart")
	fbFaults := fs.Float64("fallback-faults", 0, "share of the fallback's attempts that break mid-stream too, so that continuations also land on the primary (0..0.9; default 0, a healthy fallback). Where both targets break, explicit errors are expected: the floors that matter then are no truncated successes and no broken seams")
	userCfg := fs.String("config", "", "a keel.yaml whose reliability and breaker sections the drill uses instead of its own")
	route := fs.String("route", "", "with -config: also apply this route's reliability overrides")
	hedge := fs.Bool("hedge", false, "measure hedging: time to first token with hedging off and on, on two heavy-tailed profiles")
	rate := fs.Float64("rate", 100, "with -hedge: requests per second")
	warmup := fs.Int("warmup", 100, "with -hedge: requests that warm up keel's latency estimates before each run")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on each request")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	logLevel := fs.String("log-level", "error", "keel's log level (logs go to stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("drill: unexpected arguments %q", fs.Args())
	}
	cont, err := chaosdrill.ParseContinue(*contName)
	if err != nil {
		return err
	}
	switch {
	case *n < 0 || *c < 1 || *warmup < 0:
		return errors.New("drill: -n and -warmup must not be negative, -c must be positive")
	case *tokens < 4:
		return errors.New("drill: -tokens must be at least 4")
	case *rate <= 0:
		return errors.New("drill: -rate must be positive")
	case *fbFaults < 0 || *fbFaults > 0.9:
		return errors.New("drill: -fallback-faults must be between 0 and 0.9")
	case *route != "" && *userCfg == "":
		return errors.New("drill: -route needs -config")
	}
	// The chaos drill's own policy: a content-filter refusal is otherwise
	// the final answer by design (router.Policy.FailoverContentFilter). The
	// hedging drill measures keel's defaults: a 3s first-token limit would
	// turn its 3s stragglers into failovers.
	top, rel, br := config.Reliability{}, config.Reliability{FirstToken: 3 * time.Second, FailoverContentFilter: true}, config.Breaker{}
	if *hedge {
		rel = config.Reliability{}
	}
	if *userCfg != "" {
		if top, rel, br, err = userPolicy(*userCfg, *route); err != nil {
			return err
		}
	}
	d := drillRun{
		c: *c, tokens: *tokens, timeout: *timeout, logLevel: *logLevel, stderr: stderr,
		top: top, rel: rel, br: br,
	}
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * *c, MaxIdleConnsPerHost: 2 * *c, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
	}}
	defer hc.CloseIdleConnections()
	d.hc = hc

	if *hedge {
		if *n == 0 {
			*n = 1000
		}
		hs, err := d.hedging(ctx, *seed, *n, *warmup, *rate)
		if err != nil {
			return err
		}
		if *asJSON {
			err = writeJSONTo(stdout, map[string]any{"hedging": hs})
		} else {
			fmt.Fprintf(stdout, "keel drill -hedge: %d streaming requests at %.0f/s per run, after %d warm-up requests; both targets alike\n\n", *n, *rate, *warmup)
			err = chaosdrill.WriteHedging(stdout, hs)
		}
		if err != nil {
			return err
		}
		var errs []error
		for _, h := range hs {
			for _, r := range []*chaosdrill.Report{h.Off, h.On} {
				if err := r.Floors(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", h.Profile.Name, err))
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("drill: floors missed:\n%w", err)
		}
		return nil
	}

	if *n == 0 {
		*n = 2000
	}
	rep, err := d.chaos(ctx, *seed, *n, cont, *fbFaults)
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSONTo(stdout, rep)
	} else {
		fallback := "healthy"
		if *fbFaults > 0 {
			fallback = fmt.Sprintf("breaks mid-stream on %.0f%%", 100**fbFaults)
		}
		fmt.Fprintf(stdout, "keel drill: %d requests, %d in flight; primary fails ~30%% across every fault class, fallback %s (continuation: %s)\n\n", *n, *c, fallback, cont)
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if err := rep.Floors(); err != nil {
		return fmt.Errorf("drill: floors missed: %w", err)
	}
	return nil
}

// userPolicy reads the reliability and breaker sections of the keel.yaml
// at path; with route, also that route's reliability overrides.
func userPolicy(path, route string) (top, rel config.Reliability, br config.Breaker, err error) {
	cfg, err := config.Load(path, lookupEnv)
	if err != nil {
		return top, rel, br, err
	}
	if route != "" {
		found := false
		for _, m := range cfg.Models {
			if m.Name == route {
				rel, found = m.Reliability, true
			}
		}
		if !found {
			return top, rel, br, fmt.Errorf("drill: %s has no route %q", path, route)
		}
	}
	return cfg.Reliability, rel, cfg.Breaker, nil
}

// drillRun is what every drill run shares.
type drillRun struct {
	hc       *http.Client
	c        int
	tokens   int
	timeout  time.Duration
	logLevel string
	stderr   io.Writer
	// top is the top-level reliability section, rel the route's, br the
	// breaker section of the keel.yaml the drill generates.
	top, rel config.Reliability
	br       config.Breaker
}

// keelConfig is the keel.yaml of a drill: the two simulated targets of the
// simulator at simURL behind route "drill", primary then fallback.
func (d *drillRun) keelConfig(simURL string, to config.Timeouts, fallback string, rel config.Reliability) config.Config {
	return config.Config{
		ShutdownGrace: 5 * time.Second,
		Providers: []config.Provider{
			{Name: chaosdrill.Primary, Type: "sim", BaseURL: simURL, Timeouts: to},
			{Name: chaosdrill.Fallback, Type: "sim", BaseURL: simURL, Timeouts: to},
		},
		Models: []config.Model{{
			Name: drillRoute,
			Targets: []config.Target{
				{Provider: chaosdrill.Primary, Model: chaosdrill.Primary, Continue: "prefill"},
				{Provider: chaosdrill.Fallback, Model: chaosdrill.Fallback, Continue: fallback},
			},
			Reliability: rel,
		}},
		Reliability: d.top,
		Breaker:     d.br,
	}
}

// chaos runs the chaos drill: n requests, half streaming, against a
// primary that fails ~30% of its attempts and a fallback that breaks on
// fallbackFaults of its own.
func (d *drillRun) chaos(ctx context.Context, seed int64, n int, cont chaosdrill.Continue, fallbackFaults float64) (*chaosdrill.Report, error) {
	ds, err := startDrillSim(chaosdrill.Chaos(seed, d.tokens, cont, fallbackFaults))
	if err != nil {
		return nil, err
	}
	defer ds.stop()
	k, err := startDrillKeel(ctx, d.keelConfig(ds.url, config.Timeouts{Header: 2 * time.Second, Idle: 2 * time.Second}, cont.Target(), d.rel), d.logLevel, d.stderr)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, runErr := chaosdrill.Run(ctx, d.hc, chaosdrill.Config{
		URL: k.url, Model: drillRoute, Requests: n, Concurrency: d.c, Mode: chaosdrill.Mixed,
		Tokens: d.tokens, Timeout: d.timeout,
	})
	elapsed := time.Since(start)
	if err := errors.Join(runErr, k.stop(), ds.stop()); err != nil {
		return nil, err
	}
	return chaosdrill.Summarize(res, ds.sim.Attempts(""), elapsed), nil
}

// hedging measures hedged requests on each hedging profile: the same n
// streaming requests at rate per second, with hedging off and then on.
func (d *drillRun) hedging(ctx context.Context, seed int64, n, warmup int, rate float64) ([]chaosdrill.Hedging, error) {
	var out []chaosdrill.Hedging
	for _, p := range chaosdrill.HedgeProfiles(d.tokens) {
		var reps [2]*chaosdrill.Report
		for i, on := range []bool{false, true} {
			r, err := d.hedgeRun(ctx, seed, p, on, n, warmup, rate)
			if err != nil {
				return nil, fmt.Errorf("drill: %s, hedging %v: %w", p.Name, on, err)
			}
			reps[i] = r
		}
		out = append(out, chaosdrill.CompareHedging(p, reps[0], reps[1]))
	}
	return out, nil
}

// hedgeRun is one measured run of the hedging drill, on a fresh simulator
// and keel: warm-up requests first, so that keel knows the target's p95
// time to first token, then n measured ones.
func (d *drillRun) hedgeRun(ctx context.Context, seed int64, p chaosdrill.HedgeProfile, on bool, n, warmup int, rate float64) (*chaosdrill.Report, error) {
	ds, err := startDrillSim(chaosdrill.HedgeSim(seed, p))
	if err != nil {
		return nil, err
	}
	defer ds.stop()
	rel := d.rel
	rel.Hedge = &on
	// Generous timeouts: a straggler is slow, not dead, and hedging is
	// what is measured.
	k, err := startDrillKeel(ctx, d.keelConfig(ds.url, config.Timeouts{Header: 10 * time.Second, Idle: 10 * time.Second}, "prefill", rel), d.logLevel, d.stderr)
	if err != nil {
		return nil, err
	}
	cfg := chaosdrill.Config{
		URL: k.url, Model: drillRoute, Requests: warmup, Concurrency: d.c, Rate: rate, Mode: chaosdrill.Streaming,
		Tokens: d.tokens, Prefix: "warmup", Timeout: d.timeout,
	}
	var res []chaosdrill.Result
	var elapsed time.Duration
	_, runErr := chaosdrill.Run(ctx, d.hc, cfg)
	if runErr == nil {
		// The same request sequence for both runs: attempt numbers (and so
		// latency draws) start over.
		ds.sim.Reset()
		cfg.Requests, cfg.Prefix = n, "hedge"
		start := time.Now()
		res, runErr = chaosdrill.Run(ctx, d.hc, cfg)
		elapsed = time.Since(start)
	}
	if err := errors.Join(runErr, k.stop(), ds.stop()); err != nil {
		return nil, err
	}
	return chaosdrill.Summarize(res, ds.sim.Attempts(""), elapsed), nil
}

// drillSim is the simulator served on a loopback port, its attempt log
// tagged by drill request.
type drillSim struct {
	sim  *sim.Server
	url  string // API root with /v1
	srv  *http.Server
	done chan error
	// stopped is set by the first stop, so that a deferred stop is a no-op.
	stopped bool
}

func startDrillSim(cfg sim.Config) (*drillSim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := sim.New(cfg)
	ds := &drillSim{sim: s, url: "http://" + ln.Addr().String() + "/v1", done: make(chan error, 1),
		srv: &http.Server{Handler: chaosdrill.Tag(s), ReadHeaderTimeout: 10 * time.Second}}
	go func() { ds.done <- ds.srv.Serve(ln) }()
	return ds, nil
}

// stop shuts the simulator down once its last attempts have ended, so that
// its attempt log is complete.
func (ds *drillSim) stop() error {
	if ds.stopped {
		return nil
	}
	ds.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := ds.srv.Shutdown(ctx)
	if err != nil {
		ds.srv.Close()
	}
	if serr := <-ds.done; serr != http.ErrServerClosed {
		err = errors.Join(err, serr)
	}
	return err
}

// drillKeel is `keel serve` run in-process, as the drill's system under
// test.
type drillKeel struct {
	url    string // API root with /v1
	dir    string // the generated keel.yaml and the data directory
	cancel context.CancelFunc
	done   chan error
}

// startDrillKeel writes cfg to a temporary keel.yaml, runs `keel serve`
// with it on a free loopback port and waits until it is ready.
func startDrillKeel(ctx context.Context, cfg config.Config, logLevel string, stderr io.Writer) (*drillKeel, error) {
	dir, err := os.MkdirTemp("", "keel-drill-")
	if err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(&cfg)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "keel.yaml"), b, 0o600)
	}
	var addr string
	if err == nil {
		addr, err = freeLoopback()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &drillKeel{url: "http://" + addr + "/v1", dir: dir, cancel: cancel, done: make(chan error, 1)}
	args := []string{"--config", filepath.Join(dir, "keel.yaml"), "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", logLevel}
	go func() { k.done <- serve(kctx, args, io.Discard, stderr) }()

	probe := &http.Client{Timeout: time.Second}
	defer probe.CloseIdleConnections()
	for range 500 { // 10s
		resp, err := probe.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k, nil
			}
		}
		select {
		case err := <-k.done:
			cancel()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("drill: keel serve exited: %w", errors.Join(err, errors.New("before it was ready")))
		case <-ctx.Done():
			k.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	k.stop()
	return nil, errors.New("drill: keel did not become ready within 10s")
}

// stop shuts keel down gracefully and removes its files.
func (k *drillKeel) stop() error {
	k.cancel()
	err := <-k.done
	os.RemoveAll(k.dir)
	return err
}

// freeLoopback returns a loopback address that was free a moment ago.
func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
