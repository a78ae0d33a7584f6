package sim

import (
	"github.com/keel-ai/keel/internal/jsontext"
)

// appendString appends s to b as a JSON string. Unlike encoding/json's
// default, and like the vendors' APIs, it does not escape <, > and &.
func appendString(b []byte, s string) []byte { return jsontext.AppendString(b, s, false) }

// appendEscaped appends the body of the JSON string s (without quotes), so
// a string can be written in several parts.
func appendEscaped(b []byte, s string) []byte { return jsontext.AppendEscaped(b, s, false) }

// appendNullable appends s as a JSON string, or null if s is empty.
func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}
