package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/keel-ai/keel/internal/llm"
)

// Anthropic Messages answers from upstreams (../shared/wire/README.md §3):
// MessagesStreamDecoder for streams, DecodeMessagesResponse for whole
// messages, ParseAnthropicError for error bodies.

// messagesUsageIn is Anthropic's usage. Fields are -1 when absent (see
// messagesUnsetUsage), so that a message_delta naming only output_tokens keeps the
// input counts message_start gave.
type messagesUsageIn struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	OutputTokensDetails      struct {
		ThinkingTokens int `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

// messagesUnsetUsage marks every field absent: encoding/json leaves a field alone
// when its key is missing or null.
var messagesUnsetUsage = func() messagesUsageIn {
	u := messagesUsageIn{InputTokens: -1, CacheCreationInputTokens: -1, CacheReadInputTokens: -1, OutputTokens: -1}
	u.OutputTokensDetails.ThinkingTokens = -1
	return u
}()

// merge takes the fields of in that are present into u.
func (u *messagesUsageIn) merge(in *messagesUsageIn) {
	for _, f := range [...]struct{ dst, src *int }{
		{&u.InputTokens, &in.InputTokens},
		{&u.CacheCreationInputTokens, &in.CacheCreationInputTokens},
		{&u.CacheReadInputTokens, &in.CacheReadInputTokens},
		{&u.OutputTokens, &in.OutputTokens},
		{&u.OutputTokensDetails.ThinkingTokens, &in.OutputTokensDetails.ThinkingTokens},
	} {
		if *f.src >= 0 {
			*f.dst = *f.src
		}
	}
}

// neutral converts u: Anthropic's input_tokens leaves out the cache reads
// and writes that llm.Usage.Input includes (README §9).
func (u *messagesUsageIn) neutral() llm.Usage {
	n := func(v int) int { return max(v, 0) }
	return llm.Usage{
		Input:      n(u.InputTokens) + n(u.CacheCreationInputTokens) + n(u.CacheReadInputTokens),
		Output:     n(u.OutputTokens),
		Cached:     n(u.CacheReadInputTokens),
		CacheWrite: n(u.CacheCreationInputTokens),
		Reasoning:  n(u.OutputTokensDetails.ThinkingTokens),
	}
}

type messagesEventIn struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message struct {
		ID    string          `json:"id"`
		Model string          `json:"model"`
		Usage messagesUsageIn `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type     string          `json:"type"`
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Input    json.RawMessage `json:"input"`
		Text     string          `json:"text"`
		Thinking string          `json:"thinking"`
	} `json:"content_block"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage messagesUsageIn `json:"usage"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// MessagesStreamDecoder decodes an upstream's Anthropic SSE stream into
// events. It keeps the state that spans events: the message id and model,
// the running usage, and which content blocks are tool calls, numbered
// from 0 in the order they start. The zero value is ready to use; one
// decoder serves one stream.
type MessagesStreamDecoder struct {
	// Created is set on every Event: Anthropic sends no creation time, so
	// the adapter stamps the time it sent the request. Zero leaves it 0.
	Created int64

	ev     llm.Event
	in     messagesEventIn
	usage  messagesUsageIn
	nu     llm.Usage
	id     string
	model  string
	tools  []messagesStreamTool
	inited bool
	mem    arena
}

// messagesStreamTool is a tool_use content block of the stream.
type messagesStreamTool struct {
	block, call int
	// args is set once the call has arguments.
	args bool
}

