package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	_ "modernc.org/sqlite"

	"github.com/keel-ai/keel/internal/sim"
)

// keel is a keel server run in-process by run(), as `keel serve` runs.
type keel struct {
	url     string // base URL including /v1
	dataDir string
	stop    context.CancelFunc
	done    chan error
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startKeel runs `keel serve` with the given config YAML and waits until it
// is ready. The server stops (gracefully) when the test ends.
func startKeel(t testing.TB, yaml string, extra ...string) *keel {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keel.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	k := &keel{url: "http://" + addr + "/v1", dataDir: filepath.Join(dir, "data"), stop: cancel, done: make(chan error, 1)}
	args := append([]string{"serve", "--config", cfgPath, "--listen", addr, "--data-dir", k.dataDir, "--log-level", "error"}, extra...)
	go func() { k.done <- run(ctx, args, io.Discard, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-k.done; err != nil {
			t.Errorf("keel serve: %v", err)
		}
	})
	for i := 0; i < 200; i++ {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return k
			}
		}
		select {
		case err := <-k.done:
			t.Fatalf("keel serve exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("keel did not become ready")
	return nil
}

// newSim serves the simulator with the given profiles.
func newSim(t testing.TB, profiles map[string]sim.Profile) (*sim.Server, string) {
	t.Helper()
	s := sim.New(sim.Config{Profiles: profiles})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/v1"
}

func canonical(prompt string) string {
	return strings.Join(sim.Answer(sim.PromptOf(prompt), sim.DefaultTokens), "")
}

// TestOpenAIGo checks keel's wire compatibility with the official Go SDK:
// non-streaming, streaming with usage, and a streamed tool call.
func TestOpenAIGo(t *testing.T) { eachServer(t, testOpenAIGo) }

// eachServer runs test against keel on each HTTP server it can use, with
// the config line that chooses it.
func eachServer(t *testing.T, test func(t *testing.T, server string)) {
	for _, s := range []string{"keel", "net/http"} {
		t.Run(s, func(t *testing.T) { test(t, fmt.Sprintf("http_server: %s\n", s)) })
	}
}

func testOpenAIGo(t *testing.T, server string) {
	_, simURL := newSim(t, map[string]sim.Profile{"m": {}})
	k := startKeel(t, server+fmt.Sprintf("providers: [{name: up, type: sim, base_url: %q}]\nmodels: [{name: chat, targets: [{provider: up, model: m}]}]\n", simURL))
	client := openai.NewClient(option.WithBaseURL(k.url+"/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx := context.Background()
	want := canonical("Say hello")

	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	if resp.Model != "m" || resp.Usage.CompletionTokens != int64(sim.DefaultTokens) {
		t.Errorf("model = %q, usage = %+v", resp.Model, resp.Usage)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != want {
		t.Errorf("streamed content = %q, want %q", got, want)
	}
	if acc.Usage.TotalTokens == 0 || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("usage = %+v, finish = %q", acc.Usage, acc.Choices[0].FinishReason)
	}

	tool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: "get_weather",
		Parameters: shared.FunctionParameters{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
		},
	})
	stream = client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools: []openai.ChatCompletionToolUnionParam{tool},
	})
	acc = openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		acc.AddChunk(stream.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" {
		t.Fatalf("tool calls = %+v", finished)
	}
	var args struct{ City string }
	if err := json.Unmarshal([]byte(finished[0].Arguments), &args); err != nil || args.City == "" {
		t.Errorf("arguments %q: %v", finished[0].Arguments, err)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish = %q", acc.Choices[0].FinishReason)
	}
}

