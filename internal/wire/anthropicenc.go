package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/keel-ai/keel/internal/llm"
)

// Anthropic Messages answers to clients (../shared/wire/README.md §3):
// MessagesEncoder for streams, AppendMessage for whole messages,
// AppendMessagesError for errors, and MessagesAPI, the client API.

// MessagesAPI is Anthropic Messages as a client API.
type MessagesAPI struct{}

// Name names the API in records.
func (MessagesAPI) Name() string { return llm.SourceMessages }

// Decode decodes a request body.
func (MessagesAPI) Decode(body []byte) (*llm.Request, error) { return DecodeMessagesRequest(body) }

// Encoder returns the streaming encoder for r.
func (MessagesAPI) Encoder(*llm.Request) StreamEncoder { return &MessagesEncoder{} }

// AppendAnswer appends a whole answer as the non-streaming response body.
func (MessagesAPI) AppendAnswer(dst []byte, a *llm.Answer) []byte { return AppendMessage(dst, a) }

// AppendError appends an error body.
func (MessagesAPI) AppendError(dst []byte, e APIError) []byte { return AppendMessagesError(dst, e) }

// Relay is WireNone: upstream answers are always re-encoded.
func (MessagesAPI) Relay() llm.Wire { return llm.WireNone }

var _ StreamEncoder = (*MessagesEncoder)(nil)

// MessagesEncoder writes an answer to a streaming Anthropic client: every
// event with its event: line, as both Anthropic SDKs dispatch on it and
// drop data-only events (README §0). The first event fixes the message id
// and model, so that the client sees one message even when keel switches
// upstreams.
//
// Anthropic streams one content block at a time, so the encoder opens and
// closes blocks as the answer moves between reasoning (a thinking block),
// text and tool calls. A tool call that starts while another is still
// streaming its arguments (incomplete JSON) is held back until the other
// is complete or the answer finishes; a fragment for a call whose block is
// closed cannot be sent and is dropped. The zero value is ready to use.
type MessagesEncoder struct {
	id, model string
	started   bool
	open      messagesBlockKind
	block     int // index of the open block
	next      int // index of the next block
	call      int // position in calls of the open tool call
	calls     []messagesCall
	args      []byte // the open call's arguments so far
	finish    llm.Finish
}

type messagesBlockKind uint8

const (
	messagesBlockNone messagesBlockKind = iota
	messagesBlockText
	messagesBlockThinking
	messagesBlockTool
)

type messagesCallState uint8

const (
	messagesCallPending messagesCallState = iota // not started: its fragments wait in pending
	messagesCallOpen
	messagesCallClosed
)

// messagesCall is a tool call of the answer, by its neutral Index.
type messagesCall struct {
	index    int
	state    messagesCallState
	id, name string
	pending  []byte
}

// AppendEvent appends what ev adds to the answer: message_start first,
// then block starts, deltas and stops.
func (e *MessagesEncoder) AppendEvent(dst []byte, ev *llm.Event) []byte {
	if !e.started {
		dst = e.appendStart(dst, ev)
	}
	if ev.Reasoning != "" {
		dst = e.openBlock(dst, messagesBlockThinking)
		dst = e.appendDelta(dst, `"thinking_delta","thinking":`, ev.Reasoning)
	}
	if ev.Text != "" {
		dst = e.openBlock(dst, messagesBlockText)
		dst = e.appendDelta(dst, `"text_delta","text":`, ev.Text)
	}
	for i := range ev.ToolCalls {
		dst = e.appendToolDelta(dst, &ev.ToolCalls[i])
	}
	if ev.Finish != "" {
		e.finish = ev.Finish
		dst = e.closeAll(dst)
	}
	return dst
}

func (e *MessagesEncoder) appendStart(dst []byte, ev *llm.Event) []byte {
	e.started = true
	e.id, e.model = messagesID(ev.ID), ev.Model
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	dst = appendJSONString(dst, e.id)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendJSONString(dst, e.model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	var u llm.Usage
	if ev.Usage != nil {
		u = *ev.Usage
	}
	dst = appendMessagesUsage(dst, u)
	return append(dst, "}}\n\n"...)
}

// messagesID is the id of a message: Anthropic's start with msg_.
func messagesID(id string) string {
	switch {
	case id == "":
		return "msg_keel"
	case strings.HasPrefix(id, "msg_"):
		return id
	}
	return "msg_" + id
}

func (e *MessagesEncoder) appendDelta(dst []byte, typeAndField, s string) []byte {
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.block), 10)
	dst = append(dst, `,"delta":{"type":`...)
	dst = append(dst, typeAndField...)
	dst = appendJSONString(dst, s)
	return append(dst, "}}\n\n"...)
}

