package sim

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ptr[T any](v T) *T { return &v }

func TestErrorFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		status    int
		headers   map[string]string
		typ, code string
		param     string
		message   string // substring
	}{
		{
			name:    "429 with retry hints",
			fault:   Fault{Kind: FaultHTTPError, Status: 429, RetryAfter: 2 * time.Second, RetryAfterMS: 1750, ShouldRetry: ptr(false)},
			status:  429,
			headers: map[string]string{"Retry-After": "2", "Retry-After-Ms": "1750", "X-Should-Retry": "false"},
			typ:     "requests", code: "rate_limit_exceeded", message: "Rate limit reached for m",
		},
		{
			name:    "retry_after rounds up to whole seconds",
			fault:   Fault{Kind: FaultHTTPError, Status: 429, RetryAfter: 1500 * time.Millisecond},
			status:  429,
			headers: map[string]string{"Retry-After": "2", "Retry-After-Ms": ""},
			typ:     "requests", code: "rate_limit_exceeded",
		},
		{
			name:    "retry_after as an HTTP date",
			fault:   Fault{Kind: FaultHTTPError, Status: 503, RetryAfter: 30 * time.Second, RetryAfterDate: true},
			status:  503,
			headers: map[string]string{"Retry-After": "Sat, 01 Jan 2000 00:00:30 GMT"},
			typ:     "server_error", message: "overloaded",
		},
		{
			name:   "500",
			fault:  Fault{Kind: FaultHTTPError, Status: 500},
			status: 500, typ: "server_error", message: "The server had an error",
		},
		{
			name:   "529 with overrides",
			fault:  Fault{Kind: FaultHTTPError, Status: 529, Type: "overloaded_error", Code: "overloaded", Message: "Overloaded"},
			status: 529, typ: "overloaded_error", code: "overloaded", message: "Overloaded",
		},
		{
			name:   "context_length",
			fault:  Fault{Kind: FaultContextLength},
			status: 400, typ: "invalid_request_error", code: "context_length_exceeded", param: "messages",
			message: "maximum context length",
		},
		{
			name:   "content_filter",
			fault:  Fault{Kind: FaultContentFilter},
			status: 400, typ: "invalid_request_error", code: "content_filter", param: "prompt",
			message: "content management policy",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}}, WithClock(func() time.Time { return epoch }))
			c, base := startServer(t, s)
			for _, stream := range []bool{true, false} {
				resp := mustPost(t, c, base, chatReq("m", stream, []msg{user("hi")}, nil))
				if resp.StatusCode != tt.status {
					t.Errorf("stream %v: status = %d, want %d", stream, resp.StatusCode, tt.status)
				}
				for k, v := range tt.headers {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				var e map[string]map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
					t.Fatal(err)
				}
				// All four keys are present, nullable.
				for _, k := range []string{"message", "type", "param", "code"} {
					if _, ok := e["error"][k]; !ok {
						t.Errorf("error body lacks %q: %v", k, e)
					}
				}
				want := map[string]any{"type": tt.typ, "code": nullable(tt.code), "param": nullable(tt.param)}
				got := map[string]any{"type": e["error"]["type"], "code": e["error"]["code"], "param": e["error"]["param"]}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("error body (-want +got):\n%s", diff)
				}
				if msg, _ := e["error"]["message"].(string); !strings.Contains(msg, tt.message) {
					t.Errorf("message %q does not contain %q", msg, tt.message)
				}
			}
			for _, a := range s.Attempts("m") {
				if a.Fault != string(tt.fault.Kind) || a.Status != tt.status || a.Completed || a.Tokens != 0 {
					t.Errorf("attempt = %+v", a)
				}
			}
		})
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestStreamFaults(t *testing.T) {
	ans := Answer("hi", 6)
	tests := []struct {
		name  string
		fault Fault
		// want
		connErr   bool
		readErr   error
		content   string
		done      bool
		finish    string
		malformed int
		// want in the attempt log
		status    int
		tokens    int
		completed bool
	}{
		{name: "reset", fault: Fault{Kind: FaultReset}, connErr: true},
		{name: "cut", fault: Fault{Kind: FaultCut, After: 3}, readErr: io.ErrUnexpectedEOF,
			content: join(ans[:3]), status: 200, tokens: 3},
		{name: "cut after 0 tokens", fault: Fault{Kind: FaultCut}, readErr: io.ErrUnexpectedEOF,
			status: 200},
		{name: "cut past the end", fault: Fault{Kind: FaultCut, After: 99}, readErr: io.ErrUnexpectedEOF,
			content: join(ans), status: 200, tokens: 6},
		{name: "malformed", fault: Fault{Kind: FaultMalformed, After: 2}, content: join(ans), done: true,
			finish: "stop", malformed: 1, status: 200, tokens: 6, completed: true},
		{name: "no_done", fault: Fault{Kind: FaultNoDone}, content: join(ans), finish: "stop",
			status: 200, tokens: 6},
		{name: "stall for a moment", fault: Fault{Kind: FaultStall, After: 2, For: time.Millisecond},
			content: join(ans), done: true, finish: "stop", status: 200, tokens: 6, completed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Tokens: 6, Faults: []Fault{tt.fault}}})
			c, base := startServer(t, s)
			resp, err := post(t.Context(), t, c, base, chatReq("m", true, []msg{user("hi")}, nil))
			if tt.connErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got a response (%d), want a connection error", resp.StatusCode)
				}
				if !isConnError(err) {
					t.Errorf("error %v, want a connection error", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				st := decodeStream(t, resp.Body)
				if !errors.Is(st.Err, tt.readErr) {
					t.Errorf("read error = %v, want %v", st.Err, tt.readErr)
				}
				got := []any{st.Content, st.Done, st.Finish, len(st.Malformed)}
				want := []any{tt.content, tt.done, tt.finish, tt.malformed}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("content, done, finish, malformed (-want +got):\n%s", diff)
				}
				if tt.malformed > 0 && st.Raw[3] != st.Malformed[0] {
					t.Errorf("garbled line at %q, want after 2 tokens: %q", st.Malformed[0], st.Raw)
				}
			}
			// The attempt is recorded before the client can see its end.
			a := s.Attempts("m")[0]
			got := Attempt{Fault: a.Fault, Status: a.Status, Tokens: a.Tokens, Completed: a.Completed}
			want := Attempt{Fault: string(tt.fault.Kind), Status: tt.status, Tokens: tt.tokens, Completed: tt.completed}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attempt (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNonStreamFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
	}{
		{"cut", Fault{Kind: FaultCut, After: 1}},
		{"malformed", Fault{Kind: FaultMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			c, base := startServer(t, newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}}))
			resp := mustPost(t, c, base, chatReq("m", false, []msg{user("hi")}, nil))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			b, err := io.ReadAll(resp.Body)
			if tt.fault.Kind == FaultCut && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want unexpected EOF", err)
			}
			if json.Valid(b) {
				t.Errorf("body %s is valid JSON", b)
			}
		})
	}
}

