package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// TestDecodeResponsesRequestExamples decodes every recorded Responses
// request and compares the result with its golden file.
func TestDecodeResponsesRequestExamples(t *testing.T) {
	for _, path := range glob(t, "openai-responses/request-*.json") {
		t.Run(name(path), func(t *testing.T) {
			rr, err := DecodeResponsesRequest(read(t, path))
			if err != nil {
				t.Fatal(err)
			}
			if err := rr.Resolve(nil); err != nil {
				t.Fatal(err)
			}
			golden(t, "responses_request_"+name(path), rr)
		})
	}
}

// TestDecodeResponsesRequestNeutral checks the mappings the goldens rely
// on.
func TestDecodeResponsesRequestNeutral(t *testing.T) {
	rr, err := DecodeResponsesRequest(read(t, filepath.Join(examples, "openai-responses/request-function-output-turn.json")))
	if err != nil {
		t.Fatal(err)
	}
	r := rr.Request
	want := []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("What is the weather like in Boston today?")}},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_unLAR8MvFNptuiZK6K6HCy5k", Name: "get_current_weather", Arguments: `{"location":"Boston, MA","unit":"celsius"}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_unLAR8MvFNptuiZK6K6HCy5k", Content: []llm.Part{llm.TextPart(`{"temperature":22}`)}},
	}
	if diff := cmp.Diff(want, r.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&llm.ToolChoice{Mode: llm.ToolFunction, Name: "get_current_weather"}, r.ToolChoice); diff != "" {
		t.Errorf("tool_choice (-want +got):\n%s", diff)
	}
	if len(r.Tools) != 1 || r.Tools[0].Strict == nil || *r.Tools[0].Strict || !json.Valid(r.Tools[0].Parameters) {
		t.Errorf("tools = %+v, want one with strict false and its parameters", r.Tools)
	}
	if r.Source != llm.SourceResponses || r.Extra != nil || !rr.Store {
		t.Errorf("Source, Extra, Store = %q, %v, %v; want %q, nil, true", r.Source, r.Extra, rr.Store, llm.SourceResponses)
	}

	rr, err = DecodeResponsesRequest(read(t, filepath.Join(examples, "openai-responses/request-json-schema.json")))
	if err != nil {
		t.Fatal(err)
	}
	r = rr.Request
	want = []llm.Message{
		{Role: llm.RoleSystem, Content: []llm.Part{llm.TextPart("Extract the event.")}},
		{Role: llm.RoleUser, Content: []llm.Part{
			llm.TextPart("Alice and Bob meet for lunch on Friday."),
			{Type: llm.PartImage, URL: "data:image/png;base64,iVBORw0KGgo="},
		}},
	}
	if diff := cmp.Diff(want, r.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if f := r.ResponseFormat; f == nil || f.Type != llm.FormatJSONSchema || f.Name != "calendar_event" || f.Strict == nil || !*f.Strict || !json.Valid(f.Schema) {
		t.Errorf("response format = %+v, want the json_schema calendar_event, strict", f)
	}
	if r.MaxTokens == nil || *r.MaxTokens != 300 || r.Temperature == nil || *r.Temperature != 0.2 || !r.Stream {
		t.Errorf("max tokens, temperature, stream = %v, %v, %v", r.MaxTokens, r.Temperature, r.Stream)
	}
	if rr.Instructions != "Extract the event." {
		t.Errorf("Instructions = %q", rr.Instructions)
	}
}

