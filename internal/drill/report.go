package drill

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keel-ai/keel/internal/sim"
)

// Stats are percentiles of a set of durations (nearest rank).
type Stats struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// StatsOf returns the percentiles of ds. It sorts ds.
func StatsOf(ds []time.Duration) Stats {
	slices.Sort(ds)
	s := Stats{N: len(ds)}
	if len(ds) == 0 {
		return s
	}
	at := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)]
	}
	s.P50, s.P95, s.P99, s.Max = at(0.50), at(0.95), at(0.99), ds[len(ds)-1]
	return s
}

// Models counts one simulated model's attempts.
type Models struct {
	Attempts int `json:"attempts"`
	// Faulted is the attempts a fault was injected into.
	Faulted int `json:"faulted"`
	// Rejected is the attempts answered 400 without a fault: a refused
	// prefill, on the drill's fallback.
	Rejected int `json:"rejected"`
}

// Failure is a request that did not get the complete answer, with the
// upstream attempts that served it: a reproduction to report.
type Failure struct {
	Result
	// Upstream is the request's attempts in the simulator's log.
	Upstream []sim.Attempt `json:"upstream"`
}

// Report sums up a run.
type Report struct {
	Requests int `json:"requests"`
	Streams  int `json:"streams"`
	// Verdicts counts the answers by verdict.
	Complete   int `json:"complete"`
	Truncated  int `json:"truncated"`
	BrokenSeam int `json:"broken_seam"`
	Errors     int `json:"errors"`
	// OddFinish counts complete answers whose finish_reason is not "stop".
	OddFinish int `json:"odd_finish"`
	// ErrorKinds counts explicit errors by kind (status and code).
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// Latency is from request to the end of the response, over all
	// requests; TTFT from request to first text, over streams that got
	// text.
	Latency Stats `json:"latency"`
	TTFT    Stats `json:"ttft"`
	// Attempts is the upstream attempts the simulator logged; Extra is
	// (Attempts - Requests) / Requests.
	Attempts int     `json:"attempts"`
	Extra    float64 `json:"extra_attempts"`
	// Exposed counts the requests that met at least one injected fault:
	// how much of the run the faults actually reached.
	Exposed int `json:"exposed"`
	// ByModel counts attempts per simulated model.
	ByModel map[string]Models `json:"by_model"`
	// Faults counts the attempts per injected fault name.
	Faults map[string]int `json:"faults"`
	// Failures are the first non-complete answers of each verdict (and,
	// for errors, of each kind), at most maxFailures each.
	Failures []Failure     `json:"failures,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// maxFailures is how many failures of each verdict and error kind a
// Report keeps.
const maxFailures = 3

// Summarize sums up results and the simulator's attempt log of the same
// run (attempts of other requests, untagged, count toward the totals too).
func Summarize(results []Result, attempts []sim.Attempt, elapsed time.Duration) *Report {
	r := &Report{Requests: len(results), ByModel: map[string]Models{}, Faults: map[string]int{}, Elapsed: elapsed}
	byTag := map[string][]sim.Attempt{}
	for _, a := range attempts {
		byTag[a.RequestID] = append(byTag[a.RequestID], a)
		m := r.ByModel[a.Model]
		m.Attempts++
		switch {
		case a.Fault != "":
			m.Faulted++
			r.Faults[a.Fault]++
		case a.Status == 400:
			m.Rejected++
		}
		r.ByModel[a.Model] = m
	}
	r.Attempts = len(attempts)
	if r.Requests > 0 {
		r.Extra = float64(r.Attempts-r.Requests) / float64(r.Requests)
	}
	var lat, ttft []time.Duration
	kept := map[string]int{} // by verdict and error kind
	for _, res := range results {
		lat = append(lat, res.Latency)
		for _, a := range byTag[tagOf(res.Index)] {
			if a.Fault != "" {
				r.Exposed++
				break
			}
		}
		if res.Stream {
			r.Streams++
			if res.TTFT > 0 {
				ttft = append(ttft, res.TTFT)
			}
		}
		switch res.Verdict {
		case Complete:
			r.Complete++
			if res.Reply.Finish != "stop" {
				r.OddFinish++
			}
			continue
		case Truncated:
			r.Truncated++
		case BrokenSeam:
			r.BrokenSeam++
		case Errored:
			r.Errors++
			if r.ErrorKinds == nil {
				r.ErrorKinds = map[string]int{}
			}
			r.ErrorKinds[res.Reply.ErrKind]++
		}
		if k := res.Verdict.String() + " " + res.Reply.ErrKind; kept[k] < maxFailures {
			kept[k]++
			r.Failures = append(r.Failures, Failure{Result: res, Upstream: byTag[tagOf(res.Index)]})
		}
	}
	// The worst first: a broken seam, then a truncated success.
	severity := func(v Verdict) int { return [...]int{Complete: 3, Truncated: 1, BrokenSeam: 0, Errored: 2}[v] }
	slices.SortStableFunc(r.Failures, func(a, b Failure) int { return cmp.Compare(severity(a.Verdict), severity(b.Verdict)) })
	r.Latency, r.TTFT = StatsOf(lat), StatsOf(ttft)
	return r
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// Floors reports the floors the run missed: 100% complete answers, no
// truncated successes, no broken seams. Nil means it passed.
func (r *Report) Floors() error {
	var errs []error
	if r.Truncated > 0 {
		errs = append(errs, fmt.Errorf("%d truncated successes (want 0)", r.Truncated))
	}
	if r.BrokenSeam > 0 {
		errs = append(errs, fmt.Errorf("%d broken seams (want 0)", r.BrokenSeam))
	}
	if r.Complete < r.Requests {
		errs = append(errs, fmt.Errorf("%.2f%% complete answers (want 100%%)", 100*share(r.Complete, r.Requests)))
	}
	return errors.Join(errs...)
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

// WriteTable prints r for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	n := r.Requests
	p("requests\t%d\t(%d streaming, %d not)\t", n, r.Streams, n-r.Streams)
	p("elapsed\t%.1fs\t\t", r.Elapsed.Seconds())
	p("complete\t%d\t%s\tfloor 100%%", r.Complete, pct(share(r.Complete, n)))
	p("truncated success\t%d\t%s\tfloor 0", r.Truncated, pct(share(r.Truncated, n)))
	p("broken seam\t%d\t%s\tfloor 0", r.BrokenSeam, pct(share(r.BrokenSeam, n)))
	p("explicit error\t%d\t%s\t", r.Errors, pct(share(r.Errors, n)))
	for _, k := range slices.Sorted(maps.Keys(r.ErrorKinds)) {
		p("  %s\t%d\t\t", k, r.ErrorKinds[k])
	}
	if r.OddFinish > 0 {
		p("complete, finish≠stop\t%d\t\t", r.OddFinish)
	}
	p("latency p50 / p95 / p99\t%s / %s / %s\t(max %s)\t", ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99), ms(r.Latency.Max))
	p("TTFT p50 / p95 / p99\t%s / %s / %s\t(%d streams, max %s)\t", ms(r.TTFT.P50), ms(r.TTFT.P95), ms(r.TTFT.P99), r.TTFT.N, ms(r.TTFT.Max))
	p("met a fault\t%d\t%s of requests\t", r.Exposed, pct(share(r.Exposed, n)))
	p("upstream attempts\t%d\t+%s extra\t", r.Attempts, pct(r.Extra))
	for _, m := range slices.Sorted(maps.Keys(r.ByModel)) {
		c := r.ByModel[m]
		extra := ""
		if c.Rejected > 0 {
			extra = fmt.Sprintf(", %d refused (400)", c.Rejected)
		}
		p("  %s\t%d\t%d faulted (%s)%s\t", m, c.Attempts, c.Faulted, pct(share(c.Faulted, c.Attempts)), extra)
	}
	if len(r.Faults) > 0 {
		p("faults injected\t\t\t")
		names := slices.SortedFunc(maps.Keys(r.Faults), func(a, b string) int {
			return cmp.Or(cmp.Compare(r.Faults[b], r.Faults[a]), strings.Compare(a, b))
		})
		for _, f := range names {
			p("  %s\t%d\t\t", f, r.Faults[f])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Failures {
		f.write(w)
	}
	return nil
}

// write prints a failure as a reproduction: the request, what the client
// got, and the upstream attempts behind it.
func (f *Failure) write(w io.Writer) {
	mode := "non-streaming"
	if f.Stream {
		mode = "streaming"
	}
	fmt.Fprintf(w, "\n%s: request %d (%s, %q), keel %s, target %s\n", strings.ToUpper(f.Verdict.String()), f.Index, mode, f.Prompt, f.RequestID, f.Target)
	fmt.Fprintf(w, "  status %d, clean end %v, finish %q\n", f.Reply.Status, f.Reply.Clean, f.Reply.Finish)
	if f.Reply.Err != "" {
		fmt.Fprintf(w, "  error: %s\n", f.Reply.Err)
	}
	if f.Reply.Garbled != "" {
		fmt.Fprintf(w, "  garbled: %s\n", f.Reply.Garbled)
	}
	fmt.Fprintf(w, "  got:  %q\n  want: %q\n", f.Reply.Text, f.Want)
	for _, a := range f.Upstream {
		fault := a.Fault
		if fault == "" {
			fault = "-"
		}
		fmt.Fprintf(w, "  upstream #%d %s: +%s fault %s, status %d, tokens %d, completed %v, canceled %v\n",
			a.Number, a.Model, ms(a.Arrived.Sub(f.Upstream[0].Arrived)), fault, a.Status, a.Tokens, a.Completed, a.Canceled)
	}
}

// Hedging compares one profile's runs with hedging off and on.
type Hedging struct {
	Profile HedgeProfile `json:"profile"`
	Off     *Report      `json:"off"`
	On      *Report      `json:"on"`
	// P99Ratio is the p99 time to first token with hedging over without.
	P99Ratio float64 `json:"p99_ratio"`
	// Cost is the extra upstream attempts hedging added, as a share of
	// requests.
	Cost float64 `json:"cost"`
}

// CompareHedging compares runs of profile p with hedging off and on.
func CompareHedging(p HedgeProfile, off, on *Report) Hedging {
	h := Hedging{Profile: p, Off: off, On: on, Cost: on.Extra - off.Extra}
	if off.TTFT.P99 > 0 {
		h.P99Ratio = float64(on.TTFT.P99) / float64(off.TTFT.P99)
	}
	return h
}

// WriteHedging prints the hedging comparisons for people.
func WriteHedging(w io.Writer, hs []Hedging) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "profile\thedging\tTTFT p50\tp95\tp99\tmax\tp99 on/off\textra upstream\tcomplete\t")
	for _, h := range hs {
		for _, run := range []struct {
			name string
			r    *Report
		}{{"off", h.Off}, {"on", h.On}} {
			ratio := ""
			if run.name == "on" {
				ratio = fmt.Sprintf("%.2f", h.P99Ratio)
			}
			t := run.r.TTFT
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t\n", h.Profile.Name, run.name,
				ms(t.P50), ms(t.P95), ms(t.P99), ms(t.Max), ratio, pct(run.r.Extra), run.r.Complete, run.r.Requests)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range hs {
		fmt.Fprintf(w, "%s: %s; hedging cost +%s upstream requests; p99 %s → %s (×%.2f)\n", h.Profile.Name, h.Profile.About,
			pct(h.Cost), ms(h.Off.TTFT.P99), ms(h.On.TTFT.P99), h.P99Ratio)
	}
	for _, h := range hs {
		for _, r := range []*Report{h.Off, h.On} {
			for _, f := range r.Failures {
				f.write(w)
			}
		}
	}
	return nil
}
