package sim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests run under testing/synctest over an in-memory network, so
// every delay is exact and takes no real time.

const ms = time.Millisecond

func TestLatencySimFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Builtin()) // sim-fast: headers 5ms, ttft 10ms, 500 tokens/s
		c, base, stop := startPipeServer(s)
		defer stop()

		t0 := time.Now()
		resp, err := post(t.Context(), t, c, base, chatReq("sim-fast", true, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(t0); got != 5*ms {
			t.Errorf("headers after %v, want 5ms", got)
		}
		st := decodeStream(t, resp.Body)
		resp.Body.Close()
		// Role chunk and first token after the TTFT, then a token every 2ms.
		want := []time.Duration{10 * ms}
		for i := range DefaultTokens {
			want = append(want, 10*ms+time.Duration(i)*2*ms)
		}
		want = append(want, 56*ms, 56*ms) // finish, [DONE]
		if diff := cmp.Diff(want, st.Times); diff != "" {
			t.Errorf("event times after headers (-want +got):\n%s", diff)
		}

		t0 = time.Now()
		resp, err = post(t.Context(), t, c, base, chatReq("sim-fast", false, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := time.Since(t0); got != 61*ms {
			t.Errorf("non-streaming answer after %v, want 61ms (5+10+23·2)", got)
		}

		synctest.Wait()
		a := s.Attempts("sim-fast")[0]
		got := []time.Duration{a.Headers.Sub(a.Arrived), a.FirstToken.Sub(a.Arrived), a.Ended.Sub(a.Arrived)}
		if diff := cmp.Diff([]time.Duration{5 * ms, 15 * ms, 61 * ms}, got); diff != "" {
			t.Errorf("attempt headers, first token, end (-want +got):\n%s", diff)
		}
		if !a.Completed || a.Canceled || a.Tokens != DefaultTokens {
			t.Errorf("attempt = %+v", a)
		}
	})
}

func TestStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := Builtin().Profiles["sim-fast"]
		stall := fast
		stall.Faults = []Fault{{Kind: FaultStall, After: 3, For: 5 * time.Second, Always: true}}
		forever := fast
		forever.Faults = []Fault{{Kind: FaultStall, After: 3, Always: true}}
		s := newSim(map[string]Profile{"stall": stall, "forever": forever})
		c, base, stop := startPipeServer(s)
		defer stop()

		resp, err := post(t.Context(), t, c, base, chatReq("stall", true, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		st := decodeStream(t, resp.Body)
		resp.Body.Close()
		if st.Content != join(Answer("hi", DefaultTokens)) || !st.Done {
			t.Errorf("stalled stream did not complete: %q", st.Content)
		}
		// Events: role, tokens 0-2 at 10,12,14ms; token 3 after the stall.
		if got, want := st.Times[4]-st.Times[3], 5*time.Second+2*ms; got != want {
			t.Errorf("gap before token 3 = %v, want %v", got, want)
		}

		// A stall without an end lasts until the client gives up.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		resp, err = post(ctx, t, c, base, chatReq("forever", true, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		st = decodeStream(t, resp.Body)
		resp.Body.Close()
		if !errors.Is(st.Err, context.DeadlineExceeded) || st.Content != join(Answer("hi", DefaultTokens)[:3]) {
			t.Errorf("err %v content %q, want the deadline after 3 tokens", st.Err, st.Content)
		}
		synctest.Wait()
		a := s.Attempts("forever")[0]
		if !a.Canceled || a.Tokens != 3 || a.Fault != "stall" || a.Ended.Sub(a.Arrived) != 10*time.Second {
			t.Errorf("attempt = %+v", a)
		}
	})
}

func TestHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(map[string]Profile{"m": {Faults: []Fault{{Kind: FaultHang, Always: true}}}})
		c, base, stop := startPipeServer(s)
		defer stop()

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := post(ctx, t, c, base, chatReq("m", true, []msg{user("hi")}, nil))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the client's deadline", err)
		}
		if got := time.Since(t0); got != 30*time.Second {
			t.Errorf("gave up after %v", got)
		}
		synctest.Wait()
		a := s.Attempts("m")[0]
		got := Attempt{Fault: a.Fault, Status: a.Status, Canceled: a.Canceled}
		if diff := cmp.Diff(Attempt{Fault: "hang", Canceled: true}, got); diff != "" || a.Ended.Sub(a.Arrived) != 30*time.Second {
			t.Errorf("attempt (-want +got):\n%s, lasted %v", diff, a.Ended.Sub(a.Arrived))
		}
	})
}

