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
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/sse"
)

// messagesReplayed is an Anthropic stream run through sse.Reader and
// MessagesStreamDecoder.
type messagesReplayed struct {
	events []llm.Event // copies: the decoder reuses its event
	answer llm.Answer
	stop   bool  // message_stop arrived
	err    error // the decoder's error, which ends the stream
	after  int   // events after message_stop
}

func replayMessages(t testing.TB, stream []byte) *messagesReplayed {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(stream), 0)
	var d MessagesStreamDecoder
	out := &messagesReplayed{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		if out.stop {
			out.after++
			continue
		}
		ev, err := d.Decode(e.Name, e.Data)
		switch {
		case err == io.EOF:
			out.stop = true
			continue
		case err != nil:
			out.err = err
			return out
		case ev == nil:
			continue
		}
		out.answer.Add(ev)
		c := *ev
		c.ToolCalls = slices.Clone(ev.ToolCalls)
		if ev.Usage != nil {
			u := *ev.Usage
			c.Usage = &u
		}
		out.events = append(out.events, c)
	}
}

// messagesGolden is what an Anthropic stream's golden file records.
type messagesGolden struct {
	ID        string
	Model     string
	Text      string
	Reasoning string
	ToolCalls []llm.ToolCall
	Finish    llm.Finish
	Usage     *llm.Usage
	Events    int
	Stop      bool
	Error     *ErrorBody
}

func messagesGoldenOf(r *messagesReplayed) messagesGolden {
	a := &r.answer
	g := messagesGolden{
		ID: a.ID, Model: a.Model, Text: string(a.Text), Reasoning: string(a.Reasoning),
		ToolCalls: a.ToolCalls, Finish: a.Finish, Events: len(r.events), Stop: r.stop,
	}
	if a.HasUsage {
		g.Usage = &a.Usage
	}
	errors.As(r.err, &g.Error)
	return g
}

// encodeMessages writes events to a client through a MessagesEncoder, as
// httpapi does: the in-band error if the stream failed (with the status
// httpapi gives an upstream failure), else the end.
func encodeMessages(events []llm.Event, err error, u llm.Usage) []byte {
	var enc MessagesEncoder
	var out []byte
	for _, ev := range events {
		out = enc.AppendEvent(out, &ev)
	}
	if err != nil {
		var eb *ErrorBody
		errors.As(err, &eb)
		return enc.AppendError(out, APIError{Status: 502, Message: eb.Message, Type: eb.Type})
	}
	return enc.AppendDone(out, u)
}

// messagesEvent is one SSE event a MessagesEncoder wrote.
type messagesEvent struct {
	Name string
	Data map[string]json.RawMessage
}

// messagesEvents splits an encoder's output into events, checking the
// framing Anthropic's SDKs need: an event: line naming the data's type,
// one data line of JSON, a blank line after each.
func messagesEvents(t testing.TB, b []byte) []messagesEvent {
	t.Helper()
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n\n") {
		t.Fatalf("output does not end with a blank line: %q", s)
	}
	var out []messagesEvent
	for _, ev := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		lines := strings.Split(ev, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("event is not an event line and a data line: %q", ev)
		}
		name, data := lines[0][len("event: "):], lines[1][len("data: "):]
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("data is not a JSON object: %v: %s", err, data)
		}
		if typ := string(m["type"]); typ != `"`+name+`"` {
			t.Fatalf("event %s has data type %s", name, typ)
		}
		out = append(out, messagesEvent{name, m})
	}
	return out
}

