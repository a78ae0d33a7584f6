package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/sse"
)

// streams are the recorded OpenAI-format streams.
func streams(t testing.TB) []string {
	var files []string
	for _, p := range []string{"openai-chat/*.sse", "mistral/*.sse", "openai-compatible/*.sse"} {
		files = append(files, glob(t, p)...)
	}
	return files
}

// replayed is a stream run through sse.Reader and ChatChunkDecoder.
type replayed struct {
	data   [][]byte    // each chunk's data, [DONE] excluded
	events []llm.Event // copies: the decoder reuses its event
	answer llm.Answer
	done   bool  // [DONE] arrived
	err    error // the decoder's error, which ends the stream
}

func replay(t testing.TB, stream []byte) *replayed {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(stream), 0)
	var d ChatChunkDecoder
	out := &replayed{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		if out.done {
			t.Fatalf("data after [DONE]: %s", e.Data)
		}
		if string(e.Data) == "[DONE]" {
			out.done = true
			continue
		}
		data := bytes.Clone(e.Data)
		out.data = append(out.data, data)
		ev, err := d.Decode(data)
		if err != nil {
			out.err = err
			return out
		}
		out.answer.Add(ev)
		c := *ev
		c.ToolCalls = slices.Clone(ev.ToolCalls)
		out.events = append(out.events, c)
	}
}

// streamGolden is what a stream's golden file records.
type streamGolden struct {
	ID        string
	Model     string
	Created   int64
	Text      string
	Reasoning string
	ToolCalls []llm.ToolCall
	Finish    llm.Finish
	Usage     *llm.Usage
	// Relay has one character per chunk: R if its Raw may be relayed, - if
	// it must be re-encoded.
	Relay string
	Done  bool
	Error *ErrorBody
}

func goldenOf(r *replayed) streamGolden {
	a := &r.answer
	g := streamGolden{
		ID: a.ID, Model: a.Model, Created: a.Created, Text: string(a.Text), Reasoning: string(a.Reasoning),
		ToolCalls: a.ToolCalls, Finish: a.Finish, Done: r.done,
	}
	if a.HasUsage {
		g.Usage = &a.Usage
	}
	for _, ev := range r.events {
		if ev.Raw != nil {
			g.Relay += "R"
		} else {
			g.Relay += "-"
		}
	}
	errors.As(r.err, &g.Error)
	return g
}

// TestChatChunkDecoderExamples replays every recorded stream and compares
// the accumulated answer with its golden file.
func TestChatChunkDecoderExamples(t *testing.T) {
	for _, path := range streams(t) {
		t.Run(name(path), func(t *testing.T) {
			r := replay(t, read(t, path))
			golden(t, "stream_"+name(path), goldenOf(r))

			for i, ev := range r.events {
				switch {
				case ev.Raw != nil && (ev.Wire != llm.WireChatChunk || !bytes.Equal(ev.Raw, r.data[i])):
					t.Errorf("chunk %d: Raw kept but Wire = %v or Raw differs from the data", i, ev.Wire)
				case ev.Raw == nil && ev.Wire != llm.WireNone:
					t.Errorf("chunk %d: Raw cleared but Wire = %v", i, ev.Wire)
				}
			}
			if r.err != nil {
				var eb *ErrorBody
				if !errors.As(r.err, &eb) {
					t.Fatalf("err = %v, want an *ErrorBody", r.err)
				}
				return
			}
			a := &r.answer
			if r.done && a.Finish == "" {
				t.Errorf("complete stream without a finish reason")
			}
			if a.Finish == llm.FinishToolCalls && len(a.ToolCalls) == 0 {
				t.Errorf("finish tool_calls without tool calls")
			}
			for i, tc := range a.ToolCalls {
				if tc.ID == "" || tc.Name == "" || !json.Valid([]byte(tc.Arguments)) {
					t.Errorf("tool call %d incomplete: %+v", i, tc)
				}
			}
		})
	}
}

