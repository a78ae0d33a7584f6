package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/sse"
)

// respTestID and respTestTime make encoder output reproducible.
const respTestID = "resp_67c9fdcecf488190"

var respTestTime = time.Unix(1741290958, 0)

func newRespEncoder(t testing.TB, body string) *ResponsesEncoder {
	t.Helper()
	rr, err := DecodeResponsesRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	e := NewResponsesEncoder(respTestID, rr)
	e.Now = func() time.Time { return respTestTime.Add(2 * time.Second) }
	e.Created = respTestTime
	return e
}

// respEvent is one event of a Responses stream.
type respEvent struct {
	Type string
	Data string
	// Fields are the data's top-level fields.
	Fields map[string]json.RawMessage
}

// respEvents splits an encoder's output into its events, checking the
// framing (§0, §2): an event line equal to the data's type, one data line,
// a blank line, and sequence numbers counting up from 0.
func respEvents(t testing.TB, b []byte) []respEvent {
	t.Helper()
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n\n") {
		t.Fatalf("output does not end with a blank line: %q", s)
	}
	var out []respEvent
	for i, ev := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		name, data, ok := strings.Cut(ev, "\n")
		name, ok1 := strings.CutPrefix(name, "event: ")
		data, ok2 := strings.CutPrefix(data, "data: ")
		if !ok || !ok1 || !ok2 || strings.Contains(data, "\n") {
			t.Fatalf("event %d is not an event line and one data line: %q", i, ev)
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &f); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, data)
		}
		var typ string
		var seq int
		json.Unmarshal(f["type"], &typ)
		if err := json.Unmarshal(f["sequence_number"], &seq); err != nil || seq != i {
			t.Fatalf("event %d has sequence_number %s: %s", i, f["sequence_number"], data)
		}
		if typ != name {
			t.Fatalf("event %d: event %q, type %q", i, name, typ)
		}
		out = append(out, respEvent{Type: typ, Data: data, Fields: f})
	}
	return out
}

// respClient follows a Responses stream as a strict client would: it
// rebuilds each output item from its deltas, and checks every done event
// and the final response against what it rebuilt.
type respClient struct {
	id       string
	items    []map[string]json.RawMessage
	texts    []string // per item: its text, reasoning or arguments
	open     []bool
	final    map[string]json.RawMessage
	terminal string
	err      map[string]json.RawMessage // the error event's error
}

func respStr(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}

func respNum(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) != nil {
		return -1
	}
	return n
}

func respObj(t testing.TB, raw json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	return m
}