// checkMessagesOrder checks that the events follow Anthropic's grammar:
// message_start, blocks started, delta'd and stopped one at a time with
// increasing indexes, message_delta and message_stop (or an error).
func checkMessagesOrder(t testing.TB, evs []messagesEvent) {
	t.Helper()
	open, next := -1, 0
	for i, ev := range evs {
		index := func() int {
			var n int
			if err := json.Unmarshal(ev.Data["index"], &n); err != nil {
				t.Fatalf("event %d (%s) has no index", i, ev.Name)
			}
			return n
		}
		switch {
		case i == 0 && ev.Name != "message_start" && ev.Name != "error":
			t.Fatalf("first event is %s", ev.Name)
		case ev.Name == "message_start" && i != 0:
			t.Fatalf("message_start at %d", i)
		case ev.Name == "content_block_start":
			if open != -1 || index() != next {
				t.Fatalf("event %d: block %d starts while %d is open (next %d)", i, index(), open, next)
			}
			open = next
			next++
		case ev.Name == "content_block_delta":
			if index() != open || open == -1 {
				t.Fatalf("event %d: delta for block %d while %d is open", i, index(), open)
			}
		case ev.Name == "content_block_stop":
			if index() != open || open == -1 {
				t.Fatalf("event %d: stop for block %d while %d is open", i, index(), open)
			}
			open = -1
		case ev.Name == "message_delta":
			if open != -1 {
				t.Fatalf("message_delta with block %d open", open)
			}
		case ev.Name == "message_stop":
			if i != len(evs)-1 || evs[i-1].Name != "message_delta" {
				t.Fatalf("message_stop at %d of %d, not after message_delta", i, len(evs))
			}
		case ev.Name == "error":
			if i != len(evs)-1 {
				t.Fatalf("error at %d of %d", i, len(evs))
			}
		}
	}
}

