package wire

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written reader for the common shape of an OpenAI stream chunk,
// {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,
// "delta":{"content":…},"finish_reason":…}]} with any other keys skipped.
// Decoding every chunk with encoding/json was the largest CPU cost of a
// relayed stream (scripts/bench, perf: 26%); this path does the same work
// without reflection or a second validation pass. It is strict: anything
// it does not fully understand, or that is not valid JSON, makes it
// decline, and the chunk goes through encoding/json as before. A fuzz test
// checks that whenever it accepts, encoding/json decodes the same.

// scanChunk fills c from data and reports whether it could.
func scanChunk(data []byte, c *chatChunkIn) bool {
	s := chunkScanner{b: data}
	s.ws()
	if !s.eat('{') {
		return false
	}
	seenChoices := false
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			if !first && s.b[s.i-2] == ',' {
				return false
			}
			break
		}
		if !first && !s.eat(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "id":
			ok = s.intern(&c.ID)
		case "model":
			ok = s.intern(&c.Model)
		case "object":
			ok = s.intern(&c.Object)
		case "created":
			c.Created, ok = s.int()
		case "choices":
			if seenChoices {
				return false
			}
			seenChoices = true
			ok = s.choices(c)
		case "usage", "error":
			ok = s.null() // present and not null: the rare shapes go the slow way
		default:
			ok = !folds(key, "id", "model", "object", "created", "choices", "usage", "error") && s.skip(0)
		}
		if !ok {
			return false
		}
	}
	s.ws()
	return s.i == len(s.b)
}

type chunkScanner struct {
	b []byte
	i int
}

func (s *chunkScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *chunkScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *chunkScanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// null consumes a null, reporting false for any other value.
func (s *chunkScanner) null() bool {
	s.ws()
	return s.lit("null")
}

// key reads an object key (without escapes) and its colon.
func (s *chunkScanner) key() ([]byte, bool) {
	raw, esc, ok := s.str()
	if !ok || esc {
		return nil, false
	}
	s.ws()
	return raw, s.eat(':')
}

// str reads a string, returning its raw content and whether it holds
// escapes. It validates escapes, control characters and UTF-8.
func (s *chunkScanner) str() (raw []byte, esc bool, ok bool) {
	s.ws()
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		// Skip the plain run in a tight loop: most bytes are plain.
		for s.i < len(s.b) && plain[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(raw) {
				return nil, false, false // encoding/json would replace the bad bytes
			}
			return raw, esc, true
		case c == '\\':
			esc = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHexQuad(s.b[s.i+2:s.i+6]) {
					return nil, false, false
				}
				s.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default: // c >= utf8.RuneSelf
			ascii = false
			s.i++
		}
	}
	return nil, false, false
}

// plain marks the bytes a string can hold as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHexQuad(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// string reads a string or null as a Go string.
func (s *chunkScanner) string(dst *string) bool {
	if s.null() {
		return true
	}
	raw, esc, ok := s.str()
	if !ok {
		return false
	}
	if !esc {
		*dst = string(raw)
		return true
	}
	*dst, ok = unescapeJSON(raw)
	return ok
}

// intern reads a string or null, keeping dst's memory when unchanged.
func (s *chunkScanner) intern(dst *internedString) bool {
	if s.null() {
		*dst = ""
		return true
	}
	raw, esc, ok := s.str()
	if !ok || esc {
		return false
	}
	if string(raw) != string(*dst) {
		*dst = internedString(raw)
	}
	return true
}

// int reads an integer; anything else (a fraction, an exponent) declines.
func (s *chunkScanner) int() (int64, bool) {
	s.ws()
	start, neg := s.i, s.eat('-')
	var n int64
	digits := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		if digits > 17 {
			return 0, false
		}
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
		digits++
	}
	if digits == 0 || (digits > 1 && s.b[start+boolInt(neg)] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// choices reads the choices array of the common shape.
func (s *chunkScanner) choices(c *chatChunkIn) bool {
	if s.null() {
		return true
	}
	s.ws()
	if !s.eat('[') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat(']') {
			return first || s.b[s.i-2] != ','
		}
		if !first && !s.eat(',') {
			return false
		}
		c.Choices = append(c.Choices, chatChoiceIn{})
		if !s.choice(&c.Choices[len(c.Choices)-1]) {
			return false
		}
	}
}

func (s *chunkScanner) choice(ch *chatChoiceIn) bool {
	s.ws()
	if !s.eat('{') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return first || s.b[s.i-2] != ','
		}
		if !first && !s.eat(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "index":
			var n int64
			n, ok = s.int()
			ch.Index = int(n)
		case "delta":
			ok = s.delta(ch)
		case "finish_reason":
			ok = s.intern(&ch.FinishReason)
		case "message", "tool_calls":
			return false
		default:
			ok = !folds(key, "index", "delta", "finish_reason") && s.skip(0)
		}
		if !ok {
			return false
		}
	}
}

func (s *chunkScanner) delta(ch *chatChoiceIn) bool {
	if s.null() {
		return true
	}
	s.ws()
	if !s.eat('{') {
		return false
	}
	d := &ch.Delta
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return first || s.b[s.i-2] != ','
		}
		if !first && !s.eat(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "content":
			ok = s.string(&d.Content)
		case "reasoning_content":
			ok = s.string(&d.ReasoningContent)
		case "reasoning":
			ok = s.string(&d.Reasoning)
		case "tool_calls":
			ok = s.null()
		default:
			ok = !folds(key, "content", "reasoning_content", "reasoning", "tool_calls") && s.skip(0)
		}
		if !ok {
			return false
		}
	}
}

// folds reports whether key matches one of names case-insensitively, as
// encoding/json matches keys: such a key must go the slow way.
func folds(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// scanMaxDepth bounds nesting in skipped values; deeper input goes the slow way.
const scanMaxDepth = 64

// skip consumes one valid JSON value of any kind.
func (s *chunkScanner) skip(depth int) bool {
	if depth > scanMaxDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.eat('}') {
				return first || s.b[s.i-2] != ','
			}
			if !first && !s.eat(',') {
				return false
			}
			if _, _, ok := s.str(); !ok {
				return false
			}
			s.ws()
			if !s.eat(':') || !s.skip(depth+1) {
				return false
			}
		}
	case c == '[':
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.eat(']') {
				return first || s.b[s.i-2] != ','
			}
			if !first && !s.eat(',') {
				return false
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		return s.number()
	}
}

// number consumes a number per JSON's grammar.
func (s *chunkScanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *chunkScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// unescape decodes a string's escapes as encoding/json does, lone
// surrogates becoming U+FFFD.
func unescapeJSON(raw []byte) (string, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'u':
			r := rune(parseHex4(raw[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if d := utf16.DecodeRune(r, rune(parseHex4(raw[i+2:i+6]))); d != utf8.RuneError {
						r2 = d
						i += 6
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
			continue
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // " \ /
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return string(out), true
}

func parseHex4(b []byte) uint16 {
	var n uint16
	for _, c := range b {
		n <<= 4
		switch {
		case c <= '9':
			n |= uint16(c - '0')
		case c >= 'a':
			n |= uint16(c - 'a' + 10)
		default:
			n |= uint16(c - 'A' + 10)
		}
	}
	return n
}
