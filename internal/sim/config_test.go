package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadExample(t *testing.T) {
	cfg, err := LoadConfig("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	builtin := Builtin()
	if cfg.Seed != 42 || cfg.LogLimit != 10000 {
		t.Errorf("seed %d log_limit %d", cfg.Seed, cfg.LogLimit)
	}
	if diff := cmp.Diff(builtin.Profiles["sim-fast"], cfg.Default); diff != "" {
		t.Errorf("default (-want +got):\n%s", diff)
	}
	for _, name := range []string{"sim", "sim-fast", "sim-zero", "sim-heavytail", "gpt-4o-mini", "flaky", "no-prefill", "restarter", "slowpoke"} {
		if _, ok := cfg.Profiles[name]; !ok {
			t.Errorf("profile %q missing", name)
		}
	}

	m := cfg.Profiles["gpt-4o-mini"]
	wantLatency := []any{
		Dist[time.Duration]{Kind: Lognormal, Median: 150 * time.Millisecond, Sigma: 0.5, Min: 20 * time.Millisecond, Max: 2 * time.Second},
		Dist[time.Duration]{Kind: Uniform, Min: 100 * time.Millisecond, Max: 400 * time.Millisecond},
		Dist[float64]{Kind: Fixed, Value: 60},
		32,
	}
	if diff := cmp.Diff(wantLatency, []any{m.Headers, m.TTFT, m.TPS, m.Tokens}); diff != "" {
		t.Errorf("gpt-4o-mini latency (-want +got):\n%s", diff)
	}
	wantFaults := []Fault{
		{Name: "rate-limited", Kind: FaultHTTPError, Status: 429, Attempts: []int{1}, RetryAfter: 2 * time.Second, RetryAfterMS: 1750, ShouldRetry: ptr(true)},
		{Kind: FaultHTTPError, Status: 503, Attempts: []int{2}, RetryAfter: 30 * time.Second, RetryAfterDate: true},
		{Kind: FaultHTTPError, Status: 529, Rate: 0.01, Type: "overloaded_error", Code: "overloaded", Message: "Overloaded, try later."},
		{Kind: FaultReset, Rate: 0.01},
		{Kind: FaultHang, Rate: 0.005},
		{Kind: FaultCut, After: 5, Rate: 0.02},
		{Kind: FaultStall, After: 3, For: 10 * time.Second, Rate: 0.02},
		{Kind: FaultMalformed, After: 2, Rate: 0.01},
		{Kind: FaultNoDone, Rate: 0.01},
		{Kind: FaultContextLength, Attempts: []int{50}},
		{Kind: FaultContentFilter, Attempts: []int{51}},
	}
	if diff := cmp.Diff(wantFaults, m.Faults); diff != "" {
		t.Errorf("gpt-4o-mini faults (-want +got):\n%s", diff)
	}

	wantFlaky := Profile{Faults: []Fault{{Kind: FaultFlap, Start: 10 * time.Second, Down: 30 * time.Second, Every: 2 * time.Minute}}}
	if diff := cmp.Diff(wantFlaky, cfg.Profiles["flaky"]); diff != "" {
		t.Errorf("flaky (-want +got):\n%s", diff)
	}
	wantSlow := builtin.Profiles["sim-heavytail"]
	wantSlow.Tokens = 8
	if diff := cmp.Diff(wantSlow, cfg.Profiles["slowpoke"]); diff != "" {
		t.Errorf("slowpoke (-want +got):\n%s", diff)
	}
	if !cfg.Profiles["no-prefill"].RejectPrefill || !cfg.Profiles["restarter"].Restart {
		t.Errorf("prefill flags not loaded")
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Config
	}{
		{"empty file", "", Builtin()},
		{
			name: "no builtins, inline default, shorthand values",
			yaml: `
builtin: false
seed: -3
default: {ttft: 1s, tps: 20}
profiles:
  m: {tokens: 3, faults: [{kind: cut, after: 1, attempts: 2}]}
`,
			want: Config{
				Seed:    -3,
				Default: Profile{TTFT: Dist[time.Duration]{Value: time.Second}, TPS: Dist[float64]{Value: 20}},
				Profiles: map[string]Profile{
					"m": {Tokens: 3, Faults: []Fault{{Kind: FaultCut, After: 1, Attempts: []int{2}}}},
				},
			},
		},
		{
			name: "base chain and default by name",
			yaml: `
builtin: false
default: b
profiles:
  b: {base: a, tokens: 5}
  a: {base: sim-fast, restart: true}
`,
			want: func() Config {
				a := Builtin().Profiles["sim-fast"]
				a.Restart = true
				b := a
				b.Tokens = 5
				return Config{Default: b, Profiles: map[string]Profile{"a": a, "b": b}}
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	fault := func(f string) string { return "profiles:\n  m:\n    faults:\n      - " + f + "\n" }
	tests := []struct {
		name string
		yaml string
		want string // the start of the error
	}{
		{"unknown top-level field", "sede: 1", "sede: unknown field"},
		{"bad seed", "seed: lots", `seed: invalid value "lots"`},
		{"profiles not a mapping", "profiles: [a]", "profiles: want a mapping"},
		{"unknown profile field", "profiles: {m: {tokenz: 3}}", "profiles.m.tokenz: unknown field"},
		{"negative tokens", "profiles: {m: {tokens: -1}}", "profiles.m.tokens: -1 is negative"},
		{"bad duration", "profiles: {m: {headers: fast}}", `profiles.m.headers: invalid value "fast"`},
		{"duration without unit", "profiles: {m: {ttft: {dist: fixed, value: 150}}}", `profiles.m.ttft.value: invalid value "150"`},
		{"unknown dist", "profiles: {m: {ttft: {dist: gaussian}}}", `profiles.m.ttft.dist: unknown distribution "gaussian"`},
		{"lognormal without median", "profiles: {m: {ttft: {dist: lognormal, sigma: 1}}}", "profiles.m.ttft.median:"},
		{"uniform upside down", "profiles: {m: {tps: {dist: uniform, min: 9, max: 3}}}", "profiles.m.tps: uniform needs"},
		{"unknown dist field", "profiles: {m: {tps: {dist: fixed, mean: 3}}}", "profiles.m.tps.mean: unknown field"},
		{"faults not a list", "profiles: {m: {faults: {kind: reset}}}", "profiles.m.faults: want a list"},
		{"status not a number", fault("{kind: http_error, status: abc, always: true}"), `profiles.m.faults[0].status: invalid value "abc"`},
		{"status not an error", fault("{kind: http_error, status: 200, always: true}"), "profiles.m.faults[0].status: 200 is not an HTTP error status"},
		{"no kind", fault("{always: true}"), "profiles.m.faults[0].kind: required"},
		{"unknown kind", fault("{kind: explode, always: true}"), `profiles.m.faults[0].kind: unknown fault kind "explode"`},
		{"no selector", fault("{kind: reset}"), "profiles.m.faults[0]: one of rate, attempts or always is required"},
		{"two selectors", fault("{kind: reset, always: true, rate: 0.5}"), "profiles.m.faults[0]: set only one"},
		{"rate above 1", fault("{kind: reset, rate: 1.5}"), "profiles.m.faults[0].rate: 1.5 is not a probability"},
		{"attempt 0", fault("{kind: reset, attempts: [1, 0]}"), "profiles.m.faults[0].attempts[1]: 0 is not a 1-based attempt number"},
		{"attempt not a number", fault("{kind: reset, attempts: [first]}"), `profiles.m.faults[0].attempts[0]: invalid value "first"`},
		{"field of another kind", fault("{kind: http_error, status: 500, after: 3, always: true}"), "profiles.m.faults[0].after: not used by kind http_error"},
		{"unknown fault field", fault("{kind: reset, always: true, delay: 1s}"), "profiles.m.faults[0].delay: unknown field"},
		{"flap with a selector", fault("{kind: flap, down: 1s, always: true}"), "profiles.m.faults[0]: flap is selected by time"},
		{"flap without down", fault("{kind: flap}"), "profiles.m.faults[0].down: flap needs a positive down"},
		{"flap every too short", fault("{kind: flap, down: 1m, every: 30s}"), "profiles.m.faults[0].every:"},
		{"retry date without delay", fault("{kind: http_error, status: 503, retry_after_date: true, always: true}"), "profiles.m.faults[0].retry_after_date: needs a positive retry_after"},
		{"should_retry not a bool", fault("{kind: http_error, status: 503, should_retry: maybe, always: true}"), `profiles.m.faults[0].should_retry: invalid value "maybe"`},
		{"second fault", "profiles:\n  m:\n    faults:\n      - {kind: reset, always: true}\n      - {kind: cut, after: -1, always: true}\n", "profiles.m.faults[1].after: -1 is negative"},
		{"unknown base", "profiles: {m: {base: nope}}", `profiles.m.base: unknown profile "nope"`},
		{"base cycle", "profiles: {a: {base: b}, b: {base: a}}", `profiles.b.base: profile "a" is its own base`},
		{"unknown default", "default: nope", `default: unknown profile "nope"`},
		{"bad inline default", "default: {tokens: x}", `default.tokens: invalid value "x"`},
		{"prefill flags together", "profiles: {m: {reject_prefill: true, restart: true}}", "profiles.m.restart: cannot be combined"},
		{"duplicate key", "seed: 1\nseed: 2", "seed: set twice"},
		{"not YAML", "profiles: [", "yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(path, []byte("profiles: {m: {tokens: x}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path+": profiles.m.tokens") {
		t.Errorf("error = %v, want the file and the field", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestBuiltinValid(t *testing.T) {
	if err := Builtin().Validate(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Builtin().Profiles["sim"], Builtin().Default); diff != "" {
		t.Errorf("default is not sim (-want +got):\n%s", diff)
	}
}
