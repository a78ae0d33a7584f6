// Package chat is keel's domain: who is asking (keys, later users), what was
// asked and how it was served (request records), and the store interfaces
// that persist them. Implementations live in store/*; the one conformance
// suite in chat/chattest runs against each.
//
// The package imports nothing of keel's.
package chat

import (
	"context"
	"time"
)

// Key is an API key's record. The secret itself is never stored: only its
// SHA-256 hash.
type Key struct {
	ID      string
	Name    string
	Hash    [32]byte
	Created time.Time
	// Revoked is zero while the key is active.
	Revoked time.Time
}

// KeyStore persists API keys.
type KeyStore interface {
	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash returns the active key with hash h, or an error with code
	// ENotFound.
	KeyByHash(ctx context.Context, h [32]byte) (*Key, error)
	Keys(ctx context.Context) ([]*Key, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// Outcome is how one upstream attempt ended.
type Outcome string

// The outcomes. An attempt that failed carries the failure kind's name
// (llm.Kind.String()) as its outcome, e.g. "rate_limit" or "timeout".
const (
	OutcomeOK Outcome = "ok"
	// OutcomeCanceled: keel cancelled the attempt (the client left, or a
	// hedge lost the race).
	OutcomeCanceled Outcome = "canceled"
	// OutcomeSkipped: keel did not call the target, which lacks a feature
	// the request needs; Error says which.
	OutcomeSkipped Outcome = "skipped"
)

// Attempt is one call to one upstream target while serving a request.
type Attempt struct {
	// Provider and Model name the target.
	Provider string
	Model    string
	Start    time.Time
	// Reason is why keel made the attempt: "first", "retry", "failover",
	// "hedge", "context" (a larger-context fallback), "restart" (after a
	// target refused a prefill), or "skipped" (the target lacks a feature
	// the request uses; Error says which).
	Reason string
	// Duration is how long the attempt lasted.
	Duration time.Duration
	Outcome  Outcome
	// Status is the upstream's HTTP status, 0 if none arrived.
	Status int
	// Error is the upstream's error message, if any (never prompt text).
	Error string
}

// Request is the record of one client request, written when it ends.
type Request struct {
	ID    string
	Time  time.Time
	KeyID string // empty when keel runs open (loopback, no keys)
	// API names the client API ("chat.completions").
	API    string
	Model  string // the model name the client asked for
	Stream bool
	// Provider and ServedModel name the target that served the answer;
	// empty when none did.
	Provider    string
	ServedModel string
	Attempts    []Attempt
	// Status is the HTTP status keel answered with; for a stream that
	// failed after the 200, the status of the in-band error.
	Status int
	// Error is the error shown to the client, if any.
	Error string
	// TTFT is the time to the first token reaching the client; zero if none.
	TTFT time.Duration
	// Duration is the total time to the last byte.
	Duration     time.Duration
	InputTokens  int
	OutputTokens int
	// Prompt and Completion hold the texts only when the config asks to
	// record content; otherwise they are empty.
	Prompt     string
	Completion string
}

// RequestStore persists request records.
type RequestStore interface {
	// RecordRequests stores the records in one batch.
	RecordRequests(ctx context.Context, rs []*Request) error
	// Request returns the record with the given id, or ENotFound.
	Request(ctx context.Context, id string) (*Request, error)
	// Requests returns up to limit records, newest first.
	Requests(ctx context.Context, limit int) ([]*Request, error)
}
