// Command bench is keel's load benchmark. It builds keel, starts the
// vendor simulator (keel sim) and keel in front of it, drives the same
// load straight at the simulator and through keel in one run on loopback,
// and reports what keel adds: latency at a constant request rate, time to
// first token and stream time, concurrent streams per second, peak memory,
// and maximum throughput, each against a floor.
//
//	go run ./scripts/bench            # full run, about two minutes
//	go run ./scripts/bench -quick     # smoke test, under 30 s
//	go run ./scripts/bench -json      # the report as JSON on stdout
//
// It stops by itself: every phase has a fixed duration or request count,
// and all traffic goes to 127.0.0.1. See README.md for the method. The
// exit status is 0 when every floor holds and no request failed, 1
// otherwise.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if len(os.Args) == 4 && goPeers[strings.TrimPrefix(os.Args[1], "-")] {
		peer := strings.TrimPrefix(os.Args[1], "-")
		err := serveGoPeer(ctx, peer, os.Args[2], os.Args[3])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench "+peer+":", err)
			os.Exit(1)
		}
		return
	}
	pass, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if !pass {
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	duration   time.Duration // open loop: measured time per target
	rate       int           // open loop: requests per second
	rounds     int           // each phase alternates targets over this many rounds
	warmup     time.Duration // per target, before each timed phase
	workers    int           // open loop: sender pool
	streams    int           // sequential streams per target and length
	streamConc int           // concurrent streams phase: workers
	tputDur    time.Duration // closed-loop phases: measured time per target
	tputConc   int           // max throughput phase: workers
	quick      bool
	json       bool
	keelBin    string          // prebuilt keel; empty = build ./cmd/keel
	keep       bool            // keep the temp dir (logs, configs, database)
	perf       string          // phase whose first keel run to record with perf
	only       map[string]bool // phases to run; empty = all
	buildTries int
	quietWait  time.Duration // total time the run may wait for other work to end
	keelYAML   string        // appended to keel's config, for experiments
	peer       string        // measure this peer in keel's place: "nginx"
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "constant-rate phase: measured time per target (split over -rounds)")
	fs.IntVar(&o.rate, "rate", 1000, "constant-rate phase: requests per second")
	fs.IntVar(&o.rounds, "rounds", 3, "alternate direct and keel (ABBA) over this many rounds per phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per target before each timed phase")
	fs.IntVar(&o.workers, "workers", 256, "constant-rate phase: sender pool size")
	fs.IntVar(&o.streams, "streams", 500, "sequential streams per target, for each stream length")
	fs.IntVar(&o.streamConc, "stream-conc", 32, "concurrent-streams phase: workers")
	fs.DurationVar(&o.tputDur, "tput-duration", 10*time.Second, "closed-loop phases: measured time per target (split over -rounds)")
	fs.IntVar(&o.tputConc, "conc", 64, "max-throughput phase: workers")
	fs.BoolVar(&o.quick, "quick", false, "short smoke run (under 30 s): shorter phases; explicit flags still win")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.StringVar(&o.keelBin, "keel", "", "use this keel binary instead of building ./cmd/keel")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, configs, database) and print its path")
	fs.StringVar(&o.perf, "perf", "", "record the first keel run of this phase (rate, ttft, total, streams or max) with perf record -g")
	phases := fs.String("phases", "", "comma-separated subset of phases to run: rate, seq, streams, max (default all)")
	fs.DurationVar(&o.quietWait, "quiet-wait", 5*time.Minute, "in all, wait at most this long for other processes to leave the CPUs idle (before each phase, and to redo disturbed runs)")
	fs.StringVar(&o.keelYAML, "keel-yaml", "", "YAML appended to keel's config, for experiments (e.g. 'reliability: {stream_upstream: false}')")
	fs.StringVar(&o.peer, "peer", "", "measure a peer in keel's place, as a reference for the floors: nginx (a plain reverse proxy to the simulator; needs nginx installed), goproxy (net/http/httputil's ReverseProxy) or h1proxy (the same ReverseProxy on keel's own HTTP/1.1 server and transport)")
	fs.IntVar(&o.buildTries, "build-tries", 20, "build attempts, 15 s apart (teammates may be mid-edit)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"duration":      func() { o.duration = 3 * time.Second },
			"rounds":        func() { o.rounds = 1 },
			"warmup":        func() { o.warmup = 500 * time.Millisecond },
			"streams":       func() { o.streams = 100 },
			"tput-duration": func() { o.tputDur = 2 * time.Second },
			"quiet-wait":    func() { o.quietWait = 0 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	switch {
	case o.rate <= 0 || o.rate > 1e6:
		return o, fmt.Errorf("-rate %d: want 1..1000000", o.rate)
	case o.rounds <= 0, o.workers <= 0, o.streams <= 0, o.streamConc <= 0, o.tputConc <= 0:
		return o, errors.New("-rounds, -workers, -streams, -stream-conc and -conc must be positive")
	case o.duration <= 0 || o.tputDur <= 0 || o.warmup < 0 || o.quietWait < 0:
		return o, errors.New("durations must be positive")
	case o.duration > 10*time.Minute || o.tputDur > 10*time.Minute:
		return o, errors.New("durations over 10m are not supported")
	}
	if *phases != "" {
		o.only = map[string]bool{}
		for p := range strings.SplitSeq(*phases, ",") {
			switch p = strings.TrimSpace(p); p {
			case "rate", "seq", "streams", "max":
				o.only[p] = true
			default:
				return o, fmt.Errorf("-phases: unknown phase %q (want rate, seq, streams, max)", p)
			}
		}
	}
	switch o.perf {
	case "", "rate", "ttft", "total", "streams", "max":
	default:
		return o, fmt.Errorf("-perf %q: want rate, ttft, total, streams or max", o.perf)
	}
	return o, nil
}

// Floors keel must meet (see README.md).
const (
	floorAddedP50     = 250 * time.Microsecond
	floorAddedP99     = 2 * time.Millisecond
	floorAddedTTFT    = 400 * time.Microsecond
	floorAddedTotal   = 1 * time.Millisecond
	floorStreamsRatio = 0.60
	floorRSSMB        = 100.0
	floorMaxRatio     = 0.35
)

// Simulator profiles: zero latency, unlimited speed, 24, 50 and 60 tokens.
const simConfig = `seed: 1
log_limit: -1      # no attempt log: the simulator should cost as little as possible
builtin: true      # sim-zero: 24 tokens
default: sim-zero
profiles:
  sim-zero-50: {base: sim-zero, tokens: 50}
  sim-zero-60: {base: sim-zero, tokens: 60}
`

const keelConfig = `listen: %s
data_dir: %s
log: {level: warn}
shutdown_grace: 2s
providers:
  - name: sim
    type: sim
    base_url: http://%s/v1
    models: [sim-zero, sim-zero-50, sim-zero-60]
`

// nginxConfig makes nginx a plain reverse proxy to the simulator, tuned as
// one would for SSE: keep-alive upstream connections, no buffering. Its
// arguments are the temp dir, keel's address and the simulator's.
const nginxConfig = `daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/nginx-tmp;
  proxy_temp_path %[1]s/nginx-tmp;
  upstream sim { server %[3]s; keepalive 512; }
  server {
    listen %[2]s;
    keepalive_requests 1000000;
    location = /healthz { return 200 "ok\n"; }
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`

// startProxy starts what is measured against the simulator: keel, or the
// -peer given.
func startProxy(o options, dir, bin, keelYAML, dataDir, keelAddr, simAddr string) (*proc, error) {
	switch o.peer {
	case "":
		return startProc("keel", dir, bin, "serve", "--config", keelYAML, "--data-dir", dataDir, "--listen", keelAddr, "--log-level", "warn")
	case "nginx":
		nginx, err := exec.LookPath("nginx")
		if err != nil {
			nginx = "/usr/sbin/nginx" // Debian's, often outside a user's PATH
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConfig, dir, keelAddr, simAddr)), 0o644); err != nil {
			return nil, err
		}
		return startProc("nginx", dir, nginx, "-p", dir, "-c", conf)
	case "goproxy", "h1proxy":
		return startGoPeer(o.peer, dir, keelAddr, "http://"+simAddr)
	}
	return nil, fmt.Errorf("-peer %q: nginx, goproxy or h1proxy", o.peer)
}

