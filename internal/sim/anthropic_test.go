package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// messagesReq builds an Anthropic request body with max_tokens 1024; extra
// keys are merged in.
func messagesReq(model string, stream bool, msgs []msg, extra map[string]any) map[string]any {
	m := map[string]any{"model": model, "max_tokens": 1024, "messages": msgs}
	if stream {
		m["stream"] = true
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

// postMessages sends body to /v1/messages; hdr is key, value pairs.
func postMessages(ctx context.Context, t *testing.T, c *http.Client, base string, body any, hdr ...string) (*http.Response, error) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.Do(req)
}

func mustPostMessages(t *testing.T, c *http.Client, base string, body any, hdr ...string) *http.Response {
	t.Helper()
	resp, err := postMessages(t.Context(), t, c, base, body, hdr...)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// anthropicUsage is Anthropic's usage as a client decodes it.
type anthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// messagesStream is a decoded Anthropic SSE body.
type messagesStream struct {
	Names     []string // every event's name, in order
	Malformed []string // data that is not JSON
	Stop      bool     // message_stop arrived, last
	Err       error    // the read error that ended the body, nil for a clean EOF
	ID        string
	Model     string
	Text      string
	Args      string
	ToolID    string
	ToolName  string
	Block     string // the type of the content block
	Deltas    int
	StartUse  anthropicUsage
	Usage     *anthropicUsage // of message_delta
	Reason    string
}

// decodeMessagesStream reads an Anthropic SSE body strictly: every event is
// an event: line, one data: line whose type is the event's name, and a
// blank line; message_start comes first, the one content block is started,
// delta'd and stopped at index 0, and nothing follows message_stop.
// Framing violations fail the test; a truncated body ends with Err.
func decodeMessagesStream(t *testing.T, body io.Reader) messagesStream {
	t.Helper()
	var s messagesStream
	br := bufio.NewReader(body)
	readLine := func() (string, bool) {
		line, err := br.ReadString('\n')
		if err != nil {
			if err != io.EOF || line != "" {
				s.Err = err
				if err == io.EOF {
					s.Err = io.ErrUnexpectedEOF
				}
			}
			return "", false
		}
		return strings.TrimSuffix(line, "\n"), true
	}
	for {
		line, ok := readLine()
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(line, "event: ")
		if !ok {
			t.Errorf("event %d: line %q is not an event line", len(s.Names), line)
			return s
		}
		line, ok = readLine()
		if !ok {
			return s
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("event %s: line %q is not a data line", name, line)
			return s
		}
		if blank, ok := readLine(); !ok {
			t.Logf("event %s: no blank line after it", name)
			return s
		} else if blank != "" {
			t.Errorf("event %s: followed by %q, want a blank line", name, blank)
		}
		if s.Stop {
			t.Errorf("event %s after message_stop", name)
		}
		s.Names = append(s.Names, name)
		var e struct {
			Type    string `json:"type"`
			Index   *int   `json:"index"`
			Message struct {
				ID    string         `json:"id"`
				Model string         `json:"model"`
				Usage anthropicUsage `json:"usage"`
			} `json:"message"`
			ContentBlock struct {
				Type  string          `json:"type"`
				ID    string          `json:"id"`
				Name  string          `json:"name"`
				Input json.RawMessage `json:"input"`
			} `json:"content_block"`
			Delta struct {
				Type        string `json:"type"`
				Text        string `json:"text"`
				PartialJSON string `json:"partial_json"`
				StopReason  string `json:"stop_reason"`
			} `json:"delta"`
			Usage *anthropicUsage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			s.Malformed = append(s.Malformed, data)
			continue
		}
		if e.Type != name {
			t.Errorf("event %s carries data of type %q", name, e.Type)
		}
		if len(s.Names) == 1 && name != "message_start" {
			t.Errorf("first event is %s", name)
		}
		if strings.HasPrefix(name, "content_block") && (e.Index == nil || *e.Index != 0) {
			t.Errorf("%s: index %v, want 0", name, e.Index)
		}
		switch name {
		case "message_start":
			s.ID, s.Model, s.StartUse = e.Message.ID, e.Message.Model, e.Message.Usage
		case "content_block_start":
			s.Block, s.ToolID, s.ToolName = e.ContentBlock.Type, e.ContentBlock.ID, e.ContentBlock.Name
			if s.Block == "tool_use" && string(e.ContentBlock.Input) != "{}" {
				t.Errorf("tool_use starts with input %s", e.ContentBlock.Input)
			}
		case "content_block_delta":
			s.Deltas++
			switch e.Delta.Type {
			case "text_delta":
				s.Text += e.Delta.Text
			case "input_json_delta":
				s.Args += e.Delta.PartialJSON
			default:
				t.Errorf("delta type %q", e.Delta.Type)
			}
		case "message_delta":
			s.Reason, s.Usage = e.Delta.StopReason, e.Usage
		case "message_stop":
			s.Stop = true
		}
	}
}

// anthropicMessageJ is a non-streaming response body.
type anthropicMessageJ struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Content      []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage *anthropicUsage `json:"usage"`
}

// anthropicError is Anthropic's error envelope.
type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func TestAnthropicStreamText(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 5}}))
	body := messagesReq("m", true, []msg{user("Hello!")}, map[string]any{"system": "Be brief."})
	resp := mustPostMessages(t, c, base, body)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	s := decodeMessagesStream(t, resp.Body)
	if s.Err != nil || !s.Stop {
		t.Fatalf("stream ended with err %v, message_stop %v", s.Err, s.Stop)
	}
	want := Answer(PromptOf("Be brief.", "Hello!"), 5)
	if s.Text != join(want) {
		t.Errorf("text = %q, want %q", s.Text, join(want))
	}
	wantNames := []string{"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if diff := cmp.Diff(wantNames, s.Names); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if s.Block != "text" || s.Reason != "end_turn" || s.Model != "m" || !strings.HasPrefix(s.ID, "msg_") {
		t.Errorf("block %q, stop_reason %q, model %q, id %q", s.Block, s.Reason, s.Model, s.ID)
	}
	if diff := cmp.Diff(&anthropicUsage{InputTokens: 3, OutputTokens: 5}, s.Usage); diff != "" || s.StartUse.InputTokens != 3 {
		t.Errorf("usage (-want +got):\n%s (start %+v)", diff, s.StartUse)
	}
}