func respFollow(t testing.TB, evs []respEvent) *respClient {
	t.Helper()
	c := &respClient{items: []map[string]json.RawMessage{}}
	for i, ev := range evs {
		f := ev.Fields
		if c.terminal != "" {
			t.Fatalf("event %d (%s) after %s", i, ev.Type, c.terminal)
		}
		idx := respNum(f["output_index"])
		item := func() int {
			t.Helper()
			if idx < 0 || idx >= len(c.items) || !c.open[idx] {
				t.Fatalf("event %d (%s): output_index %d is not an open item: %s", i, ev.Type, idx, ev.Data)
			}
			if id, ok := f["item_id"]; ok && respStr(id) != respStr(c.items[idx]["id"]) {
				t.Fatalf("event %d: item_id %s, item %d is %s", i, id, idx, c.items[idx]["id"])
			}
			return idx
		}
		switch ev.Type {
		case "response.created", "response.in_progress":
			r := respObj(t, f["response"])
			if (ev.Type == "response.created") != (i == 0) || respStr(r["status"]) != "in_progress" || string(r["output"]) != "[]" {
				t.Fatalf("event %d: %s", i, ev.Data)
			}
			c.id = respStr(r["id"])
		case "response.output_item.added":
			it := respObj(t, f["item"])
			if idx != len(c.items) || respStr(it["status"]) != "in_progress" {
				t.Fatalf("event %d: item %d added at %d, or not in progress: %s", i, len(c.items), idx, ev.Data)
			}
			c.items = append(c.items, it)
			c.texts = append(c.texts, "")
			c.open = append(c.open, true)
		case "response.content_part.added", "response.reasoning_summary_part.added":
			p := respObj(t, f["part"])
			if item() >= 0 && respStr(p["text"]) != "" {
				t.Fatalf("event %d: part not empty: %s", i, ev.Data)
			}
		case "response.output_text.delta", "response.reasoning_summary_text.delta", "response.function_call_arguments.delta":
			c.texts[item()] += respStr(f["delta"])
		case "response.output_text.done", "response.reasoning_summary_text.done":
			if n := item(); respStr(f["text"]) != c.texts[n] {
				t.Fatalf("event %d: done text %s, deltas %q", i, f["text"], c.texts[n])
			}
		case "response.function_call_arguments.done":
			if n := item(); respStr(f["arguments"]) != c.texts[n] || respStr(f["name"]) != respStr(c.items[n]["name"]) {
				t.Fatalf("event %d: done %s, deltas %q", i, ev.Data, c.texts[n])
			}
		case "response.content_part.done", "response.reasoning_summary_part.done":
			if n := item(); respStr(respObj(t, f["part"])["text"]) != c.texts[n] {
				t.Fatalf("event %d: part %s, deltas %q", i, f["part"], c.texts[n])
			}
		case "response.output_item.done":
			n := item()
			it := respObj(t, f["item"])
			if respStr(it["id"]) != respStr(c.items[n]["id"]) || respStr(it["type"]) != respStr(c.items[n]["type"]) || respStr(it["status"]) == "in_progress" {
				t.Fatalf("event %d: item done %s, added %v", i, ev.Data, c.items[n])
			}
			if got := respItemText(t, it); got != c.texts[n] {
				t.Fatalf("event %d: item text %q, deltas %q", i, got, c.texts[n])
			}
			c.items[n], c.open[n] = it, false
		case "error":
			c.err = respObj(t, f["error"])
			if _, ok := c.err["message"]; !ok {
				t.Fatalf("event %d: error without message: %s", i, ev.Data)
			}
		case "response.completed", "response.incomplete", "response.failed":
			c.terminal = ev.Type
			c.final = respObj(t, f["response"])
			if respStr(c.final["id"]) != c.id || "response."+respStr(c.final["status"]) != ev.Type {
				t.Fatalf("event %d: %s", i, ev.Data)
			}
			if (ev.Type == "response.failed") != (c.err != nil) {
				t.Fatalf("event %d: %s, error event %v", i, ev.Type, c.err)
			}
			if ev.Type == "response.failed" {
				continue
			}
			for n, open := range c.open {
				if open {
					t.Fatalf("%s with item %d open", ev.Type, n)
				}
			}
			want, _ := json.Marshal(c.items)
			if !respJSONEqual(t, want, c.final["output"]) {
				t.Fatalf("final output\n%s\nwant the items streamed\n%s", c.final["output"], want)
			}
		default:
			t.Fatalf("event %d: unexpected type %s", i, ev.Type)
		}
	}
	if c.terminal == "" {
		t.Fatalf("stream without a terminal event")
	}
	return c
}

// respItemText returns an output item's text, reasoning or arguments.
func respItemText(t testing.TB, it map[string]json.RawMessage) string {
	t.Helper()
	var parts []struct{ Text string }
	switch respStr(it["type"]) {
	case "message":
		json.Unmarshal(it["content"], &parts)
	case "reasoning":
		json.Unmarshal(it["summary"], &parts)
	case "function_call":
		return respStr(it["arguments"])
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// answer returns what the client received, as an Answer.
func (c *respClient) answer(t testing.TB) llm.Answer {
	var a llm.Answer
	for _, it := range c.items {
		switch respStr(it["type"]) {
		case "message":
			a.Text = append(a.Text, respItemText(t, it)...)
		case "reasoning":
			a.Reasoning = append(a.Reasoning, respItemText(t, it)...)
		case "function_call":
			a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: respStr(it["call_id"]), Name: respStr(it["name"]), Arguments: respStr(it["arguments"])})
		}
	}
	return a
}

func respJSONEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return cmp.Equal(x, y)
}

