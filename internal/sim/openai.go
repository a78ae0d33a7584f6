package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// This file is the OpenAI Chat Completions wire format (wire README §1):
// request decoding and the encoder for responses, chunks and errors.

// maxBody bounds a request body.
const maxBody = 32 << 20

type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

type chatMessage struct {
	Role    string      `json:"role"`
	Content chatContent `json:"content"`
}

// chatContent is a message's text: the content string, or the text parts
// of a content array joined by "\n" (images and audio contribute nothing).
type chatContent string

func (c *chatContent) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || b[0] == 'n':
		*c = ""
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, (*string)(c))
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" && p.Type != "input_text" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(p.Text)
	}
	*c = chatContent(sb.String())
	return nil
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// openAIChat serves POST /v1/chat/completions.
func (s *Server) openAIChat(w http.ResponseWriter, r *http.Request) {
	arrived := s.now()
	var cr chatRequest
	req, invalid := decodeChat(w, r, &cr)
	enc := &openAI{
		model:        cr.Model,
		created:      arrived.Unix(),
		includeUsage: req.includeUsage,
	}
	s.serve(w, r, enc, arrived, cr.Model, &req, invalid)
}

// decodeChat decodes an OpenAI request into cr and the engine's request.
// It returns a failure for requests OpenAI would reject with 400.
func decodeChat(w http.ResponseWriter, r *http.Request, cr *chatRequest) (request, *failure) {
	var req request
	body := http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(body).Decode(cr); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, &failure{status: 413, kind: failInvalid, message: "Request body too large."}
		}
		if errors.Is(err, io.EOF) {
			return req, &failure{status: 400, kind: failInvalid, message: "We could not parse the JSON body of your request: the body is empty."}
		}
		return req, &failure{status: 400, kind: failInvalid, message: "We could not parse the JSON body of your request. (" + err.Error() + ")"}
	}
	req.stream = cr.Stream
	req.includeUsage = cr.Stream && cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	if cr.Model == "" {
		return req, &failure{status: 400, kind: failInvalid, param: "model", message: "you must provide a model parameter"}
	}
	if len(cr.Messages) == 0 {
		return req, &failure{status: 400, kind: failInvalid, param: "messages", message: "[] is too short - 'messages'"}
	}
	req.messages = make([]message, len(cr.Messages))
	for i, m := range cr.Messages {
		var rl role
		switch m.Role {
		case "system", "developer", "user":
		case "assistant":
			rl = roleAssistant
		case "tool", "function":
			rl = roleTool
		default:
			return req, &failure{status: 400, kind: failInvalid, param: "messages[" + strconv.Itoa(i) + "].role",
				message: "Invalid value: " + strconv.Quote(m.Role) + ". Supported values are: 'system', 'developer', 'user', 'assistant', and 'tool'."}
		}
		req.messages[i] = message{role: rl, text: string(m.Content)}
	}
	if f := checkMax("max_tokens", cr.MaxTokens); f != nil {
		return req, f
	}
	if f := checkMax("max_completion_tokens", cr.MaxCompletionTokens); f != nil {
		return req, f
	}
	switch {
	case cr.MaxCompletionTokens != nil:
		req.maxTokens = *cr.MaxCompletionTokens
	case cr.MaxTokens != nil:
		req.maxTokens = *cr.MaxTokens
	}
	for _, t := range cr.Tools {
		if t.Type == "function" || t.Type == "" {
			req.tools = append(req.tools, tool{name: t.Function.Name, params: t.Function.Parameters})
		}
	}
	req.toolChoice = decodeToolChoice(cr.ToolChoice)
	if rf := cr.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			req.format.kind = formatJSONObject
		case "json_schema":
			req.format.kind = formatJSONSchema
			if rf.JSONSchema != nil {
				req.format.schema = rf.JSONSchema.Schema
			}
		}
	}
	return req, nil
}

func checkMax(name string, v *int) *failure {
	if v == nil || *v >= 1 {
		return nil
	}
	return &failure{status: 400, kind: failInvalid, param: name,
		message: "Invalid '" + name + "': integer below minimum value. Expected a value >= 1, but got " + strconv.Itoa(*v) + " instead."}
}

