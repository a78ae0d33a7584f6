package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/memnet"
	"github.com/keel-ai/keel/internal/provider/openai"
	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/sim"
)

// world is one test's universe on a fake clock: the simulator behind an
// in-memory network, keel's real OpenAI adapter in front of it, and a
// router. Issue 3: every behaviour is tested against the simulator, and
// asserts both what the client got and what the upstream saw.
type world struct {
	t     *testing.T
	sim   *sim.Server
	start time.Time
	rt    *router.Router
	prov  map[string]*openai.Client
	// concurrent is set when several goroutines ask at once: only one may
	// call synctest.Wait.
	concurrent bool
}

// target names a simulated model behind the provider named prov.
type target struct {
	prov, model string
	prefill     bool
}

func newWorld(t *testing.T, profiles map[string]sim.Profile, routes map[string][]target, o router.Options) *world {
	ln := memnet.Listen()
	w := &world{t: t, sim: sim.New(sim.Config{Profiles: profiles}), start: time.Now(), prov: map[string]*openai.Client{}}
	hs := &http.Server{Handler: w.sim}
	go hs.Serve(ln)
	hc := ln.Client()
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		hs.Close()
		ln.Close()
	})
	var rs []router.Route
	for name, ts := range routes {
		r := router.Route{Name: name}
		for _, tg := range ts {
			p, ok := w.prov[tg.prov]
			if !ok {
				p = openai.New(openai.Config{
					Name: tg.prov, BaseURL: "http://sim/v1", HeaderTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
					Log: slog.New(slog.DiscardHandler),
				}, hc)
				w.prov[tg.prov] = p
			}
			rt := router.Target{Provider: p, Model: tg.model, Continue: router.ContinueRestart}
			if tg.prefill {
				rt.Continue = router.ContinuePrefill
			}
			r.Targets = append(r.Targets, rt)
		}
		rs = append(rs, r)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w.rt = router.New(rs, nil, o)
	return w
}

// result is what one request's client saw.
type result struct {
	text   string
	finish llm.Finish
	usage  llm.Usage
	err    error
	took   time.Duration
	ttft   time.Duration // to the first event with text
	stream *router.Stream
}

func (w *world) ask(route, prompt string, stream bool) result {
	w.t.Helper()
	start := time.Now()
	rt, err := w.rt.Resolve(route)
	if err != nil {
		w.t.Fatal(err)
	}
	req := &llm.Request{Model: route, Stream: stream, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart(prompt)}}}}
	s, err := w.rt.Serve(context.Background(), rt, req)
	defer s.Close()
	var a llm.Answer
	var ttft time.Duration
	for err == nil {
		var ev *llm.Event
		ev, err = s.Recv()
		if err == nil {
			if ttft == 0 && ev.Text != "" {
				ttft = time.Since(start)
			}
			a.Add(ev)
		}
	}
	if err == io.EOF {
		err = nil
	}
	s.Close()
	if !w.concurrent {
		synctest.Wait() // let the simulator finish logging
	}
	return result{string(a.Text), a.Finish, a.Usage, err, time.Since(start), ttft, s}
}

func canonical(prompt string) string {
	return strings.Join(sim.Answer(sim.PromptOf(prompt), sim.DefaultTokens), "")
}

// complete fails the test unless r is the whole canonical answer.
func (w *world) complete(r result, prompt string) {
	w.t.Helper()
	if r.err != nil {
		w.t.Fatalf("client got error %v, want the complete answer", r.err)
	}
	if want := canonical(prompt); r.text != want {
		w.t.Fatalf("client got %q,\nwant %q", r.text, want)
	}
	if r.finish != llm.FinishStop {
		w.t.Errorf("finish = %q, want stop", r.finish)
	}
}

// attempts returns the arrival times of model's attempts, relative to the
// world's start.
func (w *world) attempts(model string) []time.Duration {
	var out []time.Duration
	for _, a := range w.sim.Attempts(model) {
		out = append(out, a.Arrived.Sub(w.start))
	}
	return out
}

func within(ts []time.Duration, d time.Duration) int {
	n := 0
	for _, t := range ts {
		if t < d {
			n++
		}
	}
	return n
}

func always(f sim.Fault) sim.Profile {
	f.Always = true
	return sim.Profile{Faults: []sim.Fault{f}}
}