// TestAnthropicSameAnswer checks that a turn gets the same answer in the
// Anthropic format as the same turn in OpenAI's, so that a stream can
// fail over between formats.
func TestAnthropicSameAnswer(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 7}}))
	tests := []struct {
		name      string
		anthropic map[string]any
		openai    map[string]any
	}{
		{
			name:      "system and parts",
			anthropic: messagesReq("m", true, []msg{{"user", []any{map[string]any{"type": "text", "text": "What is"}, map[string]any{"type": "image", "source": map[string]any{"type": "url", "url": "https://x/y.png"}}, map[string]any{"type": "text", "text": "this?"}}}}, map[string]any{"system": []any{map[string]any{"type": "text", "text": "Be brief."}}}),
			openai:    chatReq("m", true, []msg{{"system", "Be brief."}, {"user", "What is\nthis?"}}, nil),
		},
		{
			name: "tool results",
			anthropic: messagesReq("m", true, []msg{
				user("Weather in Paris and Rome?"),
				{"assistant", []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "w", "input": map[string]any{}}, map[string]any{"type": "tool_use", "id": "toolu_2", "name": "w", "input": map[string]any{}}}},
				{"user", []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}, map[string]any{"type": "tool_result", "tool_use_id": "toolu_2", "content": []any{map[string]any{"type": "text", "text": "25C"}}}}},
			}, nil),
			openai: chatReq("m", true, []msg{user("Weather in Paris and Rome?"), {"assistant", nil}, {"tool", "18C"}, {"tool", "25C"}}, nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := decodeMessagesStream(t, mustPostMessages(t, c, base, tt.anthropic).Body)
			o := decodeStream(t, mustPost(t, c, base, tt.openai).Body)
			if a.Text != o.Content || a.Text == "" {
				t.Errorf("anthropic %q, openai %q", a.Text, o.Content)
			}
		})
	}
}

