package chat

import (
	"errors"
	"fmt"
)

// The error codes users may see. Anything that is not an *Error, or has
// another code, is an internal error and shown as "internal error".
const (
	EInvalid      = "invalid"      // the request is malformed (400)
	EUnauthorized = "unauthorized" // no or bad credentials (401)
	EForbidden    = "forbidden"    // authenticated, but not allowed (403)
	ENotFound     = "not_found"    // no such thing (404)
	ETooLarge     = "too_large"    // the body is too large (413)
	EUnavailable  = "unavailable"  // keel is shutting down or busy (503)
	EInternal     = "internal"     // a bug or a broken dependency (500)
)

// Error is an error whose Message is safe to show the client. Param names
// the offending request field, if any.
type Error struct {
	Code    string
	Message string
	Param   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns err's code: the Code of the *Error in its chain, or
// EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message safe to show for err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
