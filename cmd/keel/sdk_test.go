package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/keel-ai/keel/internal/sim"
)

// Issue 4: every client API is served from every upstream wire format. These
// tests run the official Go SDKs against an in-process keel whose routes
// reach one in-process simulator in OpenAI's, Anthropic's and Gemini's
// formats (the e2e suite does the same with the JS SDKs and a built keel).

// sdkVendors names, for each upstream wire format, the keel route that
// serves it (sdkRig's config).
var sdkVendors = []string{"openai", "anthropic", "gemini"}

// sdkRig is a simulator and a keel in front of it, with an API key.
type sdkRig struct {
	sim     *sim.Server
	simRoot string // the simulator's address, without /v1
	keel    *keel
	key     string
}

// Upstream models of the rig's failing routes, and their answer lengths.
const (
	rigCutAfter = 5  // tokens the cut primaries send first
	rigXVTokens = 40 // answer length of the cross-vendor routes
)

// newSDKRig starts the rig. Routes: openai, anthropic, gemini (healthy,
// one per upstream format); overloaded (Anthropic, always 529); cut
// (Gemini, always cut mid-answer, no fallback); xv (a Gemini primary cut
// mid-answer, an OpenAI-compatible fallback).
func newSDKRig(t *testing.T) *sdkRig {
	t.Helper()
	cut := func(after, tokens int) sim.Profile {
		return sim.Profile{Tokens: tokens, Faults: []sim.Fault{{Kind: sim.FaultCut, After: after, Always: true}}}
	}
	s, simURL := newSim(t, map[string]sim.Profile{
		"over":  {Faults: []sim.Fault{{Kind: sim.FaultHTTPError, Status: 529, Always: true}}},
		"cut":   cut(3, 400),
		"gcut":  cut(rigCutAfter, rigXVTokens),
		"after": {Tokens: rigXVTokens},
	})
	root := strings.TrimSuffix(simURL, "/v1")
	cfg := fmt.Sprintf(`
providers:
  - {name: o, type: sim, base_url: %[1]q}
  - {name: a, type: anthropic, base_url: %[1]q}
  - {name: g, type: gemini, base_url: %[2]q}
models:
  - {name: openai, targets: [{provider: o, model: m-openai}]}
  - {name: anthropic, targets: [{provider: a, model: m-anthropic}]}
  - {name: gemini, targets: [{provider: g, model: m-gemini}]}
  - {name: overloaded, targets: [{provider: a, model: over}]}
  - {name: cut, targets: [{provider: g, model: cut}]}
  - {name: xv, targets: [{provider: g, model: gcut}, {provider: o, model: after}]}
`, simURL, root+"/v1beta")
	dir := t.TempDir()
	cfgPath, dataDir := filepath.Join(dir, "keel.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--name", "sdk", "--config", cfgPath, "--data-dir", dataDir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return &sdkRig{sim: s, simRoot: root, keel: startKeelIn(t, cfgPath, dataDir), key: strings.TrimSpace(out.String())}
}

// anthropic returns an Anthropic SDK client for keel (base URL without
// /v1, as the SDK wants it), SDK retries off.
func (r *sdkRig) anthropic(opts ...aoption.RequestOption) anthropic.Client {
	base := []aoption.RequestOption{
		aoption.WithBaseURL(strings.TrimSuffix(r.keel.url, "/v1")), aoption.WithAPIKey(r.key), aoption.WithMaxRetries(0),
	}
	return anthropic.NewClient(append(base, opts...)...)
}

// oracle returns an Anthropic SDK client for the simulator itself: the
// same request sent there directly gives the canonical answer.
func (r *sdkRig) oracle() anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(r.simRoot), aoption.WithAPIKey("unused"), aoption.WithMaxRetries(0))
}

// openai returns an OpenAI SDK client for keel.
func (r *sdkRig) openai() openai.Client {
	return openai.NewClient(option.WithBaseURL(r.keel.url+"/"), option.WithAPIKey(r.key), option.WithMaxRetries(0))
}

// simAnswer is the simulator's canonical answer to a conversation of messages
// (their texts), tokens long.
func simAnswer(tokens int, messages ...string) string {
	return strings.Join(sim.Answer(sim.PromptOf(messages...), tokens), "")
}

// messageText is the text of a message's content blocks.
func messageText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// accumulate reads an Anthropic stream into a message, returning the
// streamed text and the stream's error.
func accumulate(st interface {
	Next() bool
	Current() anthropic.MessageStreamEventUnion
	Err() error
}) (msg anthropic.Message, text string, err error) {
	for st.Next() {
		ev := st.Current()
		if err := msg.Accumulate(ev); err != nil {
			return msg, text, err
		}
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			text += ev.Delta.Text
		}
	}
	return msg, text, st.Err()
}

// toolUse describes a tool_use block for comparison: the tool and its
// input, decoded.
type toolUse struct {
	Name  string
	Input map[string]any
}