// bench is one run's fixture: the two processes and a target for each.
type bench struct {
	o         options
	dir       string
	direct    *target
	keel      *target
	simP      *proc
	keelP     *proc
	log       io.Writer // progress
	perfFiles []string
	cpus      int
	quietLeft time.Duration // what remains of -quiet-wait
	redone    int           // runs discarded because other processes disturbed them
}

// Disturbance thresholds, as shares of all cores used by processes other
// than the three under test.
const (
	quietBelow   = 0.15 // the machine counts as quiet before a phase
	disturbAbove = 0.10 // a run is redone (up to twice, within -quiet-wait)
)

// waitQuiet waits until the machine is nearly idle (under quietBelow of
// all cores busy over one second), as long as the -quiet-wait budget
// lasts: other people's builds and tests on a shared box skew the
// comparison.
func (b *bench) waitQuiet(ctx context.Context) {
	if b.o.quietWait == 0 {
		return
	}
	for said := false; ctx.Err() == nil; {
		busy := machineBusy(ctx, b.cpus, time.Second)
		if busy < quietBelow {
			return
		}
		if b.quietLeft <= 0 {
			b.progress("machine %.0f%% busy with other work and -quiet-wait used up: measuring anyway", busy*100)
			return
		}
		if !said {
			b.progress("machine %.0f%% busy with other work: waiting for it to quiet down (up to %s left)", busy*100, b.quietLeft.Round(time.Second))
			said = true
		}
		b.quietLeft -= time.Second
	}
}