// goldenText compares got with testdata/<name>.golden, or rewrites it
// under -update.
func respGoldenText(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// respStream encodes a replayed upstream stream for a Responses client, as
// httpapi does: the in-band error if the stream failed, else the end.
func respStream(e *ResponsesEncoder, r *replayed) []byte {
	var out []byte
	for _, ev := range r.events {
		out = e.AppendEvent(out, &ev)
	}
	if r.err != nil {
		var eb *ErrorBody
		errors.As(r.err, &eb)
		return e.AppendError(out, APIError{Status: 502, Message: eb.Message, Type: eb.Type, Code: eb.Code, Param: eb.Param})
	}
	return e.AppendDone(out, r.answer.Usage)
}

const respTestRequest = `{"model":"gpt-4o-mini","instructions":"Be brief.","input":"hi","stream":true,"metadata":{"topic":"test"}}`

// TestResponsesEncoderStreams re-encodes every recorded OpenAI-format
// upstream stream for a Responses client, compares the output with its
// golden file, follows it as a client, and checks that the client gets
// the answer the upstream sent; that the whole (non-streamed) response has
// the same output; and that a request continuing from the stored response
// sees the answer as context.
func TestResponsesEncoderStreams(t *testing.T) {
	for _, path := range streams(t) {
		t.Run(name(path), func(t *testing.T) {
			r := replay(t, read(t, path))
			e := newRespEncoder(t, respTestRequest)
			out := respStream(e, r)
			respGoldenText(t, "responses_stream_"+name(path), out)

			c := respFollow(t, respEvents(t, out))
			if r.err != nil {
				if c.terminal != "response.failed" {
					t.Fatalf("terminal %s, want response.failed", c.terminal)
				}
				if e.Record("") != nil {
					t.Errorf("a failed response has a record")
				}
				return
			}
			a := &r.answer
			got := c.answer(t)
			if diff := cmp.Diff(string(a.Text), string(got.Text)); diff != "" {
				t.Errorf("text (-upstream +client):\n%s", diff)
			}
			if diff := cmp.Diff(string(a.Reasoning), string(got.Reasoning)); diff != "" {
				t.Errorf("reasoning (-upstream +client):\n%s", diff)
			}
			if diff := cmp.Diff(a.ToolCalls, got.ToolCalls, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tool calls (-upstream +client):\n%s", diff)
			}
			wantStatus := "completed"
			if a.Finish == llm.FinishLength {
				wantStatus = "incomplete"
			}
			if s := respStr(c.final["status"]); s != wantStatus {
				t.Errorf("status %s, want %s", s, wantStatus)
			}
			var usage struct {
				Input  int `json:"input_tokens"`
				Output int `json:"output_tokens"`
				Total  int `json:"total_tokens"`
			}
			json.Unmarshal(c.final["usage"], &usage)
			if usage.Input != a.Usage.Input || usage.Output != a.Usage.Output || usage.Total != a.Usage.Total() {
				t.Errorf("usage %+v, want %+v", usage, a.Usage)
			}

			// The whole response has the output the stream had.
			whole := newRespEncoder(t, respTestRequest)
			body := whole.AppendAnswer(nil, a)
			var resp map[string]json.RawMessage
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if !respJSONEqual(t, resp["output"], c.final["output"]) {
				t.Errorf("whole output\n%s\nstreamed\n%s", resp["output"], c.final["output"])
			}
			if !respJSONEqual(t, whole.Output(), e.Output()) {
				t.Errorf("Output differs between stream and whole")
			}

			// Continuing from the stored response gives the answer as
			// context, without the instructions.
			rec := e.Record("key_a")
			if rec == nil {
				t.Fatal("no record of a complete response")
			}
			if !respJSONEqual(t, rec.Output, c.final["output"]) || !respJSONEqual(t, rec.Input, []byte(`[{"role":"user","content":"hi"}]`)) {
				t.Errorf("record input %s output %s", rec.Input, rec.Output)
			}
			if rec.ID != respTestID || rec.KeyID != "key_a" || !rec.Created.Equal(respTestTime) || rec.Model != respStr(c.final["model"]) {
				t.Errorf("record %+v", rec)
			}
			next, err := DecodeResponsesRequest([]byte(`{"model":"m","previous_response_id":"` + rec.ID + `","input":"more"}`))
			if err != nil {
				t.Fatal(err)
			}
			if err := next.Resolve(respStore{rec.ID: rec}.load); err != nil {
				t.Fatal(err)
			}
			assistant := llm.Message{Role: llm.RoleAssistant, Reasoning: string(a.Reasoning), ToolCalls: a.ToolCalls}
			if len(a.Text) > 0 || len(a.ToolCalls) == 0 {
				assistant.Content = []llm.Part{llm.TextPart(string(a.Text))}
			}
			want := []llm.Message{
				{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("hi")}},
				assistant,
				{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("more")}},
			}
			if diff := cmp.Diff(want, next.Request.Messages); diff != "" {
				t.Errorf("continued messages (-want +got):\n%s", diff)
			}
		})
	}
}