func toolUses(t *testing.T, m *anthropic.Message) []toolUse {
	t.Helper()
	var out []toolUse
	for _, c := range m.Content {
		if c.Type != "tool_use" {
			continue
		}
		if c.ID == "" {
			t.Errorf("tool_use %s has no id", c.Name)
		}
		tu := toolUse{Name: c.Name}
		if err := json.Unmarshal(c.Input, &tu.Input); err != nil {
			t.Errorf("tool_use input %q: %v", c.Input, err)
		}
		out = append(out, tu)
	}
	return out
}

// TestAnthropicGoSDK checks /v1/messages with the official Go SDK
// (anthropic-sdk-go/v2), from each upstream format: a message, a stream
// accumulated with Message.Accumulate, and a tool_use streamed and not.
func TestAnthropicGoSDK(t *testing.T) {
	r := newSDKRig(t)
	ctx := context.Background()
	c, oracle := r.anthropic(), r.oracle()
	tools := []anthropic.ToolUnionParam{
		{OfTool: &anthropic.ToolParam{Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"},
		}}},
		{OfTool: &anthropic.ToolParam{Name: "book_table", InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{
				"restaurant": map[string]any{"type": "string"},
				"guests":     map[string]any{"type": "integer"},
				"outdoor":    map[string]any{"type": "boolean"},
			},
			Required: []string{"restaurant", "guests", "outdoor"},
		}}},
	}
	for _, vendor := range sdkVendors {
		t.Run(vendor, func(t *testing.T) {
			prompt := "go sdk messages from " + vendor
			params := anthropic.MessageNewParams{
				Model: anthropic.Model(vendor), MaxTokens: 1024,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
			}
			want := simAnswer(sim.DefaultTokens, prompt)

			m, err := c.Messages.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := messageText(m); got != want || m.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("New: text %q, stop %q; want %q, end_turn", got, m.StopReason, want)
			}
			if m.Usage.OutputTokens != int64(sim.DefaultTokens) {
				t.Errorf("New: output_tokens = %d, want %d", m.Usage.OutputTokens, sim.DefaultTokens)
			}

			acc, text, err := accumulate(c.Messages.NewStreaming(ctx, params))
			if err != nil {
				t.Fatal(err)
			}
			if got := messageText(&acc); got != want || text != want || acc.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("stream: accumulated %q, deltas %q, stop %q; want %q, end_turn", got, text, acc.StopReason, want)
			}
			if acc.ID == "" || acc.Usage.OutputTokens != int64(sim.DefaultTokens) {
				t.Errorf("stream: id %q, usage %+v", acc.ID, acc.Usage)
			}

			tp := params
			tp.Tools = tools
			tp.ToolChoice = anthropic.ToolChoiceParamOfTool("book_table")
			tp.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt + ", with a tool"))}
			om, err := oracle.Messages.New(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			wantCalls := toolUses(t, om)
			if len(wantCalls) != 1 || wantCalls[0].Name != "book_table" {
				t.Fatalf("oracle tool uses = %+v", wantCalls)
			}
			m, err = c.Messages.New(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantCalls, toolUses(t, m)); diff != "" || m.StopReason != anthropic.StopReasonToolUse {
				t.Errorf("New tool_use (stop %q) (-want +got):\n%s", m.StopReason, diff)
			}
			acc, _, err = accumulate(c.Messages.NewStreaming(ctx, tp))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantCalls, toolUses(t, &acc)); diff != "" || acc.StopReason != anthropic.StopReasonToolUse {
				t.Errorf("streamed tool_use (stop %q) (-want +got):\n%s", acc.StopReason, diff)
			}
		})
	}
}

// TestAnthropicGoSDKErrors checks the errors the Go SDK sees: keel's 401,
// an upstream's overload relayed as Anthropic's 529, and a stream cut with
// no fallback, which must end with an in-band error event, not a clean
// end or a dropped connection.
func TestAnthropicGoSDKErrors(t *testing.T) {
	r := newSDKRig(t)
	ctx := context.Background()
	params := func(model, prompt string) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{
			Model: anthropic.Model(model), MaxTokens: 4096,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
		}
	}
	apiError := func(t *testing.T, err error, status int, typ string) {
		t.Helper()
		var e *anthropic.Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v (%T), want *anthropic.Error", err, err)
		}
		if e.StatusCode != status || string(e.Type()) != typ {
			t.Errorf("error status %d, type %q; want %d, %q: %s", e.StatusCode, e.Type(), status, typ, e.RawJSON())
		}
	}

	t.Run("bad key", func(t *testing.T) {
		c := r.anthropic(aoption.WithAPIKey("sk-keel-wrong"))
		_, err := c.Messages.New(ctx, params("openai", "bad key"))
		apiError(t, err, 401, "authentication_error")
	})
	t.Run("overloaded", func(t *testing.T) {
		c := r.anthropic()
		_, err := c.Messages.New(ctx, params("overloaded", "overloaded"))
		apiError(t, err, 529, "overloaded_error")
		_, _, err = accumulate(c.Messages.NewStreaming(ctx, params("overloaded", "overloaded stream")))
		apiError(t, err, 529, "overloaded_error")
		if a := r.sim.Attempts("over"); len(a) < 2 || a[0].Status != 529 {
			t.Errorf("attempt log: %+v", a)
		}
	})
	t.Run("cut", func(t *testing.T) {
		prompt := "go sdk cut"
		c := r.anthropic()
		acc, text, err := accumulate(c.Messages.NewStreaming(ctx, params("cut", prompt)))
		if err == nil {
			t.Fatalf("the stream ended cleanly: %q, stop %q", messageText(&acc), acc.StopReason)
		}
		// An in-band event: error decodes to *anthropic.Error (status 200,
		// the stream's); a dropped connection would be a plain I/O error.
		var e *anthropic.Error
		if !errors.As(err, &e) || e.Message == "" || e.Type() == "" {
			t.Fatalf("err = %v (%T), want an in-band *anthropic.Error", err, err)
		}
		want := simAnswer(400, prompt)
		if text == "" || !strings.HasPrefix(want, text) || len(text) >= len(want) {
			t.Errorf("streamed %q: want a strict prefix of the answer", text)
		}
		if acc.StopReason != "" {
			t.Errorf("stop_reason = %q on a cut answer", acc.StopReason)
		}
	})
}

