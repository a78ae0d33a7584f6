package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/keel-ai/keel/internal/llm"
)

// OpenAI embeddings (POST /v1/embeddings), both directions:
// DecodeEmbedRequest and AppendEmbeddings for clients, AppendEmbedRequest
// and DecodeEmbeddings for upstreams. Mistral, Ollama, vLLM, llama.cpp and
// Azure OpenAI speak the same format.

// EmbedFormat is how vectors travel: as arrays of numbers, or as base64.
type EmbedFormat uint8

// The embedding formats.
const (
	// EmbedFloat writes each vector as a JSON array of numbers, OpenAI's
	// default.
	EmbedFloat EmbedFormat = iota
	// EmbedBase64 writes each vector as the standard base64 of its
	// little-endian float32s: exact, and less than half the size. The
	// openai npm SDK asks for it unless its caller chose a format.
	EmbedBase64
)

func (f EmbedFormat) String() string {
	if f == EmbedBase64 {
		return "base64"
	}
	return "float"
}

// MaxEmbedInputs caps the inputs of one embeddings request, as OpenAI does.
const MaxEmbedInputs = 2048

// EmbedRequest is a client's embeddings request: the neutral request, and
// the format the client wants its vectors in.
type EmbedRequest struct {
	llm.EmbedRequest
	Format EmbedFormat
}

