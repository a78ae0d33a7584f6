package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the whole outcome of a run; -json prints it as is.
type report struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Go       string    `json:"go"`
	CPUs     int       `json:"cpus"`
	CPUModel string    `json:"cpu_model"`
	Note     string    `json:"note"`
	Params   params    `json:"params"`
	Checks   []check   `json:"checks"`
	Details  []detail  `json:"details"`
	Errors   []string  `json:"errors,omitempty"` // the first error of each run that had any
	KeelHWM  float64   `json:"keel_vmhwm_mb"`    // keel's peak RSS over the whole run
	Redone   int       `json:"redone_runs"`      // runs discarded because other processes disturbed them
	Pass     bool      `json:"pass"`
}

// params are the settings a run used.
type params struct {
	Rate           int     `json:"rate"`
	OpenLoopSec    float64 `json:"open_loop_seconds_per_target"`
	Rounds         int     `json:"rounds"`
	WarmupSec      float64 `json:"warmup_seconds"`
	Workers        int     `json:"open_loop_workers"`
	Streams        int     `json:"sequential_streams_per_target"`
	StreamConc     int     `json:"concurrent_streams"`
	ThroughputSec  float64 `json:"throughput_seconds_per_target"`
	ThroughputConc int     `json:"throughput_concurrency"`
}

// check is one row of the verdict table.
type check struct {
	Metric string   `json:"metric"`
	Unit   string   `json:"unit"`
	Direct *float64 `json:"direct,omitempty"`
	Keel   float64  `json:"keel"`
	Added  *float64 `json:"added,omitempty"` // keel − direct, for latencies
	Ratio  *float64 `json:"ratio,omitempty"` // keel ÷ direct, for throughput
	Floor  string   `json:"floor"`
	Pass   bool     `json:"pass"`
}

// addedCheck compares keel's added latency (keel − direct) with max.
func addedCheck(metric string, direct, keel, max time.Duration) check {
	d, k := ms(direct), ms(keel)
	a := round(k-d, 4)
	return check{Metric: metric, Unit: "ms", Direct: &d, Keel: k, Added: &a,
		Floor: fmt.Sprintf("added ≤ %g ms", ms(max)), Pass: a <= ms(max)}
}

// ratioCheck compares keel's throughput as a share of direct with min.
func ratioCheck(metric, unit string, direct, keel, min float64) check {
	r := 0.0
	if direct > 0 {
		r = round(keel/direct, 4)
	}
	return check{Metric: metric, Unit: unit, Direct: &direct, Keel: keel, Ratio: &r,
		Floor: fmt.Sprintf("keel ≥ %g%% of direct", min*100), Pass: r >= min}
}

// detail summarises one phase against one target.
type detail struct {
	Phase   string  `json:"phase"`
	Target  string  `json:"target"`
	N       int     `json:"n"`
	Errors  int     `json:"errors"`
	Late    int     `json:"late,omitempty"`
	Dials   int64   `json:"dials"` // connections the bench opened
	Seconds float64 `json:"seconds,omitempty"`
	Rate    float64 `json:"rate,omitempty"` // completed per second
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
	TTFT50  float64 `json:"ttft_p50_ms,omitempty"`
	TTFT99  float64 `json:"ttft_p99_ms,omitempty"`
	Svc50   float64 `json:"service_p50_ms,omitempty"` // open loop: from the actual send
	Svc99   float64 `json:"service_p99_ms,omitempty"`
	Slip50  float64 `json:"slip_p50_ms,omitempty"` // open loop: send − scheduled
	Slip99  float64 `json:"slip_p99_ms,omitempty"`
	KeelCPU float64 `json:"keel_cpu_us_per_req,omitempty"`
	SimCPU  float64 `json:"sim_cpu_us_per_req,omitempty"`
	BenchCP float64 `json:"bench_cpu_us_per_req,omitempty"`
	// Others is the share of the machine's cores that other processes
	// used during the measurement: anything much above zero disturbed it.
	Others float64 `json:"others_cpu_util"`
	// CPUUtil is the share of the machine's cores that keel, the
	// simulator and the bench used together during the measurement.
	CPUUtil float64 `json:"cpu_util,omitempty"`
}