// TestClientGoesAway checks that a disconnect mid-stream ends the attempt
// at once and is logged as canceled.
func TestClientGoesAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Builtin())
		c, base, stop := startPipeServer(s)
		defer stop()

		ctx, cancel := context.WithCancel(t.Context())
		resp, err := post(ctx, t, c, base, chatReq("sim-fast", true, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for n := 0; n < 4*2; n++ { // role chunk + 3 tokens, each with its blank line
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		resp.Body.Close()
		synctest.Wait()
		a := s.Attempts("sim-fast")[0]
		if !a.Canceled || a.Completed || a.Tokens != 3 || a.Ended.Sub(a.Arrived) != 19*ms {
			t.Errorf("attempt = %+v, lasted %v; want canceled after 3 tokens at 19ms", a, a.Ended.Sub(a.Arrived))
		}
	})
}

func TestLatencyReproducible(t *testing.T) {
	latencies := func(seed int64) [][2]time.Duration {
		var out [][2]time.Duration
		synctest.Test(t, func(t *testing.T) {
			cfg := Builtin()
			cfg.Seed = seed
			s := New(cfg)
			c, base, stop := startPipeServer(s)
			defer stop()
			for range 8 {
				resp, err := post(t.Context(), t, c, base, chatReq("sim", true, []msg{user("hi")}, nil))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			synctest.Wait()
			for _, a := range s.Attempts("") {
				out = append(out, [2]time.Duration{a.Headers.Sub(a.Arrived), a.FirstToken.Sub(a.Headers)})
			}
		})
		return out
	}
	a := latencies(3)
	if diff := cmp.Diff(a, latencies(3)); diff != "" {
		t.Errorf("same seed, different latencies (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(a, latencies(4)); diff == "" {
		t.Errorf("seeds 3 and 4 gave the same latencies")
	}
	for _, l := range a {
		if l[0] < 20*ms || l[0] > 3*time.Second || l[1] < 30*ms || l[1] > 5*time.Second {
			t.Errorf("latency %v outside the sim profile's bounds", l)
		}
	}
}

func TestDistributions(t *testing.T) {
	quantiles := func(d Dist[time.Duration]) (p50, p95 time.Duration) {
		var r prng
		r.seed(1, "m", 1, 0)
		v := make([]time.Duration, 20001)
		for i := range v {
			v[i] = d.sample(&r)
		}
		slices.Sort(v)
		return v[len(v)/2], v[len(v)*95/100]
	}
	tests := []struct {
		name         string
		d            Dist[time.Duration]
		p50lo, p50hi time.Duration
		p95lo, p95hi time.Duration
	}{
		{"fixed", Dist[time.Duration]{Value: 7 * ms}, 7 * ms, 7 * ms, 7 * ms, 7 * ms},
		{"uniform", Dist[time.Duration]{Kind: Uniform, Min: 100 * ms, Max: 200 * ms}, 145 * ms, 155 * ms, 190 * ms, 200 * ms},
		// e^(1.645·1.0) ≈ 5.18: the heavy tail
		{"heavytail ttft", Builtin().Profiles["sim-heavytail"].TTFT, 190 * ms, 210 * ms, 950 * ms, 1100 * ms},
		{"clamped", Dist[time.Duration]{Kind: Lognormal, Median: 100 * ms, Sigma: 2, Max: 150 * ms}, 95 * ms, 105 * ms, 150 * ms, 150 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p50, p95 := quantiles(tt.d)
			if p50 < tt.p50lo || p50 > tt.p50hi || p95 < tt.p95lo || p95 > tt.p95hi {
				t.Errorf("p50 %v (want %v..%v), p95 %v (want %v..%v)", p50, tt.p50lo, tt.p50hi, p95, tt.p95lo, tt.p95hi)
			}
		})
	}
}

// TestCutOverPipe checks that a cut looks the same on any transport: the
// client reads the tokens, then an unexpected EOF, no [DONE].
func TestCutOverPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := Builtin().Profiles["sim-fast"]
		fast.Faults = []Fault{{Kind: FaultCut, After: 5, Always: true}}
		s := newSim(map[string]Profile{"m": fast})
		c, base, stop := startPipeServer(s)
		defer stop()
		resp, err := post(t.Context(), t, c, base, chatReq("m", true, []msg{user("hi")}, nil))
		if err != nil {
			t.Fatal(err)
		}
		st := decodeStream(t, resp.Body)
		resp.Body.Close()
		if !errors.Is(st.Err, io.ErrUnexpectedEOF) || st.Done || !strings.HasPrefix(join(Answer("hi", DefaultTokens)), st.Content) ||
			st.Content != join(Answer("hi", DefaultTokens)[:5]) {
			t.Errorf("err %v done %v content %q", st.Err, st.Done, st.Content)
		}
		synctest.Wait()
		if a := s.Attempts("m")[0]; a.Tokens != 5 || a.Completed || a.Fault != "cut" {
			t.Errorf("attempt = %+v", a)
		}
	})
}
