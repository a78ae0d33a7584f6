package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/wire"
)

// statusClientClosed is nginx's 499: the client left before the answer.
const statusClientClosed = 499

// errorOf maps any error to what the client sees: the upstream's own
// status and message for upstream errors (issue 3: "return the upstream's
// own status and message, not a generic error"), the user-facing message of
// a *chat.Error, and "internal error" for everything else.
func errorOf(err error) wire.APIError {
	var le *llm.Error
	if errors.As(err, &le) {
		e := wire.APIError{Status: le.Status, Message: le.Message, Type: le.Type, Param: le.Param, Code: le.Code}
		switch {
		case le.Kind == llm.KindCanceled:
			e.Status = statusClientClosed
		case le.Status < 400:
			// An error that came without a status (in a stream, or a
			// blocked prompt in a 200) gets the one its kind implies.
			e.Status = kindStatus[le.Kind]
		}
		if e.Message == "" {
			e.Message = "upstream " + le.Provider + " failed: " + le.Kind.String()
		}
		return e // each API's encoder puts the type in its own vocabulary
	}
	if errors.Is(err, context.Canceled) {
		return wire.APIError{Status: statusClientClosed, Message: "the client closed the request", Type: "invalid_request_error"}
	}
	var ce *chat.Error
	if !errors.As(err, &ce) {
		return wire.APIError{Status: http.StatusInternalServerError, Message: "internal error", Type: "server_error"}
	}
	e := wire.APIError{Message: ce.Message, Param: ce.Param}
	switch ce.Code {
	case chat.EInvalid:
		e.Status = http.StatusBadRequest
	case chat.EUnauthorized:
		e.Status, e.Code = http.StatusUnauthorized, "invalid_api_key"
	case chat.EForbidden:
		e.Status = http.StatusForbidden
	case chat.ENotFound:
		e.Status = http.StatusNotFound
		if ce.Param == "model" {
			e.Code = "model_not_found"
		}
	case chat.ETooLarge:
		e.Status = http.StatusRequestEntityTooLarge
	case chat.EUnavailable:
		e.Status = http.StatusServiceUnavailable
	default:
		e.Status, e.Message = http.StatusInternalServerError, "internal error"
	}
	e.Type = wire.OpenAIType("", e.Status)
	return e
}

// kindStatus is the status for an upstream error that came without one.
var kindStatus = map[llm.Kind]int{
	llm.KindUnknown:       http.StatusBadGateway,
	llm.KindConnect:       http.StatusBadGateway,
	llm.KindTimeout:       http.StatusGatewayTimeout,
	llm.KindRateLimit:     http.StatusTooManyRequests,
	llm.KindQuota:         http.StatusTooManyRequests,
	llm.KindOverloaded:    http.StatusServiceUnavailable,
	llm.KindServer:        http.StatusBadGateway,
	llm.KindAuth:          http.StatusBadGateway, // keel's credentials, not the client's
	llm.KindNotFound:      http.StatusNotFound,
	llm.KindInvalid:       http.StatusBadRequest,
	llm.KindContextLength: http.StatusBadRequest,
	llm.KindContentFilter: http.StatusBadRequest,
	llm.KindStream:        http.StatusBadGateway,
}

// writeError writes err in api's error format and returns its status.
func writeError(w http.ResponseWriter, api clientAPI, err error) int {
	e := errorOf(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	var le *llm.Error
	if errors.As(err, &le) && le.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(le.RetryAfter.Seconds()))))
	}
	if e.Code == "insufficient_quota" {
		// The SDKs retry 429s by themselves; a quota error is final, and
		// keel already failed over (wire README §10).
		h.Set("X-Should-Retry", "false")
	}
	status := e.Status
	if status == statusClientClosed {
		status = http.StatusBadRequest // nobody is there to read it
	}
	w.WriteHeader(status)
	w.Write(api.AppendError(nil, e))
	return e.Status
}