// TestAnthropicGoSDKCrossVendorFailover is issue 4's failover seen by the
// Go SDK: the Gemini primary cuts the stream mid-answer, the
// OpenAI-compatible fallback continues it, and the client gets one
// complete answer in Anthropic's format.
func TestAnthropicGoSDKCrossVendorFailover(t *testing.T) {
	r := newSDKRig(t)
	prompt := "go sdk cross-vendor failover"
	c := r.anthropic()
	acc, text, err := accumulate(c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "xv", MaxTokens: 4096,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := simAnswer(rigXVTokens, prompt)
	if got := messageText(&acc); got != want || text != want || acc.StopReason != anthropic.StopReasonEndTurn || len(acc.Content) != 1 {
		t.Errorf("got %d blocks, text %q, deltas %q, stop %q; want one block %q, end_turn", len(acc.Content), got, text, acc.StopReason, want)
	}
	p, f := r.sim.Attempts("gcut"), r.sim.Attempts("after")
	if len(p) != 1 || p[0].Fault != "cut" || p[0].Tokens != rigCutAfter || p[0].Completed {
		t.Errorf("primary attempts: %+v", p)
	}
	if len(f) != 1 || f[0].Fault != "" || !f[0].Completed || f[0].Tokens != rigXVTokens-rigCutAfter {
		t.Errorf("fallback attempts: %+v", f)
	}
}

// TestOpenAIGoResponses checks /v1/responses with the official Go SDK
// (openai-go/v3), from each upstream format: a response, a stream ending
// with response.completed, and a second turn by previous_response_id.
func TestOpenAIGoResponses(t *testing.T) {
	r := newSDKRig(t)
	ctx := context.Background()
	c := r.openai()
	for _, vendor := range sdkVendors {
		t.Run(vendor, func(t *testing.T) {
			prompt := "go sdk responses from " + vendor
			params := responses.ResponseNewParams{Model: vendor, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(prompt)}}
			want := simAnswer(sim.DefaultTokens, prompt)

			resp, err := c.Responses.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.OutputText(); got != want || resp.Status != responses.ResponseStatusCompleted {
				t.Errorf("New: %q (%s), want %q", got, resp.Status, want)
			}
			if resp.Usage.OutputTokens != int64(sim.DefaultTokens) || resp.Usage.TotalTokens != resp.Usage.InputTokens+resp.Usage.OutputTokens {
				t.Errorf("New: usage %+v", resp.Usage)
			}

			st := c.Responses.NewStreaming(ctx, params)
			var deltas string
			var types []string
			var final responses.Response
			for st.Next() {
				ev := st.Current()
				types = append(types, ev.Type)
				switch ev.Type {
				case "response.output_text.delta":
					deltas += ev.Delta
				case "response.completed":
					final = ev.Response
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if len(types) < 5 || types[0] != "response.created" || types[len(types)-1] != "response.completed" {
				t.Errorf("event types: %v", types)
			}
			if deltas != want || final.OutputText() != want || final.Status != responses.ResponseStatusCompleted {
				t.Errorf("stream: deltas %q, final %q (%s); want %q", deltas, final.OutputText(), final.Status, want)
			}

			next := responses.ResponseNewParams{
				Model: vendor, PreviousResponseID: openai.String(final.ID),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Go on.")},
			}
			resp, err = c.Responses.New(ctx, next)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.OutputText(), simAnswer(sim.DefaultTokens, prompt, want, "Go on."); got != want {
				t.Errorf("second turn: %q, want %q", got, want)
			}
		})
	}

	t.Run("unknown previous_response_id", func(t *testing.T) {
		_, err := c.Responses.New(ctx, responses.ResponseNewParams{
			Model: "openai", PreviousResponseID: openai.String("resp_nope"),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("x")},
		})
		var e *openai.Error
		if !errors.As(err, &e) || (e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusNotFound) {
			t.Errorf("err = %v, want a 400 or 404 *openai.Error", err)
		}
	})
}