// disturbed reports whether other processes used enough of the machine
// during r to redo it, and if so waits for quiet first.
func (b *bench) disturbed(ctx context.Context, t *target, r *result, attempt int) bool {
	share := r.cpu.others.Seconds() / r.elapsed.Seconds() / float64(b.cpus)
	if r.elapsed <= 0 || share <= disturbAbove || attempt >= 2 || b.quietLeft <= 0 || ctx.Err() != nil {
		return false
	}
	b.progress("%s run disturbed (other processes used %.0f%% of the machine): redoing it", t.name, share*100)
	b.redone++
	b.waitQuiet(ctx)
	return true
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (bool, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return false, err
	}
	// The bench's own GC pauses land on both targets' latencies alike; a
	// larger heap target makes them rarer.
	debug.SetGCPercent(400)

	dir, err := os.MkdirTemp("", "keel-bench-")
	if err != nil {
		return false, err
	}
	if o.keep || o.perf != "" {
		fmt.Fprintln(stderr, "bench: temp dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.keelBin
	if bin == "" {
		root, err := repoRoot(ctx)
		if err != nil {
			return false, err
		}
		fmt.Fprintln(stderr, "bench: building keel…")
		if bin, err = build(ctx, root, dir, o.buildTries, 15*time.Second, stderr); err != nil {
			return false, err
		}
	}

	simAddr, err := freeAddr()
	if err != nil {
		return false, err
	}
	keelAddr, err := freeAddr()
	if err != nil {
		return false, err
	}
	simYAML, keelYAML, dataDir := filepath.Join(dir, "sim.yaml"), filepath.Join(dir, "keel.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(simYAML, []byte(simConfig), 0o644); err != nil {
		return false, err
	}
	if err := os.WriteFile(keelYAML, []byte(fmt.Sprintf(keelConfig, keelAddr, dataDir, simAddr)+o.keelYAML+"\n"), 0o644); err != nil {
		return false, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return false, err
	}

	simP, err := startProc("sim", dir, bin, "sim", "--listen", simAddr, "--config", simYAML)
	if err != nil {
		return false, err
	}
	defer simP.stop(5 * time.Second)
	keelP, err := startProxy(o, dir, bin, keelYAML, dataDir, keelAddr, simAddr)
	if err != nil {
		return false, err
	}
	defer keelP.stop(5 * time.Second)
	if err := waitReady(ctx, simP, "http://"+simAddr+"/v1/models"); err != nil {
		return false, err
	}
	if err := waitReady(ctx, keelP, "http://"+keelAddr+"/healthz"); err != nil {
		return false, err
	}

	conns := max(o.workers, o.streamConc, o.tputConc)
	b := &bench{o: o, dir: dir, simP: simP, keelP: keelP, log: stderr, cpus: runtime.NumCPU(), quietLeft: o.quietWait,
		direct: newTarget("direct", "http://"+simAddr+"/v1/chat/completions", conns),
		keel:   newTarget(cmp.Or(o.peer, "keel"), "http://"+keelAddr+"/v1/chat/completions", conns)}
	defer b.direct.close()
	defer b.keel.close()

	rep := &report{
		Command:  "go run ./scripts/bench " + strings.Join(args, " "),
		Started:  time.Now(),
		Go:       runtime.Version(),
		CPUs:     runtime.NumCPU(),
		CPUModel: cpuModel(),
		Note: "simulator, keel and the load generator are separate processes sharing all cores (no pinning); " +
			"keel's added cost includes its CPU competing with the other two",
		Params: params{Rate: o.rate, OpenLoopSec: o.duration.Seconds(), Rounds: o.rounds, WarmupSec: o.warmup.Seconds(),
			Workers: o.workers, Streams: o.streams, StreamConc: o.streamConc, ThroughputSec: o.tputDur.Seconds(), ThroughputConc: o.tputConc},
	}
	if o.peer != "" {
		rep.Note += "; -peer " + o.peer + ": the keel column is " + o.peer + ", a reference, not keel"
	}
	if err := b.phases(ctx, rep); err != nil {
		return false, err
	}
	if done, err := keelP.exited(); done {
		return false, fmt.Errorf("keel exited during the run (%v):\n%s", err, keelP.logTail())
	}
	rep.Redone = b.redone
	rep.KeelHWM = round(float64(treeStatus(keelP.pid(), "VmHWM"))/1e6, 1)

	rep.Pass = true
	for _, c := range rep.Checks {
		rep.Pass = rep.Pass && c.Pass
	}
	if o.json {
		err = rep.writeJSON(stdout)
	} else {
		rep.writeText(stdout)
	}
	for _, f := range b.perfFiles {
		fmt.Fprintf(stderr, "bench: perf data in %s (perf report -i %s --no-children)\n", f, f)
	}
	return rep.Pass, err
}

// phases runs the four measurements and fills rep.
func (b *bench) phases(ctx context.Context, rep *report) error {
	o := b.o
	plain, s50, s60 := newCall("sim-zero", false, 24), newCall("sim-zero-50", true, 50), newCall("sim-zero-60", true, 60)
	for _, c := range []*call{plain, s50, s60} {
		if err := c.learn(ctx, b.direct); err != nil {
			return fmt.Errorf("learn the canonical answer: %w", err)
		}
	}
	errs := [2]int{}
	tally := func(phase string, rs [2]*result) {
		for j, t := range b.targets() {
			errs[j] += rs[j].errs
			if rs[j].errs > 0 {
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %d errors, first: %s", phase, rs[j].errs, rs[j].errMsg))
			}
			if len(rs[j].lat) > 0 || rs[j].errs > 0 {
				rep.Details = append(rep.Details, summarize(phase, t, rs[j], rep.CPUs))
			}
		}
	}

	want := func(phase string) bool {
		if len(o.only) > 0 && !o.only[phase] {
			return false
		}
		b.waitQuiet(ctx)
		return ctx.Err() == nil
	}

	// 1. Non-streaming at a constant rate, open loop.
	if want("rate") {
		per := o.duration / time.Duration(o.rounds)
		b.progress("1/4 non-streaming at %d req/s, open loop: %s warm-up, then %d round(s) of %s per target", o.rate, o.warmup, o.rounds, per)
		tally("warm-up rate", b.both(ctx, "", func(t *target) *result { return openLoop(ctx, t, plain, o.rate, o.warmup, o.workers) }))
		fixed := b.rounds(ctx, "rate", o.rounds, func(t *target) *result { return openLoop(ctx, t, plain, o.rate, per, o.workers) })
		tally(fmt.Sprintf("rate %d/s", o.rate), fixed)
		rep.Checks = append(rep.Checks,
			addedCheck(fmt.Sprintf("non-stream @%d/s p50", o.rate), q(sorted(fixed[0].lat), .50), q(sorted(fixed[1].lat), .50), floorAddedP50),
			addedCheck(fmt.Sprintf("non-stream @%d/s p99", o.rate), q(sorted(fixed[0].lat), .99), q(sorted(fixed[1].lat), .99), floorAddedP99))
	}

	// 2. One stream at a time.
	if want("seq") {
		b.progress("2/4 sequential streams: %d × 50 chunks and %d × 60 chunks per target, alternating", o.streams, o.streams)
		tally("warm-up seq", sequential(ctx, b.targets(), s50, 20))
		ttft := b.seq(ctx, "ttft", s50, o.streams)
		tally("seq 50 chunks", ttft)
		total := b.seq(ctx, "total", s60, o.streams)
		tally("seq 60 chunks", total)
		rep.Checks = append(rep.Checks,
			addedCheck("stream 50 chunks TTFT p50", q(sorted(ttft[0].ttft), .50), q(sorted(ttft[1].ttft), .50), floorAddedTTFT),
			addedCheck("stream 60 chunks total p50", q(sorted(total[0].lat), .50), q(sorted(total[1].lat), .50), floorAddedTotal))
	}

	per := o.tputDur / time.Duration(o.rounds)
	// 3. Concurrent streams, closed loop, with keel's RSS sampled.
	if want("streams") {
		b.progress("3/4 %d concurrent 50-chunk streams, closed loop: %d round(s) of %s per target", o.streamConc, o.rounds, per)
		tally("warm-up streams", b.both(ctx, "", func(t *target) *result { return closedLoop(ctx, t, s50, o.streamConc, min(o.warmup, time.Second)) }))
		rss := sampleRSS(b.keelP.pid(), 20*time.Millisecond)
		conc := b.rounds(ctx, "streams", o.rounds, func(t *target) *result { return closedLoop(ctx, t, s50, o.streamConc, per) })
		peak := float64(rss.stop()) / 1e6
		tally(fmt.Sprintf("%d streams", o.streamConc), conc)
		rep.Checks = append(rep.Checks,
			ratioCheck(fmt.Sprintf("%d concurrent streams", o.streamConc), "streams/s", rate(conc[0]), rate(conc[1]), floorStreamsRatio),
			check{Metric: fmt.Sprintf("keel peak RSS, %d streams", o.streamConc), Unit: "MB", Keel: round(peak, 1),
				Floor: fmt.Sprintf("≤ %g MB", floorRSSMB), Pass: peak <= floorRSSMB})
	}

	// 4. Maximum non-streaming throughput, closed loop.
	if want("max") {
		b.progress("4/4 max non-streaming throughput, %d workers, closed loop: %d round(s) of %s per target", o.tputConc, o.rounds, per)
		tally("warm-up max", b.both(ctx, "", func(t *target) *result { return closedLoop(ctx, t, plain, o.tputConc, min(o.warmup, time.Second)) }))
		mx := b.rounds(ctx, "max", o.rounds, func(t *target) *result { return closedLoop(ctx, t, plain, o.tputConc, per) })
		tally(fmt.Sprintf("max, %d conns", o.tputConc), mx)
		rep.Checks = append(rep.Checks,
			ratioCheck(fmt.Sprintf("max non-stream throughput, %d conns", o.tputConc), "req/s", rate(mx[0]), rate(mx[1]), floorMaxRatio))
	}

	d, k := float64(errs[0]), float64(errs[1])
	rep.Checks = append(rep.Checks, check{Metric: "errors, all phases", Unit: "", Direct: &d, Keel: k,
		Floor: "0", Pass: errs[0] == 0 && errs[1] == 0})
	return ctx.Err()
}

func (b *bench) targets() [2]*target { return [2]*target{b.direct, b.keel} }

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func rate(r *result) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return round(float64(len(r.lat))/r.elapsed.Seconds(), 1)
}

// both runs fn once per target, direct first.
func (b *bench) both(ctx context.Context, phase string, fn func(*target) *result) [2]*result {
	return b.rounds(ctx, phase, 1, fn)
}

// rounds runs fn against both targets n times, in ABBA order (direct,
// keel; keel, direct; …) so that drift during the phase hits both alike,
// and merges each target's results. Between runs it pauses briefly, so
// that one run's leftovers (keel's journal writes, say) don't land on the
// next.
func (b *bench) rounds(ctx context.Context, phase string, n int, fn func(*target) *result) [2]*result {
	out := [2]*result{{}, {}}
	for i := range n {
		for k := range 2 {
			j := k
			if i%2 == 1 {
				j = 1 - k
			}
			if ctx.Err() != nil {
				return out
			}
			t := b.targets()[j]
			for attempt := 0; ; attempt++ {
				pr := b.maybePerf(phase, j)
				r := b.measure(t, func() *result { return fn(t) })
				if pr != nil {
					pr.stop()
				}
				time.Sleep(300 * time.Millisecond)
				if phase == "" || !b.disturbed(ctx, t, r, attempt) {
					out[j].add(r)
					break
				}
			}
		}
	}
	return out
}

// seq runs the sequential streams phase, redoing it if other processes
// disturbed it.
func (b *bench) seq(ctx context.Context, phase string, c *call, n int) [2]*result {
	for attempt := 0; ; attempt++ {
		rs := b.seqOnce(ctx, phase, c, n)
		if !b.disturbed(ctx, b.keel, rs[1], attempt) {
			return rs
		}
	}
}

// seqOnce sends n streams to each target, alternating per stream.
func (b *bench) seqOnce(ctx context.Context, phase string, c *call, n int) [2]*result {
	pr := b.maybePerf(phase, 1)
	k0, s0, c0, m0, t0 := treeCPU(b.keelP.pid()), procCPU(b.simP.pid()), selfCPU(), machineCPU(), time.Now()
	rs := sequential(ctx, b.targets(), c, n)
	if pr != nil {
		pr.stop()
	}
	// The targets alternate per stream, so only keel's CPU (idle during
	// direct streams) can be charged to one of them; others' share of the
	// machine is the same for both.
	wall := time.Since(t0)
	rs[1].cpu.keel = treeCPU(b.keelP.pid()) - k0
	others := max(0, machineCPU()-m0-rs[1].cpu.keel-(procCPU(b.simP.pid())-s0)-(selfCPU()-c0))
	for _, r := range rs {
		r.interleaved, r.elapsed, r.cpu.others = true, wall, others
	}
	return rs
}

// maybePerf starts perf on keel for the first keel run of the -perf phase.
func (b *bench) maybePerf(phase string, j int) *perfRecord {
	if j != 1 || phase == "" || phase != b.o.perf || len(b.perfFiles) > 0 {
		return nil
	}
	out := filepath.Join(b.dir, "perf-"+phase+".data")
	pr, err := startPerf(b.dir, out, b.keelP.pid())
	if err != nil {
		b.progress("perf: %v", err)
		return nil
	}
	time.Sleep(300 * time.Millisecond) // let perf attach
	b.perfFiles = append(b.perfFiles, out)
	return pr
}

// measure runs fn and charges it the CPU time each process used.
func (b *bench) measure(t *target, fn func() *result) *result {
	k0, s0, c0, m0, d0 := treeCPU(b.keelP.pid()), procCPU(b.simP.pid()), selfCPU(), machineCPU(), t.dials.Load()
	r := fn()
	r.cpu = cpuUse{keel: treeCPU(b.keelP.pid()) - k0, sim: procCPU(b.simP.pid()) - s0, bench: selfCPU() - c0}
	r.cpu.others = max(0, machineCPU()-m0-r.cpu.keel-r.cpu.sim-r.cpu.bench)
	r.dials = t.dials.Load() - d0
	return r
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
