// Package wire holds the vendors' JSON wire formats and their translation to
// and from llm's neutral model, one file per format. Both directions of a
// format live together because both sides of keel speak it: httpapi decodes
// client requests and encodes answers in it, and provider adapters encode
// upstream requests and decode answers in it. (STYLE.md puts wire types in
// provider/*; keeping them here instead stops httpapi importing a provider.)
package wire

import (
	"encoding/json"
	"fmt"

	"github.com/keel-ai/keel/internal/chat"
)

// invalid returns the 400 shown for a malformed request field.
func invalid(param, format string, args ...any) *chat.Error {
	return &chat.Error{Code: chat.EInvalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

// decodeField unmarshals the field named param, naming it on failure. A
// wrong type deeper inside it is named by its path: param.a.b.
func decodeField(param string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fieldError(param, err)
	}
	return nil
}

// fieldError is decodeField's error for err, json.Unmarshal's, for callers
// that name param only once they know something is wrong.
func fieldError(param string, err error) error {
	if e, ok := err.(*json.UnmarshalTypeError); ok && e.Field != "" {
		param += "." + e.Field
	}
	return invalid(param, "%s: %s", param, jsonProblem(err))
}

// jsonProblem describes a decode error without Go type names.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return "expected " + jsonKind(e.Type.Kind().String()) + ", got " + e.Value
	case *json.SyntaxError:
		return "invalid JSON: " + e.Error()
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return goKind
}

// isNull reports whether raw is JSON null (or absent).
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
