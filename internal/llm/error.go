package llm

import (
	"fmt"
	"time"
)

// Kind classifies why an upstream call failed. Adapters map their vendor's
// statuses and error codes onto a Kind once; the router decides what to do
// with each Kind in one place (router/failure.go).
type Kind uint8

// The failure kinds.
const (
	KindUnknown Kind = iota
	// KindConnect: no connection, or it was reset before response headers.
	KindConnect
	// KindTimeout: the upstream went silent past a deadline (headers, first
	// token, or between chunks).
	KindTimeout
	// KindRateLimit: 429, a limit that will lift (see Error.RetryAfter).
	KindRateLimit
	// KindQuota: a 429 that will not lift soon, such as insufficient_quota.
	KindQuota
	// KindOverloaded: the vendor as a whole is overloaded (503, 529).
	KindOverloaded
	// KindServer: any other 5xx.
	KindServer
	// KindAuth: the upstream refused keel's credentials (401, 403).
	KindAuth
	// KindNotFound: the upstream does not know the model or path (404).
	KindNotFound
	// KindInvalid: the upstream rejected the request itself (400, 422).
	KindInvalid
	// KindContextLength: the prompt does not fit the model's context.
	KindContextLength
	// KindContentFilter: the vendor's content filter refused the request.
	KindContentFilter
	// KindStream: the stream broke after it started: cut without a
	// terminator, an in-band error, or undecodable data.
	KindStream
	// KindCanceled: the client went away. Never the upstream's fault.
	KindCanceled
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	KindConnect:       "connect",
	KindTimeout:       "timeout",
	KindRateLimit:     "rate_limit",
	KindQuota:         "quota",
	KindOverloaded:    "overloaded",
	KindServer:        "server",
	KindAuth:          "auth",
	KindNotFound:      "not_found",
	KindInvalid:       "invalid",
	KindContextLength: "context_length",
	KindContentFilter: "content_filter",
	KindStream:        "stream",
	KindCanceled:      "canceled",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a classified upstream failure.
type Error struct {
	Kind Kind
	// Status is the upstream's HTTP status, or 0 if none arrived.
	Status int
	// Provider names the provider that failed.
	Provider string
	// Type, Code, Param and Message are the vendor's own error fields,
	// safe to show the client.
	Type    string
	Code    string
	Param   string
	Message string
	// RetryAfter is the wait the upstream asked for (Retry-After,
	// retry-after-ms), or 0.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs.
	Err error
}

func (e *Error) Error() string {
	s := e.Provider + ": " + e.Kind.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
