package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestStreamText(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 5}}))
	msgs := []msg{{"system", "Be brief."}, user("Hello!")}
	resp := mustPost(t, c, base, chatReq("m", true, msgs, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	s := decodeStream(t, resp.Body)
	want := Answer(PromptOf("Be brief.", "Hello!"), 5)
	if s.Err != nil || !s.Done {
		t.Fatalf("stream ended with err %v, done %v", s.Err, s.Done)
	}
	if s.Content != join(want) {
		t.Errorf("content = %q, want %q", s.Content, join(want))
	}
	// role chunk, 5 content chunks, finish chunk, [DONE]
	if len(s.Raw) != 8 {
		t.Errorf("got %d events, want 8: %q", len(s.Raw), s.Raw)
	}
	for i, tok := range want {
		if got := *s.Chunks[i+1].Choices[0].Delta.Content; got != tok {
			t.Errorf("chunk %d content = %q, want one token %q", i+1, got, tok)
		}
	}
	if s.Finish != "stop" {
		t.Errorf("finish_reason = %q", s.Finish)
	}
	if s.Chunks[0].Model != "m" || !strings.HasPrefix(s.Chunks[0].ID, "chatcmpl-") {
		t.Errorf("first chunk id %q model %q", s.Chunks[0].ID, s.Chunks[0].Model)
	}
	for _, r := range s.Raw[:len(s.Raw)-1] {
		if strings.Contains(r, `"usage"`) {
			t.Errorf("usage without include_usage: %s", r)
		}
	}
	// The exact first and finish chunks, as OpenAI sends them.
	wantFirst := `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`
	wantFinish := `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`
	if !strings.HasSuffix(s.Raw[0], wantFirst) {
		t.Errorf("first chunk = %s, want suffix %s", s.Raw[0], wantFirst)
	}
	if !strings.HasSuffix(s.Raw[6], wantFinish) {
		t.Errorf("finish chunk = %s, want suffix %s", s.Raw[6], wantFinish)
	}
}

func TestModelIndependence(t *testing.T) {
	// Two models with different latency, same answer length.
	c, base := startServer(t, newSim(map[string]Profile{
		"a": {},
		"b": {TPS: Dist[float64]{Value: 1e6}},
	}))
	msgs := []msg{user("What is the capital of France?")}
	want := join(Answer(PromptOf("What is the capital of France?"), DefaultTokens))
	for _, model := range []string{"a", "b", "unknown-model"} {
		for _, stream := range []bool{true, false} {
			resp := mustPost(t, c, base, chatReq(model, stream, msgs, nil))
			var got string
			if stream {
				got = decodeStream(t, resp.Body).Content
			} else {
				got = *decodeJSON[completion](t, resp.Body).Choices[0].Message.Content
			}
			if got != want {
				t.Errorf("model %s stream %v: content %q, want %q", model, stream, got, want)
			}
		}
	}
}

func TestNonStream(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 4}}))
	resp := mustPost(t, c, base, chatReq("m", false, []msg{user("Hi there")}, nil))
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeJSON[completion](t, strings.NewReader(string(raw)))
	if got.Object != "chat.completion" || got.Model != "m" || !strings.HasPrefix(got.ID, "chatcmpl-") || got.Created == 0 {
		t.Errorf("envelope: %s", raw)
	}
	ch := got.Choices[0]
	if string(ch.Message.Refusal) != "null" || string(ch.Logprobs) != "null" || ch.Message.Role != "assistant" {
		t.Errorf("message must carry refusal:null, logprobs:null: %s", raw)
	}
	if want := join(Answer("Hi there", 4)); *ch.Message.Content != want {
		t.Errorf("content = %q, want %q", *ch.Message.Content, want)
	}
	if diff := cmp.Diff(&usageJ{PromptTokens: 2, CompletionTokens: 4, TotalTokens: 6}, got.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if ch.FinishReason != "stop" {
		t.Errorf("finish_reason = %q", ch.FinishReason)
	}
}

func TestIncludeUsage(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 3}}))
	body := chatReq("m", true, []msg{{"developer", "You are a helpful assistant."}, user("Hello!")},
		map[string]any{"stream_options": map[string]any{"include_usage": true}})
	s := decodeStream(t, mustPost(t, c, base, body).Body)
	if !s.Done || s.Err != nil {
		t.Fatalf("done %v err %v", s.Done, s.Err)
	}
	// Every chunk but the last carries "usage":null; the last has choices:[].
	n := len(s.Raw) - 1 // without [DONE]
	for i, r := range s.Raw[:n-1] {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			t.Fatal(err)
		}
		if u, ok := m["usage"]; !ok || string(u) != "null" {
			t.Errorf("chunk %d: usage = %s (present %v), want null", i, u, ok)
		}
	}
	last := s.Chunks[len(s.Chunks)-1]
	if last.Choices == nil || len(last.Choices) != 0 {
		t.Errorf("usage chunk choices = %v, want []", last.Choices)
	}
	if diff := cmp.Diff(&usageJ{PromptTokens: 6, CompletionTokens: 3, TotalTokens: 9}, s.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if !strings.Contains(s.Raw[n-1], `"choices":[],"usage":{"prompt_tokens":6,`) {
		t.Errorf("usage chunk = %s", s.Raw[n-1])
	}
}

