// Package jsontext appends JSON strings without reflection or allocation.
// The hot paths' encoders write their strings with it: stream chunks and
// answers (wire), the simulator's replies (sim) and the request log
// (store/sqlite). The escaping is encoding/json's, byte for byte, which the
// fuzz test checks.
package jsontext

import "unicode/utf8"

const hex = "0123456789abcdef"

// AppendString appends s as a quoted JSON string. With html, <, > and & are
// escaped as encoding/json escapes them by default; without, as a
// json.Encoder with SetEscapeHTML(false) writes, and as vendors' APIs send
// them. U+2028 and U+2029 are always escaped (valid JSON, but they end a
// line in JavaScript), and invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s, html)
	return append(dst, '"')
}

// AppendEscaped appends the inside of s's JSON string, without the quotes,
// so that one string can be written in several parts.
func AppendEscaped(dst []byte, s string, html bool) []byte {
	safe := &safeSet
	if html {
		safe = &htmlSafeSet
	}
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// safeSet and htmlSafeSet mark the ASCII bytes that go into a JSON string
// as they are.
var safeSet, htmlSafeSet = func() (plain, html [utf8.RuneSelf]bool) {
	for b := range utf8.RuneSelf {
		plain[b] = b >= 0x20 && b != '"' && b != '\\'
		html[b] = plain[b] && b != '<' && b != '>' && b != '&'
	}
	return plain, html
}()