// respTextEvents are the deltas of stream-text.sse as upstream events.
func respTextEvents() []llm.Event {
	evs := []llm.Event{{ID: "u", Model: "gpt-5.4"}}
	for _, d := range []string{"Hi", " there!", " How can I", " assist you today?"} {
		evs = append(evs, llm.Event{ID: "u", Model: "gpt-5.4", Text: d})
	}
	return append(evs, llm.Event{ID: "u", Model: "gpt-5.4", Finish: llm.FinishStop})
}

// respCallEvents are the deltas of stream-function-call.sse.
func respCallEvents() []llm.Event {
	evs := []llm.Event{{ID: "u", Model: "gpt-5.1", ToolCalls: []llm.ToolCallDelta{{ID: "call_H5DxLSFnsGhiROnUiDHmgyc8", Name: "weather"}}}}
	for _, d := range []string{`{"`, "location", `":"`, "San", " Francisco", `"}`} {
		evs = append(evs, llm.Event{ToolCalls: []llm.ToolCallDelta{{Arguments: d}}})
	}
	return append(evs, llm.Event{Finish: llm.FinishToolCalls})
}

// TestResponsesEncoderMatchesRecorded checks keel's stream against
// OpenAI's recorded ones: the same event types in the same order, and
// every field OpenAI sends (in the event, and in its item, part or
// response) also there.
func TestResponsesEncoderMatchesRecorded(t *testing.T) {
	tests := []struct {
		file   string
		events []llm.Event
		err    *APIError
	}{
		{"stream-text.sse", respTextEvents(), nil},
		{"stream-function-call.sse", respCallEvents(), nil},
		{"stream-error-insufficient-quota.sse", nil, &APIError{Status: 429, Type: "insufficient_quota", Code: "insufficient_quota", Message: "You exceeded your current quota."}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rec := read(t, filepath.Join(examples, "openai-responses", tt.file))
			want := respRecorded(t, rec)

			e := newRespEncoder(t, `{"model":"gpt-5.4","input":"hi","tools":[{"type":"function","name":"weather","parameters":{"type":"object"},"strict":true}]}`)
			var out []byte
			for _, ev := range tt.events {
				out = e.AppendEvent(out, &ev)
			}
			if tt.err != nil {
				out = e.AppendError(out, *tt.err)
			} else {
				out = e.AppendDone(out, llm.Usage{Input: 37, Output: 11})
			}
			got := respEvents(t, out)
			respFollow(t, got)

			types := func(evs []respEvent) []string {
				var s []string
				for _, ev := range evs {
					s = append(s, ev.Type)
				}
				return s
			}
			if diff := cmp.Diff(types(want), types(got)); diff != "" {
				t.Fatalf("event types (-OpenAI +keel):\n%s", diff)
			}
			for i := range want {
				respSameKeys(t, want[i].Type, want[i].Fields, got[i].Fields, true)
			}
		})
	}
}

// respRecorded reads a recorded Responses stream.
func respRecorded(t testing.TB, b []byte) []respEvent {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(b), 0)
	var out []respEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal(ev.Data, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, respEvent{Type: string(ev.Name), Data: string(ev.Data), Fields: f})
	}
}

