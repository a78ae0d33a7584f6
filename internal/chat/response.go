package chat

import (
	"context"
	"encoding/json"
	"time"
)

// Response is a stored answer of the OpenAI Responses API (issue 4), kept
// so that a later request can continue from it by previous_response_id.
// It holds conversation content: keel stores one only because the client
// asked it to (store: true, which is OpenAI's default).
type Response struct {
	// ID is the response's id, "resp_…".
	ID string
	// KeyID is the API key that created the response; empty when keel runs
	// open. Only the same key may read it back.
	KeyID   string
	Created time.Time
	// Model is the model that answered.
	Model string
	// PreviousID is the previous_response_id the request continued from,
	// or empty.
	PreviousID string
	// Input is the request's own input, as a JSON array of Responses input
	// items; item references are replaced by the items they named. It does
	// not hold the context of PreviousID, nor the instructions, which
	// OpenAI does not carry over either.
	Input json.RawMessage
	// Output is the response's output, as a JSON array of output items.
	Output json.RawMessage
}

// ResponseStore persists stored responses.
type ResponseStore interface {
	// SaveResponse stores r. Saving an ID that exists fails.
	SaveResponse(ctx context.Context, r *Response) error
	// Response returns the response with the given id stored by keyID, or
	// an error with code ENotFound, also when another key stored it: one
	// client never sees another's conversation.
	Response(ctx context.Context, id, keyID string) (*Response, error)
}