func upstreamStatus(err error) int {
	var e *llm.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Issue 3 #1: a 429 with Retry-After is waited out when the wait fits, never
// hammered (at most 2 attempts in the first 1.5 s), and failed over when it
// does not fit.
func TestRateLimitRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault sim.Fault
		// wantPrimary is how many attempts the primary sees in all.
		wantPrimary int
	}{
		{"seconds", sim.Fault{Kind: sim.FaultHTTPError, Status: 429, RetryAfter: time.Second}, 2},
		{"http date", sim.Fault{Kind: sim.FaultHTTPError, Status: 429, RetryAfter: time.Second, RetryAfterDate: true}, 2},
		{"retry-after-ms", sim.Fault{Kind: sim.FaultHTTPError, Status: 429, RetryAfterMS: 800}, 2},
		{"too long to wait: fail over at once", sim.Fault{Kind: sim.FaultHTTPError, Status: 429, RetryAfter: 30 * time.Second}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, map[string]sim.Profile{"rl": always(tt.fault), "good": {}},
					map[string][]target{"r": {{"a", "rl", false}, {"b", "good", false}}}, router.Options{})
				r := w.ask("r", "hello there", true)
				w.complete(r, "hello there")
				got := w.attempts("rl")
				if len(got) != tt.wantPrimary || within(got, 1500*time.Millisecond) > 2 {
					t.Errorf("primary attempts at %v, want %d with at most 2 in the first 1.5s", got, tt.wantPrimary)
				}
				for i := 1; i < len(got); i++ {
					if gap := got[i] - got[i-1]; gap < 800*time.Millisecond {
						t.Errorf("retry %d came %v after the last, before the Retry-After", i, gap)
					}
				}
				if n := len(w.attempts("good")); n != 1 {
					t.Errorf("fallback attempts = %d, want 1", n)
				}
			})
		})
	}
}

// Issue 3 #2: a persistent 429 without Retry-After backs off exponentially
// with jitter, then fails over: at most 4 attempts in the first 3 s and 6 in
// all.
func TestRateLimitBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"rl1": always(sim.Fault{Kind: sim.FaultHTTPError, Status: 429}),
			"rl2": always(sim.Fault{Kind: sim.FaultHTTPError, Status: 429}),
		}, map[string][]target{"r": {{"a", "rl1", false}, {"b", "rl2", false}}}, router.Options{})
		r := w.ask("r", "hi", false)
		if upstreamStatus(r.err) != 429 {
			t.Fatalf("err = %v, want the upstream's 429", r.err)
		}
		all := append(w.attempts("rl1"), w.attempts("rl2")...)
		if len(all) > 6 || within(all, 3*time.Second) > 4 {
			t.Errorf("attempts at %v: want at most 4 in the first 3s and 6 in all", all)
		}
		a := w.attempts("rl1")
		if len(a) < 2 || a[1]-a[0] < 100*time.Millisecond {
			t.Errorf("primary attempts at %v: want a backoff between them", a)
		}
	})
}

// Issue 3 #3: a single 500 is retried on the same target, which succeeds.
func TestServerErrorOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"once": {Faults: []sim.Fault{{Kind: sim.FaultHTTPError, Status: 500, Attempts: []int{1}}}},
			"good": {},
		}, map[string][]target{"r": {{"a", "once", false}, {"b", "good", false}}}, router.Options{})
		r := w.ask("r", "hi", true)
		w.complete(r, "hi")
		if a, g := len(w.attempts("once")), len(w.attempts("good")); a != 2 || g != 0 {
			t.Errorf("attempts: primary %d, fallback %d; want 2 and 0", a, g)
		}
	})
}

// Issue 3 #4: a persistent 503 gets a bounded number of retries, then fails
// over; with no target left, the client gets the upstream's own status and
// message.
func TestOverloadedPersistent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"down": always(sim.Fault{Kind: sim.FaultHTTPError, Status: 503, Message: "the engine is overloaded"}),
			"good": {},
		}, map[string][]target{
			"r":    {{"a", "down", false}, {"b", "good", false}},
			"solo": {{"a", "down", false}},
		}, router.Options{})
		w.complete(w.ask("r", "hi", true), "hi")
		if n := len(w.attempts("down")); n != 2 {
			t.Errorf("primary attempts = %d, want 2 (one retry)", n)
		}
		r := w.ask("solo", "hi", false)
		var e *llm.Error
		if !errors.As(r.err, &e) || e.Status != 503 || e.Message != "the engine is overloaded" {
			t.Errorf("err = %v, want the upstream's 503 and message", r.err)
		}
	})
}