// openBlock makes a block of kind the open one, closing another.
func (e *MessagesEncoder) openBlock(dst []byte, kind messagesBlockKind) []byte {
	if e.open == kind {
		return dst
	}
	dst = e.closeBlock(dst)
	e.open, e.block = kind, e.next
	e.next++
	dst = e.appendBlockStart(dst)
	if kind == messagesBlockThinking {
		return append(dst, `{"type":"thinking","thinking":"","signature":""}}`+"\n\n"...)
	}
	return append(dst, `{"type":"text","text":""}}`+"\n\n"...)
}

func (e *MessagesEncoder) appendBlockStart(dst []byte) []byte {
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.block), 10)
	return append(dst, `,"content_block":`...)
}

func (e *MessagesEncoder) closeBlock(dst []byte) []byte {
	if e.open == messagesBlockNone {
		return dst
	}
	if e.open == messagesBlockTool {
		e.calls[e.call].state = messagesCallClosed
		e.args = e.args[:0]
	}
	e.open = messagesBlockNone
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.block), 10)
	return append(dst, "}\n\n"...)
}

func (e *MessagesEncoder) appendToolDelta(dst []byte, tc *llm.ToolCallDelta) []byte {
	i := e.callAt(tc.Index)
	c := &e.calls[i]
	if tc.ID != "" {
		c.id = tc.ID
	}
	if tc.Name != "" {
		c.name = tc.Name
	}
	switch c.state {
	case messagesCallOpen:
		if tc.Arguments != "" {
			e.args = append(e.args, tc.Arguments...)
			dst = e.appendDelta(dst, `"input_json_delta","partial_json":`, tc.Arguments)
		}
		return dst
	case messagesCallClosed:
		return dst
	}
	c.pending = append(c.pending, tc.Arguments...)
	if e.open == messagesBlockTool && !json.Valid(e.args) {
		return dst // the open call is still streaming its arguments
	}
	dst = e.closeBlock(dst)
	return e.startCall(dst, i)
}

// callAt returns the position in calls of the call with neutral index,
// adding it if new.
func (e *MessagesEncoder) callAt(index int) int {
	for i := range e.calls {
		if e.calls[i].index == index {
			return i
		}
	}
	e.calls = append(e.calls, messagesCall{index: index})
	return len(e.calls) - 1
}

// startCall opens the block of pending call i and sends what it holds.
func (e *MessagesEncoder) startCall(dst []byte, i int) []byte {
	c := &e.calls[i]
	c.state = messagesCallOpen
	e.open, e.block, e.call = messagesBlockTool, e.next, i
	e.next++
	id := c.id
	if id == "" {
		id = "toolu_keel_" + strconv.Itoa(c.index)
	}
	dst = e.appendBlockStart(dst)
	dst = append(dst, `{"type":"tool_use","id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"name":`...)
	dst = appendJSONString(dst, c.name)
	dst = append(dst, `,"input":{}}}`+"\n\n"...)
	e.args = append(e.args[:0], c.pending...)
	if len(c.pending) > 0 {
		dst = e.appendDelta(dst, `"input_json_delta","partial_json":`, string(c.pending))
	}
	c.pending = nil
	return dst
}

// closeAll closes the open block and sends the calls held back.
func (e *MessagesEncoder) closeAll(dst []byte) []byte {
	dst = e.closeBlock(dst)
	for i := range e.calls {
		if e.calls[i].state == messagesCallPending {
			dst = e.startCall(dst, i)
			dst = e.closeBlock(dst)
		}
	}
	return dst
}

