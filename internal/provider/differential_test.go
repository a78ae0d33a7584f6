package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider/anthropic"
	"github.com/keel-ai/keel/internal/provider/gemini"
	"github.com/keel-ai/keel/internal/provider/openai"
	"github.com/keel-ai/keel/internal/sim"
)

// TestDifferential is issue 4's differential test: the same request,
// through each vendor's simulator and keel's adapter for that vendor,
// yields the same neutral answer.
func TestDifferential(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Config{}))
	defer srv.Close()
	quiet := slog.New(slog.DiscardHandler)
	vendors := map[string]llm.Provider{
		"openai":    openai.New(openai.Config{Name: "openai", Dialect: openai.Dialects["sim"], BaseURL: srv.URL + "/v1", Log: quiet}, srv.Client()),
		"gemini":    gemini.New(gemini.Config{Name: "gemini", BaseURL: srv.URL + "/v1beta", Log: quiet}, srv.Client()),
		"anthropic": anthropic.New(anthropic.Config{Name: "anthropic", BaseURL: srv.URL + "/v1", Log: quiet}, srv.Client()),
	}
	weather := llm.Tool{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}
	requests := map[string]*llm.Request{
		"text": {Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{llm.TextPart("Be brief.")}},
			{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("Tell me about the sea.")}},
		}},
		"tool call": {Tools: []llm.Tool{weather}, Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("Weather in Paris?")}},
		}},
	}
	type answer struct {
		Text       string
		Calls      []string // name and arguments: ids are each vendor's own
		Finish     llm.Finish
		OutputToks int
	}
	for name, base := range requests {
		for _, stream := range []bool{true, false} {
			var want *answer
			var wantFrom string
			for vendor, p := range vendors {
				r := *base
				r.Model, r.Stream = "m", stream
				s, err := p.Chat(context.Background(), &r)
				if err != nil {
					t.Fatalf("%s %s: %v", name, vendor, err)
				}
				var a llm.Answer
				for {
					ev, err := s.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s %s: %v", name, vendor, err)
					}
					a.Add(ev)
				}
				got := &answer{Text: string(a.Text), Finish: a.Finish, OutputToks: a.Usage.Output}
				for _, c := range a.ToolCalls {
					var args any
					if err := json.Unmarshal([]byte(c.Arguments), &args); err != nil {
						t.Fatalf("%s %s: arguments %q: %v", name, vendor, c.Arguments, err)
					}
					canon, _ := json.Marshal(args)
					got.Calls = append(got.Calls, c.Name+string(canon))
				}
				if want == nil {
					want, wantFrom = got, vendor
					continue
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (stream=%v): %s and %s differ (-%s +%s):\n%s", name, stream, wantFrom, vendor, wantFrom, vendor, diff)
				}
			}
		}
	}
}
