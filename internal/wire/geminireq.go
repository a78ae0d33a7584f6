package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/keel-ai/keel/internal/llm"
)

// Google Gemini generateContent requests (../shared/wire/README.md §4), the
// upstream direction.

// GeminiSkipSignature is the thoughtSignature keel sends on the function
// calls it replays to Gemini. Gemini 3 rejects a model turn whose function
// call lacks the signature it issued (400), and the neutral model does not
// carry signatures from one turn to the next; Google documents this value
// as the one to send for calls whose signature is unknown, such as calls
// another model made.
const GeminiSkipSignature = "skip_thought_signature_validator"

// AppendGenerateRequest appends r encoded as a generateContent (or
// streamGenerateContent) body. The model and streaming are in the URL, not
// the body. Extra is never applied: keel serves no Gemini client API.
//
//   - System messages become systemInstruction, wherever they stand.
//   - User and tool messages are "user" turns, assistant messages "model"
//     turns; consecutive turns of one role are merged, as Gemini requires
//     of a model turn's function responses.
//   - Images: data: URLs are inlineData, other URLs fileData with a MIME
//     type guessed from the extension (image/jpeg if none fits).
//   - Assistant tool calls are functionCall parts with their arguments as
//     an object; the first of each turn carries GeminiSkipSignature.
//   - Tool messages are functionResponse parts named after the call their
//     ToolCallID answers; a result that is not a JSON object is wrapped as
//     {"result": …}, and an object is sent byte for byte.
//   - Tools are functionDeclarations with parametersJsonSchema: the JSON
//     Schema verbatim, which Gemini accepts whole, where the older
//     parameters field takes only an OpenAPI subset.
//   - A trailing assistant message (Continue) stays a trailing model turn.
//     Google does not document that Gemini continues it rather than
//     answering anew, so the adapter does not claim prefill support.
func AppendGenerateRequest(dst []byte, r *llm.Request) ([]byte, error) {
	dst = append(dst, `{"contents":[`...)
	open := "" // the role of the open turn
	startPart := func(role string) {
		switch open {
		case role:
			dst = append(dst, ',')
			return
		case "":
		default:
			dst = append(dst, "]},"...)
		}
		dst = append(dst, `{"role":"`...)
		dst = append(dst, role...)
		dst = append(dst, `","parts":[`...)
		open = role
	}
	hasSystem := false
	for i := range r.Messages {
		m := &r.Messages[i]
		role := "user"
		switch m.Role {
		case llm.RoleSystem:
			hasSystem = true
			continue
		case llm.RoleAssistant:
			role = "model"
		case llm.RoleTool:
			name := toolCallName(r.Messages[:i], m)
			startPart(role)
			dst = append(dst, `{"functionResponse":{"name":`...)
			dst = appendJSONString(dst, name)
			dst = append(dst, `,"response":`...)
			dst = appendToolResponse(dst, m.Text())
			dst = append(dst, "}}"...)
			continue
		}
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartImage:
				startPart(role)
				var err error
				if dst, err = appendGeminiImage(dst, p.URL); err != nil {
					return dst, fmt.Errorf("wire: encode gemini request: messages[%d]: %w", i, err)
				}
			default:
				if p.Text == "" {
					continue // Gemini rejects empty parts
				}
				startPart(role)
				dst = append(dst, `{"text":`...)
				dst = appendJSONString(dst, p.Text)
				dst = append(dst, '}')
			}
		}
		for j, tc := range m.ToolCalls {
			args, err := toolArgs(tc.Arguments)
			if err != nil {
				return dst, fmt.Errorf("wire: encode gemini request: messages[%d].tool_calls[%d]: %w", i, j, err)
			}
			startPart(role)
			dst = append(dst, `{"functionCall":{"name":`...)
			dst = appendJSONString(dst, tc.Name)
			dst = append(dst, `,"args":`...)
			dst = append(dst, args...)
			dst = append(dst, '}')
			if j == 0 {
				dst = append(dst, `,"thoughtSignature":"`+GeminiSkipSignature+`"`...)
			}
			dst = append(dst, '}')
		}
	}
	if open != "" {
		dst = append(dst, "]}"...)
	}
	dst = append(dst, ']')

	if hasSystem {
		dst = append(dst, `,"systemInstruction":{"parts":[`...)
		n := 0
		for i := range r.Messages {
			if r.Messages[i].Role != llm.RoleSystem {
				continue
			}
			for _, p := range r.Messages[i].Content {
				if p.Type != llm.PartText || p.Text == "" {
					continue
				}
				if n > 0 {
					dst = append(dst, ',')
				}
				n++
				dst = append(dst, `{"text":`...)
				dst = appendJSONString(dst, p.Text)
				dst = append(dst, '}')
			}
		}
		dst = append(dst, "]}"...)
	}

	if len(r.Tools) > 0 {
		dst = append(dst, `,"tools":[{"functionDeclarations":[`...)
		for i, t := range r.Tools {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendJSONString(dst, t.Name)
			if t.Description != "" {
				dst = append(dst, `,"description":`...)
				dst = appendJSONString(dst, t.Description)
			}
			if p := bytes.TrimSpace(t.Parameters); len(p) > 0 && string(p) != "null" {
				if !json.Valid(p) {
					return dst, fmt.Errorf("wire: encode gemini request: tools[%d].parameters is not JSON", i)
				}
				dst = append(dst, `,"parametersJsonSchema":`...)
				dst = append(dst, p...)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, "]}]"...)
		if tc := r.ToolChoice; tc != nil {
			dst = append(dst, `,"toolConfig":{"functionCallingConfig":{"mode":`...)
			switch tc.Mode {
			case llm.ToolNone:
				dst = append(dst, `"NONE"`...)
			case llm.ToolRequired:
				dst = append(dst, `"ANY"`...)
			case llm.ToolFunction:
				dst = append(dst, `"ANY","allowedFunctionNames":[`...)
				dst = appendJSONString(dst, tc.Name)
				dst = append(dst, ']')
			default:
				dst = append(dst, `"AUTO"`...)
			}
			dst = append(dst, "}}"...)
		}
	}

	var err error
	if dst, err = appendGenerationConfig(dst, r); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// appendGenerationConfig appends ,"generationConfig":{…} if r sets any of
// its fields.
func appendGenerationConfig(dst []byte, r *llm.Request) ([]byte, error) {
	n := 0
	field := func(name string) {
		if n == 0 {
			dst = append(dst, `,"generationConfig":{`...)
		} else {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"temperature", r.Temperature}, {"topP", r.TopP}} {
		if f.v == nil {
			continue
		}
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) {
			return dst, fmt.Errorf("wire: encode gemini request: %s is not a number", f.name)
		}
		field(f.name)
		dst = strconv.AppendFloat(dst, *f.v, 'g', -1, 64)
	}
	if r.MaxTokens != nil {
		field("maxOutputTokens")
		dst = strconv.AppendInt(dst, int64(*r.MaxTokens), 10)
	}
	if len(r.Stop) > 0 {
		field("stopSequences")
		dst = append(dst, '[')
		for i, s := range r.Stop {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
	}
	if r.Seed != nil {
		// Gemini's seed is an int32; OpenAI's may be wider. Folding keeps
		// one seed one seed.
		field("seed")
		dst = strconv.AppendInt(dst, int64(int32(*r.Seed)), 10)
	}
	if f := r.ResponseFormat; f != nil && (f.Type == llm.FormatJSONObject || f.Type == llm.FormatJSONSchema) {
		field("responseMimeType")
		dst = append(dst, `"application/json"`...)
		if s := bytes.TrimSpace(f.Schema); f.Type == llm.FormatJSONSchema && len(s) > 0 && string(s) != "null" {
			if !json.Valid(s) {
				return dst, errors.New("wire: encode gemini request: response_format schema is not JSON")
			}
			field("responseJsonSchema")
			dst = append(dst, s...)
		}
	}
	if n > 0 {
		dst = append(dst, '}')
	}
	return dst, nil
}

// toolCallName finds the name of the call m answers among the assistant
// messages before it, nearest first. Without one it falls back on the
// message's own name, then on the id itself: Gemini needs some name.
func toolCallName(before []llm.Message, m *llm.Message) string {
	for i := len(before) - 1; i >= 0; i-- {
		for _, tc := range before[i].ToolCalls {
			if tc.ID == m.ToolCallID {
				return tc.Name
			}
		}
	}
	if m.Name != "" {
		return m.Name
	}
	return m.ToolCallID
}

// toolArgs returns a call's arguments as the object Gemini wants: none is
// {}, and anything but a JSON object is refused.
func toolArgs(s string) ([]byte, error) {
	b := bytes.TrimSpace([]byte(s))
	switch {
	case len(b) == 0:
		return []byte("{}"), nil
	case !json.Valid(b):
		return nil, errors.New("arguments are not JSON")
	case b[0] != '{':
		return nil, errors.New("arguments are not a JSON object")
	}
	return b, nil
}

// appendToolResponse appends a tool result as a functionResponse's
// response, which must be an object: a JSON object as it is, other JSON
// values and plain text as {"result": …}.
func appendToolResponse(dst []byte, s string) []byte {
	b := bytes.TrimSpace([]byte(s))
	if len(b) > 0 && json.Valid(b) {
		if b[0] == '{' {
			return append(dst, b...)
		}
		dst = append(dst, `{"result":`...)
		dst = append(dst, b...)
		return append(dst, '}')
	}
	dst = append(dst, `{"result":`...)
	dst = appendJSONString(dst, s)
	return append(dst, '}')
}

// appendGeminiImage appends an image part: inlineData for a data: URL,
// fileData for any other.
func appendGeminiImage(dst []byte, u string) ([]byte, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		dst = append(dst, `{"fileData":{"mimeType":`...)
		dst = appendJSONString(dst, mimeByExtension(u))
		dst = append(dst, `,"fileUri":`...)
		dst = appendJSONString(dst, u)
		return append(dst, "}}"...), nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return dst, errors.New("image data URL has no data")
	}
	mime, b64 := strings.CutSuffix(meta, ";base64")
	mime, _, _ = strings.Cut(mime, ";") // parameters such as charset
	if mime == "" {
		mime = "image/jpeg"
	}
	if !b64 {
		raw, err := url.PathUnescape(data)
		if err != nil {
			return dst, fmt.Errorf("image data URL: %w", err)
		}
		data = base64.StdEncoding.EncodeToString([]byte(raw))
	}
	dst = append(dst, `{"inlineData":{"mimeType":`...)
	dst = appendJSONString(dst, mime)
	dst = append(dst, `,"data":`...)
	dst = appendJSONString(dst, data)
	return append(dst, "}}"...), nil
}

// mimeByExtension guesses a file URL's MIME type from its extension. It
// does not consult the system's MIME table, so the guess is the same on
// every machine.
func mimeByExtension(u string) string {
	p := u
	if pu, err := url.Parse(u); err == nil {
		p = pu.Path
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	case ".pdf":
		return "application/pdf"
	}
	return "image/jpeg"
}