func TestAnthropicNonStream(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 4}}))
	resp := mustPostMessages(t, c, base, messagesReq("m", false, []msg{user("Hi there")}, nil))
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeJSON[anthropicMessageJ](t, bytes.NewReader(raw))
	if m.Type != "message" || m.Role != "assistant" || m.Model != "m" || !strings.HasPrefix(m.ID, "msg_") || m.StopReason != "end_turn" || m.StopSequence != nil {
		t.Errorf("envelope: %s", raw)
	}
	if len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != join(Answer("Hi there", 4)) {
		t.Errorf("content: %s", raw)
	}
	if diff := cmp.Diff(&anthropicUsage{InputTokens: 2, OutputTokens: 4}, m.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestAnthropicMaxTokens(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	ans := Answer("Hello!", DefaultTokens)
	for _, tt := range []struct {
		max    int
		want   int
		reason string
	}{{5, 5, "max_tokens"}, {100, DefaultTokens, "end_turn"}} {
		s := decodeMessagesStream(t, mustPostMessages(t, c, base, messagesReq("m", true, []msg{user("Hello!")}, map[string]any{"max_tokens": tt.max})).Body)
		if s.Text != join(ans[:tt.want]) || s.Reason != tt.reason || s.Usage.OutputTokens != tt.want {
			t.Errorf("max_tokens %d: text %q, stop_reason %q, usage %+v", tt.max, s.Text, s.Reason, s.Usage)
		}
	}
}

func TestAnthropicPrefill(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{
		"m":          {Tokens: 8},
		"restarter":  {Tokens: 8, Restart: true},
		"no-prefill": {Tokens: 8, RejectPrefill: true},
	}))
	q := "Why is the sky blue?"
	ans := Answer(PromptOf(q), 8)
	trimmed := strings.TrimSuffix(join(ans[:3]), " ")
	tests := []struct {
		name    string
		model   string
		prefill any
		want    string
	}{
		{"trimmed at a token boundary", "m", trimmed, " " + join(ans[3:])},
		{"mid token", "m", join(ans[:3]) + ans[3][:2], ans[3][2:] + join(ans[4:])},
		{"empty blocks", "m", []any{}, join(ans)},
		{"in blocks", "m", []any{map[string]any{"type": "text", "text": trimmed}}, " " + join(ans[3:])},
		{"not our answer", "m", "Because of", join(Answer(PromptOf(q, "Because of"), 8))},
		{"restart", "restarter", trimmed, join(ans)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := messagesReq(tt.model, true, []msg{user(q), {"assistant", tt.prefill}}, nil)
			s := decodeMessagesStream(t, mustPostMessages(t, c, base, body).Body)
			if s.Text != tt.want {
				t.Errorf("text = %q, want %q", s.Text, tt.want)
			}
			if !s.Stop || s.Reason != "end_turn" {
				t.Errorf("message_stop %v, stop_reason %q", s.Stop, s.Reason)
			}
		})
	}
	for _, tt := range []struct {
		name, model, prefill, message string
	}{
		{"trailing whitespace", "m", join(ans[:3]), "final assistant content cannot end with trailing whitespace"},
		{"reject_prefill", "no-prefill", trimmed, "does not support assistant message prefill"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustPostMessages(t, c, base, messagesReq(tt.model, true, []msg{user(q), assistant(tt.prefill)}, nil))
			e := decodeJSON[anthropicError](t, resp.Body)
			if resp.StatusCode != 400 || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("status %d, error %+v", resp.StatusCode, e)
			}
		})
	}
}

var anthropicWeatherTool = map[string]any{
	"name":         "get_current_weather",
	"description":  "Get the weather",
	"input_schema": weatherTool["function"].(map[string]any)["parameters"],
}

var anthropicStockTool = map[string]any{
	"name":         "get_stock_price",
	"input_schema": stockTool["function"].(map[string]any)["parameters"],
}