// chunk builds a chat.completion.chunk around a choice, or with no choices
// when choice is empty.
func chunk(choice string, extra ...string) string {
	s := `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	if choice != "" {
		s += `{"index":0,` + choice + `}`
	}
	s += `]`
	for _, e := range extra {
		s += `,` + e
	}
	return s + `}`
}

func toolDelta(calls string) string { return chunk(`"delta":{"tool_calls":[` + calls + `]}`) }

func TestChatChunkDecoderToolCalls(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []llm.ToolCall
		relay  string
	}{
		{
			name: "indexed from 0",
			chunks: []string{
				toolDelta(`{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}`),
				toolDelta(`{"index":0,"function":{"arguments":"{}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}},
			relay: "RR",
		},
		{
			name: "indexed from 1",
			chunks: []string{
				chunk(`"delta":{"content":"Reading"}`),
				toolDelta(`{"index":1,"id":"a","type":"function","function":{"name":"f","arguments":""}}`),
				toolDelta(`{"index":1,"function":{"arguments":"{\"p\":1}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: `{"p":1}`}},
			relay: "R--",
		},
		{
			name: "parallel interleaved",
			chunks: []string{
				toolDelta(`{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{"}},{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"["}}`),
				toolDelta(`{"index":1,"function":{"arguments":"]"}}`),
				toolDelta(`{"index":0,"function":{"arguments":"}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: "[]"}},
			relay: "RRR",
		},
		{
			name: "sparse indexes",
			chunks: []string{
				toolDelta(`{"index":7,"id":"a","type":"function","function":{"name":"f","arguments":"1"}}`),
				toolDelta(`{"index":3,"id":"b","type":"function","function":{"name":"g","arguments":"2"}}`),
				toolDelta(`{"index":7,"function":{"arguments":"3"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "13"}, {ID: "b", Name: "g", Arguments: "2"}},
			relay: "---",
		},
		{
			name: "huge index",
			chunks: []string{
				toolDelta(`{"index":2000000000,"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}},
			relay: "-",
		},
		{
			name: "unindexed whole calls in one chunk",
			chunks: []string{
				toolDelta(`{"id":"a","function":{"name":"f","arguments":"{}"}},{"id":"b","function":{"name":"g","arguments":"[]"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: "[]"}},
			relay: "-",
		},
		{
			name: "unindexed whole calls in two chunks",
			chunks: []string{
				toolDelta(`{"id":"a","function":{"name":"f","arguments":"{}"}}`),
				toolDelta(`{"id":"b","function":{"name":"g","arguments":"[]"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: "[]"}},
			relay: "--",
		},
		{
			name: "unindexed fragments",
			chunks: []string{
				toolDelta(`{"id":"a","function":{"name":"f","arguments":"{\"x\""}}`),
				toolDelta(`{"function":{"arguments":":1}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}},
			relay: "--",
		},
		{
			name: "indexed without type",
			chunks: []string{
				toolDelta(`{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}`),
			},
			want:  []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}},
			relay: "-",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s string
			for _, c := range tt.chunks {
				s += "data: " + c + "\n\n"
			}
			r := replay(t, []byte(s))
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tt.want, r.answer.ToolCalls); diff != "" {
				t.Errorf("tool calls (-want +got):\n%s", diff)
			}
			if got := goldenOf(r).Relay; got != tt.relay {
				t.Errorf("relay = %s, want %s", got, tt.relay)
			}
		})
	}
}

func TestChatChunkDecoderFinish(t *testing.T) {
	tests := []struct {
		reason string // the JSON value
		want   llm.Finish
		relay  bool
	}{
		{`"stop"`, llm.FinishStop, true},
		{`"length"`, llm.FinishLength, true},
		{`"tool_calls"`, llm.FinishToolCalls, true},
		{`"content_filter"`, llm.FinishContentFilter, true},
		{`"function_call"`, llm.FinishToolCalls, false},
		{`"model_length"`, llm.FinishLength, false},
		{`"eos"`, llm.FinishStop, false},
		{`"end_turn"`, llm.FinishStop, false},
		{`"something_new"`, llm.FinishStop, false},
		{`null`, "", true},
		{`""`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			var d ChatChunkDecoder
			ev, err := d.Decode([]byte(chunk(`"delta":{},"finish_reason":` + tt.reason)))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Finish != tt.want || (ev.Raw != nil) != tt.relay {
				t.Errorf("finish, relayable = %q, %v; want %q, %v", ev.Finish, ev.Raw != nil, tt.want, tt.relay)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		var d ChatChunkDecoder
		_, err := d.Decode([]byte(chunk(`"delta":{"content":"x"},"finish_reason":"error"`)))
		var eb *ErrorBody
		if !errors.As(err, &eb) {
			t.Fatalf("err = %v, want an *ErrorBody", err)
		}
	})
}

func TestChatChunkDecoderEvent(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		want  llm.Event // Raw and Wire are checked through relay
		relay bool
	}{
		{"text", chunk(`"delta":{"content":"Hi"},"finish_reason":null`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Text: "Hi"}, true},
		{"role only", chunk(`"delta":{"role":"assistant","content":""}`),
			llm.Event{ID: "c1", Model: "m", Created: 1}, true},
		{"reasoning_content", chunk(`"delta":{"reasoning_content":"hmm"}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Reasoning: "hmm"}, true},
		{"reasoning (Ollama)", chunk(`"delta":{"reasoning":"hmm"}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Reasoning: "hmm"}, true},
		{"usage only", chunk(``, `"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Usage: &llm.Usage{Input: 3, Output: 5, Cached: 2, Reasoning: 1}}, true},
		{"usage reasoning within completion (OpenAI)", chunk(``, `"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"completion_tokens_details":{"reasoning_tokens":3}}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Usage: &llm.Usage{Input: 10, Output: 5, Reasoning: 3}}, true},
		{"usage reasoning outside completion (xAI)", chunk(``, `"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":18,"completion_tokens_details":{"reasoning_tokens":3}}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Usage: &llm.Usage{Input: 10, Output: 8, Reasoning: 3}}, true},
		{"usage null", chunk(`"delta":{"content":"a"}`, `"usage":null`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Text: "a"}, true},
		{"usage with a choice (Mistral)", chunk(`"delta":{"content":""},"finish_reason":"stop"`, `"usage":{"prompt_tokens":13,"total_tokens":21,"completion_tokens":8}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Finish: llm.FinishStop, Usage: &llm.Usage{Input: 13, Output: 8}}, false},
		{"second choice ignored", `{"id":"c1","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]}`,
			llm.Event{ID: "c1", Model: "m", Created: 1, Text: "A"}, true},
		{"ignored fields", chunk(`"delta":{"content":"x","refusal":null},"logprobs":null`, `"obfuscation":"abc"`, `"system_fingerprint":"fp"`, `"timings":{"n":1}`),
			llm.Event{ID: "c1", Model: "m", Created: 1, Text: "x"}, true},
		{"empty object", `{}`, llm.Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d ChatChunkDecoder
			ev, err := d.Decode([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			got := *ev
			got.Raw, got.Wire = nil, 0
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b []llm.ToolCallDelta) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
			if (ev.Raw != nil) != tt.relay {
				t.Errorf("relayable = %v, want %v", ev.Raw != nil, tt.relay)
			}
		})
	}
}

// TestChatChunkDecoderReuse checks that a decoder's event carries nothing
// over from the chunk before.
func TestChatChunkDecoderReuse(t *testing.T) {
	var d ChatChunkDecoder
	if _, err := d.Decode([]byte(toolDelta(`{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}`))); err != nil {
		t.Fatal(err)
	}
	ev, err := d.Decode([]byte(chunk(`"delta":{},"finish_reason":"tool_calls"`, `"usage":null`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ToolCalls) != 0 || ev.Text != "" || ev.Usage != nil {
		t.Errorf("event kept state from the last chunk: %+v", ev)
	}
}

func TestChatChunkDecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want *ErrorBody // nil: malformed, not an in-band error
	}{
		{"openai in band", `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`,
			&ErrorBody{Message: "The server had an error", Type: "server_error"}},
		{"string error", `{"error":"model unloaded"}`, &ErrorBody{Message: "model unloaded"}},
		{"llama.cpp int code", `{"error":{"code":500,"message":"slot died","type":"server_error"}}`,
			&ErrorBody{Message: "slot died", Type: "server_error", Code: "500"}},
		{"flat (Mistral, old vLLM)", `{"object":"error","message":"Tool call id was call_search","type":"invalid_request_error","param":null,"code":null}`,
			&ErrorBody{Message: "Tool call id was call_search", Type: "invalid_request_error"}},
		{"not JSON", `{"id":"c1","choices":[{"delta":{"content":"cut`, nil},
		{"array", `[1,2]`, nil},
		{"choices a string", `{"choices":"x"}`, nil},
		{"plain text", `keep-alive`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d ChatChunkDecoder
			ev, err := d.Decode([]byte(tt.data))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", ev)
			}
			var eb *ErrorBody
			if tt.want == nil {
				if errors.As(err, &eb) {
					t.Errorf("malformed chunk reported as an in-band error: %v", err)
				}
				return
			}
			if !errors.As(err, &eb) {
				t.Fatalf("err = %T %v, want an *ErrorBody", err, err)
			}
			if diff := cmp.Diff(tt.want, eb); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// sseEvents splits an encoder's output into its data fields, checking the
// framing: every event is one data line and a blank line.
func sseEvents(t testing.TB, b []byte) []string {
	t.Helper()
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n\n") {
		t.Fatalf("output does not end with a blank line: %q", s)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event is not one data line: %q", ev)
		}
		out = append(out, data)
	}
	return out
}

// checkChunk checks that data is an OpenAI chat.completion.chunk. If
// strict, its choices must have every key the spec requires: keel's own
// chunks do, relayed ones are as the upstream wrote them.
func checkChunk(t testing.TB, data, id string, strict bool) (choices []map[string]json.RawMessage) {
	t.Helper()
	var c struct {
		ID      *string                       `json:"id"`
		Object  string                        `json:"object"`
		Created *int64                        `json:"created"`
		Model   *string                       `json:"model"`
		Choices *[]map[string]json.RawMessage `json:"choices"`
	}
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("chunk is not JSON: %v: %s", err, data)
	}
	if c.ID == nil || *c.ID != id || c.Object != "chat.completion.chunk" || c.Created == nil || c.Model == nil || c.Choices == nil {
		t.Fatalf("chunk lacks id %q, object, created, model or choices: %s", id, data)
	}
	keys := []string{"index", "delta"}
	if strict {
		keys = append(keys, "finish_reason", "logprobs")
	}
	for _, ch := range *c.Choices {
		for _, k := range keys {
			if _, ok := ch[k]; !ok {
				t.Errorf("choice lacks %s: %s", k, data)
			}
		}
		if d := ch["delta"]; len(d) == 0 || d[0] != '{' {
			t.Errorf("delta is not an object: %s", data)
		}
	}
	return *c.Choices
}

func TestChatEncoder(t *testing.T) {
	text := func(s string) *llm.Event { return &llm.Event{ID: "up", Model: "m", Created: 9, Text: s} }
	raw := func(ev *llm.Event, raw string) *llm.Event {
		ev.Raw, ev.Wire = []byte(raw), llm.WireChatChunk
		return ev
	}
	const head = `{"id":"up","object":"chat.completion.chunk","created":9,"model":"m","choices":`
	tests := []struct {
		name         string
		includeUsage bool
		events       []*llm.Event
		usage        llm.Usage
		want         []string // data fields
	}{
		{
			name:   "first chunk carries the role",
			events: []*llm.Event{text("Hi"), text(" there")},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "empty first event",
			events: []*llm.Event{text(""), text("a"), text("")},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "raw relay",
			events: []*llm.Event{raw(text("a"), `{"id":"up","choices":[{"index":0,"delta":{"content":"a"}}],"x":1}`)},
			want:   []string{`{"id":"up","choices":[{"index":0,"delta":{"content":"a"}}],"x":1}`, `[DONE]`},
		},
		{
			name: "raw of another upstream is re-encoded",
			events: []*llm.Event{
				text("a"),
				raw(&llm.Event{ID: "other", Model: "m2", Created: 1, Text: "b"}, `{"id":"other"}`),
			},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{"content":"b"},"logprobs":null,"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
		{
			name:         "usage held until done",
			includeUsage: true,
			events: []*llm.Event{
				text("a"),
				{ID: "up", Finish: llm.FinishStop},
				raw(&llm.Event{ID: "up", Usage: &llm.Usage{Input: 1, Output: 2}}, `{"id":"up","choices":[],"usage":{}}`),
			},
			usage: llm.Usage{Input: 3, Output: 4, Cached: 1, Reasoning: 2},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				head + `[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":2}}}`,
				`[DONE]`,
			},
		},
		{
			name: "usage dropped unless asked for",
			events: []*llm.Event{
				text("a"),
				{ID: "up", Finish: llm.FinishStop, Usage: &llm.Usage{Input: 1}},
				{ID: "up", Usage: &llm.Usage{Input: 1}},
			},
			usage: llm.Usage{Input: 1},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "usage-only first event",
			events: []*llm.Event{{ID: "up", Model: "m", Created: 9, Usage: &llm.Usage{}}, text("a")},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":null,"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
		{
			name: "tool calls and reasoning",
			events: []*llm.Event{
				{ID: "up", Model: "m", Created: 9, Reasoning: "think <>"},
				{ID: "up", ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_1", Name: "f", Arguments: ""}, {Index: 1, ID: "call_2", Name: "g", Arguments: "{\"a\":\"\u2028\"}"}}},
				{ID: "up", ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"q":"\"x\""}`}}},
				{ID: "up", Finish: llm.FinishToolCalls},
			},
			want: []string{
				head + `[{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":"think \u003c\u003e"},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}},{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"a\":\"\u2028\"}"}}]},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":\"\\\"x\\\"\"}"}}]},"logprobs":null,"finish_reason":null}]}`,
				head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`,
				`[DONE]`,
			},
		},
		{
			name:   "no upstream id",
			events: []*llm.Event{{Text: "a"}},
			want: []string{
				`{"id":"chatcmpl-keel","object":"chat.completion.chunk","created":0,"model":"","choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":null,"finish_reason":null}]}`,
				`[DONE]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := ChatEncoder{IncludeUsage: tt.includeUsage}
			var out []byte
			for _, ev := range tt.events {
				out = enc.AppendEvent(out, ev)
			}
			out = enc.AppendDone(out, tt.usage)
			got := sseEvents(t, out)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, data := range got[:len(got)-1] {
				if !json.Valid([]byte(data)) {
					t.Errorf("invalid JSON: %s", data)
				}
			}
		})
	}
}

// encodeAll writes r's events to a client through a ChatEncoder, as
// httpapi does: the in-band error if the stream failed, else the end.
func encodeAll(r *replayed, relay bool) []byte {
	enc := ChatEncoder{IncludeUsage: r.answer.HasUsage}
	var out []byte
	for _, ev := range r.events {
		if !relay {
			ev.Raw, ev.Wire = nil, llm.WireNone
		}
		out = enc.AppendEvent(out, &ev)
	}
	if r.err != nil {
		var eb *ErrorBody
		errors.As(r.err, &eb)
		out = append(out, "data: "...)
		out = AppendChatError(out, eb.Message, eb.Type, eb.Param, eb.Code)
		return append(out, "\n\n"...)
	}
	return enc.AppendDone(out, r.answer.Usage)
}

// TestChatEncoderDecodeEncode checks, over every recorded stream, that
// decoding what the encoder writes gives back the answer it was given,
// both when chunks are relayed raw and when every one is re-encoded.
func TestChatEncoderDecodeEncode(t *testing.T) {
	opts := cmp.Options{
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Events" }, cmp.Ignore()),
	}
	for _, path := range streams(t) {
		for _, relay := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/relay=%v", name(path), relay), func(t *testing.T) {
				r := replay(t, read(t, path))
				out := encodeAll(r, relay)
				data := sseEvents(t, out)
				for i, d := range data {
					if d == "[DONE]" {
						if i != len(data)-1 {
							t.Errorf("[DONE] is not last")
						}
						continue
					}
					if strings.HasPrefix(d, `{"error"`) {
						continue
					}
					choices := checkChunk(t, d, r.answer.ID, !relay)
					if i == 0 {
						var delta struct{ Role string }
						json.Unmarshal(choices[0]["delta"], &delta)
						if delta.Role != "assistant" {
							t.Errorf("first chunk has no role: %s", d)
						}
					}
				}
				if !relay && bytes.Contains(out, []byte(`"usage":null`)) {
					t.Errorf("re-encoded output relays upstream bytes")
				}

				again := replay(t, out)
				if diff := cmp.Diff(r.answer, again.answer, opts); diff != "" {
					t.Errorf("answer (-decoded +re-encoded and decoded):\n%s\n%s", diff, out)
				}
				if r.done != again.done || (r.err == nil) != (again.err == nil) {
					t.Errorf("done, err = %v, %v; want %v, %v", again.done, again.err, r.done, r.err)
				}
				if r.err != nil {
					if diff := cmp.Diff(r.err, again.err); diff != "" {
						t.Errorf("in-band error (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
}

// TestChatEncoderRelayExact checks that a relayed stream reaches the client
// byte for byte, but for the usage chunk keel writes itself.
func TestChatEncoderRelayExact(t *testing.T) {
	path := filepath.Join(examples, "openai-chat/stream-text-usage.sse")
	in := read(t, path)
	r := replay(t, in)
	out := encodeAll(r, true)
	wantEvents := sseEvents(t, in)
	gotEvents := sseEvents(t, out)
	if len(wantEvents) != len(gotEvents) {
		t.Fatalf("%d events, want %d", len(gotEvents), len(wantEvents))
	}
	// The last two are the usage chunk and [DONE].
	n := len(wantEvents) - 2
	if diff := cmp.Diff(wantEvents[:n], gotEvents[:n]); diff != "" {
		t.Errorf("relayed chunks differ (-upstream +client):\n%s", diff)
	}
}

// TestChatEncoderChunkPerEvent checks that every event is written whole:
// a flush after each AppendEvent never leaves half an SSE event.
func TestChatEncoderChunkPerEvent(t *testing.T) {
	for _, path := range streams(t) {
		r := replay(t, read(t, path))
		enc := ChatEncoder{IncludeUsage: true}
		for i, ev := range r.events {
			ev.Raw, ev.Wire = nil, llm.WireNone
			out := enc.AppendEvent(nil, &ev)
			if len(out) == 0 {
				continue
			}
			if d := sseEvents(t, out); len(d) != 1 || !json.Valid([]byte(d[0])) {
				t.Errorf("%s event %d: not one valid chunk: %q", name(path), i, out)
			}
		}
	}
}

type completionGolden struct {
	ID        string
	Model     string
	Created   int64
	Text      string
	Reasoning string
	ToolCalls []llm.ToolCallDelta
	Finish    llm.Finish
	Usage     *llm.Usage
	Relay     bool
}

func TestDecodeChatCompletionExamples(t *testing.T) {
	files := append(glob(t, "openai-chat/response-*.json"), glob(t, "mistral/response-*.json")...)
	for _, path := range files {
		t.Run(name(path), func(t *testing.T) {
			body := read(t, path)
			ev, err := DecodeChatCompletion(body)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "completion_"+name(path), completionGolden{
				ev.ID, ev.Model, ev.Created, ev.Text, ev.Reasoning, ev.ToolCalls, ev.Finish, ev.Usage, ev.Raw != nil,
			})
			if ev.Raw != nil && (ev.Wire != llm.WireChatCompletion || !bytes.Equal(ev.Raw, body)) {
				t.Errorf("Raw kept but Wire = %v or Raw differs from the body", ev.Wire)
			}
			for _, tc := range ev.ToolCalls {
				if !json.Valid([]byte(tc.Arguments)) {
					t.Errorf("arguments not JSON: %s", tc.Arguments)
				}
			}

			// AppendChatCompletion writes the same answer back.
			var a llm.Answer
			a.Add(ev)
			out := AppendChatCompletion([]byte("x"), &a)
			if out[0] != 'x' {
				t.Fatalf("dst prefix lost")
			}
			out = out[1:]
			checkCompletion(t, out)
			again, err := DecodeChatCompletion(out)
			if err != nil {
				t.Fatal(err)
			}
			var b llm.Answer
			b.Add(again)
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("(-decoded +appended and decoded):\n%s\n%s", diff, out)
			}
			if again.Raw == nil {
				t.Errorf("keel's own completion is not relayable")
			}
		})
	}
}

// checkCompletion checks the keys the spec requires of a chat.completion,
// nullable ones included (Prism flags a message without refusal).
func checkCompletion(t testing.TB, b []byte) {
	t.Helper()
	var c struct {
		Object  string `json:"object"`
		Choices []struct {
			Message      map[string]json.RawMessage `json:"message"`
			Logprobs     *json.RawMessage           `json:"logprobs"`
			FinishReason string                     `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			Total int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if c.Object != "chat.completion" || len(c.Choices) != 1 || c.Usage == nil || c.Choices[0].FinishReason == "" {
		t.Fatalf("not a chat.completion: %s", b)
	}
	m := c.Choices[0].Message
	for _, k := range []string{"role", "content", "refusal"} {
		if _, ok := m[k]; !ok {
			t.Errorf("message lacks %s: %s", k, b)
		}
	}
	if !bytes.Contains(b, []byte(`"logprobs":null`)) {
		t.Errorf("choice lacks logprobs: %s", b)
	}
}

func TestAppendChatCompletion(t *testing.T) {
	tests := []struct {
		name string
		a    llm.Answer
		want string
	}{
		{
			name: "text",
			a:    llm.Answer{ID: "c", Model: "m", Created: 2, Text: []byte("<hi> & \"bye\""), Finish: llm.FinishLength, Usage: llm.Usage{Input: 1, Output: 2}},
			want: `{"id":"c","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"\u003chi\u003e \u0026 \"bye\"","refusal":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		},
		{
			name: "tool calls only",
			a:    llm.Answer{ID: "c", ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "f", Arguments: "{}"}}, Finish: llm.FinishToolCalls, Reasoning: []byte("r")},
			want: `{"id":"c","object":"chat.completion","created":0,"model":"","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"reasoning_content":"r","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		},
		{
			name: "text and two calls, one without id or name; invalid UTF-8 replaced",
			a:    llm.Answer{ID: "c", Text: []byte("é\xff\n"), ToolCalls: []llm.ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}, {Arguments: ""}}},
			want: `{"id":"c","object":"chat.completion","created":0,"model":"","choices":[{"index":0,"message":{"role":"assistant","content":"é\ufffd\n","refusal":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},{"type":"function","function":{"arguments":""}}]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		},
		{
			name: "empty answer",
			a:    llm.Answer{ID: "c"},
			want: `{"id":"c","object":"chat.completion","created":0,"model":"","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendChatCompletion(nil, &tt.a)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			checkCompletion(t, got)
		})
	}
}

func TestDecodeChatCompletionErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		errorBody bool
	}{
		{"not JSON", `<html>`, false},
		{"no choices", `{"id":"c","choices":[]}`, false},
		{"error body", `{"error":{"message":"x"}}`, true},
		{"flat error body", `{"object":"error","message":"x","type":"t"}`, true},
		{"finish error", `{"id":"c","choices":[{"index":0,"message":{"content":"x"},"finish_reason":"error"}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeChatCompletion([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", ev)
			}
			var eb *ErrorBody
			if errors.As(err, &eb) != tt.errorBody {
				t.Errorf("err = %v; *ErrorBody: %v, want %v", err, !tt.errorBody, tt.errorBody)
			}
		})
	}
}

// FuzzChatChunkDecoder feeds arbitrary chunk data through a decoder, an
// Answer and an encoder: nothing may panic, every tool-call index must be
// usable, relayable chunks are the data unchanged, and the encoder must
// write valid chunks. Seeded from every recorded stream's data lines.
func FuzzChatChunkDecoder(f *testing.F) {
	for _, pattern := range []string{"openai-chat/*.sse", "mistral/*.sse", "openai-compatible/*.sse"} {
		files, _ := filepath.Glob(filepath.Join(examples, pattern))
		for _, p := range files {
			b, _ := os.ReadFile(p)
			for line := range strings.Lines(string(b)) {
				if data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: "); ok {
					f.Add([]byte(data), []byte(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"x"}}]}}]}`))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		var d ChatChunkDecoder
		var a llm.Answer
		enc := ChatEncoder{IncludeUsage: true}
		var out []byte
		for _, data := range [][]byte{first, second} {
			ev, err := d.Decode(data)
			if err != nil {
				continue
			}
			for _, tc := range ev.ToolCalls {
				if tc.Index < 0 || tc.Index > len(a.ToolCalls)+len(ev.ToolCalls) {
					t.Fatalf("tool call index %d out of range", tc.Index)
				}
			}
			if ev.Raw != nil && (!bytes.Equal(ev.Raw, data) || ev.Wire != llm.WireChatChunk) {
				t.Fatalf("Raw %q is not the data %q", ev.Raw, data)
			}
			a.Add(ev)
			ev.Raw, ev.Wire = nil, llm.WireNone
			out = enc.AppendEvent(out, ev)
		}
		enc.IncludeUsage = a.HasUsage
		out = enc.AppendDone(out, a.Usage)
		for _, data := range sseEvents(t, out) {
			if data != "[DONE]" && !json.Valid([]byte(data)) {
				t.Fatalf("encoder wrote invalid JSON: %s", data)
			}
		}
		// What was re-encoded decodes to the same answer. (The id may
		// differ: the encoder names an answer that has none.)
		again := replay(t, out)
		if again.err != nil {
			t.Fatalf("re-decode: %v\n%s", again.err, out)
		}
		b := again.answer
		b.ID, b.Model, b.Created, b.Events = a.ID, a.Model, a.Created, a.Events
		if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y []byte) bool { return string(x) == string(y) })); diff != "" {
			t.Fatalf("answer (-decoded +re-encoded and decoded):\n%s\n%s", diff, out)
		}
	})
}

