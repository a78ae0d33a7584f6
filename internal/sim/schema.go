package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// schema is the part of JSON Schema the simulator reads to build an
// instance: enough for tool parameters and structured-output schemas.
type schema struct {
	Type        typeList           `json:"type"`
	Properties  properties         `json:"properties"`
	Items       *schema            `json:"items"`
	MinItems    int                `json:"minItems"`
	Enum        []json.RawMessage  `json:"enum"`
	Const       json.RawMessage    `json:"const"`
	AnyOf       []*schema          `json:"anyOf"`
	OneOf       []*schema          `json:"oneOf"`
	AllOf       []*schema          `json:"allOf"`
	Ref         string             `json:"$ref"`
	Defs        map[string]*schema `json:"$defs"`
	Definitions map[string]*schema `json:"definitions"`
	Minimum     *float64           `json:"minimum"`
	Maximum     *float64           `json:"maximum"`
}

// typeList is a schema's "type": a string or a list of strings.
type typeList []string

func (t *typeList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = typeList{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*t = l
	return nil
}

// property is one entry of "properties"; properties keeps the schema's
// order, so generated objects list keys as the schema does.
type property struct {
	name string
	s    *schema
}

type properties []property

func (p *properties) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("properties: want an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		s := new(schema)
		if err := dec.Decode(s); err != nil {
			return err
		}
		*p = append(*p, property{name: name, s: s})
	}
	return nil
}

// maxDepth bounds recursion through nested and $ref'd schemas.
const maxDepth = 8

// instance returns a JSON value valid for the schema in raw (as far as the
// simulator understands schemas), with words and numbers chosen by h.
// Objects get every listed property; strings a word; numbers and integers a
// number (within minimum/maximum); booleans true; arrays minItems items
// (usually []); enums and consts one of their values. An empty or
// unparsable schema gives {}.
func instance(raw json.RawMessage, h uint64) []byte {
	var s schema
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return []byte("{}")
	}
	return appendInstance(nil, &s, &s, h, 0)
}

func appendInstance(b []byte, s, root *schema, h uint64, depth int) []byte {
	if s == nil || depth > maxDepth {
		return append(b, "null"...)
	}
	switch {
	case len(s.Const) > 0:
		return append(b, compact(s.Const)...)
	case len(s.Enum) > 0:
		return append(b, compact(s.Enum[mix(h)%uint64(len(s.Enum))])...)
	case s.Ref != "":
		return appendInstance(b, root.resolve(s.Ref), root, h, depth+1)
	case len(s.AnyOf) > 0:
		return appendInstance(b, firstNonNull(s.AnyOf), root, h, depth+1)
	case len(s.OneOf) > 0:
		return appendInstance(b, firstNonNull(s.OneOf), root, h, depth+1)
	case len(s.AllOf) > 0:
		return appendInstance(b, s.AllOf[0], root, h, depth+1)
	}
	switch s.kind() {
	case "object":
		b = append(b, '{')
		for i, p := range s.Properties {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p.name)
			b = append(b, ':')
			b = appendInstance(b, p.s, root, hashString(h, p.name), depth+1)
		}
		return append(b, '}')
	case "array":
		b = append(b, '[')
		for i := range min(s.MinItems, 16) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendInstance(b, s.Items, root, mix(h+uint64(i)), depth+1)
		}
		return append(b, ']')
	case "integer":
		return strconv.AppendFloat(b, s.clamp(float64(mix(h)%100)), 'f', 0, 64)
	case "number":
		return strconv.AppendFloat(b, s.clamp(float64(mix(h)%1000)/10), 'f', -1, 64)
	case "boolean":
		return append(b, "true"...)
	case "null":
		return append(b, "null"...)
	default:
		return appendString(b, word(h))
	}
}

// kind is the JSON type to generate: the first non-null listed type, else
// what the keywords imply.
func (s *schema) kind() string {
	for _, t := range s.Type {
		if t != "null" {
			return t
		}
	}
	switch {
	case len(s.Type) > 0:
		return "null"
	case len(s.Properties) > 0:
		return "object"
	case s.Items != nil:
		return "array"
	}
	return "string"
}

func (s *schema) clamp(v float64) float64 {
	if s.Minimum != nil && v < *s.Minimum {
		v = *s.Minimum
	}
	if s.Maximum != nil && v > *s.Maximum {
		v = *s.Maximum
	}
	return v
}

// resolve looks up a local reference such as "#/$defs/Item"; it returns nil
// for anything else.
func (s *schema) resolve(ref string) *schema {
	if ref == "#" {
		return s
	}
	if name, ok := strings.CutPrefix(ref, "#/$defs/"); ok {
		return s.Defs[name]
	}
	if name, ok := strings.CutPrefix(ref, "#/definitions/"); ok {
		return s.Definitions[name]
	}
	return nil
}

func firstNonNull(l []*schema) *schema {
	for _, s := range l {
		if s != nil && !(len(s.Type) == 1 && s.Type[0] == "null") {
			return s
		}
	}
	return l[0]
}

func compact(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return []byte("null")
	}
	return buf.Bytes()
}

// fragments splits a JSON text into the pieces a model would stream: runs of
// word characters ("location", "amber") alternate with runs of punctuation
// (`{"`, `":"`), as OpenAI streams tool arguments. Splits fall on ASCII
// bytes only, so multi-byte characters stay whole.
func fragments(out []string, s string) []string {
	start := 0
	for i := 1; i < len(s); i++ {
		if isWordByte(s[i]) != isWordByte(s[i-1]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func isWordByte(c byte) bool {
	return c >= 0x80 || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