func TestMaxTokens(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	tests := []struct {
		name  string
		extra map[string]any
		want  int
		fin   string
	}{
		{"max_completion_tokens", map[string]any{"max_completion_tokens": 5}, 5, "length"},
		{"max_tokens", map[string]any{"max_tokens": 7}, 7, "length"},
		{"both: max_completion_tokens wins", map[string]any{"max_tokens": 7, "max_completion_tokens": 3}, 3, "length"},
		{"above answer", map[string]any{"max_tokens": 100}, DefaultTokens, "stop"},
	}
	ans := Answer("Hello!", DefaultTokens)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.extra["stream_options"] = map[string]any{"include_usage": true}
			s := decodeStream(t, mustPost(t, c, base, chatReq("m", true, []msg{user("Hello!")}, tt.extra)).Body)
			if s.Content != join(ans[:tt.want]) || s.Finish != tt.fin || s.Usage.CompletionTokens != tt.want {
				t.Errorf("content %q finish %q usage %+v; want %d tokens, finish %q", s.Content, s.Finish, s.Usage, tt.want, tt.fin)
			}
		})
	}
}

func TestPrefill(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{
		"m":          {Tokens: 8},
		"restarter":  {Tokens: 8, Restart: true},
		"no-prefill": {Tokens: 8, RejectPrefill: true},
	}))
	q := "Why is the sky blue?"
	ans := Answer(PromptOf(q), 8)
	tests := []struct {
		name    string
		model   string
		prefill string
		want    string
	}{
		{"token boundary", "m", join(ans[:3]), join(ans[3:])},
		{"mid token", "m", join(ans[:3]) + ans[3][:2], ans[3][2:] + join(ans[4:])},
		{"empty prefill", "m", "", join(ans)},
		{"whole answer", "m", join(ans), ""},
		{"not our answer", "m", "Because of", join(Answer(PromptOf(q, "Because of"), 8))},
		{"restart", "restarter", join(ans[:3]), join(ans)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := chatReq(tt.model, true, []msg{user(q), assistant(tt.prefill)},
				map[string]any{"stream_options": map[string]any{"include_usage": true}})
			s := decodeStream(t, mustPost(t, c, base, body).Body)
			if s.Content != tt.want {
				t.Errorf("content = %q, want %q", s.Content, tt.want)
			}
			if !s.Done || s.Finish != "stop" {
				t.Errorf("done %v finish %q", s.Done, s.Finish)
			}
		})
	}
	t.Run("reject_prefill", func(t *testing.T) {
		resp := mustPost(t, c, base, chatReq("no-prefill", true, []msg{user(q), assistant(join(ans[:3]))}, nil))
		e := decodeJSON[apiError](t, resp.Body)
		if resp.StatusCode != 400 || e.Error.Type != "invalid_request_error" {
			t.Errorf("status %d, error %+v; want 400 invalid_request_error", resp.StatusCode, e.Error)
		}
		// Without a prefill the model answers normally.
		s := decodeStream(t, mustPost(t, c, base, chatReq("no-prefill", true, []msg{user(q)}, nil)).Body)
		if s.Content != join(ans) {
			t.Errorf("content = %q, want %q", s.Content, join(ans))
		}
	})
}

var weatherTool = map[string]any{
	"type": "function",
	"function": map[string]any{
		"name": "get_current_weather",
		"parameters": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"location": map[string]any{"type": "string"},
				"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
				"days":     map[string]any{"type": "integer"},
				"detailed": map[string]any{"type": "boolean"},
				"hours":    map[string]any{"type": "array", "items": map[string]any{"type": "number"}},
			},
			"required": []string{"location"},
		},
	},
}

var stockTool = map[string]any{
	"type": "function",
	"function": map[string]any{
		"name":       "get_stock_price",
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"ticker": map[string]any{"type": "string"}}},
	},
}