func TestDecodeResponsesRequestFields(t *testing.T) {
	req := func(fields string) string { return `{"model":"m","input":"hi",` + fields + `}` }
	items := func(is string) string { return `{"model":"m","input":[` + is + `]}` }
	msgs := func(rr *ResponsesRequest) any { return rr.Request.Messages }
	text := func(s string) []llm.Part { return []llm.Part{llm.TextPart(s)} }
	call := func(id string) llm.ToolCall { return llm.ToolCall{ID: id, Name: "f", Arguments: "{}"} }
	fc := func(id string) string {
		return `{"type":"function_call","call_id":"` + id + `","name":"f","arguments":"{}","id":"fc_1","status":"completed"}`
	}
	yes, no := true, false
	tests := []struct {
		name  string
		body  string
		check func(rr *ResponsesRequest) any
		want  any
	}{
		{"string input", `{"model":"m","input":"hi <&>"}`, msgs, []llm.Message{{Role: llm.RoleUser, Content: text("hi <&>")}}},
		{"string input item", `{"model":"m","input":"hi <&>"}`,
			func(rr *ResponsesRequest) any { return string(rr.Items[0]) }, `{"role":"user","content":"hi \u003c\u0026\u003e"}`},
		{"instructions first", req(`"instructions":"be brief"`), msgs,
			[]llm.Message{{Role: llm.RoleSystem, Content: text("be brief")}, {Role: llm.RoleUser, Content: text("hi")}}},
		{"developer is system", items(`{"role":"developer","content":"x"},{"type":"message","role":"system","content":"y"}`), msgs,
			[]llm.Message{{Role: llm.RoleSystem, Content: text("x")}, {Role: llm.RoleSystem, Content: text("y")}}},
		{"assistant output_text", items(`{"role":"user","content":[{"type":"input_text","text":"a"}]},{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"b","annotations":[]},{"type":"refusal","refusal":"no"}]}`), msgs,
			[]llm.Message{{Role: llm.RoleUser, Content: text("a")}, {Role: llm.RoleAssistant, Content: []llm.Part{llm.TextPart("b"), llm.TextPart("no")}}}},
		{"image detail", items(`{"role":"user","content":[{"type":"input_image","image_url":"https://x/y.png","detail":"low"}]}`), msgs,
			[]llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, URL: "https://x/y.png", Detail: "low"}}}}},
		{"parallel calls one message", items(`{"role":"user","content":"u"},` + fc("c1") + `,` + fc("c2") + `,{"type":"function_call_output","call_id":"c1","output":"1"},{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"2"}]}`), msgs,
			[]llm.Message{
				{Role: llm.RoleUser, Content: text("u")},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call("c1"), call("c2")}},
				{Role: llm.RoleTool, ToolCallID: "c1", Content: text("1")},
				{Role: llm.RoleTool, ToolCallID: "c2", Content: text("2")},
			}},
		{"reasoning, text and call one message", items(`{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"r1"},{"type":"summary_text","text":"r2"}]},{"role":"assistant","content":"t"},` + fc("c1")), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, Reasoning: "r1\n\nr2", Content: text("t"), ToolCalls: []llm.ToolCall{call("c1")}}}},
		{"reasoning content wins over summary", items(`{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}],"content":[{"type":"reasoning_text","text":"full"}]},` + fc("c1")), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, Reasoning: "full", ToolCalls: []llm.ToolCall{call("c1")}}}},
		{"two reasoning items", items(`{"type":"reasoning","summary":[{"type":"summary_text","text":"a"}]},{"type":"reasoning","summary":[{"type":"summary_text","text":"b"}]}`), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, Reasoning: "a\n\nb"}}},
		{"encrypted reasoning dropped", items(`{"type":"reasoning","summary":[],"encrypted_content":"xyz"},{"role":"assistant","content":"t"}`), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, Content: text("t")}}},
		{"text after a call is a new message", items(fc("c1") + `,{"role":"assistant","content":"t"}`), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call("c1")}}, {Role: llm.RoleAssistant, Content: text("t")}}},
		{"two assistant texts stay apart", items(`{"role":"assistant","content":"a"},{"role":"assistant","content":"b"}`), msgs,
			[]llm.Message{{Role: llm.RoleAssistant, Content: text("a")}, {Role: llm.RoleAssistant, Content: text("b")}}},
		{"store default", `{"model":"m","input":"hi"}`, func(rr *ResponsesRequest) any { return rr.Store }, true},
		{"store null", req(`"store":null`), func(rr *ResponsesRequest) any { return rr.Store }, true},
		{"store false", req(`"store":false`), func(rr *ResponsesRequest) any { return rr.Store }, false},
		{"previous_response_id", req(`"previous_response_id":"resp_1"`), func(rr *ResponsesRequest) any { return rr.PreviousResponseID }, "resp_1"},
		{"metadata", req(`"metadata":{"a":"1","b":""}`), func(rr *ResponsesRequest) any { return rr.Metadata }, map[string]string{"a": "1", "b": ""}},
		{"user", req(`"user":"u"`), func(rr *ResponsesRequest) any { return rr.Request.User }, "u"},
		{"safety_identifier wins", req(`"user":"u","safety_identifier":"s"`), func(rr *ResponsesRequest) any { return rr.Request.User }, "s"},
		{"tool_choice required", req(`"tool_choice":"required"`), func(rr *ResponsesRequest) any { return rr.Request.ToolChoice }, &llm.ToolChoice{Mode: llm.ToolRequired}},
		{"parallel_tool_calls", req(`"parallel_tool_calls":false`), func(rr *ResponsesRequest) any { return rr.Request.ParallelToolCalls }, &no},
		{"json_object", req(`"text":{"format":{"type":"json_object"},"verbosity":"low"}`),
			func(rr *ResponsesRequest) any { return []any{rr.Request.ResponseFormat, rr.verbosity} },
			[]any{&llm.ResponseFormat{Type: llm.FormatJSONObject}, "low"}},
		{"tool", req(`"tools":[{"type":"function","name":"f","description":null,"parameters":null,"strict":true}]`),
			func(rr *ResponsesRequest) any { return rr.Request.Tools }, []llm.Tool{{Name: "f", Strict: &yes}}},
		{"nulls are unset", req(`"temperature":null,"top_p":null,"tool_choice":null,"text":null,"max_output_tokens":null,"instructions":null,"previous_response_id":null,"metadata":null,"conversation":null,"background":null,"stream":null`),
			func(rr *ResponsesRequest) any {
				r := rr.Request
				return r.Temperature == nil && r.TopP == nil && r.ToolChoice == nil && r.ResponseFormat == nil && r.MaxTokens == nil &&
					rr.Instructions == "" && rr.PreviousResponseID == "" && rr.Metadata == nil && !r.Stream && r.Extra == nil
			}, true},
		{"background false", req(`"background":false`), func(rr *ResponsesRequest) any { return rr.Request.Extra == nil }, true},
		{"item_reference waits for Resolve", items(`{"role":"user","content":"u"},{"type":"item_reference","id":"msg_x_0"}`),
			func(rr *ResponsesRequest) any { return []any{rr.refs, len(rr.Request.Messages)} }, []any{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := DecodeResponsesRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.check(rr), cmp.AllowUnexported(ResponsesRequest{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeResponsesRequestExtra checks that fields keel does not model
// pass through byte for byte, and that the fields keel serves itself
// (store, previous_response_id, metadata) do not.
func TestDecodeResponsesRequestExtra(t *testing.T) {
	body := `{"model":"m","input":"hi","store":true,"previous_response_id":"resp_1","metadata":{"a":"b"},
		"reasoning": {"effort" : "low"}, "include":["reasoning.encrypted_content"], "truncation":"auto", "x-custom":[1, 2 ,3]}`
	rr, err := DecodeResponsesRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range rr.Request.Extra {
		got[k] = string(v)
	}
	want := map[string]string{
		"reasoning": `{"effort" : "low"}`, "include": `["reasoning.encrypted_content"]`,
		"truncation": `"auto"`, "x-custom": `[1, 2 ,3]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extra (-want +got):\n%s", diff)
	}
}

func TestDecodeResponsesRequestInvalid(t *testing.T) {
	req := func(fields string) string { return `{"model":"m","input":"hi",` + fields + `}` }
	items := func(is string) string { return `{"model":"m","input":[` + is + `]}` }
	user := `{"role":"user","content":"hi"}`
	tests := []struct {
		name  string
		body  string
		param string
	}{
		{"empty body", ``, ""},
		{"not an object", `[1]`, ""},
		{"null", `null`, ""},
		{"truncated", `{"model":"m","input":"hi"`, ""},

		{"missing model", `{"input":"hi"}`, "model"},
		{"model a number", `{"model":1,"input":"hi"}`, "model"},
		{"missing input", `{"model":"m"}`, "input"},
		{"null input", `{"model":"m","input":null}`, "input"},
		{"empty input", `{"model":"m","input":[]}`, "input"},
		{"input a number", `{"model":"m","input":5}`, "input"},
		{"input an object", `{"model":"m","input":{"role":"user","content":"hi"}}`, "input"},

		{"item not an object", items(`"hi"`), "input[0]"},
		{"second item not an object", items(user + `,7`), "input[1]"},
		{"unknown item type", items(user + `,{"type":"web_search_call","id":"ws_1"}`), "input[1].type"},
		{"missing role", items(`{"content":"hi"}`), "input[0].role"},
		{"bad role", items(`{"role":"tool","content":"hi"}`), "input[0].role"},
		{"missing content", items(`{"role":"user"}`), "input[0].content"},
		{"null content", items(`{"role":"assistant","content":null}`), "input[0].content"},
		{"empty content", items(`{"role":"user","content":[]}`), "input[0].content"},
		{"content a number", items(`{"role":"user","content":1}`), "input[0].content"},
		{"part not an object", items(`{"role":"user","content":["hi"]}`), "input[0].content[0]"},
		{"part without type", items(`{"role":"user","content":[{"text":"hi"}]}`), "input[0].content[0].type"},
		{"chat part type", items(`{"role":"user","content":[{"type":"text","text":"hi"}]}`), "input[0].content[0].type"},
		{"input_file", items(`{"role":"user","content":[{"type":"input_file","file_id":"file_1"}]}`), "input[0].content[0].type"},
		{"image by file_id", items(`{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}`), "input[0].content[0].file_id"},
		{"image without url", items(`{"role":"user","content":[{"type":"input_image"}]}`), "input[0].content[0].image_url"},
		{"image_url an object", items(`{"role":"user","content":[{"type":"input_image","image_url":{"url":"x"}}]}`), "input[0].content[0].image_url"},
		{"text a number", items(`{"role":"user","content":[{"type":"input_text","text":1}]}`), "input[0].content[0].text"},
		{"call without call_id", items(`{"type":"function_call","name":"f","arguments":"{}"}`), "input[0].call_id"},
		{"call without name", items(`{"type":"function_call","call_id":"c","arguments":"{}"}`), "input[0].name"},
		{"call arguments an object", items(`{"type":"function_call","call_id":"c","name":"f","arguments":{}}`), "input[0].arguments"},
		{"output without call_id", items(`{"type":"function_call_output","output":"x"}`), "input[0].call_id"},
		{"output missing", items(`{"type":"function_call_output","call_id":"c"}`), "input[0].output"},
		{"output a number", items(`{"type":"function_call_output","call_id":"c","output":1}`), "input[0].output"},
		{"reasoning content not an array", items(`{"type":"reasoning","content":"x"}`), "input[0].content"},
		{"reference without id", items(`{"type":"item_reference"}`), "input[0].id"},

		{"instructions a number", req(`"instructions":1`), "instructions"},
		{"temperature above 2", req(`"temperature":2.5`), "temperature"},
		{"top_p above 1", req(`"top_p":1.5`), "top_p"},
		{"max_output_tokens zero", req(`"max_output_tokens":0`), "max_output_tokens"},
		{"max_output_tokens a string", req(`"max_output_tokens":"5"`), "max_output_tokens"},
		{"stream a string", req(`"stream":"yes"`), "stream"},
		{"store a string", req(`"store":"yes"`), "store"},
		{"previous_response_id a number", req(`"previous_response_id":1`), "previous_response_id"},
		{"metadata not strings", req(`"metadata":{"a":1}`), "metadata"},
		{"metadata an array", req(`"metadata":["a"]`), "metadata"},
		{"metadata too many", req(`"metadata":{` + respMetadataPairs(17) + `}`), "metadata"},
		{"metadata value too long", req(`"metadata":{"a":"` + strings.Repeat("x", 513) + `"}`), "metadata"},
		{"user a number", req(`"user":1`), "user"},
		{"conversation", req(`"conversation":"conv_1"`), "conversation"},
		{"background", req(`"background":true`), "background"},
		{"parallel_tool_calls a string", req(`"parallel_tool_calls":"no"`), "parallel_tool_calls"},

		{"tools an object", req(`"tools":{}`), "tools"},
		{"hosted tool", req(`"tools":[{"type":"web_search"}]`), "tools[0].type"},
		{"chat-style tool", req(`"tools":[{"type":"function","function":{"name":"f"}}]`), "tools[0].name"},
		{"tool name a number", req(`"tools":[{"type":"function","name":1}]`), "tools[0].name"},
		{"tool_choice unknown", req(`"tool_choice":"any"`), "tool_choice"},
		{"tool_choice chat-style", req(`"tool_choice":{"type":"function","function":{"name":"f"}}`), "tool_choice"},
		{"tool_choice hosted", req(`"tool_choice":{"type":"web_search"}`), "tool_choice"},
		{"text a string", req(`"text":"json"`), "text"},
		{"format unknown", req(`"text":{"format":{"type":"xml"}}`), "text.format.type"},
		{"json_schema without name", req(`"text":{"format":{"type":"json_schema","schema":{}}}`), "text.format.name"},
		{"json_schema without schema", req(`"text":{"format":{"type":"json_schema","name":"n"}}`), "text.format.schema"},
		{"chat-style json_schema", req(`"text":{"format":{"type":"json_schema","json_schema":{"name":"n","schema":{}}}}`), "text.format.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := DecodeResponsesRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", rr)
			}
			respCheckInvalid(t, err, tt.param)
		})
	}
}

func respMetadataPairs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	return b.String()
}

// checkInvalid checks that err is a *chat.Error with code EInvalid naming
// param, whose message a client may see.
func respCheckInvalid(t *testing.T, err error, param string) {
	t.Helper()
	var ce *chat.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v, want *chat.Error", err, err)
	}
	if ce.Code != chat.EInvalid || ce.Param != param {
		t.Errorf("code, param = %q, %q; want %q, %q (message %q)", ce.Code, ce.Param, chat.EInvalid, param, ce.Message)
	}
	for _, s := range []string{"wire.", "llm.", "respItem", "json.RawMessage", "int64", "float64", "Go value"} {
		if strings.Contains(ce.Message, s) {
			t.Errorf("message %q mentions %q", ce.Message, s)
		}
	}
}

// respStore is an in-memory response store for one key, as Resolve's
// load sees it.
type respStore map[string]*chat.Response

func (s respStore) load(id string) (*chat.Response, error) {
	if r, ok := s[id]; ok {
		return r, nil
	}
	return nil, chat.Errorf(chat.ENotFound, "response %q not found", id)
}

func TestResolve(t *testing.T) {
	text := func(s string) []llm.Part { return []llm.Part{llm.TextPart(s)} }
	store := respStore{
		"resp_a": {ID: "resp_a",
			Input:  json.RawMessage(`[{"role":"user","content":"What is the weather in Paris?"}]`),
			Output: json.RawMessage(`[{"id":"fc_a_0","type":"function_call","status":"completed","arguments":"{\"city\":\"Paris\"}","call_id":"call_1","name":"weather"}]`),
		},
		"resp_b": {ID: "resp_b", PreviousID: "resp_a",
			Input:  json.RawMessage(`[{"type":"function_call_output","call_id":"call_1","output":"18C"}]`),
			Output: json.RawMessage(`[{"id":"rs_b_0","type":"reasoning","status":"completed","summary":[{"type":"summary_text","text":"warm"}]},{"id":"msg_b_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"18C and sunny.","annotations":[],"logprobs":[]}]}]`),
		},
	}
	history := []llm.Message{
		{Role: llm.RoleUser, Content: text("What is the weather in Paris?")},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "weather", Arguments: `{"city":"Paris"}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_1", Content: text("18C")},
		{Role: llm.RoleAssistant, Reasoning: "warm", Content: text("18C and sunny.")},
	}
	tests := []struct {
		name  string
		body  string
		want  []llm.Message
		items []string // rr.Items after Resolve, if checked
	}{
		{
			name: "chain",
			body: `{"model":"m","instructions":"be brief","previous_response_id":"resp_b","input":"And tomorrow?"}`,
			want: append(append([]llm.Message{{Role: llm.RoleSystem, Content: text("be brief")}}, history...),
				llm.Message{Role: llm.RoleUser, Content: text("And tomorrow?")}),
		},
		{
			name: "references",
			body: `{"model":"m","input":[{"role":"user","content":"Weather?"},{"type":"item_reference","id":"fc_a_0"},{"type":"function_call_output","call_id":"call_1","output":"18C"},{"type":"item_reference","id":"rs_b_0"},{"type":"item_reference","id":"msg_b_1"},{"role":"user","content":"Thanks"}]}`,
			want: []llm.Message{
				{Role: llm.RoleUser, Content: text("Weather?")},
				history[1], history[2], history[3],
				{Role: llm.RoleUser, Content: text("Thanks")},
			},
			items: []string{
				`{"role":"user","content":"Weather?"}`,
				`{"id":"fc_a_0","type":"function_call","status":"completed","arguments":"{\"city\":\"Paris\"}","call_id":"call_1","name":"weather"}`,
				`{"type":"function_call_output","call_id":"call_1","output":"18C"}`,
				`{"id":"rs_b_0","type":"reasoning","status":"completed","summary":[{"type":"summary_text","text":"warm"}]}`,
				`{"id":"msg_b_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"18C and sunny.","annotations":[],"logprobs":[]}]}`,
				`{"role":"user","content":"Thanks"}`,
			},
		},
		{
			name: "nothing to resolve",
			body: `{"model":"m","input":"hi"}`,
			want: []llm.Message{{Role: llm.RoleUser, Content: text("hi")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := DecodeResponsesRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := rr.Resolve(store.load); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, rr.Request.Messages); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if tt.items != nil {
				var got []string
				for _, it := range rr.Items {
					got = append(got, string(it))
				}
				if diff := cmp.Diff(tt.items, got); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
			}
			// Resolving again changes nothing.
			before := rr.Request.Messages
			if err := rr.Resolve(store.load); err != nil {
				t.Fatal(err)
			}
			if rr.PreviousResponseID == "" {
				if diff := cmp.Diff(before, rr.Request.Messages); diff != "" {
					t.Errorf("second Resolve (-first +second):\n%s", diff)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	store := respStore{
		"resp_a":      {ID: "resp_a", Input: json.RawMessage(`[]`), Output: json.RawMessage(`[{"id":"msg_a_0","type":"message","role":"assistant","content":"x"}]`)},
		"resp_loop1":  {ID: "resp_loop1", PreviousID: "resp_loop2"},
		"resp_loop2":  {ID: "resp_loop2", PreviousID: "resp_loop1"},
		"resp_broken": {ID: "resp_broken", PreviousID: "resp_gone"},
		"resp_bad":    {ID: "resp_bad", Output: json.RawMessage(`{"not":"a list"}`)},
		"resp_odd":    {ID: "resp_odd", Output: json.RawMessage(`[{"type":"web_search_call"}]`)},
	}
	boom := errors.New("disk on fire")
	failing := func(string) (*chat.Response, error) { return nil, boom }
	tests := []struct {
		name  string
		body  string
		load  func(string) (*chat.Response, error)
		param string // of the *chat.Error; empty for an internal error
		is    error
	}{
		{"no store previous", `{"model":"m","input":"x","previous_response_id":"resp_a"}`, nil, "previous_response_id", nil},
		{"no store reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_a_0"}]}`, nil, "input", nil},
		{"previous not found", `{"model":"m","input":"x","previous_response_id":"resp_zzz"}`, store.load, "previous_response_id", nil},
		{"link not found", `{"model":"m","input":"x","previous_response_id":"resp_broken"}`, store.load, "previous_response_id", nil},
		{"loop", `{"model":"m","input":"x","previous_response_id":"resp_loop1"}`, store.load, "previous_response_id", nil},
		{"item not found", `{"model":"m","input":[{"role":"user","content":"x"},{"type":"item_reference","id":"msg_a_7"}]}`, store.load, "input[1].id", nil},
		{"item of unknown response", `{"model":"m","input":[{"type":"item_reference","id":"msg_zzz_0"}]}`, store.load, "input[0].id", nil},
		{"item id not keel's", `{"model":"m","input":[{"type":"item_reference","id":"msg_67ccd2bf"}]}`, store.load, "input[0].id", nil},
		{"load fails", `{"model":"m","input":"x","previous_response_id":"resp_a"}`, failing, "", boom},
		{"load fails for item", `{"model":"m","input":[{"type":"item_reference","id":"msg_a_0"}]}`, failing, "", boom},
		{"stored output corrupt", `{"model":"m","input":"x","previous_response_id":"resp_bad"}`, store.load, "", nil},
		{"stored item invalid", `{"model":"m","input":"x","previous_response_id":"resp_odd"}`, store.load, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := DecodeResponsesRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			err = rr.Resolve(tt.load)
			if err == nil {
				t.Fatalf("Resolve: err = nil, want an error")
			}
			if tt.param == "" {
				if chat.ErrorCode(err) != chat.EInternal {
					t.Errorf("err = %v, want an internal error", err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("err = %v, want it to wrap %v", err, tt.is)
				}
				return
			}
			respCheckInvalid(t, err, tt.param)
		})
	}
}

// TestResolveChainLimit checks that a chain of previous responses longer
// than maxResponseChain is refused rather than walked.
func TestResolveChainLimit(t *testing.T) {
	loads := 0
	load := func(id string) (*chat.Response, error) {
		loads++
		return &chat.Response{ID: id, PreviousID: fmt.Sprintf("resp_%d", loads)}, nil
	}
	rr, err := DecodeResponsesRequest([]byte(`{"model":"m","input":"x","previous_response_id":"resp_0"}`))
	if err != nil {
		t.Fatal(err)
	}
	respCheckInvalid(t, rr.Resolve(load), "previous_response_id")
	if loads != maxResponseChain {
		t.Errorf("%d loads, want %d", loads, maxResponseChain)
	}
}

func TestRespOfItem(t *testing.T) {
	id := NewResponseID()
	for _, prefix := range []string{respMsgPrefix, respCallPrefix, respReasoningPrefix} {
		for _, n := range []int{0, 7, 12} {
			item := respItemID(prefix, id, n)
			got, ok := respOfItem(item)
			if !ok || got != id {
				t.Errorf("respOfItem(%q) = %q, %v; want %q", item, got, ok, id)
			}
		}
	}
	for _, bad := range []string{"", "msg_", "msg__1", "msg_abc", "msg_abc_x", "call_abc_1", "resp_abc_1"} {
		if got, ok := respOfItem(bad); ok {
			t.Errorf("respOfItem(%q) = %q, want none", bad, got)
		}
	}
}

// FuzzDecodeResponsesRequest checks that any body either decodes or fails
// with a 400 naming its param, and that a decoded request can be sent
// upstream and answered: valid JSON, every SSE data line one line.
func FuzzDecodeResponsesRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "openai-responses/request-*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","input":[{"type":"reasoning","summary":[{"type":"summary_text","text":"r"}]},{"role":"assistant","content":"t"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"o"}]}`))
	f.Add([]byte(`{"model":"m","input":"x","metadata":{"a":"b"},"reasoning":{"effort":"low"},"truncation":"auto","text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}}}`))
	f.Add([]byte(`{"model":"m","input":[{"type":"item_reference","id":"msg_a_0"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rr, err := DecodeResponsesRequest(body)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.EInvalid {
				t.Fatalf("err = %#v, want a *chat.Error with code invalid", err)
			}
			return
		}
		if err := rr.Resolve(nil); err != nil {
			if chat.ErrorCode(err) != chat.EInvalid {
				t.Fatalf("Resolve(nil): %v, want a 400", err)
			}
			return
		}
		out, err := AppendChatRequest(nil, rr.Request, ChatDialect{})
		if err != nil || !json.Valid(out) {
			t.Fatalf("AppendChatRequest: %v\n%s", err, out)
		}
		enc := NewResponsesEncoder("resp_f", rr)
		stream := enc.AppendEvent(nil, &llm.Event{Text: "a", ToolCalls: []llm.ToolCallDelta{{ID: "c", Name: "f", Arguments: "{}"}}})
		stream = enc.AppendDone(stream, llm.Usage{})
		respEvents(t, stream)
		whole := NewResponsesEncoder("resp_f", rr).AppendAnswer(nil, &llm.Answer{Text: []byte("a")})
		if !json.Valid(whole) {
			t.Fatalf("AppendAnswer wrote invalid JSON: %s", whole)
		}
		if rec := enc.Record(""); rec != nil && (!json.Valid(rec.Input) || !json.Valid(rec.Output)) {
			t.Fatalf("record holds invalid JSON: %s %s", rec.Input, rec.Output)
		}
	})
}
