package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/keel-ai/keel/internal/llm"
)

// Anthropic Messages requests (../shared/wire/README.md §3), both
// directions: DecodeMessagesRequest for clients, AppendMessagesRequest for
// upstreams.

// DefaultMaxTokens is the max_tokens AppendMessagesRequest sends when the
// request sets none: Anthropic requires the field, and every current model
// allows at least this many output tokens.
const DefaultMaxTokens = 4096

// JSONObjectInstruction is the system instruction AppendMessagesRequest adds
// for a json_object response format, which Anthropic has no field for: its
// structured outputs take a schema, and a free-form object schema is not
// accepted.
const JSONObjectInstruction = "Respond with a single valid JSON object and nothing else."

// messagesSchemaName names a json_schema format decoded from Anthropic,
// whose output_config.format has no name; OpenAI upstreams require one.
const messagesSchemaName = "output"

type messagesMessageIn struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type messagesBlockIn struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    json.RawMessage `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
}

type messagesSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type messagesTool struct {
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

type messagesToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
}

type messagesFormat struct {
	Type   string          `json:"type"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// DecodeMessagesRequest decodes and validates a client's Anthropic Messages
// body. Fields keel does not model (top_k, thinking, service_tier, …) are
// kept verbatim in Request.Extra. A trailing assistant message is a prefill
// to continue, so it sets Request.Continue. Errors are *chat.Error values
// with code EInvalid that name the offending param.
//
// Tool results become one RoleTool message each, split out of the user
// message that carries them; a result marked is_error has "Error: " put
// before its text, since the neutral model has no flag for it. Thinking
// blocks of assistant turns become Message.Reasoning; their signatures and
// redacted_thinking blocks are dropped.
func DecodeMessagesRequest(body []byte) (*llm.Request, error) {
	return decodeMessagesRequest(body, true)
}

// DecodeMessagesCountRequest decodes a client's count_tokens body: a
// Messages request without max_tokens.
func DecodeMessagesCountRequest(body []byte) (*llm.Request, error) {
	return decodeMessagesRequest(body, false)
}