func TestAnthropicTools(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"a": {}, "b": {Tokens: 5}}))
	q := []msg{user("What is the weather like in Boston today?")}
	tools := []any{anthropicWeatherTool, anthropicStockTool, map[string]any{"type": "web_search_20250305", "name": "web_search"}}
	tests := []struct {
		name     string
		choice   any
		wantTool string
		wantKeys []string
	}{
		{"auto picks the first tool", map[string]any{"type": "auto"}, "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
		{"no tool_choice", nil, "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
		{"named", map[string]any{"type": "tool", "name": "get_stock_price"}, "get_stock_price", []string{"ticker"}},
		{"any", map[string]any{"type": "any", "disable_parallel_tool_use": true}, "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]any{"tools": tools}
			if tt.choice != nil {
				extra["tool_choice"] = tt.choice
			}
			var calls []string
			for _, model := range []string{"a", "b"} {
				s := decodeMessagesStream(t, mustPostMessages(t, c, base, messagesReq(model, true, q, extra)).Body)
				if s.Block != "tool_use" || s.ToolName != tt.wantTool || !strings.HasPrefix(s.ToolID, "toolu_") || s.Reason != "tool_use" || !s.Stop {
					t.Fatalf("block %q tool %q id %q stop_reason %q stop %v", s.Block, s.ToolName, s.ToolID, s.Reason, s.Stop)
				}
				if s.Text != "" || s.Deltas < 3 {
					t.Errorf("text %q, %d deltas; want the input in fragments", s.Text, s.Deltas)
				}
				var args map[string]any
				if err := json.Unmarshal([]byte(s.Args), &args); err != nil {
					t.Fatalf("input %q: %v", s.Args, err)
				}
				var keys []string
				for k := range args {
					keys = append(keys, k)
				}
				if diff := cmp.Diff(tt.wantKeys, keys, sortStrings); diff != "" {
					t.Errorf("input keys (-want +got):\n%s", diff)
				}
				calls = append(calls, s.ToolID+s.Args)
			}
			if calls[0] != calls[1] {
				t.Errorf("tool calls differ between models: %q", calls)
			}
		})
	}

	t.Run("same call as OpenAI's", func(t *testing.T) {
		a := decodeMessagesStream(t, mustPostMessages(t, c, base, messagesReq("a", true, q, map[string]any{"tools": tools})).Body)
		o := decodeStream(t, mustPost(t, c, base, chatReq("a", true, q, map[string]any{"tools": []any{weatherTool, stockTool}})).Body)
		if a.Args != o.Args || strings.TrimPrefix(a.ToolID, "toolu_") != strings.TrimPrefix(o.ToolID, "call_") {
			t.Errorf("anthropic %s %s, openai %s %s", a.ToolID, a.Args, o.ToolID, o.Args)
		}
	})

	t.Run("non-streaming", func(t *testing.T) {
		m := decodeJSON[anthropicMessageJ](t, mustPostMessages(t, c, base, messagesReq("a", false, q, map[string]any{"tools": tools})).Body)
		if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || !strings.HasPrefix(m.Content[0].ID, "toolu_") {
			t.Fatalf("message = %+v", m)
		}
		var args map[string]any
		if err := json.Unmarshal(m.Content[0].Input, &args); err != nil || len(args) != 5 {
			t.Errorf("input %s: %v", m.Content[0].Input, err)
		}
	})
	t.Run("non-streaming cut short", func(t *testing.T) {
		m := decodeJSON[anthropicMessageJ](t, mustPostMessages(t, c, base, messagesReq("a", false, q, map[string]any{"tools": tools, "max_tokens": 2})).Body)
		if m.StopReason != "max_tokens" || string(m.Content[0].Input) != "{}" {
			t.Errorf("message = %+v", m)
		}
	})

	textCases := []struct {
		name string
		msgs []msg
		ext  map[string]any
		want []string
	}{
		{"tool_choice none", q, map[string]any{"tools": tools, "tool_choice": map[string]any{"type": "none"}}, []string{q[0].Content.(string)}},
		{"after a tool result", append(q[:1:1],
			msg{"assistant", []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "get_current_weather", "input": map[string]any{"location": "Boston"}}}},
			msg{"user", []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": `{"temperature":22}`}}}),
			map[string]any{"tools": tools}, []string{q[0].Content.(string), "", `{"temperature":22}`}},
	}
	for _, tt := range textCases {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeMessagesStream(t, mustPostMessages(t, c, base, messagesReq("a", true, tt.msgs, tt.ext)).Body)
			if want := join(Answer(PromptOf(tt.want...), DefaultTokens)); s.Text != want || s.Reason != "end_turn" {
				t.Errorf("text %q stop_reason %q, want text %q", s.Text, s.Reason, want)
			}
		})
	}
}