// Issue 3 #5 and #6: a reset before headers, or no response at all, is
// answered by the fallback; a silent target is tried only once and the call
// ends well inside its deadline.
func TestResetAndSilence(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fault   sim.Fault
		maxTook time.Duration
	}{
		{"reset", sim.Fault{Kind: sim.FaultReset}, time.Second},
		{"no response", sim.Fault{Kind: sim.FaultHang}, 31 * time.Second}, // header timeout 30s
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w := newWorld(t, map[string]sim.Profile{"bad": always(tt.fault), "good": {}},
						map[string][]target{"r": {{"a", "bad", false}, {"b", "good", false}}}, router.Options{})
					r := w.ask("r", "hi", stream)
					w.complete(r, "hi")
					if r.took > tt.maxTook {
						t.Errorf("took %v, want at most %v", r.took, tt.maxTook)
					}
					if n := len(w.attempts("bad")); n != 1 {
						t.Errorf("primary attempts = %d, want 1", n)
					}
					if s := r.stream.Served(); s.Model != "good" {
						t.Errorf("served by %s, want the fallback", s)
					}
				})
			})
		}
	}
}

// Issue 3 #7: a slow first token fails over at the route's limit, or is
// hedged: the fallback answers first and the slow attempt is cancelled.
func TestSlowFirstToken(t *testing.T) {
	slow := sim.Profile{TTFT: sim.Dist[time.Duration]{Value: 90 * time.Second}}
	t.Run("limit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"slow": slow, "good": {}},
				map[string][]target{"r": {{"a", "slow", false}, {"b", "good", false}}},
				router.Options{Policy: router.Policy{FirstToken: 2 * time.Second, Hedge: ptr(false)}})
			r := w.ask("r", "hi", true)
			w.complete(r, "hi")
			if r.took < 2*time.Second || r.took > 3*time.Second {
				t.Errorf("took %v, want just over the 2s first-token limit", r.took)
			}
		})
	})
	t.Run("default limit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"slow": slow, "good": {}},
				map[string][]target{"r": {{"a", "slow", false}, {"b", "good", false}}}, router.Options{})
			r := w.ask("r", "hi", true)
			w.complete(r, "hi")
			if r.took > 61*time.Second {
				t.Errorf("took %v, want the 60s default limit", r.took)
			}
		})
	})
	t.Run("hedge", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"slow": slow, "good": {}},
				map[string][]target{"r": {{"a", "slow", false}, {"b", "good", false}}},
				router.Options{Policy: router.Policy{HedgeDelay: 500 * time.Millisecond}, Breaker: router.Breaker{HedgeRatio: 1}})
			r := w.ask("r", "hi", true)
			w.complete(r, "hi")
			if r.took > time.Second {
				t.Errorf("took %v, want the hedge to answer soon after 500ms", r.took)
			}
			g := w.attempts("good")
			if len(g) != 1 || g[0] < 500*time.Millisecond {
				t.Errorf("hedge attempts at %v, want one after the 500ms delay", g)
			}
			synctest.Wait()
			if a := w.sim.Attempts("slow"); len(a) != 1 || !a[0].Canceled {
				t.Errorf("slow attempt %+v, want it cancelled", a)
			}
			recs := r.stream.Attempts()
			if len(recs) != 2 || recs[0].Outcome != "canceled" || recs[1].Reason != "hedge" {
				t.Errorf("records = %+v", recs)
			}
		})
	})
}

func ptr[T any](v T) *T { return &v }

