package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// ErrorBody is a vendor's error, read from any of the shapes
// OpenAI-compatible servers use (../shared/wire/README.md §10).
type ErrorBody struct {
	Message string
	Type    string
	Code    string
	Param   string
}

func (e *ErrorBody) Error() string {
	if e.Code != "" {
		return e.Code + ": " + e.Message
	}
	return e.Message
}

// ParseErrorBody reads an error body: OpenAI's {"error":{message,type,param,
// code}}, Mistral's and old vLLM's flat {"object":"error",message,...},
// llama.cpp's numeric codes, or Ollama's {"error":"…"}. Anything else is
// kept as the message, cut short.
func ParseErrorBody(body []byte) *ErrorBody {
	var outer struct {
		Error json.RawMessage `json:"error"`
	}
	_ = json.Unmarshal(body, &outer)
	if len(outer.Error) > 0 && outer.Error[0] == '"' {
		var s string
		_ = json.Unmarshal(outer.Error, &s)
		return &ErrorBody{Message: s}
	}
	inner := body
	if len(outer.Error) > 0 && outer.Error[0] == '{' {
		inner = outer.Error
	}
	var f struct {
		Message json.RawMessage `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   json.RawMessage `json:"param"`
	}
	if json.Unmarshal(inner, &f) != nil || (len(f.Message) == 0 && f.Type == "") {
		return &ErrorBody{Message: truncate(string(bytes.TrimSpace(body)), 512)}
	}
	return &ErrorBody{Message: scalar(f.Message), Type: f.Type, Code: scalar(f.Code), Param: scalar(f.Param)}
}

// scalar renders a JSON string, number or object as text. Objects (such
// as Mistral's validation details) are compacted onto one line.
func scalar(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		raw = b.Bytes()
	}
	return truncate(string(raw), 512)
}

// truncate cuts s to at most n bytes, on a rune boundary so that the
// result stays valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// AppendChatError appends OpenAI's error envelope, all four keys present.
func AppendChatError(dst []byte, message, typ, param, code string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendJSONString(dst, message)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, typ)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, param)
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, code)
	return append(dst, "}}"...)
}

func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}