func summarize(phase string, t *target, r *result, cpus int) detail {
	lat, ttft := sorted(r.lat), sorted(r.ttft)
	d := detail{Phase: phase, Target: t.name, N: len(lat), Errors: r.errs, Late: r.late, Dials: r.dials,
		P50: ms(q(lat, .50)), P90: ms(q(lat, .90)), P99: ms(q(lat, .99)), P999: ms(q(lat, .999)), Max: ms(q(lat, 1)),
		TTFT50: ms(q(ttft, .50)), TTFT99: ms(q(ttft, .99))}
	if r.elapsed > 0 {
		d.Seconds = round(r.elapsed.Seconds(), 3)
		d.Others = round(r.cpu.others.Seconds()/r.elapsed.Seconds()/float64(cpus), 3)
		if !r.interleaved {
			d.Rate = round(float64(len(lat))/r.elapsed.Seconds(), 1)
			d.CPUUtil = round((r.cpu.keel+r.cpu.sim+r.cpu.bench).Seconds()/r.elapsed.Seconds()/float64(cpus), 3)
		}
	}
	if len(r.svc) > 0 {
		svc, slip := sorted(r.svc), sorted(r.slip)
		d.Svc50, d.Svc99 = ms(q(svc, .50)), ms(q(svc, .99))
		d.Slip50, d.Slip99 = ms(q(slip, .50)), ms(q(slip, .99))
	}
	if n := len(lat) + r.late; n > 0 {
		per := func(c time.Duration) float64 { return round(float64(c.Microseconds())/float64(n), 1) }
		d.KeelCPU, d.SimCPU, d.BenchCP = per(r.cpu.keel), per(r.cpu.sim), per(r.cpu.bench)
		if t.name == "direct" {
			d.KeelCPU = 0 // keel idles during direct runs
		}
	}
	return d
}

func sorted(v []time.Duration) []time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

// q is the exact p-quantile of sorted s by the nearest-rank method (the
// smallest value with at least p of the samples at or below it).
func q(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 4) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nkeel load benchmark  %s\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "command: %s\n", r.Command)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s; %s\n\n", r.CPUs, r.CPUModel, r.Go, r.Note)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tdirect\tkeel\tadded/ratio\tfloor\tresult\t")
	for _, c := range r.Checks {
		dir, diff := "-", "-"
		if c.Direct != nil {
			dir = num(*c.Direct, c.Unit)
		}
		switch {
		case c.Added != nil:
			diff = fmt.Sprintf("%+.3f ms", *c.Added)
		case c.Ratio != nil:
			diff = fmt.Sprintf("%.1f%%", *c.Ratio*100)
		}
		res := "PASS"
		if !c.Pass {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Metric, dir, num(c.Keel, c.Unit), diff, c.Floor, res)
	}
	tw.Flush()

	fmt.Fprintf(w, "\ndetails (latency in ms; open loop latency counts from the scheduled send; cpu in µs per completed request)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\ttarget\tn\terr\tdials\treq/s\tp50\tp90\tp99\tp99.9\tmax\tttft50\tttft99\tsvc50\tsvc99\tslip50\tslip99\tkeel cpu\tsim cpu\tbench cpu\tcpu util\tothers\t")
	for _, d := range r.Details {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			d.Phase, d.Target, d.N, d.Errors, d.Dials, opt(d.Rate, "%.0f"), d.P50, d.P90, d.P99, d.P999, d.Max,
			opt(d.TTFT50, "%.3f"), opt(d.TTFT99, "%.3f"), opt(d.Svc50, "%.3f"), opt(d.Svc99, "%.3f"),
			opt(d.Slip50, "%.3f"), opt(d.Slip99, "%.3f"),
			opt(d.KeelCPU, "%.0f"), opt(d.SimCPU, "%.0f"), opt(d.BenchCP, "%.0f"), opt(d.CPUUtil*100, "%.0f%%"), opt(d.Others*100, "%.0f%%"))
	}
	tw.Flush()
	for _, d := range r.Details {
		if d.Others > disturbAbove && !strings.HasPrefix(d.Phase, "warm-up") {
			fmt.Fprintf(w, "\nwarning: other processes used over %.0f%% of the machine during some timed runs (column others): those numbers are disturbed\n", disturbAbove*100)
			break
		}
	}
	if r.Redone > 0 {
		fmt.Fprintf(w, "\n%d run(s) were disturbed by other processes, discarded and redone\n", r.Redone)
	}
	fmt.Fprintf(w, "\nkeel VmHWM (peak RSS over the whole run): %.1f MB\n", r.KeelHWM)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "verdict: %s\n", verdict)
}

func num(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.3f ms", v)
	case "":
		return fmt.Sprintf("%.0f", v)
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func opt(v float64, f string) string {
	if v == 0 {
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf(f, v))
}
