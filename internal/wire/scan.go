package wire

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
	"unsafe"
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

// scanChunk fills c from data and reports whether it could. With a memo,
// it skips the part of data before "choices" when that part is the same
// as the last chunk's, as it is in every chunk of a stream but its id,
// model and timestamp are repeated; then it records the part for the next.
// With an arena, the strings it reads are carved from it.
func scanChunk(data []byte, c *chatChunkIn, m *chunkMemo, mem *arena) bool {
	s := chunkScanner{b: data, mem: mem}
	seenChoices, seenUsage := false, false
	member := func(key []byte, esc bool) bool {
		switch string(key) {
		case "id":
			return s.intern(&c.ID)
		case "model":
			return s.intern(&c.Model)
		case "object":
			return s.intern(&c.Object)
		case "created":
			var ok bool
			c.Created, ok = s.int()
			return ok
		case "choices":
			if seenChoices {
				return false
			}
			seenChoices = true
			if m != nil && !seenUsage && len(m.b) == 0 {
				m.record(data[:s.key], c)
			}
			return s.choices(c)
		case "usage":
			seenUsage = true
			return s.usage(&c.Usage)
		case "error":
			return s.null() // present and not null: the rare shape goes the slow way
		}
		return !esc && !folds(key, "id", "model", "object", "created", "choices", "usage", "error") && s.skip(0)
	}
	var ok bool
	if m != nil && len(m.b) > 0 && len(data) > len(m.b) && string(data[:len(m.b)]) == string(m.b) {
		// The same bytes read the same way: start at the key after them.
		c.ID, c.Model, c.Object, c.Created = m.id, m.model, m.object, m.created
		s.i = len(m.b)
		ok = s.members(member)
	} else {
		if m != nil {
			m.b = m.b[:0]
		}
		ok = s.object(member)
	}
	s.ws()
	return ok && s.i == len(s.b)
}

// chunkMemo is what the part of a chunk before its "choices" key held. The
// part holds no usage, so the fields below are all of what it set.
type chunkMemo struct {
	b                 []byte // the part; empty when there is none
	id, model, object internedString
	created           int64
}

func (m *chunkMemo) record(prefix []byte, c *chatChunkIn) {
	m.b = append(m.b[:0], prefix...)
	m.id, m.model, m.object, m.created = c.ID, c.Model, c.Object, c.Created
}

// chunkScanner reads JSON from b at i. Its readers report false on anything
// malformed or unexpected, leaving i where they stopped: the caller then
// declines the whole document.
type chunkScanner struct {
	b   []byte
	i   int
	key int    // where the object member being read began
	mem *arena // if not nil, where strings are made
}

// arena makes strings out of shared blocks: a stream's chunks each carry a
// few bytes of text, and a string apiece was an allocation per chunk (half
// of those a relayed stream makes; scripts/bench, go test -memprofile).
// A block's bytes are never written again once a string covers them, so
// the strings are as immutable as any, and a block lives as long as the
// longest-lived of them: a string kept from a stream keeps at most one
// block (arenaBlock bytes) alive. Longer strings get their own memory.
type arena struct{ block []byte }

const arenaBlock = 2 << 10

// reserve makes room for n more bytes in the block, starting a new block
// if need be, and returns where they begin.
func (a *arena) reserve(n int) int {
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, arenaBlock)
	}
	return len(a.block)
}

// string returns the string of the bytes a.block holds from start on.
func (a *arena) string(start int) string {
	return unsafe.String(&a.block[start], len(a.block)-start)
}

