package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// OpenAI Responses API requests (../shared/wire/README.md §2), for
// clients: DecodeResponsesRequest, and Resolve for the context a request
// takes from stored responses.

// ResponsesRequest is a client's Responses API request: the neutral
// Request of the turn it asks for, and what the Responses API adds to a
// chat turn.
type ResponsesRequest struct {
	// Request is the turn to run. Its Messages are the instructions (as a
	// system message), then, after Resolve, the context of the previous
	// responses, then the input.
	Request *llm.Request
	// Instructions is the system prompt of this request alone: OpenAI does
	// not carry it over to requests that continue from this one.
	Instructions string
	// Store is whether the client asked keel to keep the response (store;
	// true unless the client sent false, as with OpenAI).
	Store bool
	// PreviousResponseID names the stored response this request continues
	// from, or is empty.
	PreviousResponseID string
	// Metadata is the client's metadata, echoed in the response.
	Metadata map[string]string
	// Items is the input as a list of Responses input items, each as the
	// client sent it; a string input is one user message item. Resolve
	// replaces item references with the items they name. They are what a
	// stored response keeps of its request.
	Items []json.RawMessage

	refs      int    // item_reference items left for Resolve
	user      string // the user field, echoed
	safetyID  string // the safety_identifier field, echoed
	verbosity string // text.verbosity, echoed
}

// maxResponseChain bounds how many stored responses one request may
// reach through previous_response_id.
const maxResponseChain = 1000

// NewResponseID returns a new random response id, "resp_" and 48 hex
// digits. The ids of a response's output items are derived from it (see
// NewResponsesEncoder), which is how Resolve finds a referenced item.
func NewResponseID() string {
	var b [24]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "resp_" + hex.EncodeToString(b[:])
}

type respTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

