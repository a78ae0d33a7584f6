package wire

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// TestDecodeChatRequestExamples decodes every recorded OpenAI request and
// compares the neutral form with its golden file.
func TestDecodeChatRequestExamples(t *testing.T) {
	for _, path := range glob(t, "openai-chat/request-*.json") {
		t.Run(name(path), func(t *testing.T) {
			r, err := DecodeChatRequest(read(t, path))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "request_"+name(path), r)
		})
	}
}

// TestDecodeChatRequestNeutral checks the mappings the goldens rely on.
func TestDecodeChatRequestNeutral(t *testing.T) {
	r, err := DecodeChatRequest(read(t, filepath.Join(examples, "openai-chat/request-basic.json")))
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages[0].Role != llm.RoleSystem {
		t.Errorf("developer decoded as %q, want system", r.Messages[0].Role)
	}
	if r.Extra != nil {
		t.Errorf("Extra = %v, want nil when every field is modelled", r.Extra)
	}

	r, err = DecodeChatRequest(read(t, filepath.Join(examples, "openai-chat/request-tool-result-turn.json")))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("What is the weather in Boston?")}},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_abc123", Name: "get_current_weather", Arguments: `{"location":"Boston, MA"}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_abc123", Content: []llm.Part{llm.TextPart(`{"temperature":22,"unit":"celsius"}`)}},
	}
	if diff := cmp.Diff(want, r.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&llm.ToolChoice{Mode: llm.ToolFunction, Name: "get_current_weather"}, r.ToolChoice); diff != "" {
		t.Errorf("tool_choice (-want +got):\n%s", diff)
	}
	if r.ParallelToolCalls == nil || *r.ParallelToolCalls {
		t.Errorf("parallel_tool_calls = %v, want false", r.ParallelToolCalls)
	}
}