// respSameKeys checks that got has every key want has, and, if deep, the
// same for the objects under item, part, response and error, and for the
// first output item and usage of a response.
func respSameKeys(t testing.TB, where string, want, got map[string]json.RawMessage, deep bool) {
	t.Helper()
	var missing []string
	for k := range want {
		if _, ok := got[k]; !ok && k != "obfuscation" {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s lacks %v", where, missing)
	}
	if !deep {
		return
	}
	for _, k := range []string{"item", "part", "response", "error", "usage"} {
		w, g := want[k], got[k]
		if len(w) > 0 && w[0] == '{' && len(g) > 0 && g[0] == '{' {
			respSameKeys(t, where+"."+k, respObj(t, w), respObj(t, g), true)
		}
	}
	var wo, gout []map[string]json.RawMessage
	json.Unmarshal(want["output"], &wo)
	json.Unmarshal(got["output"], &gout)
	if len(wo) > 0 && len(gout) > 0 {
		respSameKeys(t, where+".output[0]", wo[0], gout[0], false)
	}
}

// TestResponsesAnswerMatchesRecorded checks a whole response against
// OpenAI's recorded ones: every field they have, and the same output.
func TestResponsesAnswerMatchesRecorded(t *testing.T) {
	tests := []struct {
		file string
		a    llm.Answer
	}{
		{"response-basic.json", llm.Answer{Model: "gpt-5.4", Text: []byte("In a peaceful grove"), Finish: llm.FinishStop, Usage: llm.Usage{Input: 36, Output: 87}}},
		{"response-function-call.json", llm.Answer{Model: "gpt-5.4", Finish: llm.FinishToolCalls, Usage: llm.Usage{Input: 291, Output: 23},
			ToolCalls: []llm.ToolCall{{ID: "call_unLAR8MvFNptuiZK6K6HCy5k", Name: "get_current_weather", Arguments: `{"location":"Boston, MA","unit":"celsius"}`}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want := respObj(t, read(t, filepath.Join(examples, "openai-responses", tt.file)))
			e := newRespEncoder(t, `{"model":"gpt-5.4","input":"hi"}`)
			body := e.AppendAnswer(nil, &tt.a)
			got := respObj(t, body)
			respSameKeys(t, tt.file, want, got, true)
			respGoldenText(t, "responses_answer_"+strings.TrimSuffix(tt.file, ".json"), append(body, '\n'))
			if s := respStr(got["status"]); s != "completed" {
				t.Errorf("status %s", s)
			}
		})
	}
}

func TestResponsesAnswer(t *testing.T) {
	tests := []struct {
		name       string
		a          llm.Answer
		status     string
		incomplete string
		items      []string // type:status of each output item
	}{
		{"empty", llm.Answer{}, "completed", "", []string{"message:completed"}},
		{"length", llm.Answer{Text: []byte("cut"), Finish: llm.FinishLength}, "incomplete", "max_output_tokens", []string{"message:incomplete"}},
		{"content filter", llm.Answer{Finish: llm.FinishContentFilter}, "incomplete", "content_filter", []string{"message:incomplete"}},
		{"all kinds", llm.Answer{Reasoning: []byte("r"), Text: []byte("t"), Finish: llm.FinishToolCalls,
			ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: "{}"}, {Name: "g", Arguments: "{}"}}},
			"completed", "", []string{"reasoning:completed", "message:completed", "function_call:completed", "function_call:completed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRespEncoder(t, `{"model":"m","input":"hi"}`)
			body := e.AppendAnswer(nil, &tt.a)
			var resp struct {
				Status            string
				IncompleteDetails *struct{ Reason string } `json:"incomplete_details"`
				Output            []struct {
					ID, Type, Status string
					CallID           string `json:"call_id"`
				}
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			var reason string
			if resp.IncompleteDetails != nil {
				reason = resp.IncompleteDetails.Reason
			}
			var items []string
			ids := map[string]bool{}
			for _, it := range resp.Output {
				items = append(items, it.Type+":"+it.Status)
				if ids[it.ID] {
					t.Errorf("duplicate item id %s", it.ID)
				}
				ids[it.ID] = true
				if got, ok := respOfItem(it.ID); !ok || got != respTestID {
					t.Errorf("item id %s does not name its response", it.ID)
				}
				if it.Type == "function_call" && it.CallID == "" {
					t.Errorf("function_call without call_id: %s", body)
				}
			}
			if diff := cmp.Diff([]any{tt.status, tt.incomplete, tt.items}, []any{resp.Status, reason, items}); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, body)
			}
		})
	}
}