func goldenMessagesText(t *testing.T, name string, got []byte) {
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

// sameMessagesAnswer compares two answers, ignoring what a trip through another
// format may change: the event count, the created time, an id prefix, and
// zero usage where none was reported.
func sameMessagesAnswer(t testing.TB, want, got llm.Answer) {
	t.Helper()
	want.Events, got.Events = 0, 0
	want.Created, got.Created = 0, 0
	if got.ID == messagesID(want.ID) {
		got.ID = want.ID
	}
	if !want.HasUsage && got.Usage == (llm.Usage{}) {
		got.HasUsage = false
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

// TestMessagesStreamDecoderExamples replays every recorded Anthropic stream,
// compares the answer and the stream re-encoded for an Anthropic client
// with their golden files, and decodes the re-encoded stream again.
func TestMessagesStreamDecoderExamples(t *testing.T) {
	for _, path := range glob(t, "anthropic/*.sse") {
		t.Run(name(path), func(t *testing.T) {
			r := replayMessages(t, read(t, path))
			golden(t, name(path), messagesGoldenOf(r))
			if r.after != 0 {
				t.Errorf("%d events after message_stop", r.after)
			}
			if r.err == nil {
				if !r.stop || r.answer.Finish == "" || !r.answer.HasUsage || r.answer.Usage.Input == 0 {
					t.Errorf("complete stream without message_stop, finish or usage: %+v", r.answer)
				}
			} else if !errors.As(r.err, new(*ErrorBody)) {
				t.Fatalf("err = %v, want an *ErrorBody", r.err)
			}
			for i, tc := range r.answer.ToolCalls {
				if tc.ID == "" || tc.Name == "" || !json.Valid([]byte(tc.Arguments)) {
					t.Errorf("tool call %d incomplete: %+v", i, tc)
				}
			}

			out := encodeMessages(r.events, r.err, r.answer.Usage)
			goldenMessagesText(t, name(path)+"_client", out)
			checkMessagesOrder(t, messagesEvents(t, out))
			again := replayMessages(t, out)
			sameMessagesAnswer(t, r.answer, again.answer)
			if r.stop != again.stop && r.err == nil {
				t.Errorf("re-encoded stream: message_stop %v", again.stop)
			}
			if diff := cmp.Diff(r.err, again.err); diff != "" {
				t.Errorf("in-band error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMessagesEncoderChatStreams encodes every recorded OpenAI-format
// stream for an Anthropic client: the events are well formed and decode
// back to the same answer.
func TestMessagesEncoderChatStreams(t *testing.T) {
	for _, path := range streams(t) {
		t.Run(name(path), func(t *testing.T) {
			r := replay(t, read(t, path))
			out := encodeMessages(r.events, r.err, r.answer.Usage)
			checkMessagesOrder(t, messagesEvents(t, out))
			again := replayMessages(t, out)
			sameMessagesAnswer(t, r.answer, again.answer)
			if r.err != nil {
				var eb *ErrorBody
				if !errors.As(again.err, &eb) || eb.Type != "api_error" || eb.Message == "" {
					t.Errorf("in-band error = %v, want an api_error", again.err)
				}
				return
			}
			if !again.stop || again.err != nil {
				t.Errorf("stop, err = %v, %v", again.stop, again.err)
			}
		})
	}
}

func TestMessagesStreamDecoderEvents(t *testing.T) {
	u := func(u llm.Usage) *llm.Usage { return &u }
	tests := []struct {
		name   string
		events []string // "name data"
		want   []llm.Event
	}{
		{
			name: "message_start",
			events: []string{
				`message_start {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":1}}}`,
			},
			want: []llm.Event{{ID: "msg_1", Model: "m", Usage: u(llm.Usage{Input: 18, Cached: 5, CacheWrite: 3, Output: 1})}},
		},
		{
			name: "message_delta keeps the input counts",
			events: []string{
				`message_start {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":7,"input_tokens":null}}`,
			},
			want: []llm.Event{
				{ID: "msg_1", Model: "m", Usage: u(llm.Usage{Input: 15, Cached: 5, Output: 1})},
				{ID: "msg_1", Model: "m", Finish: llm.FinishLength, Usage: u(llm.Usage{Input: 15, Cached: 5, Output: 7})},
			},
		},
		{
			name: "message_delta with thinking tokens",
			events: []string{
				`message_delta {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":2,"output_tokens":9,"output_tokens_details":{"thinking_tokens":4}}}`,
			},
			want: []llm.Event{{Finish: llm.FinishStop, Usage: u(llm.Usage{Input: 2, Output: 9, Reasoning: 4})}},
		},
		{
			name: "thinking",
			events: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
			},
			want: []llm.Event{{Reasoning: "hmm"}},
		},
		{
			name: "tool with arguments in its start",
			events: []string{
				`content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{ "a" : 1 }}}`,
				`content_block_stop {"type":"content_block_stop","index":2}`,
			},
			want: []llm.Event{{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "t1", Name: "f", Arguments: `{"a":1}`}}}},
		},
		{
			name: "two tools numbered from 0",
			events: []string{
				`content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`,
				`content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"1}"}}`,
				`content_block_stop {"type":"content_block_stop","index":1}`,
				`content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t2","name":"g","input":{}}}`,
				`content_block_stop {"type":"content_block_stop","index":2}`,
			},
			want: []llm.Event{
				{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "t1", Name: "f"}}},
				{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"a":`}}},
				{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `1}`}}},
				{ToolCalls: []llm.ToolCallDelta{{Index: 1, ID: "t2", Name: "g"}}},
				{ToolCalls: []llm.ToolCallDelta{{Index: 1, Arguments: `{}`}}},
			},
		},
		{
			name: "server tools are not client calls",
			events: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s1","name":"web_search","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"web_search_tool_result","tool_use_id":"s1","content":[]}}`,
				`content_block_stop {"type":"content_block_stop","index":1}`,
				`content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}`,
				`content_block_delta {"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Found"}}`,
			},
			want: []llm.Event{{Text: "Found"}},
		},
		{
			name: "stop reasons",
			events: []string{
				`message_delta {"type":"message_delta","delta":{"stop_reason":"refusal"}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"tool_use"}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"pause_turn"}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"model_context_window_exceeded"}}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"something_new"}}`,
			},
			want: []llm.Event{
				{Finish: llm.FinishContentFilter, Usage: &llm.Usage{}},
				{Finish: llm.FinishToolCalls, Usage: &llm.Usage{}},
				{Finish: llm.FinishStop, Usage: &llm.Usage{}},
				{Finish: llm.FinishStop, Usage: &llm.Usage{}},
				{Finish: llm.FinishLength, Usage: &llm.Usage{}},
				{Finish: llm.FinishStop, Usage: &llm.Usage{}},
			},
		},
		{
			name: "data-only stream: the type decides",
			events: []string{
				` {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`,
				`content_block_delta {"type":"ping"}`,
			},
			want: []llm.Event{{Text: "a"}},
		},
		{
			name: "name without a type in the data",
			events: []string{
				`content_block_delta {"index":0,"delta":{"type":"text_delta","text":"b"}}`,
			},
			want: []llm.Event{{Text: "b"}},
		},
		{
			name:   "unknown event",
			events: []string{`future_event {"type":"future_event","x":1}`, `ping {}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d MessagesStreamDecoder
			var got []llm.Event
			for _, e := range tt.events {
				name, data, _ := strings.Cut(e, " ")
				ev, err := d.Decode([]byte(name), []byte(data))
				if err != nil {
					t.Fatalf("%s: %v", e, err)
				}
				if ev != nil {
					c := *ev
					c.ToolCalls = slices.Clone(ev.ToolCalls)
					if len(c.ToolCalls) == 0 {
						c.ToolCalls = nil
					}
					if ev.Usage != nil {
						u := *ev.Usage
						c.Usage = &u
					}
					got = append(got, c)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessagesStreamDecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want *ErrorBody // nil: malformed, not an in-band error
	}{
		{"overloaded", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			&ErrorBody{Type: "overloaded_error", Message: "Overloaded"}},
		{"empty error", `{"type":"error"}`,
			&ErrorBody{Message: `the upstream sent an error event: {"type":"error"}`}},
		{"not JSON", `{"type":"content_block_delta","delta":{"text":"cut`, nil},
		{"array", `[1]`, nil},
		{"index a string", `{"type":"content_block_delta","index":"0"}`, nil},
		{"plain text", `keep-alive`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d MessagesStreamDecoder
			ev, err := d.Decode([]byte("error"), []byte(tt.data))
			if err == nil || err == io.EOF {
				t.Fatalf("decoded %+v, %v; want an error", ev, err)
			}
			var eb *ErrorBody
			if tt.want == nil {
				if errors.As(err, &eb) {
					t.Errorf("malformed data reported as an in-band error: %v", err)
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
	var d MessagesStreamDecoder
	if _, err := d.Decode([]byte("message_stop"), []byte(`{"type":"message_stop"}`)); err != io.EOF {
		t.Errorf("message_stop: err = %v, want io.EOF", err)
	}
}

// TestMessagesStreamDecoderReuse checks that a decoder's event carries
// nothing over from the one before.
func TestMessagesStreamDecoderReuse(t *testing.T) {
	var d MessagesStreamDecoder
	for _, e := range []string{
		`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`,
		`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}`,
	} {
		if _, err := d.Decode(nil, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := d.Decode(nil, []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ToolCalls) != 0 || ev.Finish != "" || ev.Usage != nil || ev.Text != "x" {
		t.Errorf("event kept state from the last one: %+v", ev)
	}
}

func TestMessagesEncoder(t *testing.T) {
	const start = `event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_up","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}` + "\n\n"
	ev := func(e llm.Event) *llm.Event {
		e.ID, e.Model = "up", "m"
		return &e
	}
	call := func(index int, id, name, args string) llm.ToolCallDelta {
		return llm.ToolCallDelta{Index: index, ID: id, Name: name, Arguments: args}
	}
	tests := []struct {
		name   string
		events []*llm.Event
		usage  llm.Usage
		want   []string // event: name, data: lines, after message_start
	}{
		{
			name:   "text",
			events: []*llm.Event{ev(llm.Event{Text: "Hi"}), ev(llm.Event{Text: " <there>"}), ev(llm.Event{Finish: llm.FinishStop})},
			usage:  llm.Usage{Input: 10, Cached: 4, CacheWrite: 2, Output: 3},
			want: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" \u003cthere\u003e"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":4,"cache_creation_input_tokens":2,"cache_read_input_tokens":4,"output_tokens":3}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
		{
			name: "reasoning, text, tool",
			events: []*llm.Event{
				ev(llm.Event{Reasoning: "think"}),
				ev(llm.Event{Text: "ok"}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(0, "call_1", "f", "")}}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(0, "", "", `{"a":1}`)}}),
				ev(llm.Event{Finish: llm.FinishToolCalls}),
			},
			usage: llm.Usage{Input: 1, Output: 2, Reasoning: 1},
			want: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
				`content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}`,
				`content_block_stop {"type":"content_block_stop","index":1}`,
				`content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_1","name":"f","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}`,
				`content_block_stop {"type":"content_block_stop","index":2}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2,"output_tokens_details":{"thinking_tokens":1}}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
		{
			name: "whole calls in one event (Gemini)",
			events: []*llm.Event{
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(0, "a", "f", `{}`), call(1, "b", "g", `{"x":[]}`)}, Finish: llm.FinishToolCalls}),
			},
			want: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"a","name":"f","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"b","name":"g","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"x\":[]}"}}`,
				`content_block_stop {"type":"content_block_stop","index":1}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
		{
			name: "interleaved calls: the second waits for the first",
			events: []*llm.Event{
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(0, "a", "f", `{"p":`), call(1, "b", "g", `[`)}}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(1, "", "", `1]`)}}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(0, "", "", `2}`)}}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(2, "c", "h", ``)}}),
				ev(llm.Event{ToolCalls: []llm.ToolCallDelta{call(2, "", "", `{}`)}}),
			},
			want: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"a","name":"f","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"p\":"}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"2}"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"c","name":"h","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}`,
				`content_block_stop {"type":"content_block_stop","index":1}`,
				`content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"b","name":"g","input":{}}}`,
				`content_block_delta {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"[1]"}}`,
				`content_block_stop {"type":"content_block_stop","index":2}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
		{
			name:   "finish mapping",
			events: []*llm.Event{ev(llm.Event{Text: "a", Finish: llm.FinishLength})},
			want: []string{
				`content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`,
				`content_block_stop {"type":"content_block_stop","index":0}`,
				`message_delta {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
		{
			name:   "empty events write nothing after the start",
			events: []*llm.Event{ev(llm.Event{}), ev(llm.Event{Usage: &llm.Usage{Input: 3}}), ev(llm.Event{ToolCalls: []llm.ToolCallDelta{}})},
			want: []string{
				`message_delta {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
				`message_stop {"type":"message_stop"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var enc MessagesEncoder
			var out []byte
			for _, ev := range tt.events {
				n := len(out)
				out = enc.AppendEvent(out, ev)
				if len(out) > n {
					messagesEvents(t, out[n:]) // every event written whole
				}
			}
			out = enc.AppendDone(out, tt.usage)
			s, ok := strings.CutPrefix(string(out), start)
			if !ok {
				t.Fatalf("does not start with message_start:\n%s", out)
			}
			var got []string
			for _, ev := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
				name, data, _ := strings.Cut(ev, "\n")
				got = append(got, strings.TrimPrefix(name, "event: ")+" "+strings.TrimPrefix(data, "data: "))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			checkMessagesOrder(t, messagesEvents(t, out))
		})
	}
}

func TestMessagesEncoderStartAndError(t *testing.T) {
	t.Run("start carries id, model and input usage", func(t *testing.T) {
		var enc MessagesEncoder
		out := enc.AppendEvent(nil, &llm.Event{ID: "chatcmpl-1", Model: "gpt", Usage: &llm.Usage{Input: 20, Cached: 5, Output: 1}})
		want := "event: message_start\ndata: " + `{"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"gpt","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":15,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":1}}}` + "\n\n"
		if diff := cmp.Diff(want, string(out)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		// The id is the first event's, whatever the next upstream says.
		out = enc.AppendDone(nil, llm.Usage{})
		if strings.Contains(string(out), "message_start") {
			t.Errorf("second message_start: %s", out)
		}
	})
	t.Run("done without events", func(t *testing.T) {
		var enc MessagesEncoder
		evs := messagesEvents(t, enc.AppendDone(nil, llm.Usage{Input: 1}))
		var names []string
		for _, e := range evs {
			names = append(names, e.Name)
		}
		if diff := cmp.Diff([]string{"message_start", "message_delta", "message_stop"}, names); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if id := string(evs[0].Data["message"]); !strings.Contains(id, `"id":"msg_keel"`) {
			t.Errorf("message = %s", id)
		}
	})
	tests := []struct {
		e    APIError
		want string
	}{
		{APIError{Status: 529, Message: "Overloaded", Type: "overloaded_error"}, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{APIError{Status: 502, Message: "Overloaded", Type: "overloaded_error"}, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{APIError{Status: 502, Message: "boom", Type: "server_error"}, `{"type":"error","error":{"type":"api_error","message":"boom"}}`},
		{APIError{Status: 529, Message: "busy"}, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`},
		{APIError{Status: 503, Message: "busy"}, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`},
		{APIError{Status: 500, Message: "x"}, `{"type":"error","error":{"type":"api_error","message":"x"}}`},
		{APIError{Status: 429, Message: "slow", Type: "tokens"}, `{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}`},
		{APIError{Status: 413, Message: "big"}, `{"type":"error","error":{"type":"request_too_large","message":"big"}}`},
		{APIError{Status: 409, Message: "c"}, `{"type":"error","error":{"type":"conflict_error","message":"c"}}`},
		{APIError{Status: 404, Message: "m", Type: "invalid_request_error"}, `{"type":"error","error":{"type":"invalid_request_error","message":"m"}}`},
		{APIError{Status: 404, Message: "m"}, `{"type":"error","error":{"type":"not_found_error","message":"m"}}`},
		{APIError{Status: 403, Message: "no"}, `{"type":"error","error":{"type":"permission_error","message":"no"}}`},
		{APIError{Status: 402, Message: "pay"}, `{"type":"error","error":{"type":"billing_error","message":"pay"}}`},
		{APIError{Status: 401, Message: "key"}, `{"type":"error","error":{"type":"authentication_error","message":"key"}}`},
		{APIError{Status: 400, Message: "bad \"x\""}, `{"type":"error","error":{"type":"invalid_request_error","message":"bad \"x\""}}`},
		{APIError{Status: 499, Message: "gone"}, `{"type":"error","error":{"type":"invalid_request_error","message":"gone"}}`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("error %d %s", tt.e.Status, tt.e.Type), func(t *testing.T) {
			if got := string(MessagesAPI{}.AppendError(nil, tt.e)); got != tt.want {
				t.Errorf("AppendError = %s, want %s", got, tt.want)
			}
			var enc MessagesEncoder
			got := string(enc.AppendError(nil, tt.e))
			if want := "event: error\ndata: " + tt.want + "\n\n"; got != want {
				t.Errorf("in band = %q, want %q", got, want)
			}
		})
	}
}

// TestMessagesEncoderChunkPerEvent checks that every AppendEvent writes
// whole SSE events, so that a flush never leaves half of one.
func TestMessagesEncoderChunkPerEvent(t *testing.T) {
	for _, path := range append(streams(t), glob(t, "anthropic/*.sse")...) {
		var events []llm.Event
		if strings.Contains(path, "anthropic") {
			events = replayMessages(t, read(t, path)).events
		} else {
			events = replay(t, read(t, path)).events
		}
		var enc MessagesEncoder
		for i, ev := range events {
			ev.Raw, ev.Wire = nil, llm.WireNone
			if out := enc.AppendEvent(nil, &ev); len(out) > 0 {
				messagesEvents(t, out)
			} else if i == 0 {
				t.Errorf("%s: the first event wrote nothing", name(path))
			}
		}
	}
}

type messageGolden struct {
	ID        string
	Model     string
	Text      string
	Reasoning string
	ToolCalls []llm.ToolCallDelta
	Finish    llm.Finish
	Usage     *llm.Usage
}

func TestDecodeMessagesResponseExamples(t *testing.T) {
	for _, path := range glob(t, "anthropic/response-*.json") {
		t.Run(name(path), func(t *testing.T) {
			ev, err := DecodeMessagesResponse(read(t, path))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name(path), messageGolden{ev.ID, ev.Model, ev.Text, ev.Reasoning, ev.ToolCalls, ev.Finish, ev.Usage})
			if ev.Raw != nil || ev.Wire != llm.WireNone {
				t.Errorf("Raw set: %v", ev.Wire)
			}

			// AppendMessage writes the same answer back.
			var a llm.Answer
			a.Add(ev)
			out := AppendMessage([]byte("x"), &a)
			if out[0] != 'x' {
				t.Fatal("dst prefix lost")
			}
			out = out[1:]
			checkAnthropicMessage(t, out)
			again, err := DecodeMessagesResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			var b llm.Answer
			b.Add(again)
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("(-decoded +appended and decoded):\n%s\n%s", diff, out)
			}
		})
	}
}

// checkAnthropicMessage checks the keys Anthropic's SDKs read of a message.
func checkAnthropicMessage(t testing.TB, b []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for _, k := range []string{"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"} {
		if _, ok := m[k]; !ok {
			t.Errorf("message lacks %s: %s", k, b)
		}
	}
	if string(m["type"]) != `"message"` || !strings.HasPrefix(string(m["id"]), `"msg_`) {
		t.Errorf("not a message: %s", b)
	}
}

func TestAppendMessage(t *testing.T) {
	tests := []struct {
		name string
		a    llm.Answer
		want string
	}{
		{
			name: "text",
			a:    llm.Answer{ID: "chatcmpl-1", Model: "m", Text: []byte("<hi>"), Finish: llm.FinishLength, Usage: llm.Usage{Input: 7, Cached: 2, CacheWrite: 1, Output: 3}},
			want: `{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"\u003chi\u003e"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"output_tokens":3}}`,
		},
		{
			name: "reasoning and tool calls",
			a: llm.Answer{ID: "msg_1", Reasoning: []byte("r"), ToolCalls: []llm.ToolCall{
				{ID: "call_1", Name: "f", Arguments: "{\n \"a\": 1\n}"},
				{Name: "g", Arguments: `{"cut`},
				{ID: "call_3", Name: "h"},
			}},
			want: `{"id":"msg_1","type":"message","role":"assistant","model":"","content":[{"type":"thinking","thinking":"r","signature":""},{"type":"tool_use","id":"call_1","name":"f","input":{"a":1}},{"type":"tool_use","id":"toolu_keel_1","name":"g","input":{}},{"type":"tool_use","id":"call_3","name":"h","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
		},
		{
			name: "empty",
			a:    llm.Answer{},
			want: `{"id":"msg_keel","type":"message","role":"assistant","model":"","content":[],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MessagesAPI{}.AppendAnswer(nil, &tt.a)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			checkAnthropicMessage(t, got)
		})
	}
}

func TestDecodeMessagesResponseErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		errorBody bool
	}{
		{"not JSON", `<html>`, false},
		{"not a message", `{"object":"chat.completion"}`, false},
		{"error body", `{"type":"error","error":{"type":"api_error","message":"x"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeMessagesResponse([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", ev)
			}
			if errors.As(err, new(*ErrorBody)) != tt.errorBody {
				t.Errorf("err = %v; want *ErrorBody: %v", err, tt.errorBody)
			}
		})
	}
}

func TestParseAnthropicError(t *testing.T) {
	var wrapped struct {
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(read(t, filepath.Join(examples, "anthropic/error-429-rate-limit.http.json")), &wrapped); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		body []byte
		want ErrorBody
	}{
		{read(t, filepath.Join(examples, "anthropic/error-400-invalid-request.json")), ErrorBody{Type: "invalid_request_error", Message: "max_tokens: Field required"}},
		{read(t, filepath.Join(examples, "anthropic/error-529-overloaded.json")), ErrorBody{Type: "overloaded_error", Message: "Overloaded"}},
		{wrapped.Body, ErrorBody{Type: "rate_limit_error", Message: "This request would exceed your account's rate limit. Please try again later."}},
		{[]byte(`<html>bad gateway</html>`), ErrorBody{Message: "<html>bad gateway</html>"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(&tt.want, ParseAnthropicError(tt.body)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.body, diff)
		}
	}
}

// FuzzMessagesStreamDecoder feeds arbitrary events through a decoder, an
// Answer and a MessagesEncoder: nothing may panic, tool-call indexes must
// be usable, the encoder's output must be well formed, and it must decode
// to the same answer. Seeded from every recorded Anthropic stream.
func FuzzMessagesStreamDecoder(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "anthropic/*.sse"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		var name string
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSuffix(line, "\n")
			if n, ok := strings.CutPrefix(line, "event: "); ok {
				name = n
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				f.Add(name, []byte(data), []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"x\":1}"}}`))
			}
		}
	}
	f.Add("", []byte(`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"a","name":"f","input":{"b":2}}}`), []byte(`{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"b","name":"g","input":{}}}`))
	f.Fuzz(func(t *testing.T, name string, first, second []byte) {
		var d MessagesStreamDecoder
		var a llm.Answer
		var events []llm.Event
		for _, data := range [][]byte{first, second} {
			ev, err := d.Decode([]byte(name), data)
			if err != nil || ev == nil {
				continue
			}
			for _, tc := range ev.ToolCalls {
				if tc.Index < 0 || tc.Index > len(a.ToolCalls)+len(ev.ToolCalls) {
					t.Fatalf("tool call index %d out of range", tc.Index)
				}
			}
			a.Add(ev)
			c := *ev
			c.ToolCalls = slices.Clone(ev.ToolCalls)
			events = append(events, c)
		}
		out := encodeMessages(events, nil, a.Usage)
		evs := messagesEvents(t, out)
		checkMessagesOrder(t, evs)
		again := replayMessages(t, out)
		if again.err != nil || !again.stop {
			t.Fatalf("re-decode: %v, stop %v\n%s", again.err, again.stop, out)
		}
		b := again.answer
		b.ID, b.Model, b.Events, b.HasUsage = a.ID, a.Model, a.Events, a.HasUsage
		if b.Finish == llm.FinishStop && a.Finish == "" || b.Finish == llm.FinishToolCalls && a.Finish == "" {
			b.Finish = "" // AppendDone names a stop reason the upstream did not
		}
		// A call whose arguments are not complete JSON when a later call
		// starts and is re-encoded keeps its arguments; one the encoder
		// never saw arguments for gets {} from the decoder.
		for i := range b.ToolCalls {
			if i >= len(a.ToolCalls) {
				break
			}
			if a.ToolCalls[i].Arguments == "" && b.ToolCalls[i].Arguments == "{}" {
				b.ToolCalls[i].Arguments = ""
			}
			if a.ToolCalls[i].ID == "" && b.ToolCalls[i].ID == "toolu_keel_"+strconv.Itoa(i) {
				b.ToolCalls[i].ID = "" // the encoder names a call the upstream did not
			}
		}
		if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y []byte) bool { return string(x) == string(y) })); diff != "" {
			t.Fatalf("answer (-decoded +re-encoded and decoded):\n%s\n%s", diff, out)
		}
	})
}

// messagesTextDelta is a typical Anthropic text event (anthropic/stream-text-cache-usage.sse).
const messagesTextDelta = `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'m doing well, thank you for asking"}}`

func BenchmarkMessagesStreamDecode(b *testing.B) {
	data, name := []byte(messagesTextDelta), []byte("content_block_delta")
	var d MessagesStreamDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.Decode(name, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessagesEncoder writes one text event for an Anthropic client.
func BenchmarkMessagesEncoder(b *testing.B) {
	var d ChatChunkDecoder
	ev, err := d.Decode([]byte(textChunk))
	if err != nil {
		b.Fatal(err)
	}
	ev.Raw, ev.Wire = nil, llm.WireNone
	var enc MessagesEncoder
	buf := enc.AppendEvent(make([]byte, 0, 4096), ev) // message_start and the block start
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendEvent(buf[:0], ev)
	}
	b.SetBytes(int64(len(buf)))
}

// FuzzScanMessagesEvent checks the hand-written reader against
// encoding/json: whenever it accepts data, encoding/json must decode the
// same event from it.
func FuzzScanMessagesEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "anthropic/*.sse"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		for line := range strings.Lines(string(b)) {
			if data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: "); ok {
				f.Add([]byte(data))
			}
		}
	}
	f.Add([]byte(`{"type":"content_block_delta","index":3,"delta":{"type":"thinking_delta","thinking":"a\u00e9\ud83d\ude00\"\n"}}`))
	f.Add([]byte(` { "delta" : { "partial_json" : "{\"a\"" , "type" : "input_json_delta" } , "index" : 0 , "type" : "content_block_delta" } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d MessagesStreamDecoder
		d.resetIn()
		if !scanMessagesEvent(data, &d.in, nil) {
			return
		}
		fast := d.in
		d.resetIn()
		if err := json.Unmarshal(data, &d.in); err != nil {
			t.Fatalf("accepted what encoding/json rejects (%v): %s", err, data)
		}
		if diff := cmp.Diff(d.in, fast); diff != "" {
			t.Fatalf("%s (-encoding/json +scan):\n%s", data, diff)
		}
	})
}

// TestScanMessagesEvent checks which shapes the fast reader takes.
func TestScanMessagesEvent(t *testing.T) {
	tests := []struct {
		data string
		ok   bool
	}{
		{messagesTextDelta, true},
		{`{"type":"ping"}`, true},
		{`{"type": "ping"}`, true},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`, true},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"x"}}`, false},
		{`{"type":"message_stop"}`, false},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"},"extra":1}`, false},
		{`{"Type":"content_block_delta"}`, false},
		{`{"\u0074ype":"ping"}`, false},
		{`{"type":"content_block_delta","delta":{"\u0074ext":"x"}}`, false},
		{`{"type":"content_block_delta","index":1.5}`, false},
		{`{"type":"content_block_delta","index":1,}`, false},
		{`{"type":"content_block_delta","index":1} x`, false},
		{`{"type":"content_block_delta","delta":{"text":"` + "\xff" + `"}}`, false},
		{`{}`, false},
	}
	for _, tt := range tests {
		var d MessagesStreamDecoder
		d.resetIn()
		if got := scanMessagesEvent([]byte(tt.data), &d.in, nil); got != tt.ok {
			t.Errorf("scanMessagesEvent(%s) = %v, want %v", tt.data, got, tt.ok)
		}
	}
}

// BenchmarkMessagesStreamDecodeSlow decodes an event the fast reader
// declines, through encoding/json: message_delta, once per answer.
func BenchmarkMessagesStreamDecodeSlow(b *testing.B) {
	data, name := []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":30}}`), []byte("message_delta")
	var d MessagesStreamDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.Decode(name, data); err != nil {
			b.Fatal(err)
		}
	}
}