// Issue 3 #8, #9, #14: a stream cut or stalled mid-answer is continued on
// the fallback, whether it continues a prefill, restarts, or rejects the
// prefill; the client gets one complete answer, with usage that adds up.
func TestMidStreamContinuation(t *testing.T) {
	cut := always(sim.Fault{Kind: sim.FaultCut, After: 10})
	stall := always(sim.Fault{Kind: sim.FaultStall, After: 7})
	for _, tt := range []struct {
		name     string
		primary  sim.Profile
		fallback sim.Profile
		prefill  bool
	}{
		{"cut, prefill", cut, sim.Profile{}, true},
		{"cut, restart", cut, sim.Profile{Restart: true}, false},
		{"cut, fallback rejects prefill", cut, sim.Profile{RejectPrefill: true}, true},
		{"stall, prefill", stall, sim.Profile{}, true},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w := newWorld(t, map[string]sim.Profile{"p": tt.primary, "f": tt.fallback},
						map[string][]target{"r": {{"a", "p", false}, {"b", "f", tt.prefill}}}, router.Options{})
					r := w.ask("r", "tell me a story", stream)
					w.complete(r, "tell me a story")
					if r.usage.Output != sim.DefaultTokens {
						t.Errorf("usage %+v: output %d, want %d", r.usage, r.usage.Output, sim.DefaultTokens)
					}
					if n := len(w.attempts("p")); n != 1 {
						t.Errorf("primary attempts = %d, want 1", n)
					}
					fb := w.sim.Attempts("f")
					if len(fb) == 0 || !fb[len(fb)-1].Completed {
						t.Errorf("fallback attempts %+v, want a completed one", fb)
					}
				})
			})
		}
	}
	t.Run("no target to continue on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"p": cut}, map[string][]target{"r": {{"a", "p", false}}}, router.Options{})
			r := w.ask("r", "tell me a story", true)
			if r.err == nil {
				t.Fatalf("a cut stream ended cleanly with %q", r.text)
			}
			if r.finish != "" {
				t.Errorf("finish = %q on a broken answer", r.finish)
			}
		})
	})
}

// Issue 3 #10, #11: a malformed chunk is skipped and counted; a stream that
// ends cleanly without [DONE] is complete at once.
func TestMalformedAndNoDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"mal":    always(sim.Fault{Kind: sim.FaultMalformed, After: 5}),
			"nodone": always(sim.Fault{Kind: sim.FaultNoDone}),
		}, map[string][]target{"m": {{"a", "mal", false}}, "n": {{"a", "nodone", false}}}, router.Options{})
		w.complete(w.ask("m", "hi", true), "hi")
		if got := w.prov["a"].Malformed.Load(); got != 1 {
			t.Errorf("malformed count = %d, want 1", got)
		}
		r := w.ask("n", "hi", true)
		w.complete(r, "hi")
		if r.usage.Output != sim.DefaultTokens {
			t.Errorf("usage = %+v, want it reported", r.usage)
		}
	})
}

// Issue 3 #12: context_length_exceeded never retries the same model; it
// tries the next target once, or the route's dedicated fallbacks.
func TestContextLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctxErr := always(sim.Fault{Kind: sim.FaultContextLength})
		w := newWorld(t, map[string]sim.Profile{"small": ctxErr, "small2": ctxErr, "big": {}, "good": {}},
			map[string][]target{
				"r":    {{"a", "small", false}, {"b", "good", false}},
				"r2":   {{"a", "small", false}, {"b", "small2", false}, {"b", "good", false}},
				"solo": {{"a", "small", false}},
			}, router.Options{})
		w.complete(w.ask("r", "hi", true), "hi")
		if n := len(w.attempts("small")); n != 1 {
			t.Errorf("small attempts = %d, want 1", n)
		}
		r := w.ask("r2", "hi", true)
		if upstreamStatus(r.err) != 400 || len(w.attempts("good")) != 1 {
			t.Errorf("r2: err %v, good attempts %d: want the 400 after one failover", r.err, len(w.attempts("good")))
		}
		r = w.ask("solo", "hi", false)
		var e *llm.Error
		if !errors.As(r.err, &e) || e.Code != "context_length_exceeded" {
			t.Errorf("solo: err = %v, want context_length_exceeded", r.err)
		}
	})
	t.Run("dedicated fallbacks", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"small": always(sim.Fault{Kind: sim.FaultContextLength}), "big": {}, "good": {}},
				map[string][]target{"big": {{"c", "big", false}}}, router.Options{})
			big, _ := w.rt.Resolve("big")
			w2 := router.New([]router.Route{{Name: "r", Targets: []router.Target{
				{Provider: w.prov["c"], Model: "small"}, {Provider: w.prov["c"], Model: "good"},
			}, Policy: router.Policy{ContextFallbacks: big.Targets}}}, nil, router.Options{Log: slog.New(slog.DiscardHandler)})
			w.rt = w2
			w.complete(w.ask("r", "hi", true), "hi")
			if b, g := len(w.attempts("big")), len(w.attempts("good")); b != 1 || g != 0 {
				t.Errorf("attempts: big %d, good %d; want the dedicated fallback only", b, g)
			}
		})
	})
}