// TestResponsesEncoderEcho checks that a response repeats the request's
// parameters, with pretty-printed JSON from the client compacted onto the
// one SSE data line.
func TestResponsesEncoderEcho(t *testing.T) {
	body := `{"model":"m","input":"hi","instructions":"be <brief>","max_output_tokens":50,"parallel_tool_calls":false,
		"previous_response_id":null,"store":false,"temperature":0.5,"top_p":0.9,"user":"u1","safety_identifier":"s1",
		"tool_choice":{"type":"function","name":"f"},"metadata":{"b":"2","a":"1"},
		"reasoning": {
			"effort": "low"
		},
		"truncation":"auto",
		"text":{"format":{"type":"json_schema","name":"n","description":"d","schema":{
			"type": "object"
		},"strict":true},"verbosity":"low"},
		"tools":[{"type":"function","name":"f","parameters":{
			"type": "object"
		}}]}`
	e := newRespEncoder(t, body)
	out := e.AppendEvent(nil, &llm.Event{Model: "served", Text: "x"})
	out = e.AppendDone(out, llm.Usage{Input: 3, Output: 4, Cached: 1, Reasoning: 2})
	evs := respEvents(t, out)
	resp := respObj(t, evs[len(evs)-1].Fields["response"])
	want := map[string]string{
		"instructions": `"be \u003cbrief\u003e"`, "max_output_tokens": `50`, "parallel_tool_calls": `false`,
		"previous_response_id": `null`, "store": `false`, "temperature": `0.5`, "top_p": `0.9`, "user": `"u1"`,
		"safety_identifier": `"s1"`, "tool_choice": `{"type":"function","name":"f"}`, "metadata": `{"a":"1","b":"2"}`,
		"reasoning": `{"effort":"low"}`, "truncation": `"auto"`,
		"text":  `{"format":{"type":"json_schema","name":"n","description":"d","schema":{"type":"object"},"strict":true},"verbosity":"low"}`,
		"tools": `[{"type":"function","name":"f","description":null,"parameters":{"type":"object"},"strict":null}]`,
		"model": `"served"`, "status": `"completed"`, "created_at": `1741290958`, "completed_at": `1741290960`,
		"usage": `{"input_tokens":3,"input_tokens_details":{"cached_tokens":1,"cache_write_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":7}`,
		"error": `null`, "incomplete_details": `null`,
	}
	got := map[string]string{}
	for k := range want {
		got[k] = string(resp[k])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if e.Record("") != nil {
		t.Errorf("store:false response has a record")
	}

	// Defaults.
	e = newRespEncoder(t, `{"model":"m","input":"hi"}`)
	resp = respObj(t, e.AppendAnswer(nil, &llm.Answer{Text: []byte("x")}))
	want = map[string]string{
		"instructions": `null`, "max_output_tokens": `null`, "parallel_tool_calls": `true`, "store": `true`,
		"temperature": `null`, "top_p": `null`, "user": `null`, "tool_choice": `"auto"`, "metadata": `{}`,
		"reasoning": `{"effort":null,"summary":null}`, "truncation": `"disabled"`, "text": `{"format":{"type":"text"}}`,
		"tools": `[]`, "model": `"m"`,
	}
	got = map[string]string{}
	for k := range want {
		got[k] = string(resp[k])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestResponsesEncoderItems checks how items open and close: an item per
// kind of content as it changes, one per tool call, late fragments of a
// closed call still delivered, and the finish reason deciding the status.
func TestResponsesEncoderItems(t *testing.T) {
	call := func(i int, id, name, args string) llm.Event {
		return llm.Event{ToolCalls: []llm.ToolCallDelta{{Index: i, ID: id, Name: name, Arguments: args}}}
	}
	tests := []struct {
		name   string
		events []llm.Event
		done   bool // AppendDone, else AppendError
		items  []string
		status string
	}{
		{"reasoning then text", []llm.Event{{Reasoning: "r1"}, {Reasoning: "r2"}, {Text: "t"}, {Finish: llm.FinishStop}}, true,
			[]string{"reasoning:completed:r1r2", "message:completed:t"}, "completed"},
		{"text, call, text", []llm.Event{{Text: "a"}, call(0, "c1", "f", "{}"), {Text: "b"}}, true,
			[]string{"message:completed:a", "function_call:completed:{}", "message:completed:b"}, "completed"},
		{"parallel calls", []llm.Event{call(0, "c1", "f", ""), call(0, "", "", "{}"), call(1, "c2", "g", "[]"), {Finish: llm.FinishToolCalls}}, true,
			[]string{"function_call:completed:{}", "function_call:completed:[]"}, "completed"},
		{"whole calls in one event", []llm.Event{{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "c1", Name: "f", Arguments: "{}"}, {Index: 1, ID: "c2", Name: "g", Arguments: "{}"}}}}, true,
			[]string{"function_call:completed:{}", "function_call:completed:{}"}, "completed"},
		{"late fragment", []llm.Event{call(0, "c1", "f", "{"), call(1, "c2", "g", "{}"), call(0, "", "", "}")}, true,
			[]string{"function_call:completed:{}", "function_call:completed:{}"}, "completed"},
		{"length", []llm.Event{{Text: "a"}, {Text: "b", Finish: llm.FinishLength}}, true,
			[]string{"message:incomplete:ab"}, "incomplete"},
		{"nothing", nil, true, nil, "completed"},
		{"error mid-text", []llm.Event{{Text: "a"}}, false, []string{"message:incomplete:a"}, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRespEncoder(t, `{"model":"m","input":"hi"}`)
			var out []byte
			for _, ev := range tt.events {
				out = e.AppendEvent(out, &ev)
			}
			if tt.done {
				out = e.AppendDone(out, llm.Usage{})
			} else {
				out = e.AppendError(out, APIError{Message: "boom"})
			}
			// Nothing is written after the end.
			if more := e.AppendDone(e.AppendEvent(nil, &llm.Event{Text: "x"}), llm.Usage{}); len(more) != 0 {
				t.Errorf("wrote after the end: %s", more)
			}
			evs := respEvents(t, out)
			var final map[string]json.RawMessage
			if tt.name == "late fragment" {
				// The late fragment makes the done events disagree with the
				// deltas; check the final response only.
				final = respObj(t, evs[len(evs)-1].Fields["response"])
			} else {
				final = respFollow(t, evs).final
			}
			var items []map[string]json.RawMessage
			json.Unmarshal(final["output"], &items)
			var got []string
			for _, it := range items {
				got = append(got, respStr(it["type"])+":"+respStr(it["status"])+":"+respItemText(t, it))
			}
			if diff := cmp.Diff(tt.items, got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if s := respStr(final["status"]); s != tt.status {
				t.Errorf("status %s, want %s", s, tt.status)
			}
		})
	}
}

// TestResponsesEncoderError checks the in-band error: the nested error
// event, then response.failed with the error, and no record.
func TestResponsesEncoderError(t *testing.T) {
	e := newRespEncoder(t, `{"model":"m","input":"hi"}`)
	out := e.AppendEvent(nil, &llm.Event{Text: "partial"})
	out = e.AppendError(out, APIError{Status: 429, Message: "slow down", Type: "rate_limit_error", Code: "rate_limit_exceeded"})
	evs := respEvents(t, out)
	c := respFollow(t, evs)
	ev := evs[len(evs)-2]
	if ev.Type != "error" || string(ev.Fields["error"]) != `{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down","param":null}` {
		t.Errorf("error event %s", ev.Data)
	}
	if got := string(c.final["error"]); got != `{"code":"rate_limit_exceeded","message":"slow down"}` {
		t.Errorf("response.error = %s", got)
	}
	if e.Record("") != nil {
		t.Errorf("failed response has a record")
	}

	// Without code or type: server_error.
	e = newRespEncoder(t, `{"model":"m","input":"hi"}`)
	evs = respEvents(t, e.AppendError(nil, APIError{Message: "internal error"}))
	if got := string(respObj(t, evs[len(evs)-1].Fields["response"])["error"]); got != `{"code":"server_error","message":"internal error"}` {
		t.Errorf("response.error = %s", got)
	}
}

// TestResponsesEncoderChunkPerEvent checks that every AppendEvent writes
// whole events: a flush after each never leaves half of one.
func TestResponsesEncoderChunkPerEvent(t *testing.T) {
	for _, path := range streams(t) {
		r := replay(t, read(t, path))
		e := newRespEncoder(t, respTestRequest)
		for _, ev := range r.events {
			out := e.AppendEvent(nil, &ev)
			if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n\n")) {
				t.Errorf("%s: output does not end an event: %q", name(path), out)
			}
		}
	}
}