func TestFlap(t *testing.T) {
	clk := &fakeClock{t: epoch}
	s := newSim(map[string]Profile{
		"once":  {Faults: []Fault{{Kind: FaultFlap, Start: 10 * time.Second, Down: 30 * time.Second}}},
		"now":   {Faults: []Fault{{Kind: FaultFlap, Down: 5 * time.Second}}},
		"every": {Faults: []Fault{{Kind: FaultFlap, Down: 5 * time.Second, Every: time.Minute, FromStart: true}}},
	}, WithClock(clk.now))
	c, base := startServer(t, s)
	status := func(model string) int {
		resp := mustPost(t, c, base, chatReq(model, false, []msg{user("hi")}, nil))
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	type step struct {
		advance time.Duration
		model   string
		want    int
	}
	steps := []step{
		{0, "once", 200},  // first attempt: the flap clock starts, down from 10s
		{0, "now", 503},   // down from its first attempt
		{0, "every", 503}, // down from server start
		{5 * time.Second, "now", 200},
		{0, "every", 200},
		{5 * time.Second, "once", 503}, // 10s
		{29 * time.Second, "once", 503},
		{time.Second, "once", 200},       // 40s: up again, for good
		{20 * time.Second, "every", 503}, // 60s: the next outage
		{time.Hour, "once", 200},
	}
	for i, st := range steps {
		clk.advance(st.advance)
		if got := status(st.model); got != st.want {
			t.Errorf("step %d (%v, %s): status %d, want %d", i, clk.now().Sub(epoch), st.model, got, st.want)
		}
	}
	if a := s.Attempts("now")[0]; a.Fault != "flap" || a.Status != 503 {
		t.Errorf("attempt = %+v", a)
	}

	// Reset restarts the flap clocks: "once" counts from its next attempt.
	s.Reset()
	if got := status("once"); got != 200 {
		t.Errorf("after reset: %d", got)
	}
	clk.advance(10 * time.Second)
	if got := status("once"); got != 503 {
		t.Errorf("after reset +10s: %d", got)
	}
}

func TestAttemptSelectors(t *testing.T) {
	s := newSim(map[string]Profile{"m": {Faults: []Fault{
		{Name: "first-two", Kind: FaultHTTPError, Status: 429, Attempts: []int{1, 2}},
		{Name: "fourth", Kind: FaultHTTPError, Status: 500, Attempts: []int{4}},
	}}})
	c, base := startServer(t, s)
	var got []int
	for range 5 {
		resp := mustPost(t, c, base, chatReq("m", false, []msg{user("hi")}, nil))
		io.Copy(io.Discard, resp.Body)
		got = append(got, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{429, 429, 200, 500, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	var faults []string
	for _, a := range s.Attempts("m") {
		faults = append(faults, a.Fault)
	}
	if diff := cmp.Diff([]string{"first-two", "first-two", "", "fourth", ""}, faults); diff != "" {
		t.Errorf("faults (-want +got):\n%s", diff)
	}
}

func TestRateFaultsReproducible(t *testing.T) {
	profiles := map[string]Profile{"m": {Faults: []Fault{
		{Kind: FaultHTTPError, Status: 503, Rate: 0.3},
		{Kind: FaultNoDone, Rate: 0.5},
	}}}
	run := func(seed int64) []string {
		s := New(Config{Seed: seed, Profiles: profiles})
		c, base := startServer(t, s)
		for range 40 {
			resp := mustPost(t, c, base, chatReq("m", true, []msg{user("hi")}, nil))
			io.Copy(io.Discard, resp.Body)
		}
		var faults []string
		for _, a := range s.Attempts("m") {
			faults = append(faults, a.Fault)
		}
		return faults
	}
	a, b := run(7), run(7)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults (-first +second):\n%s", diff)
	}
	count := map[string]int{}
	for _, f := range a {
		count[f]++
	}
	if count["http_error"] == 0 || count["no_done"] == 0 || count[""] == 0 {
		t.Errorf("fault mix %v: want some of each", count)
	}
	if diff := cmp.Diff(a, run(8)); diff == "" {
		t.Errorf("seeds 7 and 8 gave the same faults %v", a)
	}
}

func TestAttemptLog(t *testing.T) {
	s := newSim(map[string]Profile{
		"a": {Tokens: 3, Faults: []Fault{{Name: "boom", Kind: FaultHTTPError, Status: 500, Attempts: []int{2}}}},
		"b": {Tokens: 2},
	}, WithClock(func() time.Time { return epoch }))
	c, base := startServer(t, s)
	send := func(model string, stream bool, id, attempt string) {
		resp := mustPost(t, c, base, chatReq(model, stream, []msg{user("hi")}, nil), "x-request-id", id, "x-keel-attempt", attempt)
		io.Copy(io.Discard, resp.Body)
	}
	send("a", true, "r1", "1")
	send("a", true, "r1", "2")
	send("b", false, "r2", "1")
	send("a", true, "r3", "1")

	ok := func(model, profile string, n int, stream bool, tokens int, id, attempt string) Attempt {
		return Attempt{Model: model, Profile: profile, Number: n, Stream: stream, Arrived: epoch, Headers: epoch,
			FirstToken: epoch, Ended: epoch, Status: 200, Tokens: tokens, Completed: true, RequestID: id, KeelAttempt: attempt}
	}
	want := []Attempt{
		ok("a", "a", 1, true, 3, "r1", "1"),
		{Model: "a", Profile: "a", Number: 2, Stream: true, Arrived: epoch, Headers: epoch, Ended: epoch,
			Status: 500, Fault: "boom", RequestID: "r1", KeelAttempt: "2"},
		ok("b", "b", 1, false, 2, "r2", "1"),
		ok("a", "a", 3, true, 3, "r3", "1"),
	}
	if diff := cmp.Diff(want, s.Attempts("")); diff != "" {
		t.Errorf("Attempts(\"\") (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Attempt{want[2]}, s.Attempts("b")); diff != "" {
		t.Errorf("Attempts(b) (-want +got):\n%s", diff)
	}

	// The same log over HTTP.
	resp, err := c.Get(base + "/sim/attempts?model=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if diff := cmp.Diff([]Attempt{want[0], want[1], want[3]}, decodeJSON[[]Attempt](t, resp.Body)); diff != "" {
		t.Errorf("GET /sim/attempts (-want +got):\n%s", diff)
	}

	// POST /sim/reset empties the log and restarts the numbering.
	resp, err = c.Post(base+"/sim/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || len(s.Attempts("")) != 0 {
		t.Fatalf("reset: status %d, log %v", resp.StatusCode, s.Attempts(""))
	}
	send("a", true, "r4", "1")
	if got := s.Attempts("a"); len(got) != 1 || got[0].Number != 1 {
		t.Errorf("after reset: %+v", got)
	}
}

func TestAttemptLogLimit(t *testing.T) {
	s := New(Config{LogLimit: 3})
	c, base := startServer(t, s)
	for i := range 5 {
		resp := mustPost(t, c, base, chatReq("m", false, []msg{user("hi")}, nil), "x-request-id", string(rune('a'+i)))
		io.Copy(io.Discard, resp.Body)
	}
	var ids []string
	for _, a := range s.Attempts("") {
		ids = append(ids, a.RequestID)
	}
	if diff := cmp.Diff([]string{"c", "d", "e"}, ids); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if got := New(Config{LogLimit: -1}).Attempts(""); len(got) != 0 {
		t.Errorf("disabled log: %v", got)
	}
}