func TestAnthropicJSONSchema(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 6}}))
	oc := map[string]any{"format": map[string]any{"type": "json_schema", "schema": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"name":         map[string]any{"type": "string"},
			"date":         map[string]any{"type": "string"},
			"participants": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		},
		"required":             []string{"name", "date", "participants"},
		"additionalProperties": false,
	}}}
	for _, stream := range []bool{true, false} {
		resp := mustPostMessages(t, c, base, messagesReq("m", stream, []msg{user("Alice and Bob meet for lunch on Friday.")}, map[string]any{"output_config": oc}))
		var text string
		if stream {
			s := decodeMessagesStream(t, resp.Body)
			if s.Deltas < 3 {
				t.Errorf("json in %d deltas, want fragments", s.Deltas)
			}
			text = s.Text
		} else {
			text = decodeJSON[anthropicMessageJ](t, resp.Body).Content[0].Text
		}
		var got struct {
			Name         *string   `json:"name"`
			Date         *string   `json:"date"`
			Participants *[]string `json:"participants"`
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("stream %v: text %q: %v", stream, text, err)
		}
		if got.Name == nil || got.Date == nil || got.Participants == nil {
			t.Errorf("instance %q misses required fields", text)
		}
	}
}

func TestAnthropicErrorFaults(t *testing.T) {
	tests := []struct {
		name    string
		fault   Fault
		status  int
		headers map[string]string
		typ     string
		message string // substring
	}{
		{"429 with retry hints", Fault{Kind: FaultHTTPError, Status: 429, RetryAfter: 7 * time.Second, ShouldRetry: ptr(true)}, 429,
			map[string]string{"Retry-After": "7", "X-Should-Retry": "true"}, "rate_limit_error", "rate limit"},
		{"529", Fault{Kind: FaultHTTPError, Status: 529, ShouldRetry: ptr(false)}, 529,
			map[string]string{"X-Should-Retry": "false"}, "overloaded_error", "Overloaded"},
		{"500", Fault{Kind: FaultHTTPError, Status: 500}, 500, nil, "api_error", "Internal server error"},
		{"502", Fault{Kind: FaultHTTPError, Status: 502}, 502, nil, "api_error", "Internal server error"},
		{"401", Fault{Kind: FaultHTTPError, Status: 401}, 401, nil, "authentication_error", "x-api-key"},
		{"402", Fault{Kind: FaultHTTPError, Status: 402}, 402, nil, "billing_error", "credit balance"},
		{"403", Fault{Kind: FaultHTTPError, Status: 403}, 403, nil, "permission_error", "permission"},
		{"404", Fault{Kind: FaultHTTPError, Status: 404}, 404, nil, "not_found_error", "model: m"},
		{"413", Fault{Kind: FaultHTTPError, Status: 413}, 413, nil, "request_too_large", "maximum allowed"},
		{"overrides", Fault{Kind: FaultHTTPError, Status: 500, Type: "overloaded_error", Code: "ignored", Message: "Overloaded"}, 500, nil, "overloaded_error", "Overloaded"},
		{"context_length", Fault{Kind: FaultContextLength}, 400, nil, "invalid_request_error", "prompt is too long"},
		{"content_filter", Fault{Kind: FaultContentFilter}, 400, nil, "invalid_request_error", "content filtering policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}}, WithClock(func() time.Time { return epoch }))
			c, base := startServer(t, s)
			for _, stream := range []bool{true, false} {
				resp := mustPostMessages(t, c, base, messagesReq("m", stream, []msg{user("hi")}, nil))
				if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("stream %v: status = %d (%s), want %d", stream, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
				}
				for k, v := range tt.headers {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				e := decodeJSON[anthropicError](t, resp.Body)
				if e.Type != "error" || e.Error.Type != tt.typ || !strings.Contains(e.Error.Message, tt.message) || !strings.HasPrefix(e.RequestID, "req_") {
					t.Errorf("error body %+v, want type %s and a message with %q", e, tt.typ, tt.message)
				}
			}
			for _, a := range s.Attempts("m") {
				if a.Fault != string(tt.fault.Kind) || a.Status != tt.status || a.Completed || a.Tokens != 0 {
					t.Errorf("attempt = %+v", a)
				}
			}
		})
	}
	t.Run("flap", func(t *testing.T) {
		c, base := startServer(t, newSim(map[string]Profile{"m": {Faults: []Fault{{Kind: FaultFlap, Down: time.Hour}}}}))
		resp := mustPostMessages(t, c, base, messagesReq("m", true, []msg{user("hi")}, nil))
		if e := decodeJSON[anthropicError](t, resp.Body); resp.StatusCode != 503 || e.Error.Type != "overloaded_error" {
			t.Errorf("status %d, error %+v", resp.StatusCode, e)
		}
	})
}