// TestFailover checks issue 2's failover: the primary answers 503, resets
// the connection, or never sends headers; the fallback answers in full,
// and the simulator's attempt log shows both attempts.
func TestFailover(t *testing.T) {
	always := func(f sim.Fault) sim.Profile { f.Always = true; return sim.Profile{Faults: []sim.Fault{f}} }
	s, simURL := newSim(t, map[string]sim.Profile{
		"p503":   always(sim.Fault{Kind: sim.FaultHTTPError, Status: 503}),
		"preset": always(sim.Fault{Kind: sim.FaultReset}),
		"phang":  always(sim.Fault{Kind: sim.FaultHang}),
		"good":   {},
	})
	k := startKeel(t, fmt.Sprintf(`
providers:
  - {name: a, type: sim, base_url: %[1]q, timeouts: {header: 300ms}}
  - {name: b, type: sim, base_url: %[1]q}
models:
  - {name: r503, targets: [{provider: a, model: p503}, {provider: b, model: good}]}
  - {name: rreset, targets: [{provider: a, model: preset}, {provider: b, model: good}]}
  - {name: rhang, targets: [{provider: a, model: phang}, {provider: b, model: good}]}
`, simURL))
	client := openai.NewClient(option.WithBaseURL(k.url+"/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	for _, tt := range []struct {
		route, primary, fault string
		tries                 int // attempts on the primary: a 503 is retried once
	}{
		{"r503", "p503", "http_error", 2}, {"rreset", "preset", "reset", 1}, {"rhang", "phang", "hang", 1},
	} {
		for _, streaming := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.route, streaming), func(t *testing.T) {
				s.Reset()
				prompt := "failover " + tt.route
				params := openai.ChatCompletionNewParams{Model: tt.route, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}}
				var got string
				var hdr *http.Response
				if streaming {
					st := client.Chat.Completions.NewStreaming(context.Background(), params, option.WithResponseInto(&hdr))
					for st.Next() {
						if c := st.Current(); len(c.Choices) > 0 {
							got += c.Choices[0].Delta.Content
						}
					}
					if err := st.Err(); err != nil {
						t.Fatal(err)
					}
				} else {
					resp, err := client.Chat.Completions.New(context.Background(), params, option.WithResponseInto(&hdr))
					if err != nil {
						t.Fatal(err)
					}
					got = resp.Choices[0].Message.Content
				}
				if want := canonical(prompt); got != want {
					t.Errorf("answer = %q, want %q", got, want)
				}
				if tgt := hdr.Header.Get("X-Keel-Target"); tgt != "b/good" {
					t.Errorf("x-keel-target = %q, want b/good", tgt)
				}
				pa, ga := s.Attempts(tt.primary), s.Attempts("good")
				if len(pa) != tt.tries || pa[0].Fault != tt.fault || len(ga) != 1 || ga[0].Fault != "" {
					t.Errorf("attempt log: primary %+v, fallback %+v", pa, ga)
				}
			})
		}
	}
}

// TestGracefulShutdown checks that SIGTERM (a cancelled serve context) lets
// an in-flight stream finish, and that its record reaches the database.
func TestGracefulShutdown(t *testing.T) { eachServer(t, testGracefulShutdown) }