func TestDecodeChatRequestFields(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	n := func(v int) *int { return &v }
	tests := []struct {
		name string
		body string
		// check returns what is compared with want.
		check func(r *llm.Request) any
		want  any
	}{
		{"max_completion_tokens wins after", `{"model":"m",` + msgs + `,"max_tokens":10,"max_completion_tokens":20}`,
			func(r *llm.Request) any { return r.MaxTokens }, n(20)},
		{"max_completion_tokens wins before", `{"max_completion_tokens":20,"max_tokens":10,"model":"m",` + msgs + `}`,
			func(r *llm.Request) any { return r.MaxTokens }, n(20)},
		{"max_tokens alone", `{"model":"m",` + msgs + `,"max_tokens":10}`,
			func(r *llm.Request) any { return r.MaxTokens }, n(10)},
		{"include_usage needs stream", `{"model":"m",` + msgs + `,"stream_options":{"include_usage":true}}`,
			func(r *llm.Request) any { return r.IncludeUsage }, false},
		{"include_usage", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":true}}`,
			func(r *llm.Request) any { return r.IncludeUsage }, true},
		{"stop string", `{"model":"m",` + msgs + `,"stop":"END"}`,
			func(r *llm.Request) any { return r.Stop }, []string{"END"}},
		{"stop four", `{"model":"m",` + msgs + `,"stop":["a","b","c","d"]}`,
			func(r *llm.Request) any { return r.Stop }, []string{"a", "b", "c", "d"}},
		{"nulls are unset", `{"model":"m",` + msgs + `,"temperature":null,"stop":null,"tool_choice":null,"response_format":null,"stream":null,"max_tokens":null}`,
			func(r *llm.Request) any {
				return r.Temperature == nil && r.Stop == nil && r.ToolChoice == nil && r.ResponseFormat == nil && !r.Stream && r.MaxTokens == nil
			}, true},
		{"image_url as a string", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/png;base64,AA=="}]}]}`,
			func(r *llm.Request) any { return r.Messages[0].Content },
			[]llm.Part{{Type: llm.PartImage, URL: "data:image/png;base64,AA=="}}},
		{"image detail", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]}]}`,
			func(r *llm.Request) any { return r.Messages[0].Content },
			[]llm.Part{llm.TextPart("what?"), {Type: llm.PartImage, URL: "https://x/y.png", Detail: "low"}}},
		{"assistant without content", `{"model":"m","messages":[{"role":"assistant"}]}`,
			func(r *llm.Request) any { return r.Messages[0].Content == nil }, true},
		{"assistant reasoning", `{"model":"m","messages":[{"role":"assistant","content":"4","reasoning_content":"2+2"}]}`,
			func(r *llm.Request) any { return r.Messages[0].Reasoning }, "2+2"},
		{"tool_choice required", `{"model":"m",` + msgs + `,"tool_choice":"required"}`,
			func(r *llm.Request) any { return r.ToolChoice }, &llm.ToolChoice{Mode: llm.ToolRequired}},
		{"json_object", `{"model":"m",` + msgs + `,"response_format":{"type":"json_object"}}`,
			func(r *llm.Request) any { return r.ResponseFormat }, &llm.ResponseFormat{Type: llm.FormatJSONObject}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeChatRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.check(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeChatRequestExtra checks that fields keel does not model pass
// through byte for byte.
func TestDecodeChatRequestExtra(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}],
		"n": 2, "logit_bias": {"50256" : -100}, "metadata":{"a":"b <&>"}, "reasoning_effort":"low", "x-custom":[1, 2 ,3]}`
	r, err := DecodeChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range r.Extra {
		got[k] = string(v)
	}
	want := map[string]string{
		"n": "2", "logit_bias": `{"50256" : -100}`, "metadata": `{"a":"b <&>"}`,
		"reasoning_effort": `"low"`, "x-custom": `[1, 2 ,3]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extra (-want +got):\n%s", diff)
	}
}

func TestDecodeChatRequestInvalid(t *testing.T) {
	const user = `{"role":"user","content":"hi"}`
	const msgs = `"messages":[` + user + `]`
	req := func(fields string) string { return `{"model":"m",` + msgs + `,` + fields + `}` }
	withMsgs := func(ms string) string { return `{"model":"m","messages":[` + ms + `]}` }
	tests := []struct {
		name  string
		body  string
		param string
	}{
		{"empty body", ``, ""},
		{"not an object", `[{"model":"m"}]`, ""},
		{"string", `"hello"`, ""},
		{"null", `null`, ""},
		{"truncated", `{"model":"m",` + msgs, ""},
		{"trailing garbage", `{"model":"m",` + msgs + `}x`, ""},

		{"missing model", `{` + msgs + `}`, "model"},
		{"empty model", `{"model":"",` + msgs + `}`, "model"},
		{"null model", `{"model":null,` + msgs + `}`, "model"},
		{"model not a string", `{"model":5,` + msgs + `}`, "model"},

		{"missing messages", `{"model":"m"}`, "messages"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages"},
		{"null messages", `{"model":"m","messages":null}`, "messages"},
		{"messages not an array", `{"model":"m","messages":{"role":"user"}}`, "messages"},
		{"message not an object", withMsgs(`"hi"`), "messages[0]"},
		{"second message not an object", withMsgs(user + `,7`), "messages[1]"},

		{"missing role", withMsgs(`{"content":"hi"}`), "messages[0].role"},
		{"bad role", withMsgs(`{"role":"robot","content":"hi"}`), "messages[0].role"},
		{"role not a string", withMsgs(`{"role":1,"content":"hi"}`), "messages[0].role"},
		{"role case", withMsgs(`{"role":"User","content":"hi"}`), "messages[0].role"},
		{"name not a string", withMsgs(`{"role":"user","content":"hi","name":1}`), "messages[0].name"},

		{"tool without tool_call_id", withMsgs(user + `,{"role":"tool","content":"18C"}`), "messages[1].tool_call_id"},
		{"tool with empty tool_call_id", withMsgs(`{"role":"tool","tool_call_id":"","content":"18C"}`), "messages[0].tool_call_id"},
		{"tool without content", withMsgs(`{"role":"tool","tool_call_id":"c1"}`), "messages[0].content"},
		{"user null content", withMsgs(`{"role":"user","content":null}`), "messages[0].content"},
		{"user without content", withMsgs(`{"role":"user"}`), "messages[0].content"},
		{"user empty parts", withMsgs(`{"role":"user","content":[]}`), "messages[0].content"},
		{"content a number", withMsgs(`{"role":"user","content":5}`), "messages[0].content"},
		{"content an object", withMsgs(`{"role":"user","content":{"type":"text","text":"hi"}}`), "messages[0].content"},
		{"part not an object", withMsgs(`{"role":"user","content":["hi"]}`), "messages[0].content[0]"},
		{"bad part type", withMsgs(`{"role":"user","content":[{"type":"text","text":"a"},{"type":"video","video":{}}]}`), "messages[0].content[1].type"},
		{"missing part type", withMsgs(`{"role":"user","content":[{"text":"a"}]}`), "messages[0].content[0].type"},
		{"text not a string", withMsgs(`{"role":"user","content":[{"type":"text","text":5}]}`), "messages[0].content[0].text"},
		{"image_url not an object", withMsgs(`{"role":"user","content":[{"type":"image_url","image_url":5}]}`), "messages[0].content[0].image_url"},
		{"image_url without url", withMsgs(`{"role":"user","content":[{"type":"image_url","image_url":{"detail":"low"}}]}`), "messages[0].content[0].image_url.url"},
		{"image_url missing", withMsgs(`{"role":"user","content":[{"type":"image_url"}]}`), "messages[0].content[0].image_url"},
		{"tool call without name", withMsgs(`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}`), "messages[0].tool_calls[0].function.name"},
		{"tool calls not an array", withMsgs(`{"role":"assistant","tool_calls":{}}`), "messages[0].tool_calls"},
		{"tool call arguments an object", withMsgs(`{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":{}}}]}`), "messages[0].tool_calls[0].function.arguments"},

		{"temperature above 2", req(`"temperature":2.5`), "temperature"},
		{"temperature negative", req(`"temperature":-0.1`), "temperature"},
		{"temperature a string", req(`"temperature":"hot"`), "temperature"},
		{"top_p above 1", req(`"top_p":1.01`), "top_p"},
		{"stop five", req(`"stop":["a","b","c","d","e"]`), "stop"},
		{"stop a number", req(`"stop":5`), "stop"},
		{"stop numbers", req(`"stop":[1]`), "stop"},
		{"max_tokens zero", req(`"max_tokens":0`), "max_tokens"},
		{"max_tokens negative", req(`"max_tokens":-5`), "max_tokens"},
		{"max_tokens fractional", req(`"max_tokens":1.5`), "max_tokens"},
		{"max_tokens a string", req(`"max_tokens":"100"`), "max_tokens"},
		{"max_completion_tokens zero", req(`"max_completion_tokens":0`), "max_completion_tokens"},
		{"seed fractional", req(`"seed":1.5`), "seed"},
		{"user not a string", req(`"user":{}`), "user"},
		{"stream a string", req(`"stream":"yes"`), "stream"},
		{"stream_options a number", req(`"stream_options":1`), "stream_options"},
		{"include_usage a string", req(`"stream_options":{"include_usage":"yes"}`), "stream_options.include_usage"},
		{"parallel_tool_calls a string", req(`"parallel_tool_calls":"no"`), "parallel_tool_calls"},

		{"tool_choice unknown", req(`"tool_choice":"sometimes"`), "tool_choice"},
		{"tool_choice without name", req(`"tool_choice":{"type":"function"}`), "tool_choice"},
		{"tool_choice bad type", req(`"tool_choice":{"type":"tool","function":{"name":"f"}}`), "tool_choice"},
		{"tool_choice a number", req(`"tool_choice":1`), "tool_choice"},

		{"response_format unknown", req(`"response_format":{"type":"xml"}`), "response_format.type"},
		{"response_format no type", req(`"response_format":{}`), "response_format.type"},
		{"response_format a string", req(`"response_format":"json"`), "response_format"},
		{"json_schema without schema", req(`"response_format":{"type":"json_schema"}`), "response_format.json_schema.name"},
		{"json_schema without name", req(`"response_format":{"type":"json_schema","json_schema":{"schema":{}}}`), "response_format.json_schema.name"},

		{"tools an object", req(`"tools":{}`), "tools"},
		{"tool not function", req(`"tools":[{"type":"custom","custom":{"name":"f"}}]`), "tools[0].type"},
		{"tool without name", req(`"tools":[{"type":"function","function":{"parameters":{}}}]`), "tools[0].function.name"},
		{"second tool without name", req(`"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{}}]`), "tools[1].function.name"},
		{"tool not an object", req(`"tools":[1]`), "tools[0]"},
		{"tool name a number", req(`"tools":[{"type":"function","function":{"name":1}}]`), "tools[0].function.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeChatRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %T %v, want *chat.Error", err, err)
			}
			if ce.Code != chat.EInvalid || ce.Param != tt.param {
				t.Errorf("code, param = %q, %q; want %q, %q (message %q)", ce.Code, ce.Param, chat.EInvalid, tt.param, ce.Message)
			}
			// Messages are shown to clients: no Go type names.
			for _, s := range []string{"wire.", "llm.", "chatMessage", "json.RawMessage", "int64", "float64", "Go value"} {
				if strings.Contains(ce.Message, s) {
					t.Errorf("message %q mentions %q", ce.Message, s)
				}
			}
		})
	}
}

