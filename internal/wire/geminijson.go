package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jscan is a strict, allocation-free JSON reader over one document. The
// Gemini stream decoder uses it instead of encoding/json, whose reflection
// and scanner stack cost 14 allocations per Gemini chunk against issue 4's
// floor of 10 (BenchmarkGenerateStreamDecode). It accepts exactly what
// json.Valid accepts (FuzzGenerateStreamDecoder checks that); a value it is
// asked to skip is still checked.
type jscan struct {
	b []byte
	i int
	// key holds an unescaped key: escaped keys are rare, so it is seldom
	// grown.
	key []byte
}

// maxJSONDepth bounds the nesting of skipped values, like encoding/json's
// 10000, so that hostile input cannot exhaust the stack.
const maxJSONDepth = 10000

var errJSONDepth = errors.New("json: nesting too deep")

func (s *jscan) syntax(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("json: unexpected end of data, want %s", what)
	}
	return fmt.Errorf("json: invalid character %q at offset %d, want %s", s.b[s.i], s.i, what)
}

func (s *jscan) ws() { s.i = skipSpace(s.b, s.i) }

// peek returns the next non-space byte, or 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end checks that nothing but space follows the document.
func (s *jscan) end() error {
	if s.ws(); s.i != len(s.b) {
		return s.syntax("the end of the document")
	}
	return nil
}

// object reads an object, calling each with every key (unescaped; valid
// until the next key is read, also that of a nested object). each must
// consume the key's value.
func (s *jscan) object(each func(key []byte) error) error {
	if s.peek() != '{' {
		return s.syntax("an object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("a key")
		}
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		key := raw
		if esc {
			s.key = appendUnquoted(s.key[:0], raw)
			key = s.key
		}
		if s.peek() != ':' {
			return s.syntax("':'")
		}
		s.i++
		if err := each(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("',' or '}'")
		}
	}
}

// array reads an array, calling each for every element; each must consume
// it.
func (s *jscan) array(each func(i int) error) error {
	if s.peek() != '[' {
		return s.syntax("an array")
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := each(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.syntax("',' or ']'")
		}
	}
}

// null consumes a null if one is next.
func (s *jscan) null() (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.lit("null")
}

// str reads a string, returning its raw body without the quotes and
// whether it holds escapes. Control characters are rejected, as JSON
// requires; invalid UTF-8 is left for appendUnquoted to replace.
func (s *jscan) str() (raw []byte, esc bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.syntax("a string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, esc, nil
		case c == '\\':
			esc = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, s.syntax("an escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.b) || unhex(s.b[s.i]) < 0 {
						return nil, false, s.syntax("a hex digit")
					}
					s.i++
				}
			default:
				return nil, false, s.syntax("an escape")
			}
		case c < 0x20:
			return nil, false, s.syntax("a string character")
		default:
			s.i++
		}
	}
	return nil, false, s.syntax("'\"'")
}

// boolean reads true, false or null (false).
func (s *jscan) boolean() (bool, error) {
	switch s.peek() {
	case 't':
		return true, s.lit("true")
	case 'f':
		return false, s.lit("false")
	case 'n':
		return false, s.lit("null")
	}
	return false, s.syntax("a boolean")
}

// int reads a number (or null, as 0) as an int, truncating a fraction and
// saturating at the int range.
func (s *jscan) int() (int, error) {
	if ok, err := s.null(); ok || err != nil {
		return 0, err
	}
	raw, err := s.num()
	if err != nil {
		return 0, err
	}
	if n, ok := smallInt(raw); ok {
		return n, nil
	}
	f, _ := strconv.ParseFloat(string(raw), 64) // a valid number; ±Inf when huge
	switch {
	case f >= math.MaxInt:
		return math.MaxInt, nil
	case f <= math.MinInt:
		return math.MinInt, nil
	}
	return int(f), nil
}

// smallInt parses an integer of at most 18 digits, the common case,
// without strconv's string conversion.
func smallInt(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// num reads a number and returns its text.
func (s *jscan) num() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, s.syntax("a number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, s.syntax("a digit")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, s.syntax("a digit")
		}
	}
	return s.b[start:s.i], nil
}

func (s *jscan) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *jscan) lit(word string) error {
	s.ws()
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.syntax(word)
	}
	s.i += len(word)
	return nil
}

// skip consumes any value, checking it.
func (s *jscan) skip() error { return s.skipDepth(0) }

func (s *jscan) skipDepth(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	switch s.peek() {
	case '{':
		return s.object(func([]byte) error { return s.skipDepth(depth + 1) })
	case '[':
		return s.array(func(int) error { return s.skipDepth(depth + 1) })
	case '"':
		_, _, err := s.str()
		return err
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	_, err := s.num()
	return err
}

// raw consumes any value and returns its text.
func (s *jscan) raw() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// appendCompact appends a value raw accepted without the space between
// its tokens, and with invalid UTF-8 replaced by U+FFFD as encoding/json
// would.
func appendCompact(dst, v []byte) []byte {
	in := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= utf8.RuneSelf: // only inside strings
			r, size := utf8.DecodeRune(v[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, v[i:i+size]...)
			}
			i += size - 1
			continue
		case in:
			if c == '\\' {
				dst = append(dst, c)
				i++
				c = v[i]
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnquoted appends the value of a string body that str (jscan's or
// chunkScanner's) accepted, as encoding/json decodes it: escapes resolved,
// invalid UTF-8 and unpaired surrogates replaced by U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			i++
			switch raw[i] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+1:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
						r2 = hex4(raw[i+3:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, raw[i])
			}
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 returns the value of the four hex digits b starts with, or a
// negative number if any of them is not one.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}