func TestAnthropicStreamFaults(t *testing.T) {
	ans := Answer("hi", 6)
	tests := []struct {
		name      string
		fault     Fault
		connErr   bool
		readErr   error
		text      string
		stop      bool
		reason    string
		malformed int
		// want in the attempt log
		status    int
		tokens    int
		completed bool
	}{
		{name: "reset", fault: Fault{Kind: FaultReset}, connErr: true},
		{name: "cut", fault: Fault{Kind: FaultCut, After: 3}, readErr: io.ErrUnexpectedEOF, text: join(ans[:3]), status: 200, tokens: 3},
		{name: "cut after 0 tokens", fault: Fault{Kind: FaultCut}, readErr: io.ErrUnexpectedEOF, status: 200},
		{name: "cut past the end", fault: Fault{Kind: FaultCut, After: 99}, readErr: io.ErrUnexpectedEOF, text: join(ans), status: 200, tokens: 6},
		{name: "malformed", fault: Fault{Kind: FaultMalformed, After: 2}, text: join(ans), stop: true, reason: "end_turn",
			malformed: 1, status: 200, tokens: 6, completed: true},
		{name: "no_done", fault: Fault{Kind: FaultNoDone}, text: join(ans), reason: "end_turn", status: 200, tokens: 6},
		{name: "stall for a moment", fault: Fault{Kind: FaultStall, After: 2, For: time.Millisecond}, text: join(ans), stop: true,
			reason: "end_turn", status: 200, tokens: 6, completed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Tokens: 6, Faults: []Fault{tt.fault}}})
			c, base := startServer(t, s)
			resp, err := postMessages(t.Context(), t, c, base, messagesReq("m", true, []msg{user("hi")}, nil))
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
				st := decodeMessagesStream(t, resp.Body)
				if !errors.Is(st.Err, tt.readErr) {
					t.Errorf("read error = %v, want %v", st.Err, tt.readErr)
				}
				got := []any{st.Text, st.Stop, st.Reason, len(st.Malformed)}
				want := []any{tt.text, tt.stop, tt.reason, tt.malformed}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("text, message_stop, stop_reason, malformed (-want +got):\n%s", diff)
				}
				if tt.malformed > 0 && st.Names[5] != "content_block_delta" {
					t.Errorf("events %q: want the garbled one after 2 tokens", st.Names)
				}
			}
			a := s.Attempts("m")[0]
			got := Attempt{Fault: a.Fault, Status: a.Status, Tokens: a.Tokens, Completed: a.Completed}
			want := Attempt{Fault: string(tt.fault.Kind), Status: tt.status, Tokens: tt.tokens, Completed: tt.completed}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attempt (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnthropicNonStreamFaults(t *testing.T) {
	for _, f := range []Fault{{Kind: FaultCut, After: 1}, {Kind: FaultMalformed}} {
		t.Run(string(f.Kind), func(t *testing.T) {
			f.Always = true
			c, base := startServer(t, newSim(map[string]Profile{"m": {Faults: []Fault{f}}}))
			resp := mustPostMessages(t, c, base, messagesReq("m", false, []msg{user("hi")}, nil))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			b, err := io.ReadAll(resp.Body)
			if f.Kind == FaultCut && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want unexpected EOF", err)
			}
			if json.Valid(b) {
				t.Errorf("body %s is valid JSON", b)
			}
		})
	}
}