func TestTools(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"a": {}, "b": {Tokens: 5}}))
	q := []msg{user("What is the weather like in Boston today?")}
	tools := []any{weatherTool, stockTool}
	tests := []struct {
		name     string
		choice   any
		wantTool string
		wantKeys []string
	}{
		{"auto picks the first tool", "auto", "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
		{"no tool_choice", nil, "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
		{"named", map[string]any{"type": "function", "function": map[string]any{"name": "get_stock_price"}}, "get_stock_price", []string{"ticker"}},
		{"required", "required", "get_current_weather", []string{"days", "detailed", "hours", "location", "unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]any{"tools": tools}
			if tt.choice != nil {
				extra["tool_choice"] = tt.choice
			}
			var ids []string
			for _, model := range []string{"a", "b"} {
				s := decodeStream(t, mustPost(t, c, base, chatReq(model, true, q, extra)).Body)
				if s.ToolName != tt.wantTool || !strings.HasPrefix(s.ToolID, "call_") || s.Finish != "tool_calls" || !s.Done {
					t.Fatalf("tool %q id %q finish %q done %v", s.ToolName, s.ToolID, s.Finish, s.Done)
				}
				if s.Content != "" {
					t.Errorf("tool call with content %q", s.Content)
				}
				// The first chunk carries id, type and name with empty
				// arguments; then at least two argument fragments.
				tc := s.Chunks[0].Choices[0].Delta.ToolCalls
				if len(tc) != 1 || tc[0].Type != "function" || tc[0].Function.Arguments != "" || s.Chunks[0].Choices[0].Delta.Content != nil {
					t.Errorf("first chunk = %s", s.Raw[0])
				}
				if frags := len(s.Chunks) - 2; frags < 2 {
					t.Errorf("arguments in %d fragments, want several", frags)
				}
				var args map[string]any
				if err := json.Unmarshal([]byte(s.Args), &args); err != nil {
					t.Fatalf("arguments %q: %v", s.Args, err)
				}
				var keys []string
				for k := range args {
					keys = append(keys, k)
				}
				if diff := cmp.Diff(tt.wantKeys, keys, sortStrings); diff != "" {
					t.Errorf("argument keys (-want +got):\n%s", diff)
				}
				if tt.wantTool == "get_current_weather" {
					if _, ok := args["location"].(string); !ok {
						t.Errorf("location = %v, want a string", args["location"])
					}
					if u := args["unit"]; u != "celsius" && u != "fahrenheit" {
						t.Errorf("unit = %v, want an enum value", u)
					}
					if args["detailed"] != true {
						t.Errorf("detailed = %v, want true", args["detailed"])
					}
					if h, ok := args["hours"].([]any); !ok || len(h) != 0 {
						t.Errorf("hours = %v, want []", args["hours"])
					}
				}
				ids = append(ids, s.ToolID+s.Args)
			}
			if ids[0] != ids[1] {
				t.Errorf("tool calls differ between models: %q", ids)
			}
		})
	}

	t.Run("non-streaming", func(t *testing.T) {
		resp := mustPost(t, c, base, chatReq("a", false, q, map[string]any{"tools": tools}))
		got := decodeJSON[completion](t, resp.Body)
		ch := got.Choices[0]
		if ch.FinishReason != "tool_calls" || ch.Message.Content != nil || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("choice = %+v", ch)
		}
		var args map[string]any
		if err := json.Unmarshal([]byte(ch.Message.ToolCalls[0].Function.Arguments), &args); err != nil {
			t.Errorf("arguments: %v", err)
		}
	})

	textCases := []struct {
		name string
		msgs []msg
		ext  map[string]any
	}{
		{"tool_choice none", q, map[string]any{"tools": tools, "tool_choice": "none"}},
		{"after a tool result", append(q[:1:1],
			msg{"assistant", nil},
			msg{"tool", `{"temperature":22,"unit":"celsius"}`}), map[string]any{"tools": tools}},
	}
	for _, tt := range textCases {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeStream(t, mustPost(t, c, base, chatReq("a", true, tt.msgs, tt.ext)).Body)
			var texts []string
			for _, m := range tt.msgs {
				s, _ := m.Content.(string)
				texts = append(texts, s)
			}
			if want := join(Answer(PromptOf(texts...), DefaultTokens)); s.Content != want || s.Finish != "stop" {
				t.Errorf("content %q finish %q, want text %q", s.Content, s.Finish, want)
			}
		})
	}
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestJSONOutput(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 6}}))
	q := []msg{{"system", "Extract the event."}, user("Alice and Bob meet for lunch on Friday.")}
	t.Run("json_object", func(t *testing.T) {
		for _, stream := range []bool{true, false} {
			resp := mustPost(t, c, base, chatReq("m", stream, q, map[string]any{"response_format": map[string]any{"type": "json_object"}}))
			var content string
			if stream {
				s := decodeStream(t, resp.Body)
				if len(s.Chunks) < 5 {
					t.Errorf("json streamed in %d chunks, want fragments", len(s.Chunks))
				}
				content = s.Content
			} else {
				content = *decodeJSON[completion](t, resp.Body).Choices[0].Message.Content
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(content), &got); err != nil {
				t.Fatalf("content %q: %v", content, err)
			}
			want := map[string]string{"answer": join(Answer(PromptOf("Extract the event.", "Alice and Bob meet for lunch on Friday."), 6))}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("json_object (-want +got):\n%s", diff)
			}
		}
	})
	t.Run("json_schema", func(t *testing.T) {
		rf := map[string]any{"type": "json_schema", "json_schema": map[string]any{
			"name": "calendar_event", "strict": true,
			"schema": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"name":         map[string]any{"type": "string"},
					"date":         map[string]any{"type": "string"},
					"participants": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
				},
				"required":             []string{"name", "date", "participants"},
				"additionalProperties": false,
			},
		}}
		s := decodeStream(t, mustPost(t, c, base, chatReq("m", true, q, map[string]any{"response_format": rf})).Body)
		var got struct {
			Name         *string   `json:"name"`
			Date         *string   `json:"date"`
			Participants *[]string `json:"participants"`
		}
		dec := json.NewDecoder(strings.NewReader(s.Content))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("content %q: %v", s.Content, err)
		}
		if got.Name == nil || *got.Name == "" || got.Date == nil || got.Participants == nil {
			t.Errorf("instance %q misses required fields", s.Content)
		}
	})
}

