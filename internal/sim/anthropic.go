package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// This file is the Anthropic Messages wire format (wire README §3):
// request decoding and the encoder for messages, stream events and errors.
// Like openai.go it shares no code with keel's wire package: the simulator
// is what keel's translation is checked against.

type anthropicRequest struct {
	Model     string             `json:"model"`
	MaxTokens *int               `json:"max_tokens"`
	System    json.RawMessage    `json:"system"`
	Messages  []anthropicMessage `json:"messages"`
	Stream    bool               `json:"stream"`
	Tools     []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	OutputConfig *struct {
		Format *struct {
			Type   string          `json:"type"`
			Schema json.RawMessage `json:"schema"`
		} `json:"format"`
	} `json:"output_config"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

// anthropicMessages serves POST /v1/messages.
func (s *Server) anthropicMessages(w http.ResponseWriter, r *http.Request) {
	arrived := s.now()
	var mr anthropicRequest
	req, invalid := decodeAnthropic(w, r, &mr)
	enc := &anthropic{model: mr.Model, requestID: idString("req_", hashString(uint64(arrived.UnixNano()), mr.Model))}
	s.serve(w, r, enc, arrived, mr.Model, &req, invalid)
}

// decodeAnthropic decodes an Anthropic request into mr and the engine's
// request, in the same messages an OpenAI request for the same turn gives:
// the system prompt first, each tool result its own tool message. It
// returns a failure for requests Anthropic would reject with 400.
func decodeAnthropic(w http.ResponseWriter, r *http.Request, mr *anthropicRequest) (request, *failure) {
	var req request
	body := http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(body).Decode(mr); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, &failure{status: 413, kind: failInvalid, typ: "request_too_large", message: "Request exceeds the maximum allowed number of bytes."}
		}
		if errors.Is(err, io.EOF) {
			return req, &failure{status: 400, kind: failInvalid, message: "There was an error parsing the body of your request: the body is empty."}
		}
		return req, &failure{status: 400, kind: failInvalid, message: "There was an error parsing the body of your request. (" + err.Error() + ")"}
	}
	req.stream = mr.Stream
	req.includeUsage = mr.Stream
	switch {
	case mr.Model == "":
		return req, &failure{status: 400, kind: failInvalid, param: "model", message: "model: Field required"}
	case mr.MaxTokens == nil:
		return req, &failure{status: 400, kind: failInvalid, param: "max_tokens", message: "max_tokens: Field required"}
	case *mr.MaxTokens < 1:
		return req, &failure{status: 400, kind: failInvalid, param: "max_tokens", message: "max_tokens: Input should be greater than or equal to 1"}
	case len(mr.Messages) == 0:
		return req, &failure{status: 400, kind: failInvalid, param: "messages", message: "messages: at least one message is required"}
	}
	req.maxTokens = *mr.MaxTokens
	if sys, ok := anthropicText(mr.System); !ok {
		return req, &failure{status: 400, kind: failInvalid, param: "system", message: "system: Input should be a valid string or a list of text blocks"}
	} else if sys != "" {
		req.messages = append(req.messages, message{role: roleOther, text: sys})
	}
	for i, m := range mr.Messages {
		path := "messages." + strconv.Itoa(i)
		var rl role
		switch m.Role {
		case "user":
		case "assistant":
			rl = roleAssistant
		default:
			return req, &failure{status: 400, kind: failInvalid, param: path + ".role",
				message: path + ".role: Input should be 'user' or 'assistant'"}
		}
		msgs, ok := anthropicContent(rl, m.Content)
		if !ok {
			return req, &failure{status: 400, kind: failInvalid, param: path + ".content",
				message: path + ".content: Input should be a valid string or a list of content blocks"}
		}
		req.messages = append(req.messages, msgs...)
	}
	if last := mr.Messages[len(mr.Messages)-1]; last.Role == "assistant" {
		if text := req.messages[len(req.messages)-1].text; strings.TrimRightFunc(text, unicode.IsSpace) != text {
			return req, &failure{status: 400, kind: failInvalid, param: "messages",
				message: "messages: final assistant content cannot end with trailing whitespace"}
		}
	}
	for _, t := range mr.Tools {
		if t.Type == "" || t.Type == "custom" {
			req.tools = append(req.tools, tool{name: t.Name, params: t.InputSchema})
		}
	}
	if c := mr.ToolChoice; c != nil {
		req.toolChoice = toolChoice{none: c.Type == "none"}
		if c.Type == "tool" {
			req.toolChoice.name = c.Name
		}
	}
	if oc := mr.OutputConfig; oc != nil && oc.Format != nil && oc.Format.Type == "json_schema" {
		req.format = format{kind: formatJSONSchema, schema: oc.Format.Schema}
	}
	return req, nil
}

// anthropicText is the text of a string or of a list of blocks, its text
// blocks joined by "\n"; false if raw is neither.
func anthropicText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	if raw[0] == '"' {
		var s string
		return s, json.Unmarshal(raw, &s) == nil
	}
	var bs []anthropicBlock
	if json.Unmarshal(raw, &bs) != nil {
		return "", false
	}
	var sb strings.Builder
	for _, b := range bs {
		if b.Type != "text" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(b.Text)
	}
	return sb.String(), true
}

// anthropicContent is the engine's messages for one Anthropic message: its
// text (images and tool calls contribute nothing), and a tool message per
// tool_result block, in order.
func anthropicContent(rl role, raw json.RawMessage) ([]message, bool) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []message{{role: rl, text: s}}, true
	}
	var bs []anthropicBlock
	if json.Unmarshal(raw, &bs) != nil || bs == nil {
		return nil, false
	}
	var out []message
	var sb strings.Builder
	texts := 0
	flush := func() {
		if texts > 0 {
			out = append(out, message{role: rl, text: sb.String()})
		}
		sb.Reset()
		texts = 0
	}
	for _, b := range bs {
		switch b.Type {
		case "text":
			if texts > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(b.Text)
			texts++
		case "tool_result":
			flush()
			text, ok := anthropicText(b.Content)
			if !ok {
				return nil, false
			}
			out = append(out, message{role: roleTool, text: text})
		}
	}
	flush()
	if len(out) == 0 {
		// Only images or tool calls: like an OpenAI message whose content
		// is null.
		out = append(out, message{role: rl})
	}
	return out, true
}

// anthropic encodes one Messages response: a single content block, text
// or tool_use, at index 0.
type anthropic struct {
	model     string
	id        string
	requestID string
}

var _ encoder = (*anthropic)(nil)

func (a *anthropic) contentType(stream bool) string {
	if stream {
		return "text/event-stream; charset=utf-8"
	}
	return "application/json"
}

// anthropicEvent appends an event's name line and the opening of its data line.
func anthropicEvent(b []byte, name string) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	return append(b, "\ndata: "...)
}

// anthropicToolID is the tool_use id of rep: Anthropic's ids start with toolu_.
func anthropicToolID(rep *reply) string {
	return "toolu_" + strings.TrimPrefix(rep.toolID, "call_")
}

func (a *anthropic) appendStart(b []byte, rep *reply) []byte {
	a.id = idString("msg_", rep.attempt)
	b = anthropicEvent(b, "message_start")
	b = append(b, `{"type":"message_start","message":{"id":`...)
	b = appendString(b, a.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, usage{rep.promptTokens, 1})
	b = append(b, "}}\n\n"...)
	b = anthropicEvent(b, "content_block_start")
	if rep.tool {
		b = append(b, `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":`...)
		b = appendString(b, anthropicToolID(rep))
		b = append(b, `,"name":`...)
		b = appendString(b, rep.toolName)
		b = append(b, `,"input":{}}}`+"\n\n"...)
	} else {
		b = append(b, `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`+"\n\n"...)
	}
	// Anthropic pings right after the first block starts, and opens tool
	// input with an empty fragment (stream-tool-use.sse).
	b = append(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
	if rep.tool {
		b = a.appendPiece(b, rep, "")
	}
	return b
}

func (a *anthropic) appendPiece(b []byte, rep *reply, piece string) []byte {
	b = anthropicEvent(b, "content_block_delta")
	if rep.tool {
		b = append(b, `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":`...)
	} else {
		b = append(b, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`...)
	}
	b = appendString(b, piece)
	return append(b, "}}\n\n"...)
}

// appendGarbage appends an event whose data is not valid JSON: a delta
// broken off inside a string.
func (a *anthropic) appendGarbage(b []byte) []byte {
	b = anthropicEvent(b, "content_block_delta")
	return append(b, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00`+"\n\n"...)
}

func (a *anthropic) appendFinish(b []byte, rep *reply, u usage) []byte {
	b = anthropicEvent(b, "content_block_stop")
	b = append(b, `{"type":"content_block_stop","index":0}`+"\n\n"...)
	b = anthropicEvent(b, "message_delta")
	b = append(b, `{"type":"message_delta","delta":{"stop_reason":`...)
	b = appendString(b, anthropicStopReason(rep.finish))
	b = append(b, `,"stop_sequence":null},"usage":`...)
	b = appendAnthropicUsage(b, u)
	return append(b, "}\n\n"...)
}

func (a *anthropic) appendDone(b []byte) []byte {
	return append(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

func (a *anthropic) appendWhole(b []byte, rep *reply, u usage) []byte {
	a.id = idString("msg_", rep.attempt)
	b = append(b, `{"id":`...)
	b = appendString(b, a.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"content":[`...)
	if rep.tool {
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendString(b, anthropicToolID(rep))
		b = append(b, `,"name":`...)
		b = appendString(b, rep.toolName)
		b = append(b, `,"input":`...)
		input := []byte(strings.Join(rep.pieces, ""))
		if !json.Valid(input) {
			input = []byte("{}") // cut short by max_tokens
		}
		b = append(b, input...)
		b = append(b, '}')
	} else {
		b = append(b, `{"type":"text","text":"`...)
		for _, p := range rep.pieces {
			b = appendEscaped(b, p)
		}
		b = append(b, `"}`...)
	}
	b = append(b, `],"stop_reason":`...)
	b = appendString(b, anthropicStopReason(rep.finish))
	b = append(b, `,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, u)
	return append(b, "}\n"...)
}

// anthropicStopReason is Anthropic's stop_reason for the engine's finish.
func anthropicStopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls":
		return "tool_use"
	}
	return "end_turn"
}

func appendAnthropicUsage(b []byte, u usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt), 10)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.completion), 10)
	return append(b, '}')
}

// appendError renders fl in Anthropic's envelope
// {"type":"error","error":{"type","message"},"request_id"}. Anthropic
// has no error code, so a fault's code is not shown.
func (a *anthropic) appendError(b []byte, fl *failure) []byte {
	typ, msg := "invalid_request_error", ""
	switch fl.kind {
	case failContextLength:
		msg = "prompt is too long: 208310 tokens > 200000 maximum"
	case failContentFilter:
		msg = "Output blocked by content filtering policy"
	case failPrefill:
		msg = "This model does not support assistant message prefill. The conversation must end with a user message."
	case failInvalid:
		msg = fl.message
	default:
		typ, msg = anthropicStatusError(fl.status, a.model)
	}
	if fl.typ != "" {
		typ = fl.typ
	}
	if fl.message != "" {
		msg = fl.message
	}
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, `},"request_id":`...)
	b = appendString(b, a.requestID)
	return append(b, "}\n"...)
}

// anthropicStatusError is Anthropic's error type and message for an HTTP
// status (wire README §3, §10).
func anthropicStatusError(status int, model string) (typ, msg string) {
	switch status {
	case 400:
		return "invalid_request_error", "Invalid request."
	case 401:
		return "authentication_error", "invalid x-api-key"
	case 402:
		return "billing_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
	case 403:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		return "not_found_error", "model: " + model
	case 409:
		return "conflict_error", "Request conflicts with another request in progress."
	case 413:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		return "rate_limit_error", "This request would exceed your account's rate limit. Please try again later."
	case 503, 529:
		return "overloaded_error", "Overloaded"
	}
	if status >= 500 {
		return "api_error", "Internal server error"
	}
	return "invalid_request_error", http.StatusText(status)
}
