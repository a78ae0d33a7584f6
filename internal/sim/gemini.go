package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file is the Google Gemini generateContent wire format (wire README
// §4): request decoding and the encoder for answers, chunks and errors.
//
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse
//
// Without alt=sse a stream is one JSON array sent element by element, as
// Google sends it. Gemini has no end marker, so no_done changes nothing: the
// body ends cleanly after the finish chunk either way. A content_filter
// fault is a blocked prompt: a 200 whose only chunk has
// promptFeedback.blockReason and no candidates. Function calls are sent
// whole, in one chunk, without an id, as Gemini does. Requests are read in
// the camelCase the SDKs send; the snake_case Google also accepts is not.

type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *struct {
		MaxOutputTokens    *int            `json:"maxOutputTokens"`
		ResponseMIMEType   string          `json:"responseMimeType"`
		ResponseSchema     json.RawMessage `json:"responseSchema"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
	} `json:"generationConfig"`
}

type geminiContent struct {
	Role  string       `json:"role"`
	Parts []geminiPart `json:"parts"`
}

type geminiPart struct {
	Text             *string `json:"text"`
	Thought          bool    `json:"thought"`
	FunctionResponse *struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
}

// gemini serves POST /v1beta/models/{model}:{method}.
func (s *Server) gemini(w http.ResponseWriter, r *http.Request) {
	arrived := s.now()
	rest := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
	i := strings.LastIndexByte(rest, ':')
	model, method := "", rest
	if i >= 0 {
		model, method = rest[:i], rest[i+1:]
	}
	var stream bool
	switch {
	case model == "":
		writeGeminiError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	case method == "generateContent":
	case method == "streamGenerateContent":
		stream = true
	default:
		writeGeminiError(w, http.StatusNotFound, "NOT_FOUND",
			"models/"+model+" is not found for API version v1beta, or is not supported for "+method+". Call ListModels to see the list of available models and their supported methods.")
		return
	}
	req, invalid := decodeGemini(w, r)
	req.stream = stream
	enc := &gemini{model: model, array: stream && r.URL.Query().Get("alt") != "sse"}
	s.serve(w, r, enc, arrived, model, &req, invalid)
}

// decodeGemini decodes a generateContent body into the engine's request.
// Each content is one message: its text parts (and function responses)
// joined by "\n", as PromptOf joins messages, so that a conversation keel
// translated from OpenAI's format gets the same answer here as there. A
// user content that ends with a function response is a tool message, a
// model content an assistant one; systemInstruction is a first message.
func decodeGemini(w http.ResponseWriter, r *http.Request) (request, *failure) {
	var req request
	var gr geminiRequest
	body := http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(body).Decode(&gr); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return req, &failure{status: 413, kind: failInvalid, message: "Request payload size exceeds the limit: " + strconv.Itoa(maxBody) + " bytes."}
		case errors.Is(err, io.EOF):
			return req, &failure{status: 400, kind: failInvalid, message: "* GenerateContentRequest.contents: contents is not specified"}
		}
		return req, &failure{status: 400, kind: failInvalid, message: "Invalid JSON payload received. " + err.Error()}
	}
	if len(gr.Contents) == 0 {
		return req, &failure{status: 400, kind: failInvalid, message: "* GenerateContentRequest.contents: contents is not specified"}
	}
	if si := gr.SystemInstruction; si != nil {
		text, _ := geminiText(si.Parts)
		req.messages = append(req.messages, message{text: text})
	}
	for i, c := range gr.Contents {
		text, tool := geminiText(c.Parts)
		var rl role
		switch c.Role {
		case "user", "":
			if tool {
				rl = roleTool
			}
		case "function": // the older name of a function-response turn
			rl = roleTool
		case "model":
			rl = roleAssistant
		default:
			return req, &failure{status: 400, kind: failInvalid, param: "contents[" + strconv.Itoa(i) + "].role",
				message: "Please use a valid role: user, model."}
		}
		req.messages = append(req.messages, message{role: rl, text: text})
	}
	if g := gr.GenerationConfig; g != nil {
		if m := g.MaxOutputTokens; m != nil {
			if *m < 1 {
				return req, &failure{status: 400, kind: failInvalid, param: "generationConfig.maxOutputTokens",
					message: "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive."}
			}
			req.maxTokens = *m
		}
		switch {
		case len(g.ResponseJSONSchema) > 0 && string(g.ResponseJSONSchema) != "null":
			req.format = format{kind: formatJSONSchema, schema: g.ResponseJSONSchema}
		case len(g.ResponseSchema) > 0 && string(g.ResponseSchema) != "null":
			req.format = format{kind: formatJSONSchema, schema: openAPISchema(g.ResponseSchema)}
		case g.ResponseMIMEType == "application/json":
			req.format.kind = formatJSONObject
		}
	}
	for _, t := range gr.Tools {
		for _, fd := range t.FunctionDeclarations {
			params := fd.ParametersJSONSchema
			if len(params) == 0 || string(params) == "null" {
				params = openAPISchema(fd.Parameters)
			}
			req.tools = append(req.tools, tool{name: fd.Name, params: params})
		}
	}
	if tc := gr.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		fc := tc.FunctionCallingConfig
		switch {
		case fc.Mode == "NONE":
			req.toolChoice.none = true
		case len(fc.AllowedFunctionNames) > 0:
			req.toolChoice.name = fc.AllowedFunctionNames[0]
		}
	}
	return req, nil
}

// geminiText is the text of a content's parts, joined by "\n": text parts
// (not thoughts) and function responses, a response {"result": "…"} as its
// text and any other as its JSON, byte for byte as sent. tool reports
// whether the last part is a function response.
func geminiText(parts []geminiPart) (text string, tool bool) {
	var sb strings.Builder
	add := func(s string) {
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(s)
	}
	for _, p := range parts {
		tool = false
		switch {
		case p.FunctionResponse != nil:
			add(responseText(p.FunctionResponse.Response))
			tool = true
		case p.Text != nil && !p.Thought:
			add(*p.Text)
		}
	}
	return sb.String(), tool
}

// responseText undoes the wrapping of a tool result that is not a JSON
// object: {"result": X} is X, and X's text if X is a string.
func responseText(raw json.RawMessage) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil && len(obj) == 1 {
		if r, ok := obj["result"]; ok {
			var s string
			if json.Unmarshal(r, &s) == nil {
				return s
			}
			return string(bytes.TrimSpace(r))
		}
	}
	return string(bytes.TrimSpace(raw))
}

// openAPISchema turns Gemini's OpenAPI-subset schema, whose types may be
// upper case ("OBJECT"), into the JSON Schema instance reads.
func openAPISchema(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	var lower func(v any)
	lower = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "type" {
					v[k] = strings.ToLower(s)
					continue
				}
				lower(x)
			}
		case []any:
			for _, x := range v {
				lower(x)
			}
		}
	}
	lower(v)
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// gemini encodes one Gemini answer.
type gemini struct {
	model string
	// array sends a stream as one JSON array (no alt=sse).
	array bool
	id    string
	// events counts the stream events written, for the array's commas.
	events int
	// sent counts the pieces sent, for the running usage.
	sent int
	// args gathers a tool call's argument pieces: Gemini sends a call
	// whole.
	args []byte
}

var (
	_ encoder = (*gemini)(nil)
	_ refuser = (*gemini)(nil)
)

func (g *gemini) contentType(stream bool) string {
	if stream && !g.array {
		return "text/event-stream"
	}
	return "application/json; charset=UTF-8"
}

// open starts a stream event.
func (g *gemini) open(b []byte) []byte {
	g.events++
	switch {
	case !g.array:
		return append(b, "data: "...)
	case g.events == 1:
		return append(b, '[')
	}
	return append(b, ",\r\n"...)
}

// close ends a stream event.
func (g *gemini) close(b []byte) []byte {
	if g.array {
		return b
	}
	return append(b, "\n\n"...)
}

// candidate appends {"candidates":[{"content":{"parts":[ to b.
func candidate(b []byte) []byte {
	return append(b, `{"candidates":[{"content":{"parts":[`...)
}

// end closes a response opened by candidate whose parts are written.
func (g *gemini) end(b []byte, finish string, prompt, completion int) []byte {
	b = append(b, `],"role":"model"}`...)
	if finish != "" {
		b = append(b, `,"finishReason":"`...)
		b = append(b, finish...)
		b = append(b, '"')
	}
	b = append(b, `,"index":0}],`...)
	b = appendGeminiUsage(b, prompt, completion)
	return g.tail(b)
}

// tail appends the members every response ends with, and its brace.
func (g *gemini) tail(b []byte) []byte {
	b = append(b, `,"modelVersion":`...)
	b = appendString(b, g.model)
	b = append(b, `,"responseId":`...)
	b = appendString(b, g.id)
	return append(b, '}')
}

func appendGeminiUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `"usageMetadata":{"promptTokenCount":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	if completion > 0 {
		b = append(b, `,"candidatesTokenCount":`...)
		b = strconv.AppendInt(b, int64(completion), 10)
	}
	b = append(b, `,"totalTokenCount":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, '}')
}

func geminiFinish(finish string) string {
	if finish == "length" {
		return "MAX_TOKENS"
	}
	return "STOP"
}

// appendStart sends nothing: Gemini's first chunk carries the first text.
func (g *gemini) appendStart(b []byte, rep *reply) []byte {
	g.id = idString("", rep.attempt)
	return b
}

func (g *gemini) appendPiece(b []byte, rep *reply, piece string) []byte {
	g.sent++
	if rep.tool {
		g.args = append(g.args, piece...)
		if g.sent < len(rep.pieces) || rep.finish != "tool_calls" {
			// Not whole yet, or cut short by max tokens: Gemini sends no
			// broken call.
			return b
		}
		b = g.open(b)
		b = candidate(b)
		b = g.appendCall(b, rep)
		return g.close(g.end(b, "", rep.promptTokens, g.sent))
	}
	b = g.open(b)
	b = candidate(b)
	b = append(b, `{"text":`...)
	b = appendString(b, piece)
	b = append(b, '}')
	return g.close(g.end(b, "", rep.promptTokens, g.sent))
}

// appendCall appends the functionCall part of rep, its arguments gathered
// in args (an object: Gemini's args are one).
func (g *gemini) appendCall(b []byte, rep *reply) []byte {
	b = append(b, `{"functionCall":{"name":`...)
	b = appendString(b, rep.toolName)
	b = append(b, `,"args":`...)
	if a := bytes.TrimSpace(g.args); len(a) > 0 && a[0] == '{' {
		b = append(b, a...)
	} else {
		b = append(b, "{}"...)
	}
	return append(b, "}}"...)
}

// appendGarbage appends an event whose data is not valid JSON: a chunk
// broken off inside a string.
func (g *gemini) appendGarbage(b []byte) []byte {
	b = g.open(b)
	b = candidate(b)
	b = append(b, `{"text":"\u00`...)
	if g.array {
		return b
	}
	return append(b, "\n\n"...)
}

// appendFinish sends the last chunk: an empty text part, the finish reason
// and the final usage, as Gemini ends every answer.
func (g *gemini) appendFinish(b []byte, rep *reply, u usage) []byte {
	b = g.open(b)
	b = candidate(b)
	b = append(b, `{"text":""}`...)
	return g.close(g.end(b, geminiFinish(rep.finish), u.prompt, u.completion))
}

// appendDone closes the array of a stream without alt=sse; an SSE stream
// just ends.
func (g *gemini) appendDone(b []byte) []byte {
	if g.array {
		return append(b, ']')
	}
	return b
}

func (g *gemini) appendWhole(b []byte, rep *reply, u usage) []byte {
	g.id = idString("", rep.attempt)
	b = candidate(b)
	switch {
	case rep.tool && rep.finish == "tool_calls":
		for _, p := range rep.pieces {
			g.args = append(g.args, p...)
		}
		b = g.appendCall(b, rep)
	case rep.tool:
		// A call cut short by max tokens is no call.
	default:
		b = append(b, `{"text":"`...)
		for _, p := range rep.pieces {
			b = appendEscaped(b, p)
		}
		b = append(b, `"}`...)
	}
	b = g.end(b, geminiFinish(rep.finish), u.prompt, u.completion)
	return append(b, '\n')
}

// appendRefusal appends a blocked prompt's answer: no candidates, only
// promptFeedback.blockReason, as one chunk or a whole body.
func (g *gemini) appendRefusal(b []byte, stream bool) []byte {
	if g.id == "" {
		g.id = idString("", hashString(0, g.model))
	}
	if stream {
		b = g.open(b)
	}
	b = append(b, `{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},`...)
	b = appendGeminiUsage(b, 0, 0)
	b = g.tail(b)
	if stream {
		b = g.close(b)
		if g.array {
			b = append(b, ']')
		}
		return b
	}
	return append(b, '\n')
}

// appendError renders fl as google.rpc.Status:
// {"error":{"code","message","status","details"}}. A fault's type
// overrides the status, its code names the ErrorInfo reason (such as
// API_KEY_INVALID), and retry_after becomes a RetryInfo detail.
func (g *gemini) appendError(b []byte, fl *failure) []byte {
	status, msg := geminiStatusError(fl.status, g.model)
	switch fl.kind {
	case failContextLength:
		status, msg = "INVALID_ARGUMENT", "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
	case failContentFilter: // unreachable: appendRefusal answers it
		status, msg = "INVALID_ARGUMENT", "The prompt was blocked: PROHIBITED_CONTENT."
	case failPrefill:
		status, msg = "INVALID_ARGUMENT", "Please ensure that multiturn requests end with a user role or a function response."
	case failInvalid:
		status, msg = "INVALID_ARGUMENT", fl.message
		if fl.status == 413 {
			status = "FAILED_PRECONDITION"
		}
	}
	if fl.typ != "" {
		status = fl.typ
	}
	if fl.message != "" {
		msg = fl.message
	}
	b = append(b, `{"error":{"code":`...)
	b = strconv.AppendInt(b, int64(fl.status), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"status":`...)
	b = appendString(b, status)
	var details [][]byte
	if fl.code != "" {
		d := append([]byte(nil), `{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":`...)
		d = appendString(d, fl.code)
		details = append(details, append(d, `,"domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}`...))
	}
	if fl.status == 429 {
		details = append(details, []byte(`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]}`))
	}
	wait := fl.retryAfter
	if wait <= 0 {
		wait = time.Duration(fl.retryAfterMS) * time.Millisecond
	}
	if wait > 0 {
		d := append([]byte(nil), `{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"`...)
		d = strconv.AppendFloat(d, wait.Seconds(), 'f', -1, 64)
		details = append(details, append(d, `s"}`...))
	}
	if len(details) > 0 {
		b = append(b, `,"details":[`...)
		b = append(b, bytes.Join(details, []byte(","))...)
		b = append(b, ']')
	}
	return append(b, "}}\n"...)
}

// geminiStatusError is Gemini's canonical status and message for an HTTP
// status, as the API words them (wire README §4, §10).
func geminiStatusError(status int, model string) (string, string) {
	switch status {
	case 400:
		return "INVALID_ARGUMENT", "Request contains an invalid argument."
	case 401:
		return "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	case 403:
		return "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	case 404:
		return "NOT_FOUND", "models/" + model + " is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
	case 409:
		return "ABORTED", "The operation was aborted."
	case 429:
		return "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
	case 500:
		return "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	case 501:
		return "UNIMPLEMENTED", "Method not found."
	case 503, 529:
		return "UNAVAILABLE", "The model is overloaded. Please try again later."
	case 504:
		return "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
	}
	if status >= 500 {
		return "INTERNAL", "An internal error has occurred."
	}
	return "FAILED_PRECONDITION", http.StatusText(status) + "."
}

// writeGeminiError answers a request outside any attempt (unknown model
// path or method).
func writeGeminiError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	b := append([]byte(`{"error":{"code":`), strconv.Itoa(code)...)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"status":`...)
	b = appendString(b, status)
	_, _ = w.Write(append(b, "}}\n"...))
}