// DecodeEmbedRequest decodes and validates a client's embeddings body:
// model (required), input (a non-empty string or 1 to MaxEmbedInputs
// non-empty strings; token arrays are refused), dimensions, encoding_format
// and user. Other fields are ignored: llm.EmbedRequest has nowhere to carry
// them. Errors are *chat.Error values with code EInvalid that name the
// offending param.
func DecodeEmbedRequest(body []byte) (*EmbedRequest, error) {
	ms, ok := bodyMembers(body)
	if !ok {
		return nil, invalid("", "the request body must be a JSON object")
	}
	r := &EmbedRequest{}
	var input json.RawMessage
	for _, m := range ms {
		k, v := m.key, m.raw
		var err error
		switch k {
		case "model":
			err = decodeField(k, v, &r.Model)
		case "input":
			input = v
		case "dimensions":
			err = decodePositive(k, v, &r.Dimensions)
		case "encoding_format":
			r.Format, err = decodeEmbedFormat(v)
		case "user":
			err = decodeField(k, v, &r.User)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.Model == "" {
		return nil, invalid("model", "model is required")
	}
	in, err := decodeEmbedInput(input)
	if err != nil {
		return nil, err
	}
	r.Input = in
	return r, nil
}

func decodeEmbedFormat(raw json.RawMessage) (EmbedFormat, error) {
	var s string
	if err := decodeField("encoding_format", raw, &s); err != nil {
		return 0, err
	}
	switch s {
	case "", "float":
		return EmbedFloat, nil
	case "base64":
		return EmbedBase64, nil
	}
	return 0, invalid("encoding_format", "encoding_format %q is not one of float, base64", s)
}

// decodeEmbedInput reads a string or an array of strings. The common case,
// well-formed text, costs one decode; anything else is decoded again item
// by item to name the bad one.
func decodeEmbedInput(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, invalid("input", "input is required")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := decodeField("input", raw, &s); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, invalid("input", "input must not be an empty string")
		}
		return []string{s}, nil
	case '[':
	default:
		return nil, invalid("input", "input must be a string or an array of strings")
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil && len(ss) > 0 && len(ss) <= MaxEmbedInputs && !hasEmpty(ss) {
		return ss, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("input", "input must be a string or an array of strings")
	}
	switch {
	case len(items) == 0:
		return nil, invalid("input", "input must not be empty")
	case len(items) > MaxEmbedInputs:
		return nil, invalid("input", "input takes at most %d items, got %d", MaxEmbedInputs, len(items))
	}
	out := make([]string, len(items))
	for i, it := range items {
		param := fmt.Sprintf("input[%d]", i)
		switch c := it[0]; {
		case c == '"':
		case c == '[' || c == '-' || '0' <= c && c <= '9':
			return nil, invalid("input", "input as token arrays is not supported; send the text")
		default:
			return nil, invalid(param, "%s must be a string", param)
		}
		if err := decodeField(param, it, &out[i]); err != nil {
			return nil, err
		}
		if out[i] == "" {
			return nil, invalid(param, "%s must not be an empty string", param)
		}
	}
	return out, nil
}

func hasEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

// AppendEmbedRequest appends r encoded for an upstream, asking for vectors
// in format f. The input is always an array; encoding_format is left out
// for EmbedFloat, the default every server knows.
func AppendEmbedRequest(dst []byte, r *llm.EmbedRequest, f EmbedFormat) []byte {
	dst = append(dst, `{"model":`...)
	dst = appendJSONString(dst, r.Model)
	dst = append(dst, `,"input":[`...)
	for i, s := range r.Input {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	dst = append(dst, ']')
	if r.Dimensions != nil {
		dst = append(dst, `,"dimensions":`...)
		dst = strconv.AppendInt(dst, int64(*r.Dimensions), 10)
	}
	if f == EmbedBase64 {
		dst = append(dst, `,"encoding_format":"base64"`...)
	}
	if r.User != "" {
		dst = append(dst, `,"user":`...)
		dst = appendJSONString(dst, r.User)
	}
	return append(dst, '}')
}

// AppendEmbeddings appends e as OpenAI's embeddings response, each vector
// in format f. Numbers are written in the shortest form that reads back as
// the same float32, as encoding/json writes a float32; a non-finite value,
// which JSON cannot carry, is written as 0.
func AppendEmbeddings(dst []byte, e *llm.Embeddings, f EmbedFormat) []byte {
	dst = append(dst, `{"object":"list","data":[`...)
	for i, v := range e.Vectors {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, `,"embedding":`...)
		if f == EmbedBase64 {
			dst = appendBase64Vector(dst, v)
		} else {
			dst = appendFloatVector(dst, v)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"model":`...)
	dst = appendJSONString(dst, e.Model)
	dst = append(dst, `,"usage":{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(e.Usage.Input), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(e.Usage.Total()), 10)
	return append(dst, "}}"...)
}

func appendFloatVector(dst []byte, v []float32) []byte {
	dst = append(dst, '[')
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFloat32(dst, x)
	}
	return append(dst, ']')
}

// appendFloat32 writes x as encoding/json writes a float32.
func appendFloat32(dst []byte, x float32) []byte {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 32)
	if format == 'e' {
		// 1e-07 → 1e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendBase64Vector writes v as a JSON string holding the standard base64
// of its little-endian float32s. It encodes 192 floats at a time from a
// buffer on the stack: 768 bytes is a multiple of 3, so the pieces join
// into one base64 text without padding between them.
func appendBase64Vector(dst []byte, v []float32) []byte {
	dst = append(dst, '"')
	var buf [768]byte
	for len(v) > 0 {
		n := min(len(v), len(buf)/4)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		dst = base64.StdEncoding.AppendEncode(dst, buf[:4*n])
		v = v[n:]
	}
	return append(dst, '"')
}

type embeddingsIn struct {
	Data  []embeddingIn `json:"data"`
	Model string        `json:"model"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
	// Object is "error" in the flat error Mistral and old vLLM send.
	Object string `json:"object"`
}

type embeddingIn struct {
	Index     int      `json:"index"`
	Embedding vectorIn `json:"embedding"`
}

// DecodeEmbeddings decodes an upstream's embeddings response, with vectors
// as arrays of numbers or as base64, into one vector per input, ordered by
// index (or by position, when the upstream numbers none). An error object
// sent with a 2xx status is returned as an *ErrorBody error.
func DecodeEmbeddings(body []byte) (*llm.Embeddings, error) {
	var in embeddingsIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("wire: decode embeddings: %w", err)
	}
	if !isNull(in.Error) || in.Object == "error" {
		return nil, ParseErrorBody(body)
	}
	n := len(in.Data)
	if n == 0 {
		return nil, errors.New("wire: decode embeddings: no data")
	}
	e := &llm.Embeddings{Model: in.Model, Vectors: make([][]float32, n)}
	if u := in.Usage; u != nil {
		e.Usage.Input = u.PromptTokens
		if e.Usage.Input == 0 {
			e.Usage.Input = u.TotalTokens
		}
	}
	positional := true // every index is 0: the upstream numbers none
	for _, d := range in.Data {
		positional = positional && d.Index == 0
	}
	for i, d := range in.Data {
		at := d.Index
		switch {
		case positional:
			at = i
		case at < 0 || at >= n:
			return nil, fmt.Errorf("wire: decode embeddings: data[%d].index %d is out of range for %d embeddings", i, at, n)
		case e.Vectors[at] != nil:
			return nil, fmt.Errorf("wire: decode embeddings: data[%d].index %d is repeated", i, at)
		}
		switch {
		case d.Embedding == nil:
			return nil, fmt.Errorf("wire: decode embeddings: data[%d].embedding is missing", i)
		case len(d.Embedding) == 0:
			return nil, fmt.Errorf("wire: decode embeddings: data[%d].embedding is empty", i)
		case len(d.Embedding) != len(in.Data[0].Embedding):
			return nil, fmt.Errorf("wire: decode embeddings: data[%d].embedding has %d dimensions, data[0] %d", i, len(d.Embedding), len(in.Data[0].Embedding))
		}
		e.Vectors[at] = d.Embedding
	}
	return e, nil
}

// vectorIn is one embedding as an upstream sends it: an array of numbers,
// or a base64 string. It decodes straight from the body into one exactly
// sized slice.
type vectorIn []float32

func (v *vectorIn) UnmarshalJSON(b []byte) error {
	var err error
	switch b[0] {
	case 'n':
		*v = nil
		return nil
	case '[':
		*v, err = parseFloats(b)
	case '"':
		*v, err = parseBase64Vector(b)
	default:
		err = errors.New("embedding must be an array of numbers or a base64 string")
	}
	return err
}

// parseFloats parses a JSON array of numbers, which encoding/json has
// already checked to be valid JSON.
func parseFloats(b []byte) ([]float32, error) {
	out := make([]float32, 0, bytes.Count(b, []byte{','})+1)
	i := skipSpace(b, 1)
	if b[i] == ']' {
		return out, nil
	}
	for {
		j := i
		for j < len(b) && b[j] != ',' && b[j] != ']' && !isSpace(b[j]) {
			j++
		}
		tok := b[i:j]
		if c := tok[0]; c != '-' && (c < '0' || c > '9') {
			return nil, fmt.Errorf("embedding[%d] is not a number", len(out))
		}
		f, err := strconv.ParseFloat(string(tok), 32)
		if err != nil {
			return nil, fmt.Errorf("embedding[%d] is not a float32: %w", len(out), err)
		}
		out = append(out, float32(f))
		i = skipSpace(b, j)
		if b[i] == ']' {
			return out, nil
		}
		i = skipSpace(b, i+1) // past the comma
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// parseBase64Vector decodes a JSON string holding base64 little-endian
// float32s. Well-formed text is decoded 1024 characters at a time into a
// buffer on the stack; anything else (no padding, line breaks, escapes) is
// decoded the slow way.
func parseBase64Vector(b []byte) ([]float32, error) {
	src := b[1 : len(b)-1]
	if bytes.IndexByte(src, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		src = []byte(s)
	}
	size := len(src) / 4 * 3
	if len(src) > 0 && src[len(src)-1] == '=' {
		size--
		if len(src) > 1 && src[len(src)-2] == '=' {
			size--
		}
	}
	out := make([]float32, 0, max(size, 0)/4)
	var buf [768]byte
	fast := len(src)%4 == 0 && size%4 == 0
	for rest := src; fast && len(rest) > 0; {
		k := min(len(rest), 1024)
		n, err := base64.StdEncoding.Decode(buf[:], rest[:k])
		if err != nil || n%4 != 0 {
			fast = false
			break
		}
		out = appendFloat32s(out, buf[:n])
		rest = rest[k:]
	}
	if !fast {
		raw, err := base64.RawStdEncoding.AppendDecode(nil, bytes.TrimRight(src, "="))
		if err != nil {
			return nil, fmt.Errorf("embedding is not valid base64: %w", err)
		}
		if len(raw)%4 != 0 {
			return nil, fmt.Errorf("embedding holds %d bytes, not a whole number of float32s", len(raw))
		}
		out = appendFloat32s(out[:0], raw)
	}
	for i, x := range out {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("embedding[%d] is not finite", i)
		}
	}
	return out, nil
}

func appendFloat32s(dst []float32, b []byte) []float32 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst
}