// TestDecodeChatRequestErrorStable checks that a request with several
// problems always reports the same one.
func TestDecodeChatRequestErrorStable(t *testing.T) {
	body := []byte(`{"model":1,"messages":"x","temperature":9,"top_p":9,"stop":1,"tools":1,"user":1,"seed":"x"}`)
	_, first := DecodeChatRequest(body)
	for range 50 {
		_, err := DecodeChatRequest(body)
		if diff := cmp.Diff(first.Error(), err.Error()); diff != "" {
			t.Fatalf("errors differ between calls (-first +now):\n%s", diff)
		}
	}
}

// mistralLike is a dialect like Mistral's, built here because the real one
// lives in provider/openai, which imports this package.
var mistralLike = ChatDialect{
	MaxTokensField: "max_tokens", SeedField: "random_seed", Strict: true, NoStreamUsage: true,
	ToolCallID: func(id string) string {
		h := fnv.New64a()
		h.Write([]byte(id))
		s := h.Sum64()
		b := make([]byte, 9)
		for i := range b {
			b[i] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[s%62]
			s /= 62
		}
		return string(b)
	},
}

// roundTrip decodes body, encodes it for d, and decodes the result again.
func roundTrip(t testing.TB, body []byte, d ChatDialect) (first, second *llm.Request, out []byte) {
	t.Helper()
	first, err := DecodeChatRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err = AppendChatRequest(nil, first, d)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("AppendChatRequest wrote invalid JSON: %s", out)
	}
	second, err = DecodeChatRequest(out)
	if err != nil {
		t.Fatalf("re-decode: %v\n%s", err, out)
	}
	return first, second, out
}

