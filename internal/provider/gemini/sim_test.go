package gemini

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider/providertest"
	"github.com/keel-ai/keel/internal/sim"
)

// simClient returns a client of a simulator serving profiles.
func simClient(t *testing.T, profiles map[string]sim.Profile, cfg Config) (*Client, *sim.Server) {
	s := sim.New(sim.Config{Seed: 1, Profiles: profiles})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cfg.Name, cfg.BaseURL, cfg.Log = "sim", ts.URL+"/v1beta", providertest.Quiet()
	return New(cfg, ts.Client()), s
}

func text(role llm.Role, s string) llm.Message {
	return llm.Message{Role: role, Content: []llm.Part{llm.TextPart(s)}}
}

// TestSim runs the adapter against keel sim's Gemini format: the answers
// are the simulator's, whatever the format, so what keel translates must
// reach it intact.
func TestSim(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 6}}, Config{Keys: []string{"k"}})
	msgs := []llm.Message{text(llm.RoleSystem, "Be brief."), text(llm.RoleUser, "Why is the sky blue?")}
	want := strings.Join(sim.Answer(sim.PromptOf("Be brief.", "Why is the sky blue?"), 6), "")
	for _, stream := range []bool{true, false} {
		a, err := providertest.Chat(t, c, &llm.Request{Model: "m", Messages: msgs, Stream: stream})
		if err != io.EOF || string(a.Text) != want || a.Finish != llm.FinishStop || a.Usage != (llm.Usage{Input: 7, Output: 6}) || a.Model != "m" || a.ID == "" {
			t.Errorf("stream %v: %+v, %v; want %q", stream, a, err, want)
		}
	}

	r := &llm.Request{Model: "m", Messages: msgs, Stream: true, MaxTokens: new(int)}
	*r.MaxTokens = 2
	if a, err := providertest.Chat(t, c, r); err != io.EOF || a.Finish != llm.FinishLength || len(strings.Fields(string(a.Text))) != 2 {
		t.Errorf("max tokens: %+v, %v", a, err)
	}
}

// TestSimTools runs a tool-use turn and the turn that answers it.
func TestSimTools(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {}}, Config{})
	tools := []llm.Tool{{Name: "weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"],"additionalProperties":false}`)}}
	q := text(llm.RoleUser, "Weather in Paris?")
	for _, stream := range []bool{true, false} {
		a, err := providertest.Chat(t, c, &llm.Request{Model: "m", Messages: []llm.Message{q}, Tools: tools, Stream: stream})
		if err != io.EOF || a.Finish != llm.FinishToolCalls || len(a.ToolCalls) != 1 || len(a.Text) != 0 {
			t.Fatalf("stream %v: %+v, %v", stream, a, err)
		}
		tc := a.ToolCalls[0]
		var args map[string]any
		if !strings.HasPrefix(tc.ID, "call_") || tc.Name != "weather" || json.Unmarshal([]byte(tc.Arguments), &args) != nil || args["city"] == nil {
			t.Errorf("stream %v: call %+v", stream, tc)
		}
	}

	// The result goes back byte for byte, so the answer is the one the
	// OpenAI format gives the same turn.
	result := `{"temp": 18, "sky": "fog"}`
	history := []llm.Message{
		q,
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "weather", Arguments: `{"city":"Paris"}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_1", Content: []llm.Part{llm.TextPart(result)}},
	}
	a, err := providertest.Chat(t, c, &llm.Request{Model: "m", Messages: history, Tools: tools, Stream: true})
	want := strings.Join(sim.Answer(sim.PromptOf("Weather in Paris?", "", result), 0), "")
	if err != io.EOF || string(a.Text) != want || a.Finish != llm.FinishStop {
		t.Errorf("answer %q (%v), want %q", a.Text, err, want)
	}
}

// TestSimPrefill continues a partial answer where the upstream is declared
// to (Config.Prefill).
func TestSimPrefill(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 8}}, Config{Prefill: true})
	if !c.Prefills() {
		t.Fatal("Prefills() = false")
	}
	ans := sim.Answer(sim.PromptOf("Why?"), 8)
	partial := strings.Join(ans[:3], "") + ans[3][:2]
	s, err := c.Chat(t.Context(), &llm.Request{Model: "m", Stream: true, Continue: true, Messages: []llm.Message{
		text(llm.RoleUser, "Why?"), text(llm.RoleAssistant, partial),
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := providertest.Drain(t, s)
	if err != io.EOF || partial+string(a.Text) != strings.Join(ans, "") {
		t.Errorf("continued with %q (%v); want the rest of %q", a.Text, err, strings.Join(ans, ""))
	}
}

// TestSimFaults checks the simulator's faults, in Gemini's shapes, as the
// adapter classifies them.
func TestSimFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     sim.Fault
		kind      llm.Kind // 0: the answer completes
		retry     time.Duration
		text      int // words of the answer received
		malformed int64
	}{
		{name: "rate limit", fault: sim.Fault{Kind: sim.FaultHTTPError, Status: 429, RetryAfter: 2500 * time.Millisecond}, kind: llm.KindRateLimit, retry: 2500 * time.Millisecond},
		{name: "overloaded", fault: sim.Fault{Kind: sim.FaultHTTPError, Status: 503}, kind: llm.KindOverloaded},
		{name: "server", fault: sim.Fault{Kind: sim.FaultHTTPError, Status: 500}, kind: llm.KindServer},
		{name: "bad key", fault: sim.Fault{Kind: sim.FaultHTTPError, Status: 400, Code: "API_KEY_INVALID"}, kind: llm.KindAuth},
		{name: "context length", fault: sim.Fault{Kind: sim.FaultContextLength}, kind: llm.KindContextLength},
		{name: "content filter", fault: sim.Fault{Kind: sim.FaultContentFilter}, kind: llm.KindContentFilter},
		{name: "cut", fault: sim.Fault{Kind: sim.FaultCut, After: 3}, kind: llm.KindStream, text: 3},
		{name: "malformed", fault: sim.Fault{Kind: sim.FaultMalformed, After: 2}, text: 5, malformed: 1},
		{name: "no_done", fault: sim.Fault{Kind: sim.FaultNoDone}, text: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 5, Faults: []sim.Fault{tt.fault}}}, Config{})
			var a llm.Answer
			s, err := c.Chat(t.Context(), &llm.Request{Model: "m", Messages: []llm.Message{text(llm.RoleUser, "hi")}, Stream: true})
			if err == nil {
				a, err = providertest.Drain(t, s)
			}
			var e *llm.Error
			switch {
			case tt.kind == 0 && err != io.EOF:
				t.Errorf("err = %v, want a complete answer", err)
			case tt.kind != 0 && (!errors.As(err, &e) || e.Kind != tt.kind || e.RetryAfter != tt.retry):
				t.Errorf("err = %v (%+v), want kind %v, retry after %v", err, e, tt.kind, tt.retry)
			}
			if n := len(strings.Fields(string(a.Text))); n != tt.text {
				t.Errorf("%d words (%q), want %d", n, a.Text, tt.text)
			}
			if got := c.Malformed.Load(); got != tt.malformed {
				t.Errorf("Malformed = %d, want %d", got, tt.malformed)
			}
		})
	}
}