// TestResponsesAPI checks the stateless API and one serving a stored
// request's encoder.
func TestResponsesAPI(t *testing.T) {
	var api ResponsesAPI
	if _, err := api.Decode([]byte(`{"model":"m","input":"x","previous_response_id":"resp_1"}`)); chat.ErrorCode(err) != chat.EInvalid {
		t.Errorf("stateless Decode of previous_response_id: err = %v, want invalid", err)
	}
	r, err := api.Decode([]byte(`{"model":"m","input":"x","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	enc := api.Encoder(r)
	out := enc.AppendEvent(nil, &llm.Event{Text: "y"})
	out = enc.AppendDone(out, llm.Usage{})
	c := respFollow(t, respEvents(t, out))
	if !strings.HasPrefix(c.id, "resp_") || len(c.id) != len("resp_")+48 {
		t.Errorf("id %q", c.id)
	}
	if got := string(c.final["store"]); got != "false" {
		t.Errorf("stateless store = %s, want false", got)
	}
	body := api.AppendAnswer(nil, &llm.Answer{Model: "m", Text: []byte("y")})
	if !json.Valid(body) {
		t.Errorf("AppendAnswer: %s", body)
	}
	if got := string(api.AppendError(nil, APIError{Status: 429, Message: "m", Type: "RESOURCE_EXHAUSTED"})); got != `{"error":{"message":"m","type":"rate_limit_error","param":null,"code":null}}` {
		t.Errorf("AppendError = %s, want another vendor's type in OpenAI's words", got)
	}
	if api.Relay() != llm.WireNone || api.Name() != "openai.responses" {
		t.Errorf("Relay, Name = %v, %q", api.Relay(), api.Name())
	}

	e := newRespEncoder(t, `{"model":"m","input":"x"}`)
	api = ResponsesAPI{Response: e}
	if api.Encoder(r) != StreamEncoder(e) {
		t.Errorf("Encoder is not the request's")
	}
	body = api.AppendAnswer(nil, &llm.Answer{Text: []byte("y")})
	if id := respStr(respObj(t, body)["id"]); id != respTestID {
		t.Errorf("id %s, want %s", id, respTestID)
	}
	if rec := e.Record("k"); rec == nil || !respJSONEqual(t, rec.Output, respObj(t, body)["output"]) {
		t.Errorf("record %+v does not hold the answer", rec)
	}
}

// respBenchEvent is a typical text chunk, decoded.
func respBenchEvent(b *testing.B) *llm.Event {
	var d ChatChunkDecoder
	ev, err := d.Decode([]byte(textChunk))
	if err != nil {
		b.Fatal(err)
	}
	c := *ev
	return &c
}

// BenchmarkResponsesEncoderText writes one text delta event.
func BenchmarkResponsesEncoderText(b *testing.B) {
	ev := respBenchEvent(b)
	e := newRespEncoder(b, respTestRequest)
	buf := e.AppendEvent(make([]byte, 0, 4096), ev) // opens the response and the message
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendEvent(buf[:0], ev)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkResponsesEncoderToolCall writes one function-call arguments
// delta event.
func BenchmarkResponsesEncoderToolCall(b *testing.B) {
	e := newRespEncoder(b, respTestRequest)
	buf := e.AppendEvent(make([]byte, 0, 4096), &llm.Event{ToolCalls: []llm.ToolCallDelta{{ID: "call_1", Name: "get_weather"}}})
	ev := &llm.Event{ToolCalls: []llm.ToolCallDelta{{Arguments: `"location":`}}}
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendEvent(buf[:0], ev)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkResponsesStream encodes a whole recorded stream, start and end
// included, per chunk.
func BenchmarkResponsesStream(b *testing.B) {
	r := replay(b, read(b, filepath.Join(examples, "openai-chat/stream-text-usage.sse")))
	rr, err := DecodeResponsesRequest([]byte(respTestRequest))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		e := NewResponsesEncoder(respTestID, rr)
		buf = buf[:0]
		for i := range r.events {
			buf = e.AppendEvent(buf, &r.events[i])
		}
		buf = e.AppendDone(buf, r.answer.Usage)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(r.events)), "ns/chunk")
}