func decodeMessagesRequest(body []byte, needMax bool) (*llm.Request, error) {
	ms, ok := bodyMembers(body)
	if !ok {
		return nil, invalid("", "the request body must be a JSON object")
	}
	r := &llm.Request{Source: llm.SourceMessages}
	var system, msgs []llm.Message
	for _, m := range ms {
		k, v := m.key, m.raw
		var err error
		switch k {
		case "model":
			err = decodeField(k, v, &r.Model)
		case "max_tokens":
			err = decodePositive(k, v, &r.MaxTokens)
		case "messages":
			msgs, err = decodeMessagesMessages(v)
		case "system":
			system, err = decodeMessagesSystem(v)
		case "tools":
			err = decodeMessagesTools(v, r)
		case "tool_choice":
			err = decodeMessagesToolChoice(v, r)
		case "temperature":
			err = decodeRange(k, v, &r.Temperature, 0, 1)
		case "top_p":
			err = decodeRange(k, v, &r.TopP, 0, 1)
		case "stop_sequences":
			err = decodeField(k, v, &r.Stop)
		case "stream":
			var s *bool
			if err = decodeField(k, v, &s); s != nil {
				r.Stream = *s
			}
		case "metadata":
			var m *struct {
				UserID *string `json:"user_id"`
			}
			if err = decodeField(k, v, &m); m != nil && m.UserID != nil {
				r.User = *m.UserID
			}
		case "output_config":
			err = decodeMessagesOutputConfig(v, r)
		default:
			setMessagesExtra(r, k, v)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case r.Model == "":
		return nil, invalid("model", "model: Field required")
	case needMax && r.MaxTokens == nil:
		return nil, invalid("max_tokens", "max_tokens: Field required")
	case len(msgs) == 0:
		return nil, invalid("messages", "messages must be a non-empty array")
	}
	r.Messages = append(system, msgs...)
	r.Continue = r.Messages[len(r.Messages)-1].Role == llm.RoleAssistant
	return r, nil
}

func setMessagesExtra(r *llm.Request, k string, v json.RawMessage) {
	if r.Extra == nil {
		r.Extra = make(map[string]json.RawMessage)
	}
	r.Extra[k] = v
}

// decodeMessagesSystem reads the top-level system prompt: a string or an
// array of text blocks. An empty prompt is no system message.
func decodeMessagesSystem(raw json.RawMessage) ([]llm.Message, error) {
	if isNull(raw) {
		return nil, nil
	}
	var parts []llm.Part
	if raw[0] == '"' {
		var s string
		if err := decodeField("system", raw, &s); err != nil {
			return nil, err
		}
		if s != "" {
			parts = []llm.Part{llm.TextPart(s)}
		}
	} else {
		var bs []messagesBlockIn
		if raw[0] != '[' {
			return nil, invalid("system", "system must be a string or an array of text blocks")
		}
		if err := decodeField("system", raw, &bs); err != nil {
			return nil, err
		}
		for i, b := range bs {
			if b.Type != "text" {
				return nil, invalid(fmt.Sprintf("system[%d].type", i), "system[%d].type must be \"text\"", i)
			}
			parts = append(parts, llm.TextPart(b.Text))
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	return []llm.Message{{Role: llm.RoleSystem, Content: parts}}, nil
}

func decodeMessagesMessages(raw json.RawMessage) ([]llm.Message, error) {
	var ms []json.RawMessage
	if err := decodeField("messages", raw, &ms); err != nil {
		return nil, err
	}
	out := make([]llm.Message, 0, len(ms))
	for i, mraw := range ms {
		param := fmt.Sprintf("messages[%d]", i)
		var m messagesMessageIn
		if err := decodeField(param, mraw, &m); err != nil {
			return nil, err
		}
		var role llm.Role
		switch m.Role {
		case "user":
			role = llm.RoleUser
		case "assistant":
			role = llm.RoleAssistant
		case "":
			return nil, invalid(param+".role", "%s.role is required", param)
		default:
			return nil, invalid(param+".role", "%s.role %q is not one of user, assistant", param, m.Role)
		}
		var err error
		out, err = decodeMessagesContent(out, param+".content", role, m.Content)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeMessagesContent appends the neutral messages of one Anthropic
// message to out: one for its text, images and tool calls, and one per
// tool result, in order.
func decodeMessagesContent(out []llm.Message, param string, role llm.Role, raw json.RawMessage) ([]llm.Message, error) {
	if isNull(raw) {
		return nil, invalid(param, "%s is required", param)
	}
	if raw[0] == '"' {
		var s string
		if err := decodeField(param, raw, &s); err != nil {
			return nil, err
		}
		return append(out, llm.Message{Role: role, Content: []llm.Part{llm.TextPart(s)}}), nil
	}
	var bs []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &bs) != nil {
		return nil, invalid(param, "%s must be a string or an array of content blocks", param)
	}
	if len(bs) == 0 && role == llm.RoleUser {
		return nil, invalid(param, "%s must not be empty", param)
	}
	cur := llm.Message{Role: role}
	flush := func() {
		if len(cur.Content) > 0 || len(cur.ToolCalls) > 0 || cur.Reasoning != "" {
			out = append(out, cur)
		}
		cur = llm.Message{Role: role}
	}
	for i, braw := range bs {
		bparam := fmt.Sprintf("%s[%d]", param, i)
		var b messagesBlockIn
		if err := decodeField(bparam, braw, &b); err != nil {
			return nil, err
		}
		switch {
		case b.Type == "text":
			cur.Content = append(cur.Content, llm.TextPart(b.Text))
		case b.Type == "image":
			p, err := decodeMessagesImage(bparam+".source", b.Source)
			if err != nil {
				return nil, err
			}
			cur.Content = append(cur.Content, p)
		case b.Type == "tool_use" && role == llm.RoleAssistant:
			tc, err := decodeMessagesToolUse(bparam, &b)
			if err != nil {
				return nil, err
			}
			cur.ToolCalls = append(cur.ToolCalls, tc)
		case b.Type == "tool_result" && role == llm.RoleUser:
			if b.ToolUseID == "" {
				return nil, invalid(bparam+".tool_use_id", "%s.tool_use_id is required", bparam)
			}
			parts, err := decodeMessagesToolResult(bparam+".content", b.Content, b.IsError)
			if err != nil {
				return nil, err
			}
			flush()
			out = append(out, llm.Message{Role: llm.RoleTool, ToolCallID: b.ToolUseID, Content: parts})
		case b.Type == "thinking" && role == llm.RoleAssistant:
			cur.Reasoning += b.Thinking
		case b.Type == "redacted_thinking" && role == llm.RoleAssistant:
			// Opaque to every model but the one that wrote it.
		case b.Type == "":
			return nil, invalid(bparam+".type", "%s.type is required", bparam)
		default:
			return nil, invalid(bparam+".type", "content block type %q is not supported in %s messages", b.Type, role)
		}
	}
	flush()
	if len(bs) == 0 {
		out = append(out, cur) // an empty assistant prefill
	}
	return out, nil
}

// decodeMessagesImage reads an image source into an image Part whose URL
// is the image's URL or a data: URL holding its bytes.
func decodeMessagesImage(param string, raw json.RawMessage) (llm.Part, error) {
	var s messagesSource
	if isNull(raw) {
		return llm.Part{}, invalid(param, "%s is required", param)
	}
	if err := decodeField(param, raw, &s); err != nil {
		return llm.Part{}, err
	}
	switch s.Type {
	case "base64":
		if s.MediaType == "" || s.Data == "" {
			return llm.Part{}, invalid(param, "%s needs media_type and data", param)
		}
		return llm.Part{Type: llm.PartImage, URL: "data:" + s.MediaType + ";base64," + s.Data}, nil
	case "url":
		if s.URL == "" {
			return llm.Part{}, invalid(param+".url", "%s.url is required", param)
		}
		return llm.Part{Type: llm.PartImage, URL: s.URL}, nil
	}
	return llm.Part{}, invalid(param+".type", "image source type %q is not supported; use base64 or url", s.Type)
}

func decodeMessagesToolUse(param string, b *messagesBlockIn) (llm.ToolCall, error) {
	switch {
	case b.ID == "":
		return llm.ToolCall{}, invalid(param+".id", "%s.id is required", param)
	case b.Name == "":
		return llm.ToolCall{}, invalid(param+".name", "%s.name is required", param)
	}
	args := "{}"
	if !isNull(b.Input) {
		if b.Input[0] != '{' {
			return llm.ToolCall{}, invalid(param+".input", "%s.input must be an object", param)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b.Input); err != nil {
			return llm.ToolCall{}, invalid(param+".input", "%s.input: %s", param, jsonProblem(err))
		}
		args = buf.String()
	}
	return llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}, nil
}

// decodeMessagesToolResult reads a tool result's content: a string or text
// and image blocks. An error result is marked in its text.
func decodeMessagesToolResult(param string, raw json.RawMessage, isError bool) ([]llm.Part, error) {
	var parts []llm.Part
	switch {
	case isNull(raw):
	case raw[0] == '"':
		var s string
		if err := decodeField(param, raw, &s); err != nil {
			return nil, err
		}
		parts = []llm.Part{llm.TextPart(s)}
	case raw[0] == '[':
		var bs []messagesBlockIn
		if err := decodeField(param, raw, &bs); err != nil {
			return nil, err
		}
		for i, b := range bs {
			bparam := fmt.Sprintf("%s[%d]", param, i)
			switch b.Type {
			case "text":
				parts = append(parts, llm.TextPart(b.Text))
			case "image":
				p, err := decodeMessagesImage(bparam+".source", b.Source)
				if err != nil {
					return nil, err
				}
				parts = append(parts, p)
			default:
				return nil, invalid(bparam+".type", "tool result block type %q is not supported", b.Type)
			}
		}
	default:
		return nil, invalid(param, "%s must be a string or an array of content blocks", param)
	}
	switch {
	case isError && len(parts) > 0 && parts[0].Type == llm.PartText:
		parts[0].Text = "Error: " + parts[0].Text
	case isError:
		parts = append([]llm.Part{llm.TextPart("Error")}, parts...)
	case len(parts) == 0:
		// Tool messages always carry content: OpenAI rejects one without.
		parts = []llm.Part{llm.TextPart("")}
	}
	return parts, nil
}

func decodeMessagesTools(raw json.RawMessage, r *llm.Request) error {
	var ts []json.RawMessage
	if err := decodeField("tools", raw, &ts); err != nil {
		return err
	}
	for i, traw := range ts {
		param := fmt.Sprintf("tools[%d]", i)
		var t messagesTool
		if err := decodeField(param, traw, &t); err != nil {
			return err
		}
		if t.Type != "" && t.Type != "custom" {
			return invalid(param+".type", "tool type %q is not supported; only client tools are", t.Type)
		}
		if t.Name == "" {
			return invalid(param+".name", "%s.name is required", param)
		}
		if !isNull(t.InputSchema) && t.InputSchema[0] != '{' {
			return invalid(param+".input_schema", "%s.input_schema must be an object", param)
		}
		r.Tools = append(r.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema, Strict: t.Strict})
	}
	return nil
}

func decodeMessagesToolChoice(raw json.RawMessage, r *llm.Request) error {
	if isNull(raw) {
		return nil
	}
	var c messagesToolChoice
	if err := decodeField("tool_choice", raw, &c); err != nil {
		return err
	}
	switch c.Type {
	case "auto":
		r.ToolChoice = &llm.ToolChoice{Mode: llm.ToolAuto}
	case "any":
		r.ToolChoice = &llm.ToolChoice{Mode: llm.ToolRequired}
	case "none":
		r.ToolChoice = &llm.ToolChoice{Mode: llm.ToolNone}
	case "tool":
		if c.Name == "" {
			return invalid("tool_choice.name", "tool_choice.name is required for type \"tool\"")
		}
		r.ToolChoice = &llm.ToolChoice{Mode: llm.ToolFunction, Name: c.Name}
	default:
		return invalid("tool_choice.type", "tool_choice.type %q is not one of auto, any, tool, none", c.Type)
	}
	if d := c.DisableParallelToolUse; d != nil {
		parallel := !*d
		r.ParallelToolCalls = &parallel
	}
	return nil
}

// decodeMessagesOutputConfig reads output_config.format into
// ResponseFormat. An output_config with other settings (effort, …) is also
// kept whole in Extra, for Anthropic upstreams.
func decodeMessagesOutputConfig(raw json.RawMessage, r *llm.Request) error {
	var oc map[string]json.RawMessage
	if err := decodeField("output_config", raw, &oc); err != nil {
		return err
	}
	for k := range oc {
		if k != "format" {
			setMessagesExtra(r, "output_config", raw)
			break
		}
	}
	f := oc["format"]
	if isNull(f) {
		return nil
	}
	var mf messagesFormat
	if err := decodeField("output_config.format", f, &mf); err != nil {
		return err
	}
	if mf.Type != "json_schema" {
		return invalid("output_config.format.type", "output_config.format.type %q is not supported; use json_schema", mf.Type)
	}
	if isNull(mf.Schema) || mf.Schema[0] != '{' {
		return invalid("output_config.format.schema", "output_config.format.schema must be an object")
	}
	r.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: messagesSchemaName, Schema: mf.Schema}
	return nil
}

type messagesRequestOut struct {
	Model         string               `json:"model"`
	MaxTokens     *int                 `json:"max_tokens,omitempty"`
	System        any                  `json:"system,omitempty"`
	Messages      []messagesMessageOut `json:"messages"`
	Tools         []messagesTool       `json:"tools,omitempty"`
	ToolChoice    *messagesToolChoice  `json:"tool_choice,omitempty"`
	Temperature   *float64             `json:"temperature,omitempty"`
	TopP          *float64             `json:"top_p,omitempty"`
	StopSequences []string             `json:"stop_sequences,omitempty"`
	Stream        bool                 `json:"stream,omitempty"`
	Metadata      *messagesMetadata    `json:"metadata,omitempty"`
	OutputConfig  *struct {
		Format messagesFormat `json:"format"`
	} `json:"output_config,omitempty"`
}

type messagesMetadata struct {
	UserID string `json:"user_id"`
}

type messagesMessageOut struct {
	Role string `json:"role"`
	// Content is a string for a single text block, else []messagesBlockOut.
	Content any `json:"content"`
	blocks  []messagesBlockOut
}

type messagesBlockOut struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *messagesSource `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	// Content is a tool result's: a string, or text and image blocks.
	Content any `json:"content,omitempty"`
}

// AppendMessagesRequest appends r encoded for an Anthropic upstream. Any
// neutral request can be encoded:
//
//   - System messages, wherever they are, join the top-level system prompt.
//   - Tool messages become tool_result blocks of a user message, and
//     consecutive messages of one role are merged: Anthropic wants user and
//     assistant turns to alternate.
//   - Tool-call arguments are sent as the input object; arguments that are
//     not a JSON object (a call cut short) are sent as {}. Tool-call ids
//     Anthropic would reject are replaced (see messagesToolID).
//   - Assistant reasoning is not sent: Anthropic only takes back thinking
//     blocks with the signature it wrote, which the neutral model drops.
//   - max_tokens defaults to DefaultMaxTokens; temperature is clamped to
//     Anthropic's 0–1; seed has no equivalent and is dropped.
//   - json_schema becomes output_config.format; json_object becomes the
//     system instruction JSONObjectInstruction.
//   - A trailing assistant message is the prefill Anthropic continues. Its
//     trailing whitespace, which Anthropic rejects, is cut (see
//     MessagesPrefillTrim).
//   - Extra is sent only when the request came from an Anthropic client.
func AppendMessagesRequest(dst []byte, r *llm.Request) ([]byte, error) {
	out, _ := buildMessagesRequest(r)
	if r.MaxTokens != nil {
		out.MaxTokens = r.MaxTokens
	} else {
		n := DefaultMaxTokens
		out.MaxTokens = &n
	}
	out.Stream = r.Stream
	out.StopSequences = r.Stop
	out.TopP = r.TopP
	if t := r.Temperature; t != nil {
		c := min(max(*t, 0), 1)
		out.Temperature = &c
	}
	if r.User != "" {
		out.Metadata = &messagesMetadata{UserID: r.User}
	}
	if f := r.ResponseFormat; f != nil && f.Type == llm.FormatJSONSchema && !hasMessagesExtra(r, "output_config") {
		schema := f.Schema
		if isNull(schema) {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		out.OutputConfig = &struct {
			Format messagesFormat `json:"format"`
		}{messagesFormat{Type: "json_schema", Schema: schema}}
	}
	return appendMessagesBody(dst, r, out, nil)
}

// AppendMessagesCountRequest appends r encoded for Anthropic's
// /v1/messages/count_tokens, which takes the prompt but no sampling or
// output settings.
func AppendMessagesCountRequest(dst []byte, r *llm.Request) ([]byte, error) {
	out, _ := buildMessagesRequest(r)
	return appendMessagesBody(dst, r, out, messagesCountExtra)
}

// messagesCountExtra are the pass-through fields count_tokens accepts.
var messagesCountExtra = map[string]bool{"thinking": true, "mcp_servers": true}

// MessagesPrefillTrim returns the trailing whitespace AppendMessagesRequest
// cuts from r's trailing assistant message: Anthropic rejects a prefill
// that ends in whitespace. The model then usually starts its continuation
// with that whitespace, which a caller that already has it should drop.
func MessagesPrefillTrim(r *llm.Request) string {
	_, cut := buildMessagesRequest(r)
	return cut
}

func hasMessagesExtra(r *llm.Request, k string) bool {
	if r.Source != llm.SourceMessages {
		return false
	}
	_, ok := r.Extra[k]
	return ok
}

// appendMessagesBody marshals out and splices r.Extra in: all of it when
// only is nil, else the keys only allows.
func appendMessagesBody(dst []byte, r *llm.Request, out *messagesRequestOut, only map[string]bool) ([]byte, error) {
	for i := range out.Messages {
		m := &out.Messages[i]
		if len(m.blocks) == 1 && m.blocks[0].Type == "text" {
			m.Content = m.blocks[0].Text
		} else {
			m.Content = m.blocks
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return dst, fmt.Errorf("wire: encode messages request: %w", err)
	}
	if len(r.Extra) == 0 || r.Source != llm.SourceMessages {
		return append(dst, b...), nil
	}
	dst = append(dst, b[:len(b)-1]...)
	for _, k := range sortedKeys(r.Extra) {
		if messagesModelled[k] || (only != nil && !only[k]) {
			continue
		}
		if k == "output_config" && only == nil && out.OutputConfig != nil {
			continue
		}
		dst = append(dst, ',')
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, bytes.TrimSpace(r.Extra[k])...)
	}
	return append(dst, '}'), nil
}

// messagesModelled are the fields AppendMessagesRequest writes itself; an
// Extra of the same name (which DecodeMessagesRequest never makes) would
// duplicate them.
var messagesModelled = map[string]bool{
	"model": true, "max_tokens": true, "system": true, "messages": true, "tools": true,
	"tool_choice": true, "temperature": true, "top_p": true, "stop_sequences": true,
	"stream": true, "metadata": true,
}

// buildMessagesRequest lays out r's prompt the way Anthropic takes it. It
// returns the whitespace it cut from the end of a trailing assistant
// message.
func buildMessagesRequest(r *llm.Request) (*messagesRequestOut, string) {
	out := &messagesRequestOut{Model: r.Model}
	var system []messagesBlockOut
	add := func(role string, bs ...messagesBlockOut) {
		if len(bs) == 0 {
			return
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].blocks = append(out.Messages[n-1].blocks, bs...)
			return
		}
		out.Messages = append(out.Messages, messagesMessageOut{Role: role, blocks: bs})
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		switch m.Role {
		case llm.RoleSystem:
			for _, p := range m.Content {
				if p.Type == llm.PartText && p.Text != "" {
					system = append(system, messagesBlockOut{Type: "text", Text: p.Text})
				}
			}
		case llm.RoleAssistant:
			bs := messagesBlocks(m.Content)
			for _, tc := range m.ToolCalls {
				bs = append(bs, messagesBlockOut{Type: "tool_use", ID: messagesToolID(tc.ID), Name: tc.Name, Input: messagesInput(tc.Arguments)})
			}
			add("assistant", bs...)
		case llm.RoleTool:
			res := messagesBlockOut{Type: "tool_result", ToolUseID: messagesToolID(m.ToolCallID)}
			if bs := messagesBlocks(m.Content); len(bs) == 1 && bs[0].Type == "text" {
				res.Content = bs[0].Text
			} else if len(bs) > 0 {
				res.Content = bs
			}
			add("user", res)
		default:
			add("user", messagesBlocks(m.Content)...)
		}
	}
	if f := r.ResponseFormat; f != nil && f.Type == llm.FormatJSONObject {
		system = append(system, messagesBlockOut{Type: "text", Text: JSONObjectInstruction})
	}
	switch {
	case len(system) == 1:
		out.System = system[0].Text
	case len(system) > 1:
		out.System = system
	}
	for i := range out.Messages {
		if m := &out.Messages[i]; m.Role == "user" {
			// Tool results must open the user turn that carries them.
			var results, rest []messagesBlockOut
			for _, b := range m.blocks {
				if b.Type == "tool_result" {
					results = append(results, b)
				} else {
					rest = append(rest, b)
				}
			}
			if len(results) > 0 && len(rest) > 0 {
				m.blocks = append(results, rest...)
			}
		}
	}
	if out.Messages == nil {
		out.Messages = []messagesMessageOut{}
	}
	if len(r.Tools) > 0 {
		for _, t := range r.Tools {
			schema := t.Parameters
			if isNull(schema) {
				schema = json.RawMessage(`{"type":"object"}`)
			}
			mt := messagesTool{Name: t.Name, Description: t.Description, InputSchema: schema}
			if r.Source == llm.SourceMessages {
				mt.Strict = t.Strict
			}
			out.Tools = append(out.Tools, mt)
		}
		out.ToolChoice = messagesToolChoiceOf(r)
	}
	return out, trimMessagesPrefill(out)
}

// trimMessagesPrefill cuts the trailing whitespace of a trailing assistant
// message, dropping what becomes empty, and returns what it cut.
func trimMessagesPrefill(out *messagesRequestOut) string {
	var cut string
	for n := len(out.Messages); n > 0; n = len(out.Messages) {
		m := &out.Messages[n-1]
		if m.Role != "assistant" {
			break
		}
		k := len(m.blocks) - 1
		if m.blocks[k].Type != "text" {
			break
		}
		text := m.blocks[k].Text
		trimmed := strings.TrimRightFunc(text, unicode.IsSpace)
		cut = text[len(trimmed):] + cut
		if trimmed != "" {
			m.blocks[k].Text = trimmed
			break
		}
		m.blocks = m.blocks[:k]
		if len(m.blocks) == 0 {
			out.Messages = out.Messages[:n-1]
		}
	}
	return cut
}

func messagesToolChoiceOf(r *llm.Request) *messagesToolChoice {
	c := &messagesToolChoice{Type: "auto"}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Mode {
		case llm.ToolNone:
			return &messagesToolChoice{Type: "none"}
		case llm.ToolRequired:
			c.Type = "any"
		case llm.ToolFunction:
			c.Type, c.Name = "tool", tc.Name
		}
	}
	if p := r.ParallelToolCalls; p != nil {
		disable := !*p
		c.DisableParallelToolUse = &disable
	} else if r.ToolChoice == nil {
		return nil
	}
	return c
}

// messagesBlocks converts content parts to blocks, dropping empty text,
// which Anthropic rejects.
func messagesBlocks(ps []llm.Part) []messagesBlockOut {
	bs := make([]messagesBlockOut, 0, len(ps))
	for _, p := range ps {
		switch {
		case p.Type == llm.PartImage:
			bs = append(bs, messagesBlockOut{Type: "image", Source: messagesImageSource(p.URL)})
		case p.Text != "":
			bs = append(bs, messagesBlockOut{Type: "text", Text: p.Text})
		}
	}
	return bs
}

// messagesImageSource turns an image URL into a source: base64 for data:
// URLs (percent-encoded ones are re-encoded), url for the rest.
func messagesImageSource(u string) *messagesSource {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return &messagesSource{Type: "url", URL: u}
	}
	meta, data, _ := strings.Cut(rest, ",")
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = mediaType[:i]
	}
	if mediaType == "" {
		mediaType = "image/png"
	}
	if !isBase64 {
		raw, err := url.PathUnescape(data)
		if err != nil {
			raw = data
		}
		data = base64.StdEncoding.EncodeToString([]byte(raw))
	}
	return &messagesSource{Type: "base64", MediaType: mediaType, Data: data}
}

// messagesToolID is a tool-call id as Anthropic accepts it: ^[A-Za-z0-9_-]+$.
// Other upstreams' ids that do not fit (Moonshot's "functions.f:0", an
// empty one) are replaced by a hash, the same for a call and its result.
func messagesToolID(id string) string {
	ok := id != ""
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-'
	}
	if ok {
		return id
	}
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	h := sha256.Sum256([]byte(id))
	b := []byte("toolu_")
	for _, c := range h[:24] {
		b = append(b, digits[int(c)%len(digits)])
	}
	return string(b)
}

// messagesInput is a call's arguments as Anthropic's input object.
func messagesInput(args string) json.RawMessage {
	s := strings.TrimSpace(args)
	if len(s) > 0 && s[0] == '{' && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return json.RawMessage(`{}`)
}