func TestRequestErrors(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	tests := []struct {
		name   string
		body   any
		hdr    []string
		status int
		param  string
	}{
		{"not JSON", "{", nil, 400, ""},
		{"no model", map[string]any{"messages": []msg{user("hi")}}, nil, 400, "model"},
		{"no messages", map[string]any{"model": "m", "messages": []msg{}}, nil, 400, "messages"},
		{"bad role", map[string]any{"model": "m", "messages": []msg{{"robot", "hi"}}}, nil, 400, "messages[0].role"},
		{"bad max_tokens", chatReq("m", false, []msg{user("hi")}, map[string]any{"max_tokens": 0}), nil, 400, "max_tokens"},
		{"unknown x-sim-profile", chatReq("m", false, []msg{user("hi")}, nil), []string{"x-sim-profile", "nope"}, 400, "x-sim-profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			if s, ok := tt.body.(string); ok {
				r, err := c.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(s))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				resp = r
			} else {
				resp = mustPost(t, c, base, tt.body, tt.hdr...)
			}
			e := decodeJSON[apiError](t, resp.Body)
			if resp.StatusCode != tt.status || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Errorf("status %d error %+v", resp.StatusCode, e.Error)
			}
			param := ""
			if e.Error.Param != nil {
				param = *e.Error.Param
			}
			if param != tt.param {
				t.Errorf("param = %q, want %q", param, tt.param)
			}
		})
	}
}

func TestProfileHeader(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"short": {Tokens: 2}}))
	s := decodeStream(t, mustPost(t, c, base, chatReq("gpt-4o", true, []msg{user("x")}, nil), "x-sim-profile", "short").Body)
	if want := join(Answer("x", 2)); s.Content != want {
		t.Errorf("content = %q, want %q", s.Content, want)
	}
	if s.Chunks[0].Model != "gpt-4o" {
		t.Errorf("model = %q, want the requested name", s.Chunks[0].Model)
	}
}

func TestModelsAndRoutes(t *testing.T) {
	c, base := startServer(t, New(Builtin()))
	resp, err := c.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	list := decodeJSON[struct {
		Object string `json:"object"`
		Data   []struct {
			ID string `json:"id"`
		} `json:"data"`
	}](t, resp.Body)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"sim", "sim-fast", "sim-heavytail", "sim-zero"}, ids); diff != "" || list.Object != "list" {
		t.Errorf("models (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/chat/completions", 405},
		{"GET", "/nowhere", 404},
		{"POST", "/v1/models", 405},
		{"GET", "/sim/reset", 405},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e := decodeJSON[apiError](t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || e.Error.Message == "" {
			t.Errorf("%s %s: status %d, error %+v", tt.method, tt.path, resp.StatusCode, e.Error)
		}
	}
}

func TestContentParts(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 3}}))
	parts := []any{
		map[string]any{"type": "text", "text": "What is in"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,AAAA"}},
		map[string]any{"type": "text", "text": "this image?"},
	}
	s := decodeStream(t, mustPost(t, c, base, chatReq("m", true, []msg{{"user", parts}}, nil)).Body)
	if want := join(Answer(PromptOf("What is in\nthis image?"), 3)); s.Content != want {
		t.Errorf("content = %q, want %q", s.Content, want)
	}
}