func TestAnthropicRequestErrors(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	tests := []struct {
		name    string
		body    any
		hdr     []string
		status  int
		typ     string
		message string
	}{
		{"not JSON", []byte("{"), nil, 400, "invalid_request_error", "parsing the body"},
		{"empty body", []byte(""), nil, 400, "invalid_request_error", "empty"},
		{"no model", messagesReq("", false, []msg{user("hi")}, nil), nil, 400, "invalid_request_error", "model: Field required"},
		{"no max_tokens", messagesReq("m", false, []msg{user("hi")}, map[string]any{"max_tokens": nil}), nil, 400, "invalid_request_error", "max_tokens: Field required"},
		{"max_tokens zero", messagesReq("m", false, []msg{user("hi")}, map[string]any{"max_tokens": 0}), nil, 400, "invalid_request_error", "max_tokens"},
		{"no messages", messagesReq("m", false, []msg{}, nil), nil, 400, "invalid_request_error", "messages"},
		{"system role", messagesReq("m", false, []msg{{"system", "x"}}, nil), nil, 400, "invalid_request_error", "messages.0.role"},
		{"content a number", messagesReq("m", false, []msg{{"user", 5}}, nil), nil, 400, "invalid_request_error", "messages.0.content"},
		{"system a number", messagesReq("m", false, []msg{user("hi")}, map[string]any{"system": 5}), nil, 400, "invalid_request_error", "system"},
		{"unknown x-sim-profile", messagesReq("m", false, []msg{user("hi")}, nil), []string{"x-sim-profile", "nope"}, 400, "invalid_request_error", "unknown simulator profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustPostMessages(t, c, base, tt.body, tt.hdr...)
			e := decodeJSON[anthropicError](t, resp.Body)
			if resp.StatusCode != tt.status || e.Type != "error" || e.Error.Type != tt.typ || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("status %d error %+v; want %d %s %q", resp.StatusCode, e, tt.status, tt.typ, tt.message)
			}
		})
	}
}

func TestAnthropicAttemptLog(t *testing.T) {
	s := newSim(map[string]Profile{
		"a": {Tokens: 3, Faults: []Fault{{Name: "busy", Kind: FaultHTTPError, Status: 529, Attempts: []int{2}}}},
	}, WithClock(func() time.Time { return epoch }))
	c, base := startServer(t, s)
	send := func(stream bool, id, attempt string, openai bool) {
		var resp *http.Response
		if openai {
			resp = mustPost(t, c, base, chatReq("a", stream, []msg{user("hi")}, nil), "x-request-id", id, "x-keel-attempt", attempt)
		} else {
			resp = mustPostMessages(t, c, base, messagesReq("a", stream, []msg{user("hi")}, nil), "x-request-id", id, "x-keel-attempt", attempt)
		}
		io.Copy(io.Discard, resp.Body)
	}
	send(true, "r1", "1", false)
	send(true, "r1", "2", false)
	send(false, "r2", "1", false)
	send(true, "r3", "1", true) // the attempt count is per model, whatever the format

	ok := func(n int, stream bool, id, attempt string) Attempt {
		return Attempt{Model: "a", Profile: "a", Number: n, Stream: stream, Arrived: epoch, Headers: epoch,
			FirstToken: epoch, Ended: epoch, Status: 200, Tokens: 3, Completed: true, RequestID: id, KeelAttempt: attempt}
	}
	want := []Attempt{
		ok(1, true, "r1", "1"),
		{Model: "a", Profile: "a", Number: 2, Stream: true, Arrived: epoch, Headers: epoch, Ended: epoch,
			Status: 529, Fault: "busy", RequestID: "r1", KeelAttempt: "2"},
		ok(3, false, "r2", "1"),
		ok(4, true, "r3", "1"),
	}
	if diff := cmp.Diff(want, s.Attempts("a")); diff != "" {
		t.Errorf("Attempts (-want +got):\n%s", diff)
	}
}