func (s *chunkScanner) ws() {
	// Upstreams send compact JSON: whitespace is the exception.
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	s.i = skipSpace(s.b, s.i)
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

// object reads an object, calling member with each key once its colon is
// read; member must consume the value and report whether it could. The key
// is raw, and esc reports whether it holds escapes: encoding/json decodes
// them before matching, so a reader that skips keys it does not know must
// decline such a key.
func (s *chunkScanner) object(member func(key []byte, esc bool) bool) bool {
	s.ws()
	if !s.eat('{') {
		return false
	}
	if s.ws(); s.eat('}') {
		return true
	}
	return s.members(member)
}

// members reads an object's members from the first key on, through the
// closing brace. s.key is where the current key starts.
func (s *chunkScanner) members(member func(key []byte, esc bool) bool) bool {
	for {
		s.ws()
		s.key = s.i
		key, esc, ok := s.str()
		if !ok {
			return false
		}
		if s.ws(); !s.eat(':') || !member(key, esc) {
			return false
		}
		if s.ws(); s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// array reads an array, calling elem for each element; elem must consume
// it and report whether it could.
func (s *chunkScanner) array(elem func() bool) bool {
	s.ws()
	if !s.eat('[') {
		return false
	}
	if s.ws(); s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.ws(); s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// str reads a string, returning its raw content and whether it holds
// escapes. It validates escapes, control characters and UTF-8. It works on
// locals, not s's fields, so that the loop keeps them in registers: str
// was half of decoding's time.
func (s *chunkScanner) str() (raw []byte, esc bool, ok bool) {
	s.ws()
	if !s.eat('"') {
		return nil, false, false
	}
	b, i := s.b, s.i
	start := i
	ascii := true
	for i < len(b) {
		i = plainRun(b, i)
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			raw = b[start:i]
			s.i = i + 1
			if !ascii && !utf8.Valid(raw) {
				return nil, false, false // encoding/json would replace the bad bytes
			}
			return raw, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:]) < 0 {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default: // c >= utf8.RuneSelf
			ascii = false
			i++
		}
	}
	s.i = i
	return nil, false, false
}

// plainRun returns the index of the first byte at or after i that is not
// plain, eight bytes at a time while it can (SWAR: a word holds a
// non-plain byte if any byte is a quote, a backslash, below 0x20 or at
// or above 0x80).
func plainRun(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ ('"' * ones)
		bs := w ^ ('\\' * ones)
		special := (q-ones)&^q | (bs-ones)&^bs | (w - 0x20*ones) | w
		if special&highs != 0 {
			break
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// plain marks the bytes a string can hold as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// string reads a string or null as a Go string.
func (s *chunkScanner) string(dst *string) bool {
	if s.null() {
		return true
	}
	raw, esc, ok := s.str()
	if !ok {
		return false
	}
	if len(raw) == 0 {
		*dst = ""
		return true
	}
	if a := s.mem; a != nil && len(raw) <= arenaBlock/4 {
		// Decoding escapes only shortens, so the reserved room suffices
		// and appending stays within the block.
		start := a.reserve(len(raw))
		if esc {
			a.block = appendUnquoted(a.block, raw)
		} else {
			a.block = append(a.block, raw...)
		}
		*dst = a.string(start)
		return true
	}
	if !esc {
		*dst = string(raw)
		return true
	}
	// str has checked the escapes and the UTF-8, and decoding shortens.
	*dst = string(appendUnquoted(make([]byte, 0, len(raw)), raw))
	return true
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
	// Two statements: in "start, neg := s.i, s.eat('-')" Go leaves the
	// order of the field read and the call unspecified (found by fuzzing:
	// "-01" was accepted).
	neg := s.eat('-')
	start := s.i
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
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
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

// count reads an integer or null into dst; encoding/json leaves an int
// unchanged on null.
func (s *chunkScanner) count(dst *int) bool {
	if s.null() {
		return true
	}
	n, ok := s.int()
	*dst = int(n)
	return ok
}

// usage reads the usage object that ends a stream when the client asked
// for it: once per stream, but encoding/json took 5 µs over it.
func (s *chunkScanner) usage(dst **chatUsage) bool {
	if s.null() {
		*dst = nil
		return true
	}
	if *dst == nil {
		*dst = new(chatUsage)
	}
	u := *dst
	return s.object(func(key []byte, esc bool) bool {
		switch string(key) {
		case "prompt_tokens":
			return s.count(&u.PromptTokens)
		case "completion_tokens":
			return s.count(&u.CompletionTokens)
		case "total_tokens":
			return s.count(&u.TotalTokens)
		case "prompt_tokens_details":
			return details(s, &u.PromptTokensDetails, "cached_tokens", func(d *promptDetails) *int { return &d.CachedTokens })
		case "completion_tokens_details":
			return details(s, &u.CompletionTokensDetails, "reasoning_tokens", func(d *completionDetails) *int { return &d.ReasoningTokens })
		}
		return !esc && !folds(key, "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details") && s.skip(0)
	})
}

// details reads a usage details object, of which keel keeps one count.
func details[T any](s *chunkScanner, dst **T, name string, field func(*T) *int) bool {
	if s.null() {
		*dst = nil
		return true
	}
	if *dst == nil {
		*dst = new(T)
	}
	d := *dst
	return s.object(func(key []byte, esc bool) bool {
		if string(key) == name {
			return s.count(field(d))
		}
		return !esc && !folds(key, name) && s.skip(0)
	})
}

// choices reads the choices array of the common shape.
func (s *chunkScanner) choices(c *chatChunkIn) bool {
	if s.null() {
		return true
	}
	return s.array(func() bool {
		c.Choices = append(c.Choices, chatChoiceIn{})
		return s.choice(&c.Choices[len(c.Choices)-1])
	})
}

func (s *chunkScanner) choice(ch *chatChoiceIn) bool {
	return s.object(func(key []byte, esc bool) bool {
		switch string(key) {
		case "index":
			n, ok := s.int()
			ch.Index = int(n)
			return ok
		case "delta":
			return s.delta(ch)
		case "finish_reason":
			return s.intern(&ch.FinishReason)
		case "message", "tool_calls":
			return false
		}
		return !esc && !folds(key, "index", "delta", "finish_reason") && s.skip(0)
	})
}

func (s *chunkScanner) delta(ch *chatChoiceIn) bool {
	if s.null() {
		return true
	}
	d := &ch.Delta
	return s.object(func(key []byte, esc bool) bool {
		switch string(key) {
		case "content":
			return s.string(&d.Content)
		case "reasoning_content":
			return s.string(&d.ReasoningContent)
		case "reasoning":
			return s.string(&d.Reasoning)
		case "tool_calls":
			return s.null()
		}
		return !esc && !folds(key, "content", "reasoning_content", "reasoning", "tool_calls") && s.skip(0)
	})
}

// folds reports whether key matches one of names case-insensitively, as
// encoding/json matches keys: such a key must go the slow way. A key with
// any non-ASCII byte is taken to match: encoding/json folds by Unicode,
// where "choiceſ" (a long s, two bytes) is "choices", which the length
// check below misses (found writing scanChatMessages: scanChunk skipped
// such a key and lost the choices encoding/json reads).
func folds(key []byte, names ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
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
		return s.object(func([]byte, bool) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
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