// Decode returns the event in one SSE event: its name (empty in data-only
// streams; the data's type decides) and data. It returns nil and no error
// for events that add nothing (ping, block boundaries), io.EOF for
// message_stop, an *ErrorBody for an in-band error event, and a
// *json.SyntaxError or similar for data that is not an event. The event is
// valid until the next call.
func (d *MessagesStreamDecoder) Decode(name, data []byte) (*llm.Event, error) {
	if !d.inited {
		d.usage, d.inited = messagesUnsetUsage, true
	}
	in := &d.in
	d.resetIn()
	if !scanMessagesEvent(data, in, &d.mem) {
		d.resetIn()
		if err := json.Unmarshal(data, in); err != nil {
			return nil, err
		}
	}
	typ := in.Type
	if typ == "" {
		typ = string(name)
	}
	switch typ {
	case "message_start":
		d.id, d.model = in.Message.ID, in.Message.Model
		d.usage.merge(&in.Message.Usage)
		ev := d.event()
		d.nu = d.usage.neutral()
		ev.Usage = &d.nu
		return ev, nil
	case "content_block_start":
		cb := &in.ContentBlock
		switch cb.Type {
		case "text":
			if cb.Text != "" {
				ev := d.event()
				ev.Text = cb.Text
				return ev, nil
			}
		case "thinking":
			if cb.Thinking != "" {
				ev := d.event()
				ev.Reasoning = cb.Thinking
				return ev, nil
			}
		case "tool_use":
			t := messagesStreamTool{block: in.Index, call: len(d.tools)}
			var args string
			// Arguments come in input_json_delta events; a start that
			// already holds them (input not {}) carries the whole call.
			if in := bytes.TrimSpace(cb.Input); len(in) > 0 && in[0] == '{' && !isEmptyMessagesInput(in) {
				var buf bytes.Buffer
				if json.Compact(&buf, in) == nil {
					args, t.args = buf.String(), true
				}
			}
			d.tools = append(d.tools, t)
			ev := d.event()
			ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: t.call, ID: cb.ID, Name: cb.Name, Arguments: args})
			return ev, nil
		}
		// server_tool_use and the server tools' results are run by
		// Anthropic; their outcome reaches the client as text.
		return nil, nil
	case "content_block_delta":
		switch dl := &in.Delta; dl.Type {
		case "text_delta":
			if dl.Text != "" {
				ev := d.event()
				ev.Text = dl.Text
				return ev, nil
			}
		case "thinking_delta":
			if dl.Thinking != "" {
				ev := d.event()
				ev.Reasoning = dl.Thinking
				return ev, nil
			}
		case "input_json_delta":
			if t := d.tool(in.Index); t != nil && dl.PartialJSON != "" {
				t.args = true
				ev := d.event()
				ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: t.call, Arguments: dl.PartialJSON})
				return ev, nil
			}
		}
		// signature_delta, citations_delta: nothing the neutral model keeps.
		return nil, nil
	case "content_block_stop":
		if t := d.tool(in.Index); t != nil && !t.args {
			// A tool without arguments may send only "" (README §3,
			// stream-tool-no-args.sse).
			t.args = true
			ev := d.event()
			ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: t.call, Arguments: "{}"})
			return ev, nil
		}
		return nil, nil
	case "message_delta":
		d.usage.merge(&in.Usage)
		ev := d.event()
		if r := in.Delta.StopReason; r != "" {
			ev.Finish = messagesFinish(r)
		}
		d.nu = d.usage.neutral()
		ev.Usage = &d.nu
		return ev, nil
	case "message_stop":
		return nil, io.EOF
	case "error":
		eb := &ErrorBody{Type: in.Error.Type, Message: in.Error.Message}
		if eb.Type == "" && eb.Message == "" {
			eb.Message = "the upstream sent an error event: " + truncate(string(data), 512)
		}
		return nil, eb
	}
	return nil, nil // ping, and event types added after this was written
}

func (d *MessagesStreamDecoder) resetIn() {
	d.in = messagesEventIn{}
	d.in.Message.Usage, d.in.Usage = messagesUnsetUsage, messagesUnsetUsage
}

// event returns the decoder's event, reset for the current one.
func (d *MessagesStreamDecoder) event() *llm.Event {
	d.ev = llm.Event{ID: d.id, Model: d.model, Created: d.Created, ToolCalls: d.ev.ToolCalls[:0]}
	return &d.ev
}

func (d *MessagesStreamDecoder) tool(block int) *messagesStreamTool {
	for i := range d.tools {
		if d.tools[i].block == block {
			return &d.tools[i]
		}
	}
	return nil
}

// isEmptyMessagesInput reports whether b, which starts with '{', is {}.
func isEmptyMessagesInput(b []byte) bool {
	return len(b) >= 2 && b[len(b)-1] == '}' && len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}

// messagesFinish maps a stop_reason onto llm's (README §8).
func messagesFinish(s string) llm.Finish {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "refusal":
		return llm.FinishContentFilter
	}
	// end_turn, stop_sequence, pause_turn, and any added later.
	return llm.FinishStop
}

type messagesResponseIn struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Model   string `json:"model"`
	Content []struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		Thinking string          `json:"thinking"`
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Input    json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      messagesUsageIn `json:"usage"`
}

// DecodeMessagesResponse decodes a whole non-streamed message into one
// event. An error body sent with a 2xx status is returned as an
// *ErrorBody error.
func DecodeMessagesResponse(body []byte) (*llm.Event, error) {
	m := messagesResponseIn{Usage: messagesUnsetUsage}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("wire: decode message: %w", err)
	}
	if m.Type == "error" {
		return nil, ParseAnthropicError(body)
	}
	if m.Type != "message" && m.ID == "" {
		return nil, fmt.Errorf("wire: the body is not a message")
	}
	ev := &llm.Event{ID: m.ID, Model: m.Model, Finish: messagesFinish(m.StopReason)}
	var text, reasoning strings.Builder
	for _, c := range m.Content {
		switch c.Type {
		case "text":
			text.WriteString(c.Text)
		case "thinking":
			reasoning.WriteString(c.Thinking)
		case "tool_use":
			args := "{}"
			if in := bytes.TrimSpace(c.Input); len(in) > 0 && in[0] == '{' {
				var buf bytes.Buffer
				if json.Compact(&buf, in) == nil {
					args = buf.String()
				}
			}
			ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: len(ev.ToolCalls), ID: c.ID, Name: c.Name, Arguments: args})
		}
	}
	ev.Text, ev.Reasoning = text.String(), reasoning.String()
	if m.StopReason == "" && len(ev.ToolCalls) > 0 {
		ev.Finish = llm.FinishToolCalls
	}
	u := m.Usage.neutral()
	ev.Usage = &u
	return ev, nil
}

// ParseAnthropicError reads Anthropic's error body {"type":"error",
// "error":{"type","message"},"request_id"}, or any shape ParseErrorBody
// knows (proxies in front of Anthropic answer in their own).
func ParseAnthropicError(body []byte) *ErrorBody {
	return ParseErrorBody(body)
}