// Issue 3 #13: a content-filter refusal is never retried and its reason
// reaches the client; failover happens only when the route asks.
func TestContentFilter(t *testing.T) {
	for _, failover := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"cf": always(sim.Fault{Kind: sim.FaultContentFilter}), "good": {}},
				map[string][]target{"r": {{"a", "cf", false}, {"b", "good", false}}},
				router.Options{Policy: router.Policy{FailoverContentFilter: failover}})
			r := w.ask("r", "hi", true)
			if failover {
				w.complete(r, "hi")
			} else {
				var e *llm.Error
				if !errors.As(r.err, &e) || e.Kind != llm.KindContentFilter || e.Message == "" || e.Status != 400 {
					t.Errorf("err = %v, want the vendor's content-filter refusal", r.err)
				}
				if n := len(w.attempts("good")); n != 0 {
					t.Errorf("fallback attempts = %d, want 0", n)
				}
			}
			if n := len(w.attempts("cf")); n != 1 {
				t.Errorf("filtered attempts = %d, want 1", n)
			}
		})
	}
}

// Issue 3 #15: a primary down for a minute opens its breaker; the fallback
// serves without latency spent on the dead primary; half-open probes find
// the recovery, and traffic is back within 30 s.
func TestFlappingPrimary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"flaky": {Faults: []sim.Fault{{Kind: sim.FaultFlap, Down: 60 * time.Second, FromStart: true}}},
			"good":  {},
		}, map[string][]target{"r": {{"a", "flaky", false}, {"b", "good", false}}}, router.Options{})
		var backAt time.Duration
		slowDuringOutage := 0
		for i := 0; i < 40; i++ { // a request every 3 s for 2 minutes
			at := time.Since(w.start)
			r := w.ask("r", "hi", true)
			w.complete(r, "hi")
			if at > 20*time.Second && at < 60*time.Second && r.took > 0 {
				slowDuringOutage++
			}
			if at >= 60*time.Second && backAt == 0 && r.stream.Served().Model == "flaky" {
				backAt = at
			}
			time.Sleep(3 * time.Second)
		}
		t.Logf("back on the primary at %v; primary attempts %v", backAt, w.attempts("flaky"))
		if backAt == 0 || backAt > 90*time.Second {
			t.Errorf("traffic back on the primary at %v, want within 30s of its recovery at 60s", backAt)
		}
		// During the outage only half-open probes reach the primary.
		outage := 0
		for _, a := range w.attempts("flaky") {
			if a > 10*time.Second && a < 60*time.Second {
				outage++
			}
		}
		if outage > 6 {
			t.Errorf("%d attempts hit the dead primary during the outage, want only probes", outage)
		}
		if slowDuringOutage > 6 {
			t.Errorf("%d requests spent time on the dead primary during the outage", slowDuringOutage)
		}
		st := w.rt.Status()
		if len(st) == 0 || st[0].State != "closed" {
			t.Errorf("status after recovery = %+v", st)
		}
	})
}

// Issue 3 #16: the answer names the model that answered, usage describes
// it, and failed attempts are recorded as attempts.
func TestAccounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{"down": always(sim.Fault{Kind: sim.FaultHTTPError, Status: 502}), "good": {}},
			map[string][]target{"r": {{"a", "down", false}, {"b", "good", false}}}, router.Options{})
		r := w.ask("r", "hi", false)
		w.complete(r, "hi")
		if got := r.stream.Served(); got.Model != "good" {
			t.Errorf("served = %s", got)
		}
		recs := r.stream.Attempts()
		var outcomes []string
		for _, a := range recs {
			outcomes = append(outcomes, a.Provider+"/"+a.Model+":"+string(a.Outcome))
		}
		if strings.Join(outcomes, " ") != "a/down:server a/down:server b/good:ok" {
			t.Errorf("attempts = %v", outcomes)
		}
		if r.usage.Output != sim.DefaultTokens || r.usage.Input == 0 {
			t.Errorf("usage = %+v", r.usage)
		}
	})
}