// canonical renders r as generic JSON, so that requests compare equal when
// they differ only in JSON whitespace, HTML escaping in raw fields, or
// empty versus nil slices. Encoding normalises what it may: usage is always
// asked for when streaming, and reasoning is not sent back upstream
// (DeepSeek rejects it).
func canonical(t testing.TB, r *llm.Request) any {
	t.Helper()
	c := *r
	c.IncludeUsage = c.Stream
	c.Messages = slices.Clone(c.Messages)
	for i := range c.Messages {
		m := &c.Messages[i]
		m.Reasoning = ""
		if len(m.Content) == 0 {
			m.Content = nil
		}
		if len(m.ToolCalls) == 0 {
			m.ToolCalls = nil
		}
	}
	if len(c.Stop) == 0 {
		c.Stop = nil
	}
	if len(c.Tools) == 0 {
		c.Tools = nil
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

const richRequest = `{
	"model": "gpt-4o-mini",
	"messages": [
		{"role": "developer", "content": "Be <terse> & \"exact\"."},
		{"role": "user", "name": "ann", "content": [{"type":"text","text":"What is this?\n"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}}]},
		{"role": "assistant", "content": null, "tool_calls": [
			{"id":"call_abc123","type":"function","function":{"name":"look","arguments":"{\"q\":\"\\u2028x\"}"}},
			{"id":"call_def456","type":"function","function":{"name":"look","arguments":""}}]},
		{"role": "tool", "tool_call_id": "call_abc123", "content": "a bird"},
		{"role": "tool", "tool_call_id": "call_def456", "name": "look", "content": [{"type":"text","text":"a "},{"type":"text","text":"plane"}]},
		{"role": "assistant", "content": "A bird. \u00e9\u6f22\ud83d\ude00"}
	],
	"tools": [{"type":"function","function":{"name":"look","description":"Look","parameters":{"type":"object", "properties":{"q":{"type":"string"}}},"strict":true}}],
	"tool_choice": "required",
	"parallel_tool_calls": true,
	"response_format": {"type":"json_schema","json_schema":{"name":"x","description":"d","schema":{"type":"object"},"strict":false}},
	"temperature": 0,
	"top_p": 0.5,
	"stop": ["a", "b"],
	"seed": -42,
	"max_tokens": 100,
	"user": "u-1",
	"stream": true,
	"n": 1,
	"logit_bias": {"1": -100},
	"metadata": {"k": "v <b>"},
	"store": false
}`

// TestAppendChatRequestRoundTrip checks decode → append → decode for every
// example and a request using every field.
func TestAppendChatRequestRoundTrip(t *testing.T) {
	bodies := map[string][]byte{"rich": []byte(richRequest)}
	for _, path := range glob(t, "openai-chat/request-*.json") {
		bodies[name(path)] = read(t, path)
	}
	for _, n := range sortedKeys(bodies) {
		t.Run(n, func(t *testing.T) {
			first, second, out := roundTrip(t, bodies[n], ChatDialect{})
			if diff := cmp.Diff(canonical(t, first), canonical(t, second)); diff != "" {
				t.Errorf("round trip (-first +second):\n%s\nencoded: %s", diff, out)
			}
		})
	}
}

// fields decodes a JSON object's top level.
func fields(t testing.TB, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

func TestAppendChatRequestExtra(t *testing.T) {
	_, second, out := roundTrip(t, []byte(richRequest), ChatDialect{})
	m := fields(t, out)
	for k, want := range map[string]string{"n": `1`, "logit_bias": `{"1": -100}`, "metadata": `{"k": "v <b>"}`, "store": `false`} {
		if got := string(m[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
		if got := string(second.Extra[k]); got != want {
			t.Errorf("re-decoded Extra[%s] = %s, want %s", k, got, want)
		}
	}
	// The spliced fields follow the encoded ones, sorted, so the body is
	// the same for the same request.
	s := string(out)
	if !(strings.Index(s, `"logit_bias"`) < strings.Index(s, `"metadata"`) &&
		strings.Index(s, `"metadata"`) < strings.Index(s, `"n"`) &&
		strings.Index(s, `"n"`) < strings.Index(s, `"store"`)) {
		t.Errorf("Extra not in sorted order: %s", s)
	}
	again, _ := AppendChatRequest(nil, second, ChatDialect{})
	if string(again) != s {
		t.Errorf("encoding differs between calls:\n%s\n%s", s, again)
	}

	// Extra is appended to dst, not written over it.
	dst, err := AppendChatRequest([]byte("prefix:"), second, ChatDialect{})
	if err != nil || !strings.HasPrefix(string(dst), "prefix:{") || !json.Valid(dst[len("prefix:"):]) {
		t.Errorf("AppendChatRequest(prefix) = %s, %v", dst, err)
	}
}

func TestAppendChatRequestDialects(t *testing.T) {
	has := func(m map[string]json.RawMessage, k string) bool { _, ok := m[k]; return ok }
	tests := []struct {
		name    string
		body    string
		d       ChatDialect
		want    map[string]string // field → encoded value
		without []string
	}{
		{
			name: "openai streaming",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5,"seed":7,"user":"u"}`,
			want: map[string]string{
				"max_completion_tokens": `5`, "seed": `7`, "user": `"u"`, "stream": `true`,
				"stream_options": `{"include_usage":true}`,
			},
			without: []string{"max_tokens", "random_seed"},
		},
		{
			name: "openai streaming with usage already asked for",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
			want: map[string]string{"stream_options": `{"include_usage":true}`},
		},
		{
			name:    "openai not streaming",
			body:    `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,"stream_options":{"include_usage":true}}`,
			without: []string{"stream", "stream_options"},
		},
		{
			name:    "max_tokens servers",
			body:    `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_completion_tokens":5,"n":2}`,
			d:       ChatDialect{MaxTokensField: "max_tokens"},
			want:    map[string]string{"max_tokens": `5`, "stream_options": `{"include_usage":true}`, "n": `2`},
			without: []string{"max_completion_tokens"},
		},
		{
			name:    "no stream usage",
			body:    `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
			d:       ChatDialect{NoStreamUsage: true},
			want:    map[string]string{"stream": `true`},
			without: []string{"stream_options"},
		},
		{
			name: "mistral",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},
				"max_completion_tokens":5,"seed":7,"user":"u","n":1,"logit_bias":{},"metadata":{},"temperature":0.3}`,
			d:       mistralLike,
			want:    map[string]string{"max_tokens": `5`, "random_seed": `7`, "stream": `true`, "temperature": `0.3`},
			without: []string{"max_completion_tokens", "seed", "user", "stream_options", "n", "logit_bias", "metadata"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeChatRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			out, err := AppendChatRequest(nil, r, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			m := fields(t, out)
			for k, want := range tt.want {
				if got := string(m[k]); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			for _, k := range tt.without {
				if has(m, k) {
					t.Errorf("%s sent: %s", k, out)
				}
			}
		})
	}
}

// TestAppendChatRequestMistralToolCallIDs checks that rewritten tool-call
// ids are 9 alphanumerics and still pair each call with its result.
func TestAppendChatRequestMistralToolCallIDs(t *testing.T) {
	r, err := DecodeChatRequest([]byte(richRequest))
	if err != nil {
		t.Fatal(err)
	}
	out, err := AppendChatRequest(nil, r, mistralLike)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Messages []struct {
			Role       string `json:"role"`
			Name       string `json:"name"`
			ToolCallID string `json:"tool_call_id"`
			ToolCalls  []struct {
				ID string `json:"id"`
			} `json:"tool_calls"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var calls, results []string
	for _, m := range got.Messages {
		for _, tc := range m.ToolCalls {
			calls = append(calls, tc.ID)
		}
		if m.ToolCallID != "" {
			results = append(results, m.ToolCallID)
		}
	}
	if diff := cmp.Diff(calls, results); diff != "" || len(calls) != 2 {
		t.Errorf("tool call ids do not pair up (-calls +results):\n%s", diff)
	}
	for _, id := range calls {
		if len(id) != 9 || !isAlnumForTest(id) || strings.HasPrefix(id, "call_") {
			t.Errorf("id %q is not 9 alphanumerics", id)
		}
	}
	if calls[0] == calls[1] {
		t.Errorf("two calls share the id %q", calls[0])
	}
	// Mistral forbids name outside tool messages.
	if n := got.Messages[1].Name; n != "" {
		t.Errorf("user message sent with name %q", n)
	}
	if n := got.Messages[4].Name; n != "look" {
		t.Errorf("tool message name = %q, want look", n)
	}
	// The neutral request is not changed by encoding.
	if id := r.Messages[2].ToolCalls[0].ID; id != "call_abc123" {
		t.Errorf("request modified: tool call id now %q", id)
	}
}

func isAlnumForTest(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// FuzzDecodeChatRequest checks that no input panics, that every error is
// a 400 naming a param, and that every request that decodes encodes to
// valid JSON which decodes back to the same request.
func FuzzDecodeChatRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "openai-chat/request-*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(richRequest))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","content":[]}],"stop":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeChatRequest(body)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.EInvalid {
				t.Fatalf("err = %#v, want a *chat.Error with code invalid", err)
			}
			return
		}
		for _, d := range []ChatDialect{{}, mistralLike} {
			out, err := AppendChatRequest(nil, r, d)
			if err != nil {
				t.Fatalf("AppendChatRequest: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
		}
		out, _ := AppendChatRequest(nil, r, ChatDialect{})
		again, err := DecodeChatRequest(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if diff := cmp.Diff(canonical(t, r), canonical(t, again)); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// TestAppendChatRequestPrefill checks each dialect's way of asking to
// continue a partial assistant message (Request.Continue).
func TestAppendChatRequestPrefill(t *testing.T) {
	r := &llm.Request{Model: "m", Continue: true, Messages: []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("q")}},
		{Role: llm.RoleAssistant, Content: []llm.Part{llm.TextPart("partial ans")}},
	}}
	tests := []struct {
		prefill string
		want    string // a fragment the body must contain
		not     string // one it must not
	}{
		{PrefillTrailing, `{"role":"assistant","content":"partial ans"}]`, `"prefix"`},
		{PrefillPrefix, `{"role":"assistant","content":"partial ans","prefix":true}`, `continue_final_message`},
		{PrefillVLLM, `"continue_final_message":true,"add_generation_prompt":false`, `"prefix"`},
	}
	for _, tt := range tests {
		t.Run(tt.prefill, func(t *testing.T) {
			b, err := AppendChatRequest(nil, r, ChatDialect{Prefill: tt.prefill})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.want) || strings.Contains(string(b), tt.not) {
				t.Errorf("body %s: want %s and not %s", b, tt.want, tt.not)
			}
		})
	}
	noCont := *r
	noCont.Continue = false
	b, _ := AppendChatRequest(nil, &noCont, ChatDialect{Prefill: PrefillPrefix})
	if strings.Contains(string(b), "prefix") {
		t.Errorf("prefix sent without Continue: %s", b)
	}
}

// BenchmarkDecodeChatRequest decodes a small request, as most are.
func BenchmarkDecodeChatRequest(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}],"temperature":0.7}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeChatRequestMessages decodes whole requests of the shapes
// clients send most: one user message (scripts/bench's body), a second
// turn of three messages whose text holds escapes, a turn answering a
// tool call, and a message with an image, which encoding/json decodes.
func BenchmarkDecodeChatRequestMessages(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"one", `{"messages":[{"content":"Write a short line about the sea.","role":"user"}],"model":"gpt-4o-mini","stream":true}`},
		{"three", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"messages":[` +
			`{"role":"user","content":"What are the main differences between TCP and UDP? Keep it short."},` +
			`{"role":"assistant","content":"TCP is connection-oriented and reliable: it orders packets, retransmits lost ones and controls congestion.\nUDP is connectionless: \"fire and forget\", with less overhead and no delivery guarantee."},` +
			`{"role":"user","content":"Which one should I use for a multiplayer game, and why?"}]}`},
		{"tool turn", string(read(b, filepath.Join(examples, "openai-chat/request-tool-result-turn.json")))},
		{"vision", string(read(b, filepath.Join(examples, "openai-chat/request-vision.json")))},
	}
	for _, bb := range bodies {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(bb.body)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeChatRequest(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scanOne reads one message with the fast reader alone, as
// scanChatMessages reads it before falling back to encoding/json.
func scanOne(raw []byte) (llm.Message, bool) {
	var m llm.Message
	s := chunkScanner{b: raw}
	ok := s.chatMessage(&m)
	s.ws()
	return m, ok && s.i == len(raw)
}

// chatMessageCases are messages arrays for TestScanChatMessages and seeds
// for FuzzScanChatMessages.
var chatMessageCases = []struct {
	name string
	msgs string
	// fast is how many messages the fast reader reads itself; the others
	// are decoded alone by encoding/json.
	fast int
	// read is whether scanChatMessages reads the array; if not,
	// encoding/json decodes all of it, and finds the error if there is one.
	read bool
}{
	{"text", `[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]`, 2, true},
	{"every role", `[{"role":"developer","content":"d"},{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"},{"role":"tool","tool_call_id":"c1","content":"t"}]`, 5, true},
	{"escapes", `[{"role":"user","content":"a\n\"b\"\\ \/ \t\u00e9 \ud83d\ude00 \u2028 \u0000"}]`, 1, true},
	{"lone surrogates", `[{"role":"user","content":"\ud800x\udc00 \ud83d"}]`, 1, true},
	{"utf-8", `[{"role":"user","content":"héllo 漢 😀","name":"zoë"}]`, 1, true},
	{"invalid utf-8: all the slow way", "[{\"role\":\"user\",\"content\":\"a\xffb\"}]", 0, false},
	{"whitespace", " [ {\n\t\"role\" : \"user\" ,\r\n \"content\" : \"hi\" } , { \"role\":\"assistant\" , \"content\" : null } ] ", 2, true},
	{"empty content", `[{"role":"user","content":""}]`, 1, true},
	{"assistant null content", `[{"role":"assistant","content":null}]`, 1, true},
	{"assistant without content", `[{"role":"assistant"}]`, 1, true},
	{"assistant empty parts", `[{"role":"assistant","content":[]}]`, 1, true},
	{"user null content", `[{"role":"user","content":null}]`, 0, false},
	{"user empty parts", `[{"role":"user","content":[]}]`, 0, false},
	{"user without content", `[{"role":"user"}]`, 0, false},
	{"text parts", `[{"role":"user","content":[{"type":"text","text":"a"},{"text":"b\n","type":"text"},{"type":"text","text":null},{"type":"text"}]}]`, 1, true},
	{"text part with cache_control", `[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]}]`, 1, true},
	{"image part: the slow way", `[{"role":"user","content":"x"},{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},{"role":"user","content":"y"}]`, 2, true},
	{"image_url beside type text", `[{"role":"user","content":[{"type":"text","text":"a","image_url":5}]}]`, 0, true},
	{"part type escaped", `[{"role":"user","content":[{"type":"t\u0065xt","text":"a"}]}]`, 0, true},
	{"part type other", `[{"role":"user","content":[{"type":"video","text":"a"}]}]`, 0, false},
	{"part type missing", `[{"role":"user","content":[{"text":"a"}]}]`, 0, false},
	{"part null", `[{"role":"user","content":[null]}]`, 0, false},
	{"part text a number", `[{"role":"user","content":[{"type":"text","text":1}]}]`, 0, false},
	{"content a number", `[{"role":"user","content":5}]`, 0, false},
	{"content an object", `[{"role":"user","content":{"type":"text","text":"hi"}}]`, 0, false},
	{"content true", `[{"role":"user","content":true}]`, 0, false},
	{"name and reasoning", `[{"role":"user","name":"ann","content":"q"},{"role":"assistant","content":"4","reasoning_content":"2+2"}]`, 2, true},
	{"null strings", `[{"role":"user","name":null,"tool_call_id":null,"reasoning_content":null,"content":"q"}]`, 1, true},
	{"unknown keys skipped", `[{"role":"assistant","refusal":null,"audio":{"id":"a1","x":[1,2.5e3,-0.1,true,false,null,"s"]},"annotations":[],"content":"a"}]`, 1, true},
	{"tool calls", `[{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"q\":\"\\u2028x\"}"}},{"index":1,"id":"call_2","type":"function","function":{"arguments":"","name":"look"}}]},{"role":"tool","tool_call_id":"call_1","content":"a bird"}]`, 2, true},
	{"tool call odd but valid", `[{"role":"assistant","tool_calls":[{"index":null,"id":null,"type":null,"function":{"name":"f","arguments":null,"strict":true},"extra":{}}]}]`, 1, true},
	{"tool call index negative zero", `[{"role":"assistant","tool_calls":[{"index":-0,"function":{"name":"f"}}]}]`, 1, true},
	{"tool calls null", `[{"role":"assistant","content":"a","tool_calls":null}]`, 1, true},
	{"tool calls empty", `[{"role":"assistant","content":"a","tool_calls":[]}]`, 1, true},
	{"tool calls empty, no content", `[{"role":"user","tool_calls":[]}]`, 0, false},
	{"user with tool calls and no content", `[{"role":"user","tool_calls":[{"function":{"name":"f"}}]}]`, 1, true},
	{"tool call without name", `[{"role":"assistant","tool_calls":[{"id":"c","function":{"arguments":"{}"}}]}]`, 0, false},
	{"tool call function null", `[{"role":"assistant","tool_calls":[{"id":"c","function":null}]}]`, 0, false},
	{"tool call null", `[{"role":"assistant","tool_calls":[null]}]`, 0, false},
	{"tool call index fractional", `[{"role":"assistant","tool_calls":[{"index":1.5,"function":{"name":"f"}}]}]`, 0, false},
	{"tool call index a string", `[{"role":"assistant","tool_calls":[{"index":"0","function":{"name":"f"}}]}]`, 0, false},
	{"tool call index too big", `[{"role":"assistant","tool_calls":[{"index":99999999999999999999,"function":{"name":"f"}}]}]`, 0, false},
	{"tool call type a number", `[{"role":"assistant","tool_calls":[{"type":1,"function":{"name":"f"}}]}]`, 0, false},
	{"tool call arguments an object", `[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{}}}]}]`, 0, false},
	{"tool without tool_call_id", `[{"role":"tool","content":"18C"}]`, 0, false},
	{"tool with null tool_call_id", `[{"role":"tool","tool_call_id":null,"content":"18C"}]`, 0, false},
	{"missing role", `[{"content":"hi"}]`, 0, false},
	{"null role", `[{"role":null,"content":"hi"}]`, 0, false},
	{"bad role", `[{"role":"robot","content":"hi"}]`, 0, false},
	{"role case", `[{"role":"User","content":"hi"}]`, 0, false},
	{"role escaped: the slow way", `[{"role":"us\u0065r","content":"hi"}]`, 0, true},
	{"role a number", `[{"role":1,"content":"hi"}]`, 0, false},
	{"name a number", `[{"role":"user","content":"hi","name":1}]`, 0, false},

	// encoding/json keeps a repeated key's last value, but a null leaves a
	// string as it was and sets content's raw value to null.
	{"repeated content", `[{"role":"user","content":"a","content":"b"}]`, 0, true},
	{"repeated content, then null", `[{"role":"user","content":"a","content":null}]`, 0, false},
	{"repeated role, then null", `[{"role":"user","role":null,"content":"x"}]`, 0, true},
	{"repeated name, then null", `[{"role":"user","name":"a","content":"x","name":null}]`, 0, true},
	{"repeated tool_calls", `[{"role":"assistant","tool_calls":[{"function":{"name":"f"}}],"tool_calls":[{"function":{"name":"g"}},{"function":{"name":"h"}}]}]`, 0, true},
	{"repeated function name", `[{"role":"assistant","tool_calls":[{"function":{"name":"f","name":"g"}}]}]`, 0, true},
	{"repeated part text", `[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]`, 0, true},

	// encoding/json matches keys case-insensitively, by Unicode.
	{"key in another case", `[{"Role":"user","CONTENT":"hi"}]`, 0, true},
	{"key both cases", `[{"role":"user","content":"a","Content":"b"}]`, 0, true},
	{"key folding by Unicode", `[{"role":"assistant","content":"a","tool_callſ":[{"function":{"name":"f"}}]}]`, 0, true},
	{"escaped key", `[{"rol\u0065":"user","content":"hi"}]`, 0, true},
	{"escaped unknown key", `[{"role":"user","content":"hi","\u0078":1}]`, 0, true},
	{"part key in another case", `[{"role":"user","content":[{"Type":"text","TEXT":"a"}]}]`, 0, true},
	{"function key in another case", `[{"role":"assistant","tool_calls":[{"Function":{"Name":"f"}}]}]`, 0, true},

	{"empty array", `[]`, 0, false},
	{"message null", `[null]`, 0, false},
	{"message a string", `["hi"]`, 0, false},
	{"second message a number", `[{"role":"user","content":"hi"},7]`, 1, false},
	{"messages null", `null`, 0, false},
	{"messages an object", `{"role":"user","content":"hi"}`, 0, false},
	{"trailing comma", `[{"role":"user","content":"hi"},]`, 0, false},
	{"trailing comma in a message", `[{"role":"user","content":"hi",}]`, 0, false},
	{"truncated", `[{"role":"user","content":"hi"}`, 0, false},
	{"trailing data", `[{"role":"user","content":"hi"}] x`, 0, false},
	{"bad role before a syntax error", `[{"role":"robot","content":"hi"},{"role":}]`, 0, false},
	{"deep in an unknown key", `[{"role":"user","content":"hi","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]`, 0, false},
	{"many messages", "[" + strings.Repeat(`{"role":"user","content":"q"},{"role":"assistant","content":"a"},`, 10) + `{"role":"user","content":"last"}]`, 21, true},
}

// TestScanChatMessages checks the fast path against encoding/json's on each
// case, and that the messages it is meant to read go the fast way.
func TestScanChatMessages(t *testing.T) {
	for _, tt := range chatMessageCases {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.msgs)
			got, ok := scanChatMessages(raw)
			if ok != tt.read {
				t.Errorf("scanChatMessages read = %v, want %v", ok, tt.read)
			}
			if want, err := decodeChatMessagesJSON(raw); ok && err != nil {
				t.Errorf("scanChatMessages read what encoding/json rejects: %v", err)
			} else if diff := cmp.Diff(want, got); ok && diff != "" {
				t.Errorf("(-encoding/json +scanChatMessages):\n%s", diff)
			}

			// The fast reader alone, on each message encoding/json finds
			// (none when the array is not valid JSON).
			var elems []json.RawMessage
			_ = json.Unmarshal(raw, &elems)
			fast := 0
			for i, e := range elems {
				m, ok := scanOne(e)
				if !ok {
					continue
				}
				fast++
				var w llm.Message
				if err := decodeChatMessage(i, e, &w); err != nil {
					t.Errorf("fast reader read messages[%d] %s, which encoding/json rejects: %v", i, e, err)
				} else if diff := cmp.Diff(w, m); diff != "" {
					t.Errorf("messages[%d] (-encoding/json +fast):\n%s", i, diff)
				}
			}
			if fast != tt.fast {
				t.Errorf("fast reader read %d messages, want %d", fast, tt.fast)
			}
		})
	}
}

// TestDecodeChatMessagesErrors checks the error each case reports against
// testdata/chat_messages_errors.golden, which the decoder before the fast
// path wrote: the fast path must not change a param or a message.
func TestDecodeChatMessagesErrors(t *testing.T) {
	got := map[string]string{}
	for _, tt := range chatMessageCases {
		err := decodeChatMessages([]byte(tt.msgs), &llm.Request{})
		if err == nil {
			continue
		}
		var ce *chat.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s: err = %T %v, want *chat.Error", tt.name, err, err)
		}
		got[tt.name] = ce.Param + " | " + ce.Message
	}
	golden(t, "chat_messages_errors", got)
}

// FuzzScanChatMessages checks the fast path against encoding/json: whenever
// it reads a messages array, encoding/json reads it without error and
// decodes the same messages.
func FuzzScanChatMessages(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "*/request-*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var req struct{ Messages json.RawMessage }
		if json.Unmarshal(b, &req) == nil && req.Messages != nil {
			f.Add([]byte(req.Messages))
		}
	}
	var rich struct{ Messages json.RawMessage }
	if err := json.Unmarshal([]byte(richRequest), &rich); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(rich.Messages))
	for _, tt := range chatMessageCases {
		f.Add([]byte(tt.msgs))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := scanChatMessages(raw)
		if !ok {
			return
		}
		want, err := decodeChatMessagesJSON(raw)
		if err != nil {
			t.Fatalf("fast path read %q, which encoding/json rejects: %v", raw, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("fast path differs on %q (-encoding/json +fast):\n%s", raw, diff)
		}
	})
}