// textChunk is a typical OpenAI content chunk (openai-chat/stream-text-usage.sse).
const textChunk = `{"id":"chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0","object":"chat.completion.chunk","created":1770933892,"model":"gpt-4.1-nano-2025-04-14","service_tier":"default","system_fingerprint":"fp_de604bd877","choices":[{"index":0,"delta":{"content":" Holiday"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"dTh"}`

func BenchmarkChatChunkDecode(b *testing.B) {
	data := []byte(textChunk)
	var d ChatChunkDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkEncoder(b *testing.B, relay bool) {
	var d ChatChunkDecoder
	ev, err := d.Decode([]byte(textChunk))
	if err != nil {
		b.Fatal(err)
	}
	if !relay {
		ev.Raw, ev.Wire = nil, llm.WireNone
	}
	enc := ChatEncoder{}
	buf := enc.AppendEvent(make([]byte, 0, 4096), ev) // the first chunk
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendEvent(buf[:0], ev)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkChatEncoderRelay writes an upstream chunk as it came.
func BenchmarkChatEncoderRelay(b *testing.B) { benchmarkEncoder(b, true) }

// BenchmarkChatEncoderReencode writes the same chunk re-encoded.
func BenchmarkChatEncoderReencode(b *testing.B) { benchmarkEncoder(b, false) }

// TestChatEncoderRelayOtherChoices checks that with n > 1 the chunks of
// the choices keel does not model still reach the client, relayed.
func TestChatEncoderRelayOtherChoices(t *testing.T) {
	choice := func(i int, delta, finish string) string {
		return fmt.Sprintf(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}],"usage":null}`, i, delta, finish)
	}
	upstream := []string{
		choice(0, `{"role":"assistant","content":""}`, "null"),
		choice(1, `{"role":"assistant","content":""}`, "null"),
		choice(0, `{"content":"A"}`, "null"),
		choice(1, `{"content":"B"}`, "null"),
		choice(0, `{}`, `"stop"`),
		choice(1, `{}`, `"stop"`),
	}
	var in string
	for _, c := range upstream {
		in += "data: " + c + "\n\n"
	}
	r := replay(t, []byte(in))
	got := sseEvents(t, encodeAll(r, true))
	want := append(upstream, "[DONE]")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-upstream +client):\n%s", diff)
	}
}