// Issue 3, mid-stream continuation of tool calls: a stream cut inside a
// tool call's arguments is continued, and the client receives each call
// whole and valid, never a corrupt one.
func TestToolCallHeldAcrossCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{"p": always(sim.Fault{Kind: sim.FaultCut, After: 2}), "f": {}},
			map[string][]target{"r": {{"a", "p", false}, {"b", "f", true}}}, router.Options{})
		rt, _ := w.rt.Resolve("r")
		req := &llm.Request{Model: "r", Stream: true,
			Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("weather in Paris?")}}},
			Tools:    []llm.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}`)}},
		}
		s, err := w.rt.Serve(context.Background(), rt, req)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var deltas []llm.ToolCallDelta
		var a llm.Answer
		for {
			ev, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			deltas = append(deltas, ev.ToolCalls...)
			a.Add(ev)
		}
		if len(deltas) != 1 {
			t.Fatalf("tool-call deltas = %+v, want one whole call", deltas)
		}
		d := deltas[0]
		var args map[string]any
		if d.ID == "" || d.Name != "get_weather" || json.Unmarshal([]byte(d.Arguments), &args) != nil || args["city"] == nil {
			t.Errorf("call = %+v, want a complete get_weather call", d)
		}
		if a.Finish != llm.FinishToolCalls {
			t.Errorf("finish = %q", a.Finish)
		}
		if p := w.sim.Attempts("p"); len(p) != 1 || p[0].Completed || p[0].Tokens != 2 {
			t.Errorf("primary attempts = %+v, want one cut after 2 tokens", p)
		}
	})
}

// TestHoldToolCallsCost measures what holding tool calls costs (issue 3
// asks for the figure): on a model streaming 50 tokens/s, the client gets a
// held call's first byte when the call is complete instead of with its
// first fragment, while the whole answer ends at the same time.
func TestHoldToolCallsCost(t *testing.T) {
	measure := func(hold bool) (first, total time.Duration, fragments int) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, map[string]sim.Profile{"m": {TPS: sim.Dist[float64]{Value: 50}}},
				map[string][]target{"r": {{"a", "m", false}}}, router.Options{Policy: router.Policy{HoldToolCalls: &hold}})
			rt, _ := w.rt.Resolve("r")
			start := time.Now()
			s, err := w.rt.Serve(context.Background(), rt, &llm.Request{Model: "r", Stream: true,
				Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("weather?")}}},
				Tools:    []llm.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"},"days":{"type":"integer"}},"required":["city","unit","days"]}`)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for {
				ev, err := s.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(ev.ToolCalls) > 0 {
					if first == 0 {
						first = time.Since(start)
					}
					fragments++
				}
			}
			total = time.Since(start)
		})
		return first, total, fragments
	}
	f0, t0, n0 := measure(false)
	f1, t1, n1 := measure(true)
	t.Logf("at 50 tokens/s: first tool-call byte %v streamed (%d fragments) vs %v held (%d); answer complete at %v vs %v", f0, n0, f1, n1, t0, t1)
	if n1 != 1 || n0 < 2 {
		t.Errorf("fragments: %d streamed, %d held; want several and one", n0, n1)
	}
	if t1 != t0 {
		t.Errorf("holding changed the answer's end: %v vs %v", t1, t0)
	}
	if f1 <= f0 || f1 > t1 {
		t.Errorf("held call's first byte at %v, want after the streamed one's (%v) and by the end (%v)", f1, f0, t1)
	}
}

// With stream_upstream off, a non-streaming client's answer is asked for
// whole, and a whole answer's headers come only when it is done: neither
// the provider's header deadline (30s here) nor the first-token limit
// (60s by default) may cut a long one; the total bounds it.
func TestWholeAnswerOutlastsHeaderDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := sim.Profile{TTFT: sim.Dist[time.Duration]{Value: 90 * time.Second}}
		w := newWorld(t, map[string]sim.Profile{"slow": slow},
			map[string][]target{"r": {{"a", "slow", false}}},
			router.Options{Policy: router.Policy{StreamUpstream: ptr(false), Hedge: ptr(false)}})
		r := w.ask("r", "hi", false)
		w.complete(r, "hi")
		if r.took < 90*time.Second || r.took > 91*time.Second {
			t.Errorf("took %v, want the upstream's 90s", r.took)
		}
		if a := w.sim.Attempts("slow"); len(a) != 1 || a[0].Stream || !a[0].Completed {
			t.Errorf("attempts %+v, want one whole answer, completed", a)
		}
	})
}
