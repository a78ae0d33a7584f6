package drill

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/sim"
)

func TestStatsOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	want := Stats{N: 100, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if diff := cmp.Diff(want, StatsOf(ds)); diff != "" {
		t.Errorf("StatsOf (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{}, StatsOf(nil)); diff != "" {
		t.Errorf("StatsOf(nil) (-want +got):\n%s", diff)
	}
}

func TestSummarize(t *testing.T) {
	res := func(i int, v Verdict, stream bool, r Reply) Result {
		return Result{Index: i, Stream: stream, Verdict: v, Reply: r, Latency: time.Duration(i+1) * time.Second, TTFT: time.Duration(i+1) * time.Millisecond}
	}
	results := []Result{
		res(0, Complete, true, Reply{Finish: "stop"}),
		res(1, Complete, false, Reply{Finish: "stop"}),
		res(2, Truncated, true, Reply{Finish: "stop"}),
		res(3, Errored, false, Reply{ErrKind: "502 server_error"}),
		res(4, BrokenSeam, true, Reply{}),
		res(5, Complete, false, Reply{Finish: "length"}),
	}
	attempts := []sim.Attempt{
		{Model: Primary, RequestID: "drill-0"},
		{Model: Primary, RequestID: "drill-1", Fault: "cut-mid"},
		{Model: Fallback, RequestID: "drill-1", Status: 400},
		{Model: Fallback, RequestID: "drill-1"},
		{Model: Primary, RequestID: "drill-2"},
		{Model: Primary, RequestID: "drill-3", Fault: "500"},
		{Model: Primary, RequestID: "drill-3", Fault: "500"},
		{Model: Primary, RequestID: "drill-4", Fault: "stall-mid"},
		{Model: Fallback, RequestID: "drill-4"},
		{Model: Primary, RequestID: "drill-5"},
	}
	r := Summarize(results, attempts, time.Minute)
	got := struct {
		Complete, Truncated, BrokenSeam, Errors, OddFinish, Streams, Attempts, Exposed int
		Extra                                                                          float64
		ErrorKinds, Faults                                                             map[string]int
		ByModel                                                                        map[string]Models
		FailureOrder                                                                   []Verdict
		TTFTN                                                                          int
	}{
		r.Complete, r.Truncated, r.BrokenSeam, r.Errors, r.OddFinish, r.Streams, r.Attempts, r.Exposed,
		r.Extra, r.ErrorKinds, r.Faults, r.ByModel, nil, r.TTFT.N,
	}
	for _, f := range r.Failures {
		got.FailureOrder = append(got.FailureOrder, f.Verdict)
	}
	want := got
	want.Complete, want.Truncated, want.BrokenSeam, want.Errors, want.OddFinish = 3, 1, 1, 1, 1
	want.Streams, want.Attempts, want.Exposed, want.Extra = 3, 10, 3, 4.0/6
	want.ErrorKinds = map[string]int{"502 server_error": 1}
	want.Faults = map[string]int{"cut-mid": 1, "500": 2, "stall-mid": 1}
	want.ByModel = map[string]Models{Primary: {Attempts: 7, Faulted: 4}, Fallback: {Attempts: 3, Rejected: 1}}
	want.FailureOrder = []Verdict{BrokenSeam, Truncated, Errored}
	want.TTFTN = 3
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if n := len(r.Failures[0].Upstream); n != 2 {
		t.Errorf("the broken seam's failure has %d upstream attempts, want 2", n)
	}

	err := r.Floors()
	if err == nil {
		t.Fatal("Floors() = nil, want the missed floors")
	}
	for _, s := range []string{"1 truncated", "1 broken seams", "50.00% complete"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Floors() = %q, want it to mention %q", err, s)
		}
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"broken seam", "BROKEN_SEAM: request 4", "cut-mid"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the table lacks %q:\n%s", s, b.String())
		}
	}
}

func TestVerdictText(t *testing.T) {
	for _, v := range []Verdict{Complete, Truncated, BrokenSeam, Errored} {
		b, _ := v.MarshalText()
		var got Verdict
		if err := got.UnmarshalText(b); err != nil || got != v {
			t.Errorf("%v: read back %v, %v", v, got, err)
		}
	}
	var v Verdict
	if err := v.UnmarshalText([]byte("fine")); err == nil {
		t.Error("UnmarshalText(fine) = nil, want an error")
	}
}

func TestFloorsPass(t *testing.T) {
	r := &Report{Requests: 2, Complete: 2}
	if err := r.Floors(); err != nil {
		t.Errorf("Floors() = %v, want nil", err)
	}
}

func TestChaosFaultShares(t *testing.T) {
	cfg := Chaos(1, 24, ContinueReject, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Without the flap, the chance that no rate fault strikes is the
	// product of each one missing: the shares must add up to ~30%.
	miss := 1.0
	kinds := map[sim.FaultKind]bool{}
	for _, f := range cfg.Profiles[Primary].Faults {
		kinds[f.Kind] = true
		if f.Kind != sim.FaultFlap {
			miss *= 1 - f.Rate
		}
	}
	if got := 1 - miss; got < 0.29 || got > 0.31 {
		t.Errorf("the primary's faults strike %.3f of attempts, want about 0.30", got)
	}
	for _, k := range []sim.FaultKind{sim.FaultHTTPError, sim.FaultReset, sim.FaultHang, sim.FaultCut, sim.FaultStall,
		sim.FaultMalformed, sim.FaultNoDone, sim.FaultContextLength, sim.FaultContentFilter, sim.FaultFlap} {
		if !kinds[k] {
			t.Errorf("no %s fault", k)
		}
	}
	if !cfg.Profiles[Fallback].RejectPrefill || len(cfg.Profiles[Fallback].Faults) > 0 {
		t.Errorf("fallback = %+v, want healthy and refusing prefill", cfg.Profiles[Fallback])
	}
	faulty := Chaos(1, 24, ContinuePrefill, 0.15)
	if err := faulty.Validate(); err != nil {
		t.Fatal(err)
	}
	miss = 1.0
	for _, f := range faulty.Profiles[Fallback].Faults {
		miss *= 1 - f.Rate
	}
	if got := 1 - miss; got < 0.149 || got > 0.151 {
		t.Errorf("the fallback's faults strike %.3f of attempts, want 0.15", got)
	}
}