type respText struct {
	Format *struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"format"`
	Verbosity string `json:"verbosity"`
}

// DecodeResponsesRequest decodes and validates a client's Responses API
// body. Fields keel does not model are kept verbatim in Request.Extra.
// Errors are *chat.Error values with code EInvalid that name the offending
// param.
//
// A request that continues a stored response (previous_response_id) or
// refers to stored items (item_reference) is complete only after Resolve.
func DecodeResponsesRequest(body []byte) (*ResponsesRequest, error) {
	ms, ok := bodyMembers(body)
	if !ok {
		return nil, invalid("", "the request body must be a JSON object")
	}
	r := &llm.Request{Source: llm.SourceResponses}
	rr := &ResponsesRequest{Request: r, Store: true}
	hasInput := false
	for _, m := range ms {
		k, v := m.key, m.raw
		var err error
		switch k {
		case "model":
			err = decodeField(k, v, &r.Model)
		case "input":
			hasInput = true
			rr.Items, err = decodeResponsesInput(v)
		case "instructions":
			err = decodeField(k, v, &rr.Instructions)
		case "tools":
			err = decodeResponsesTools(v, r)
		case "tool_choice":
			r.ToolChoice, err = decodeResponsesToolChoice(v)
		case "parallel_tool_calls":
			err = decodeField(k, v, &r.ParallelToolCalls)
		case "text":
			err = decodeResponsesText(v, rr)
		case "max_output_tokens":
			err = decodePositive(k, v, &r.MaxTokens)
		case "temperature":
			err = decodeRange(k, v, &r.Temperature, 0, 2)
		case "top_p":
			err = decodeRange(k, v, &r.TopP, 0, 1)
		case "stream":
			var s *bool
			if err = decodeField(k, v, &s); s != nil {
				r.Stream = *s
			}
		case "store":
			var s *bool
			if err = decodeField(k, v, &s); s != nil {
				rr.Store = *s
			}
		case "previous_response_id":
			err = decodeField(k, v, &rr.PreviousResponseID)
		case "metadata":
			rr.Metadata, err = decodeResponsesMetadata(v)
		case "user":
			err = decodeField(k, v, &rr.user)
		case "safety_identifier":
			err = decodeField(k, v, &rr.safetyID)
		case "conversation":
			if !isNull(v) {
				err = invalid(k, "conversation is not supported; continue with previous_response_id instead")
			}
		case "background":
			var b bool
			if err = decodeField(k, v, &b); err == nil && b {
				err = invalid(k, "background responses are not supported")
			}
		default:
			if r.Extra == nil {
				r.Extra = make(map[string]json.RawMessage)
			}
			r.Extra[k] = v
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case r.Model == "":
		return nil, invalid("model", "model is required")
	case !hasInput || rr.Items == nil:
		return nil, invalid("input", "input is required")
	}
	r.User = rr.safetyID
	if r.User == "" {
		r.User = rr.user
	}
	msgs, err := decodeResponsesItems("input", rr.Items, rr.systemMessages(), &rr.refs)
	if err != nil {
		return nil, err
	}
	r.Messages = msgs
	return rr, nil
}

// systemMessages returns the messages every request starts with: its
// instructions, if any.
func (rr *ResponsesRequest) systemMessages() []llm.Message {
	if rr.Instructions == "" {
		return nil
	}
	return []llm.Message{{Role: llm.RoleSystem, Content: []llm.Part{llm.TextPart(rr.Instructions)}}}
}

// decodeResponsesInput returns the input as a list of items: a string is
// one user message.
func decodeResponsesInput(raw json.RawMessage) ([]json.RawMessage, error) {
	if isNull(raw) {
		return nil, invalid("input", "input is required")
	}
	if raw[0] == '"' {
		var s string
		if err := decodeField("input", raw, &s); err != nil {
			return nil, err
		}
		item := append([]byte(`{"role":"user","content":`), appendJSONString(nil, s)...)
		return []json.RawMessage{append(item, '}')}, nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, invalid("input", "input must be a string or an array of input items")
	}
	if len(items) == 0 {
		return nil, invalid("input", "input must not be empty")
	}
	for i, it := range items {
		items[i] = bytes.TrimSpace(it)
	}
	return items, nil
}

// respItem is a Responses input or output item: a message, a function call
// or its output, a reasoning item, or a reference to a stored item.
type respItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	ID      string          `json:"id"`
	// function_call and function_call_output
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	// reasoning
	Summary []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

type respPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
	Detail   string `json:"detail"`
}

// decodeResponsesItems appends the messages items make to msgs. Items on
// the assistant's side of a turn (reasoning, assistant text, function
// calls) that follow each other become one assistant message, the shape
// Chat and Anthropic need: parallel calls in one message, their outputs
// after it. Each item_reference is counted in *refs, or is an error if
// refs is nil.
func decodeResponsesItems(param string, items []json.RawMessage, msgs []llm.Message, refs *int) ([]llm.Message, error) {
	for i, raw := range items {
		p := fmt.Sprintf("%s[%d]", param, i)
		var it respItem
		if err := decodeField(p, raw, &it); err != nil {
			return nil, err
		}
		var last *llm.Message
		if n := len(msgs); n > 0 && msgs[n-1].Role == llm.RoleAssistant {
			last = &msgs[n-1]
		}
		switch it.Type {
		case "", "message":
			m := llm.Message{}
			switch it.Role {
			case "user":
				m.Role = llm.RoleUser
			case "assistant":
				m.Role = llm.RoleAssistant
			case "system", "developer":
				m.Role = llm.RoleSystem
			case "":
				return nil, invalid(p+".role", "%s.role is required", p)
			default:
				return nil, invalid(p+".role", "%s.role %q is not one of user, assistant, system, developer", p, it.Role)
			}
			parts, err := decodeResponsesContent(p+".content", it.Content)
			if err != nil {
				return nil, err
			}
			if m.Role == llm.RoleAssistant && last != nil && len(last.Content) == 0 && len(last.ToolCalls) == 0 {
				last.Content = parts // the text after its reasoning
				continue
			}
			m.Content = parts
			msgs = append(msgs, m)
		case "function_call":
			switch {
			case it.CallID == "":
				return nil, invalid(p+".call_id", "%s.call_id is required", p)
			case it.Name == "":
				return nil, invalid(p+".name", "%s.name is required", p)
			}
			tc := llm.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}
			if last == nil {
				msgs = append(msgs, llm.Message{Role: llm.RoleAssistant})
				last = &msgs[len(msgs)-1]
			}
			last.ToolCalls = append(last.ToolCalls, tc)
		case "function_call_output":
			if it.CallID == "" {
				return nil, invalid(p+".call_id", "%s.call_id is required", p)
			}
			parts, err := decodeResponsesContent(p+".output", it.Output)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, llm.Message{Role: llm.RoleTool, ToolCallID: it.CallID, Content: parts})
		case "reasoning":
			text, err := decodeResponsesReasoning(p, &it)
			if err != nil {
				return nil, err
			}
			if text == "" {
				continue // encrypted only: nothing any upstream can use
			}
			if last != nil && len(last.Content) == 0 && len(last.ToolCalls) == 0 {
				if last.Reasoning != "" {
					text = last.Reasoning + "\n\n" + text
				}
				last.Reasoning = text
				continue
			}
			msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Reasoning: text})
		case "item_reference":
			if it.ID == "" {
				return nil, invalid(p+".id", "%s.id is required", p)
			}
			if refs == nil {
				return nil, invalid(p+".type", "%s: item_reference is not allowed here", p)
			}
			*refs++
		default:
			return nil, invalid(p+".type", "%s.type %q is not supported; use message, function_call, function_call_output, reasoning or item_reference", p, it.Type)
		}
	}
	return msgs, nil
}

// decodeResponsesContent reads a message's content or a function call's
// output: a string, or a non-empty array of content parts.
func decodeResponsesContent(param string, raw json.RawMessage) ([]llm.Part, error) {
	if isNull(raw) {
		return nil, invalid(param, "%s is required", param)
	}
	if raw[0] == '"' {
		var s string
		if err := decodeField(param, raw, &s); err != nil {
			return nil, err
		}
		return []llm.Part{llm.TextPart(s)}, nil
	}
	var ps []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &ps) != nil {
		return nil, invalid(param, "%s must be a string or an array of content parts", param)
	}
	if len(ps) == 0 {
		return nil, invalid(param, "%s must not be empty", param)
	}
	parts := make([]llm.Part, 0, len(ps))
	for i, praw := range ps {
		pp := fmt.Sprintf("%s[%d]", param, i)
		var p respPart
		if err := decodeField(pp, praw, &p); err != nil {
			return nil, err
		}
		switch p.Type {
		case "input_text", "output_text":
			parts = append(parts, llm.TextPart(p.Text))
		case "refusal":
			parts = append(parts, llm.TextPart(p.Refusal))
		case "input_image":
			if p.ImageURL == "" {
				if p.FileID != "" {
					return nil, invalid(pp+".file_id", "%s: images by file_id are not supported; send image_url", pp)
				}
				return nil, invalid(pp+".image_url", "%s.image_url is required", pp)
			}
			parts = append(parts, llm.Part{Type: llm.PartImage, URL: p.ImageURL, Detail: p.Detail})
		case "":
			return nil, invalid(pp+".type", "%s.type is required", pp)
		default:
			return nil, invalid(pp+".type", "content part type %q is not supported", p.Type)
		}
	}
	return parts, nil
}

// decodeResponsesReasoning returns a reasoning item's text: its content
// (reasoning_text parts) or else its summary, parts joined by blank lines.
func decodeResponsesReasoning(param string, it *respItem) (string, error) {
	var texts []string
	if !isNull(it.Content) {
		var cs []struct {
			Text string `json:"text"`
		}
		if err := decodeField(param+".content", it.Content, &cs); err != nil {
			return "", err
		}
		for _, c := range cs {
			texts = append(texts, c.Text)
		}
	}
	if len(texts) == 0 {
		for _, s := range it.Summary {
			texts = append(texts, s.Text)
		}
	}
	return strings.Join(texts, "\n\n"), nil
}

func decodeResponsesTools(raw json.RawMessage, r *llm.Request) error {
	var ts []json.RawMessage
	if err := decodeField("tools", raw, &ts); err != nil {
		return err
	}
	for i, traw := range ts {
		p := fmt.Sprintf("tools[%d]", i)
		var t respTool
		if err := decodeField(p, traw, &t); err != nil {
			return err
		}
		if t.Type != "function" {
			return invalid(p+".type", "tool type %q is not supported; use \"function\"", t.Type)
		}
		if t.Name == "" {
			return invalid(p+".name", "%s.name is required", p)
		}
		if isNull(t.Parameters) {
			t.Parameters = nil
		}
		r.Tools = append(r.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict})
	}
	return nil
}

func decodeResponsesToolChoice(raw json.RawMessage) (*llm.ToolChoice, error) {
	if isNull(raw) {
		return nil, nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch m := llm.ToolChoiceMode(mode); m {
		case llm.ToolAuto, llm.ToolNone, llm.ToolRequired:
			return &llm.ToolChoice{Mode: m}, nil
		}
		return nil, invalid("tool_choice", "tool_choice %q is not one of none, auto, required", mode)
	}
	var obj struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Name == "" {
		return nil, invalid("tool_choice", `tool_choice must be "none", "auto", "required" or {"type":"function","name":…}`)
	}
	return &llm.ToolChoice{Mode: llm.ToolFunction, Name: obj.Name}, nil
}

func decodeResponsesText(raw json.RawMessage, rr *ResponsesRequest) error {
	if isNull(raw) {
		return nil
	}
	var t respText
	if err := decodeField("text", raw, &t); err != nil {
		return err
	}
	rr.verbosity = t.Verbosity
	f := t.Format
	if f == nil {
		return nil
	}
	switch typ := llm.ResponseFormatType(f.Type); typ {
	case llm.FormatText, llm.FormatJSONObject:
		rr.Request.ResponseFormat = &llm.ResponseFormat{Type: typ}
	case llm.FormatJSONSchema:
		if f.Name == "" {
			return invalid("text.format.name", "text.format.name is required")
		}
		if isNull(f.Schema) {
			return invalid("text.format.schema", "text.format.schema is required")
		}
		rr.Request.ResponseFormat = &llm.ResponseFormat{Type: typ, Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict}
	default:
		return invalid("text.format.type", "text.format.type %q is not one of text, json_object, json_schema", f.Type)
	}
	return nil
}

// decodeResponsesMetadata reads metadata within OpenAI's limits: at most
// 16 pairs, keys up to 64 characters, string values up to 512.
func decodeResponsesMetadata(raw json.RawMessage) (map[string]string, error) {
	var m map[string]string
	if err := decodeField("metadata", raw, &m); err != nil {
		return nil, err
	}
	if len(m) > 16 {
		return nil, invalid("metadata", "metadata takes at most 16 pairs")
	}
	for _, k := range sortedKeys(m) {
		if len(k) > 64 || len(m[k]) > 512 {
			return nil, invalid("metadata", "metadata keys take at most 64 characters and values 512")
		}
	}
	return m, nil
}

// Resolve completes a request that refers to stored responses: it puts
// the context of the previous responses (previous_response_id, followed
// back to the first: each one's input and output, but not its
// instructions) between the instructions and the input, and replaces each
// item_reference with the output item it names. load returns the stored
// response with the given id, for the caller's key only; a nil load means
// keel stores no responses. Resolve does nothing for a request that refers
// to none.
//
// A response or item that is not found is a *chat.Error with code
// EInvalid naming the param, as OpenAI reports it; other errors from load
// are returned wrapped.
func (rr *ResponsesRequest) Resolve(load func(id string) (*chat.Response, error)) error {
	if rr.PreviousResponseID == "" && rr.refs == 0 {
		return nil
	}
	if load == nil {
		if rr.PreviousResponseID != "" {
			return invalid("previous_response_id", "previous_response_id needs stored responses, and this server stores none")
		}
		return invalid("input", "item_reference needs stored responses, and this server stores none")
	}
	loaded := make(map[string]*chat.Response)
	get := func(id string) (*chat.Response, error) {
		if r, ok := loaded[id]; ok {
			return r, nil
		}
		r, err := load(id)
		if err != nil {
			return nil, err
		}
		loaded[id] = r
		return r, nil
	}

	var chain []*chat.Response
	for id := rr.PreviousResponseID; id != ""; {
		if _, ok := loaded[id]; ok || len(chain) == maxResponseChain {
			return invalid("previous_response_id", "the chain of previous responses is longer than %d", maxResponseChain)
		}
		r, err := get(id)
		if chat.ErrorCode(err) == chat.ENotFound {
			return invalid("previous_response_id", "previous response with id %q not found", id)
		}
		if err != nil {
			return fmt.Errorf("wire: load previous response %s: %w", id, err)
		}
		chain = append(chain, r)
		id = r.PreviousID
	}

	if rr.refs > 0 {
		items := make([]json.RawMessage, len(rr.Items))
		for i, raw := range rr.Items {
			items[i] = raw
			var it struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			if json.Unmarshal(raw, &it) != nil || it.Type != "item_reference" {
				continue
			}
			item, err := respFindItem(it.ID, get)
			if err != nil {
				if chat.ErrorCode(err) == chat.ENotFound {
					return invalid(fmt.Sprintf("input[%d].id", i), "item with id %q not found", it.ID)
				}
				return fmt.Errorf("wire: load item %s: %w", it.ID, err)
			}
			items[i] = item
		}
		rr.Items = items
	}

	msgs := rr.systemMessages()
	for i := len(chain) - 1; i >= 0; i-- {
		r := chain[i]
		for _, list := range []json.RawMessage{r.Input, r.Output} {
			var items []json.RawMessage
			if len(list) > 0 {
				if err := json.Unmarshal(list, &items); err != nil {
					return fmt.Errorf("wire: stored response %s: %w", r.ID, err)
				}
			}
			var err error
			if msgs, err = decodeResponsesItems("previous_response_id", items, msgs, nil); err != nil {
				// keel stored what it had validated: this is its own
				// fault, not the client's, so not a *chat.Error.
				return fmt.Errorf("wire: stored response %s: %v", r.ID, err)
			}
		}
	}
	msgs, err := decodeResponsesItems("input", rr.Items, msgs, nil)
	if err != nil {
		return err
	}
	rr.Request.Messages = msgs
	rr.refs = 0
	return nil
}

// respFindItem returns the output item with the given id. Output item ids
// are derived from their response's id (respItemID), so the id names the
// response to load.
func respFindItem(id string, get func(id string) (*chat.Response, error)) (json.RawMessage, error) {
	respID, ok := respOfItem(id)
	if !ok {
		return nil, chat.Errorf(chat.ENotFound, "item %q not found", id)
	}
	r, err := get(respID)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if len(r.Output) > 0 {
		if err := json.Unmarshal(r.Output, &items); err != nil {
			return nil, fmt.Errorf("stored response %s: %w", r.ID, err)
		}
	}
	for _, item := range items {
		var it struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(item, &it) == nil && it.ID == id {
			return item, nil
		}
	}
	return nil, chat.Errorf(chat.ENotFound, "item %q not found", id)
}

// The prefixes of output item ids, by kind.
const (
	respMsgPrefix       = "msg_"
	respCallPrefix      = "fc_"
	respReasoningPrefix = "rs_"
)

// respItemID returns the id of output item n of the response with id
// respID: the item's prefix, respID without "resp_", "_" and n.
func respItemID(prefix, respID string, n int) string {
	return prefix + strings.TrimPrefix(respID, "resp_") + "_" + strconv.Itoa(n)
}

// respOfItem returns the id of the response an output item id belongs to.
func respOfItem(id string) (string, bool) {
	for _, prefix := range []string{respMsgPrefix, respCallPrefix, respReasoningPrefix} {
		if rest, ok := strings.CutPrefix(id, prefix); ok {
			i := strings.LastIndexByte(rest, '_')
			if i <= 0 {
				return "", false
			}
			if _, err := strconv.Atoi(rest[i+1:]); err != nil {
				return "", false
			}
			return "resp_" + rest[:i], true
		}
	}
	return "", false
}

// appendInput appends the request's items as one JSON array.
func (rr *ResponsesRequest) appendInput(dst []byte) []byte {
	dst = append(dst, '[')
	for i, it := range rr.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = respCompact(dst, it)
	}
	return append(dst, ']')
}

// respCompact appends raw without insignificant whitespace: JSON a
// client sent pretty-printed must not break an SSE data line.
func respCompact(dst []byte, raw json.RawMessage) []byte {
	b := bytes.NewBuffer(dst)
	if err := json.Compact(b, raw); err != nil {
		return append(dst, "null"...) // cannot happen: raw came out of a JSON document
	}
	return b.Bytes()
}