// decodeToolChoice reads "none" | "auto" | "required" |
// {type:"function",function:{name}} | {type:"allowed_tools",...}.
func decodeToolChoice(raw json.RawMessage) toolChoice {
	if len(raw) == 0 {
		return toolChoice{}
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return toolChoice{none: s == "none"}
	}
	var c struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
		AllowedTools struct {
			Tools []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		} `json:"allowed_tools"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return toolChoice{}
	}
	if c.Function.Name == "" && len(c.AllowedTools.Tools) > 0 {
		return toolChoice{name: c.AllowedTools.Tools[0].Function.Name}
	}
	return toolChoice{name: c.Function.Name}
}

// openAIModels serves GET /v1/models: one entry per configured profile.
func (s *Server) openAIModels(w http.ResponseWriter) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, n := range s.names {
		list.Data = append(list.Data, model{ID: n, Object: "model", OwnedBy: "keel-sim"})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// openAI encodes one Chat Completions response.
type openAI struct {
	id           string
	model        string
	created      int64
	includeUsage bool
	head         []byte // the opening of every chunk, up to "choices":[
}

var _ encoder = (*openAI)(nil)

const openAIFingerprint = "fp_keelsim"

func (o *openAI) contentType(stream bool) string {
	if stream {
		return "text/event-stream; charset=utf-8"
	}
	return "application/json"
}

// chunk appends `data: {...,"choices":[` to b.
func (o *openAI) chunk(b []byte) []byte {
	if o.head == nil {
		h := append(make([]byte, 0, 256), `data: {"id":`...)
		h = appendString(h, o.id)
		h = append(h, `,"object":"chat.completion.chunk","created":`...)
		h = strconv.AppendInt(h, o.created, 10)
		h = append(h, `,"model":`...)
		h = appendString(h, o.model)
		h = append(h, `,"service_tier":"default","system_fingerprint":"`+openAIFingerprint+`","choices":[`...)
		o.head = h
	}
	return append(b, o.head...)
}

// end closes a chunk opened by chunk whose choice has been written up to
// its delta, and ends the event with a blank line.
func (o *openAI) end(b []byte, finish string) []byte {
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	b = appendNullable(b, finish)
	b = append(b, "}]"...)
	if o.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

func (o *openAI) appendStart(b []byte, rep *reply) []byte {
	o.id = idString("chatcmpl-", rep.attempt)
	b = o.chunk(b)
	if !rep.tool {
		b = append(b, `{"index":0,"delta":{"role":"assistant","content":"","refusal":null}`...)
		return o.end(b, "")
	}
	b = append(b, `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":`...)
	b = appendString(b, rep.toolID)
	b = append(b, `,"type":"function","function":{"name":`...)
	b = appendString(b, rep.toolName)
	b = append(b, `,"arguments":""}}],"refusal":null}`...)
	return o.end(b, "")
}

func (o *openAI) appendPiece(b []byte, rep *reply, piece string) []byte {
	b = o.chunk(b)
	if rep.tool {
		b = append(b, `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":`...)
		b = appendString(b, piece)
		b = append(b, "}}]}"...)
	} else {
		b = append(b, `{"index":0,"delta":{"content":`...)
		b = appendString(b, piece)
		b = append(b, '}')
	}
	return o.end(b, "")
}

// appendGarbage appends an event whose data is not valid JSON: a chunk
// broken off inside a string.
func (o *openAI) appendGarbage(b []byte) []byte {
	b = append(b, `data: {"id":`...)
	b = appendString(b, o.id)
	return append(b, `,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"\u00`+"\n\n"...)
}

func (o *openAI) appendFinish(b []byte, rep *reply, u usage) []byte {
	b = o.chunk(b)
	b = append(b, `{"index":0,"delta":{}`...)
	b = o.end(b, rep.finish)
	if o.includeUsage {
		b = o.chunk(b)
		b = append(b, `],"usage":`...)
		b = appendUsage(b, u)
		b = append(b, "}\n\n"...)
	}
	return b
}

func (o *openAI) appendDone(b []byte) []byte {
	return append(b, "data: [DONE]\n\n"...)
}

func (o *openAI) appendWhole(b []byte, rep *reply, u usage) []byte {
	o.id = idString("chatcmpl-", rep.attempt)
	b = append(b, `{"id":`...)
	b = appendString(b, o.id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, o.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, o.model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if rep.tool {
		b = append(b, `null,"tool_calls":[{"id":`...)
		b = appendString(b, rep.toolID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendString(b, rep.toolName)
		b = append(b, `,"arguments":"`...)
		for _, p := range rep.pieces {
			b = appendEscaped(b, p)
		}
		b = append(b, `"}}]`...)
	} else {
		b = append(b, '"')
		for _, p := range rep.pieces {
			b = appendEscaped(b, p)
		}
		b = append(b, '"')
	}
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":`...)
	b = appendString(b, rep.finish)
	b = append(b, `}],"usage":`...)
	b = appendUsage(b, u)
	return append(b, `,"service_tier":"default","system_fingerprint":"`+openAIFingerprint+`"}`+"\n"...)
}

func appendUsage(b []byte, u usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.prompt+u.completion), 10)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// appendError renders fl in OpenAI's envelope
// {"error":{"message","type","param","code"}}, all four keys present.
func (o *openAI) appendError(b []byte, fl *failure) []byte {
	typ, code, msg := "invalid_request_error", "", ""
	switch fl.kind {
	case failContextLength:
		code = "context_length_exceeded"
		msg = "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."
		if fl.param == "" {
			fl.param = "messages"
		}
	case failContentFilter:
		code = "content_filter"
		msg = "The response was filtered due to the prompt triggering the content management policy. Please modify your prompt and retry."
		if fl.param == "" {
			fl.param = "prompt"
		}
	case failPrefill:
		msg = "This model does not support assistant message prefill. The conversation must end with a user or tool message."
	case failInvalid:
		msg = fl.message
	default:
		typ, code, msg = openAIStatusError(fl.status, o.model)
	}
	if fl.typ != "" {
		typ = fl.typ
	}
	if fl.code != "" {
		code = fl.code
	}
	if fl.message != "" {
		msg = fl.message
	}
	return appendOpenAIError(b, typ, code, fl.param, msg)
}

// openAIStatusError is OpenAI's error type, code and message for an HTTP
// status, as the API words them (wire README §10).
func openAIStatusError(status int, model string) (typ, code, msg string) {
	switch status {
	case 400:
		return "invalid_request_error", "", "Invalid request."
	case 401:
		return "invalid_request_error", "invalid_api_key", "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
	case 403:
		return "invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"
	case 404:
		return "invalid_request_error", "model_not_found", "The model `" + model + "` does not exist or you do not have access to it."
	case 408:
		return "timeout", "", "Request timed out."
	case 409:
		return "invalid_request_error", "conflict", "Request conflicts with another request in progress."
	case 413:
		return "invalid_request_error", "request_too_large", "Request body too large."
	case 429:
		return "requests", "rate_limit_exceeded", "Rate limit reached for " + model + " in organization org-keelsim on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s."
	case 500:
		return "server_error", "", "The server had an error while processing your request. Sorry about that!"
	case 502:
		return "server_error", "", "Bad gateway."
	case 503:
		return "server_error", "", "The server is overloaded or not ready yet."
	case 504:
		return "server_error", "", "Gateway timeout."
	case 529:
		return "server_error", "overloaded", "The engine is currently overloaded, please try again later."
	}
	if status >= 500 {
		return "server_error", "", "The server had an error while processing your request. Sorry about that!"
	}
	return "invalid_request_error", "", http.StatusText(status)
}

func appendOpenAIError(b []byte, typ, code, param, msg string) []byte {
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"param":`...)
	b = appendNullable(b, param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, code)
	return append(b, "}}\n"...)
}

// writeOpenAIError answers a request outside any attempt (unknown URL,
// wrong method).
func writeOpenAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(appendOpenAIError(nil, typ, code, "", msg))
}
