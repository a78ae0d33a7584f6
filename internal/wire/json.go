package wire

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/keel-ai/keel/internal/jsontext"
)

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does (HTML-safe, with invalid UTF-8 replaced), without its allocations.
func appendJSONString(dst []byte, s string) []byte { return jsontext.AppendString(dst, s, true) }

// member is one member of a JSON object: its key and its raw value.
type member struct {
	key string
	raw json.RawMessage
}

// bodyMembers returns the members of a request body, which must be a JSON
// object, sorted by key so that a request with several problems always
// reports the same one. A repeated key keeps its last value, as with
// encoding/json. The chunk scanner reads a plain body in one pass; what it
// declines (escaped or repeated keys, deep nesting, invalid UTF-8, any
// syntax error) goes through encoding/json into a map, the way every body
// once did (BenchmarkDecodeChatRequest: a third less time, 66 → 50
// allocations).
func bodyMembers(body []byte) ([]member, bool) {
	if ms, ok := scanMembers(body); ok {
		return ms, true
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, false
	}
	ms := make([]member, 0, len(fields))
	for _, k := range sortedKeys(fields) {
		ms = append(ms, member{k, fields[k]})
	}
	return ms, true
}

// scanMembers is bodyMembers' fast path. The raw values are slices of
// body, not copies.
func scanMembers(body []byte) ([]member, bool) {
	s := chunkScanner{b: body}
	ms := make([]member, 0, 8)
	ok := s.object(func(key []byte, esc bool) bool {
		if esc {
			return false
		}
		s.ws()
		start := s.i
		if !s.skip(0) {
			return false
		}
		ms = append(ms, member{string(key), body[start:s.i]})
		return true
	})
	if s.ws(); !ok || s.i != len(body) {
		return nil, false
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(ms); i++ {
		if ms[i].key == ms[i-1].key {
			return nil, false
		}
	}
	return ms, true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