func testGracefulShutdown(t *testing.T, server string) {
	_, simURL := newSim(t, map[string]sim.Profile{"slow": {TPS: sim.Dist[float64]{Value: 40}}})
	k := startKeel(t, server+fmt.Sprintf("providers: [{name: up, type: sim, base_url: %q}]\n", simURL))
	resp, err := http.Post(k.url+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"drain me"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	k.stop() // as SIGTERM does
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream broken by shutdown: %v", err)
	}
	if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream did not complete: %q", b)
	}
	if err := <-k.done; err != nil {
		t.Fatal(err)
	}
	k.done <- nil // for the cleanup
	if _, err := http.Get(strings.TrimSuffix(k.url, "/v1") + "/healthz"); err == nil {
		t.Error("keel still accepts connections after shutdown")
	}
	db, err := sql.Open("sqlite", filepath.Join(k.dataDir, "keel.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, status int
	if err := db.QueryRow(`SELECT count(*), max(status) FROM requests`).Scan(&n, &status); err != nil {
		t.Fatal(err)
	}
	if n != 1 || status != 200 {
		t.Errorf("records = %d (status %d), want 1 (200)", n, status)
	}
}

func TestAccess(t *testing.T) {
	_, simURL := newSim(t, map[string]sim.Profile{"m": {}})
	cfg := fmt.Sprintf("providers: [{name: up, type: sim, base_url: %q}]\n", simURL)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keel.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	dataDir := filepath.Join(dir, "data")

	err := run(context.Background(), []string{"serve", "--config", cfgPath, "--listen", "0.0.0.0:0", "--data-dir", dataDir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "keys create") {
		t.Fatalf("serving on 0.0.0.0 without keys: err = %v, want a refusal", err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--name", "ci", "--data-dir", dataDir, "--config", cfgPath}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out.String())
	if !strings.HasPrefix(secret, "sk-keel-") {
		t.Fatalf("keys create printed %q", secret)
	}
	raw, _ := os.ReadFile(filepath.Join(dataDir, "keel.db"))
	if bytes.Contains(raw, []byte(secret)) {
		t.Error("the key's secret is stored in the database")
	}

	k := startKeelIn(t, cfgPath, dataDir)
	for _, tt := range []struct {
		key  string
		want int
	}{{"", 401}, {"sk-keel-wrong", 401}, {secret, 200}} {
		req, _ := http.NewRequest("POST", k.url+"/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("key %q: status %d, want %d: %s", tt.key, resp.StatusCode, tt.want, body)
		}
		if tt.want == 401 && !bytes.Contains(body, []byte(`"type":"authentication_error"`)) {
			t.Errorf("401 body is not OpenAI's envelope: %s", body)
		}
	}
}

// startKeelIn is startKeel with an existing config file and data dir.
func startKeelIn(t *testing.T, cfgPath, dataDir string) *keel {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	k := &keel{url: "http://" + addr + "/v1", dataDir: dataDir, stop: cancel, done: make(chan error, 1)}
	go func() {
		k.done <- run(ctx, []string{"serve", "--config", cfgPath, "--listen", addr, "--data-dir", dataDir, "--log-level", "error"}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-k.done })
	waitReady(t, "http://"+addr)
	return k
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("keel did not become ready")
}

func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ yaml, field string }{
		{"providers: [{name: a, type: nope, base_url: 'http://x'}]", "providers[0].type"},
		{"log: {level: loud}", "log.level"},
		{"listne: x", "listne"},
	} {
		p := filepath.Join(dir, "keel.yaml")
		os.WriteFile(p, []byte(tt.yaml), 0o600)
		err := run(context.Background(), []string{"serve", "--config", p, "--data-dir", filepath.Join(dir, "d")}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err = %v, want one naming %s", tt.yaml, err, tt.field)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "keel ") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
}

// TestNoChunkHeldBack checks issue 2's streaming promise with a paced
// upstream: each chunk reaches the client as it leaves the upstream, not
// batched with later ones (keel flushes unless the next chunk is already
// there).
func TestNoChunkHeldBack(t *testing.T) { eachServer(t, testNoChunkHeldBack) }

func testNoChunkHeldBack(t *testing.T, server string) {
	_, simURL := newSim(t, map[string]sim.Profile{"paced": {TPS: sim.Dist[float64]{Value: 20}, Tokens: 10}})
	k := startKeel(t, server+fmt.Sprintf("providers: [{name: up, type: sim, base_url: %q}]\n", simURL))
	resp, err := http.Post(k.url+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"paced","stream":true,"messages":[{"role":"user","content":"pace"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var arrivals []time.Time
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
			arrivals = append(arrivals, time.Now())
		}
	}
	if len(arrivals) != 10 {
		t.Fatalf("got %d content chunks, want 10", len(arrivals))
	}
	// At 20 tokens/s the upstream sends a chunk every 50 ms; chunks that
	// arrive within 15 ms of each other were held back and batched.
	bursts := 1
	for i := 1; i < len(arrivals); i++ {
		if arrivals[i].Sub(arrivals[i-1]) > 15*time.Millisecond {
			bursts++
		}
	}
	if bursts < 8 {
		t.Errorf("10 paced chunks arrived in %d bursts, want each on its own", bursts)
	}
}

// TestGCPercent: keel collects garbage at 3× the live heap unless GOGC in
// the environment says otherwise.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		name string
		gogc bool // GOGC=100 is set
		want int
	}{
		{"GOGC unset", false, 200},
		{"GOGC set", true, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", "100") // restored after the test
			if !tt.gogc {
				os.Unsetenv("GOGC")
			}
			debug.SetGCPercent(100)
			startKeel(t, "")
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent = %d, want %d", got, tt.want)
			}
		})
	}
}
