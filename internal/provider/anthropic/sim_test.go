package anthropic

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider/providertest"
	"github.com/keel-ai/keel/internal/sim"
	"github.com/keel-ai/keel/internal/wire"
)

// simClient returns a client of a simulator serving profiles.
func simClient(t *testing.T, profiles map[string]sim.Profile) (*Client, *sim.Server) {
	s := sim.New(sim.Config{Seed: 1, Profiles: profiles})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c := New(Config{Name: "sim", BaseURL: ts.URL + "/v1", Keys: []string{"k"}, Log: slog.New(slog.DiscardHandler)}, ts.Client())
	return c, s
}

func text(role llm.Role, s string) llm.Message {
	return llm.Message{Role: role, Content: []llm.Part{llm.TextPart(s)}}
}

func join(tokens []string) string { return strings.Join(tokens, "") }

// TestSim runs the adapter against keel sim's Anthropic format: the
// answers are the simulator's whatever the format, so what keel
// translates must reach it intact.
func TestSim(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 6}})
	msgs := []llm.Message{text(llm.RoleSystem, "Be brief."), text(llm.RoleUser, "Why is the sky blue?")}
	want := join(sim.Answer(sim.PromptOf("Be brief.", "Why is the sky blue?"), 6))
	for _, stream := range []bool{true, false} {
		a, err := providertest.Chat(t, c, &llm.Request{Model: "m", Messages: msgs, Stream: stream})
		if err != io.EOF || string(a.Text) != want || a.Finish != llm.FinishStop || a.Usage != (llm.Usage{Input: 7, Output: 6}) || a.Model != "m" || !strings.HasPrefix(a.ID, "msg_") {
			t.Errorf("stream %v: %+v, %v; want %q", stream, a, err, want)
		}
	}
	r := &llm.Request{Model: "m", Messages: msgs, Stream: true, MaxTokens: new(int)}
	*r.MaxTokens = 2
	if a, err := providertest.Chat(t, c, r); err != io.EOF || a.Finish != llm.FinishLength || len(strings.Fields(string(a.Text))) != 2 {
		t.Errorf("max tokens: %+v, %v", a, err)
	}
}

// TestSimTools runs a tool-use turn from an OpenAI client, and the turn
// that answers it.
func TestSimTools(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {}})
	req, err := wire.DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"Weather in Paris?"}],
		"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}}}],
		"tool_choice":"required","parallel_tool_calls":false}`))
	if err != nil {
		t.Fatal(err)
	}
	var call llm.ToolCall
	for _, stream := range []bool{true, false} {
		req.Stream = stream
		a, err := providertest.Chat(t, c, req)
		if err != io.EOF || a.Finish != llm.FinishToolCalls || len(a.ToolCalls) != 1 || len(a.Text) != 0 {
			t.Fatalf("stream %v: %+v, %v", stream, a, err)
		}
		call = a.ToolCalls[0]
		var args map[string]any
		if !strings.HasPrefix(call.ID, "toolu_") || call.Name != "weather" || json.Unmarshal([]byte(call.Arguments), &args) != nil || args["city"] == nil {
			t.Errorf("stream %v: call %+v", stream, call)
		}
	}
	req.Messages = append(req.Messages,
		llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call}},
		text(llm.RoleTool, "18C"))
	req.Messages[2].ToolCallID = call.ID
	a, err := providertest.Chat(t, c, req)
	want := join(sim.Answer(sim.PromptOf("Weather in Paris?", "", "18C"), sim.DefaultTokens))
	if err != io.EOF || string(a.Text) != want || a.Finish != llm.FinishStop {
		t.Errorf("answer to the result: %q, %v; want %q", a.Text, err, want)
	}
}

// TestSimContinue checks keel's mid-stream continuation on Anthropic: the
// partial answer goes out as a prefill without its trailing space, which
// Anthropic (and the simulator) reject, and the continuation joins the
// partial answer exactly.
func TestSimContinue(t *testing.T) {
	c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 8}})
	q := "Why is the sky blue?"
	ans := sim.Answer(sim.PromptOf(q), 8)
	for _, cut := range []int{1, 3, 7} {
		for _, mid := range []bool{false, true} {
			partial := join(ans[:cut])
			if mid {
				partial += ans[cut][:2]
			}
			r := &llm.Request{Model: "m", Stream: true, Continue: true, Messages: []llm.Message{text(llm.RoleUser, q), text(llm.RoleAssistant, partial)}}
			s, err := c.Chat(t.Context(), r)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			a, err := providertest.Drain(t, s)
			if err != io.EOF || partial+string(a.Text) != join(ans) {
				t.Errorf("cut %d mid %v: %q + %q, %v; want %q", cut, mid, partial, a.Text, err, join(ans))
			}
		}
	}
}

// TestSimFaults checks how the adapter classifies the simulator's faults
// in the Anthropic format.
func TestSimFaults(t *testing.T) {
	tests := []struct {
		name   string
		fault  sim.Fault
		stream bool
		text   string
		kind   llm.Kind // 0: a complete answer
	}{
		{"529", sim.Fault{Kind: sim.FaultHTTPError, Status: 529}, true, "", llm.KindOverloaded},
		{"429", sim.Fault{Kind: sim.FaultHTTPError, Status: 429}, true, "", llm.KindRateLimit},
		{"500", sim.Fault{Kind: sim.FaultHTTPError, Status: 500}, false, "", llm.KindServer},
		{"context length", sim.Fault{Kind: sim.FaultContextLength}, true, "", llm.KindContextLength},
		{"content filter", sim.Fault{Kind: sim.FaultContentFilter}, true, "", llm.KindContentFilter},
		{"cut", sim.Fault{Kind: sim.FaultCut, After: 2}, true, "2", llm.KindStream},
		{"cut whole", sim.Fault{Kind: sim.FaultCut, After: 2}, false, "", llm.KindStream},
		{"malformed", sim.Fault{Kind: sim.FaultMalformed, After: 2}, true, "all", 0},
		{"no message_stop", sim.Fault{Kind: sim.FaultNoDone}, true, "all", 0},
		{"reset", sim.Fault{Kind: sim.FaultReset}, true, "", llm.KindConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 5, Faults: []sim.Fault{tt.fault}}})
			ans := sim.Answer("hi", 5)
			s, err := c.Chat(t.Context(), &llm.Request{Model: "m", Stream: tt.stream, Messages: []llm.Message{text(llm.RoleUser, "hi")}})
			var a llm.Answer
			if err == nil {
				a, err = providertest.Drain(t, s)
			}
			want := map[string]string{"": "", "2": join(ans[:2]), "all": join(ans)}[tt.text]
			if string(a.Text) != want {
				t.Errorf("text = %q, want %q", a.Text, want)
			}
			if tt.kind == 0 {
				if err != io.EOF {
					t.Errorf("err = %v, want a complete answer", err)
				}
				return
			}
			if providertest.KindOf(err) != tt.kind || errors.Is(err, io.EOF) {
				t.Errorf("err = %v (kind %v), want kind %v", err, providertest.KindOf(err), tt.kind)
			}
		})
	}
	t.Run("malformed is counted", func(t *testing.T) {
		c, _ := simClient(t, map[string]sim.Profile{"m": {Tokens: 5, Faults: []sim.Fault{{Kind: sim.FaultMalformed, After: 2, Always: true}}}})
		providertest.Chat(t, c, &llm.Request{Model: "m", Stream: true, Messages: []llm.Message{text(llm.RoleUser, "hi")}})
		if n := c.Malformed.Load(); n != 1 {
			t.Errorf("Malformed = %d, want 1", n)
		}
	})
}