// AppendDone ends a complete answer: message_delta with the stop reason
// and usage, then message_stop.
func (e *MessagesEncoder) AppendDone(dst []byte, u llm.Usage) []byte {
	if !e.started {
		dst = e.appendStart(dst, &llm.Event{})
	}
	dst = e.closeAll(dst)
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	dst = appendJSONString(dst, messagesStopReason(e.finish, len(e.calls) > 0))
	dst = append(dst, `,"stop_sequence":null},"usage":`...)
	dst = appendMessagesUsage(dst, u)
	return append(dst, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// AppendError ends a broken answer with Anthropic's in-band error event.
func (e *MessagesEncoder) AppendError(dst []byte, ae APIError) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = AppendMessagesError(dst, ae)
	return append(dst, "\n\n"...)
}

// messagesStopReason maps a finish reason onto Anthropic's stop_reason
// (README §8, reverse direction).
func messagesStopReason(f llm.Finish, calls bool) string {
	switch f {
	case llm.FinishLength:
		return "max_tokens"
	case llm.FinishToolCalls:
		return "tool_use"
	case llm.FinishContentFilter:
		return "refusal"
	case "":
		if calls {
			return "tool_use"
		}
	}
	return "end_turn"
}

// appendMessagesUsage appends u as Anthropic's usage, whose input_tokens
// leaves out the cache reads and writes (README §9).
func appendMessagesUsage(dst []byte, u llm.Usage) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(max(u.Input-u.Cached-u.CacheWrite, 0)), 10)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CacheWrite), 10)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Cached), 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Output), 10)
	if u.Reasoning > 0 {
		dst = append(dst, `,"output_tokens_details":{"thinking_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Reasoning), 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// AppendMessage appends a whole answer as an Anthropic message object.
func AppendMessage(dst []byte, a *llm.Answer) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, messagesID(a.ID))
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendJSONString(dst, a.Model)
	dst = append(dst, `,"content":[`...)
	sep := false
	block := func() {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
	}
	if len(a.Reasoning) > 0 {
		block()
		dst = append(dst, `{"type":"thinking","thinking":`...)
		dst = appendJSONString(dst, string(a.Reasoning))
		dst = append(dst, `,"signature":""}`...)
	}
	if len(a.Text) > 0 {
		block()
		dst = append(dst, `{"type":"text","text":`...)
		dst = appendJSONString(dst, string(a.Text))
		dst = append(dst, '}')
	}
	for i, tc := range a.ToolCalls {
		block()
		id := tc.ID
		if id == "" {
			id = "toolu_keel_" + strconv.Itoa(i)
		}
		dst = append(dst, `{"type":"tool_use","id":`...)
		dst = appendJSONString(dst, id)
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, tc.Name)
		dst = append(dst, `,"input":`...)
		var buf bytes.Buffer
		if json.Compact(&buf, messagesInput(tc.Arguments)) != nil {
			buf.WriteString("{}")
		}
		dst = append(dst, buf.Bytes()...)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"stop_reason":`...)
	dst = appendJSONString(dst, messagesStopReason(a.Finish, len(a.ToolCalls) > 0))
	dst = append(dst, `,"stop_sequence":null,"usage":`...)
	dst = appendMessagesUsage(dst, a.Usage)
	return append(dst, '}')
}

// AppendMessagesError appends Anthropic's error body
// {"type":"error","error":{"type","message"}}. The type is e's own when it
// is one of Anthropic's, else the one Anthropic uses for e's status.
func AppendMessagesError(dst []byte, e APIError) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = appendJSONString(dst, messagesErrorType(e))
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.Message)
	return append(dst, "}}"...)
}

// messagesErrorTypes are Anthropic's error types (README §3).
var messagesErrorTypes = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "billing_error": true,
	"permission_error": true, "not_found_error": true, "conflict_error": true,
	"request_too_large": true, "rate_limit_error": true, "api_error": true,
	"overloaded_error": true,
}

func messagesErrorType(e APIError) string {
	if messagesErrorTypes[e.Type] {
		return e.Type
	}
	switch s := e.Status; {
	case s == 401:
		return "authentication_error"
	case s == 402:
		return "billing_error"
	case s == 403:
		return "permission_error"
	case s == 404:
		return "not_found_error"
	case s == 409:
		return "conflict_error"
	case s == 413:
		return "request_too_large"
	case s == 429:
		return "rate_limit_error"
	case s == 503, s == 529:
		return "overloaded_error"
	case s >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}
