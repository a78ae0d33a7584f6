package chattest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
)

var _ chat.ResponseStore = (*ResponseStore)(nil)

// ResponseStore is a chat.ResponseStore whose methods call the matching Fn
// field. Calling a method whose Fn is nil panics.
type ResponseStore struct {
	SaveResponseFn func(ctx context.Context, r *chat.Response) error
	ResponseFn     func(ctx context.Context, id, keyID string) (*chat.Response, error)
}

func (s *ResponseStore) SaveResponse(ctx context.Context, r *chat.Response) error {
	return s.SaveResponseFn(ctx, r)
}

func (s *ResponseStore) Response(ctx context.Context, id, keyID string) (*chat.Response, error) {
	return s.ResponseFn(ctx, id, keyID)
}

// respOpts compares responses across the store round-trip: JSON byte for
// byte (a reflective diff of a large body is slow), nil equal to empty.
var respOpts = []cmp.Option{cmp.Comparer(func(a, b json.RawMessage) bool { return bytes.Equal(a, b) })}

// fullResponse returns a response with every field set, its content in
// the shapes wire writes: arrays of Responses items.
func fullResponse(id, keyID, previousID string, at time.Time) *chat.Response {
	return &chat.Response{
		ID:         id,
		KeyID:      keyID,
		Created:    at,
		Model:      "gpt-4o-mini",
		PreviousID: previousID,
		Input:      json.RawMessage(`[{"role":"user","content":"What is the capital of France? ünïcødé 🚀 \u003c\u0026\u003e"}]`),
		Output: json.RawMessage(`[{"id":"msg_` + strings.TrimPrefix(id, "resp_") + `_0","type":"message","status":"completed","role":"assistant",` +
			`"content":[{"type":"output_text","text":"Paris.\n","annotations":[],"logprobs":[]}]}]`),
	}
}

// testResponses checks a chat.ResponseStore. Beyond the interface's doc
// comments, the contract is:
//   - Input and Output round-trip byte for byte; empty ones come back
//     empty (nil or zero length).
//   - Saving an existing ID fails and leaves the stored response as it
//     was, whichever key tries.
func testResponses(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	responses := func(t *testing.T) chat.ResponseStore {
		t.Helper()
		s := open(t).Responses
		if s == nil {
			t.Skip("no response store")
		}
		return s
	}
	save := func(t *testing.T, s chat.ResponseStore, rs ...*chat.Response) {
		t.Helper()
		for _, r := range rs {
			if err := s.SaveResponse(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("RoundTrip", func(t *testing.T) {
		big := strings.Repeat("x", 1<<20)
		tests := []struct {
			name string
			r    *chat.Response
		}{
			{"Full", fullResponse("resp_full", "key_0123456789abcdef", "resp_before", base)},
			{"Open", fullResponse("resp_open", "", "", base)},
			{"Minimal", &chat.Response{ID: "resp_minimal", Created: base}},
			{"Large", &chat.Response{
				ID: "resp_large", KeyID: "key_0123456789abcdef", Created: base,
				Input:  json.RawMessage(`[{"role":"user","content":"` + big + `"}]`),
				Output: json.RawMessage(`[]`),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := responses(t)
				save(t, s, tt.r)
				got, err := s.Response(ctx, tt.r.ID, tt.r.KeyID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.r, got, respOpts...); diff != "" {
					t.Errorf("Response (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := responses(t)
		save(t, s, fullResponse("resp_1", "key_a", "", base))
		_, err := s.Response(ctx, "resp_2", "key_a")
		wantCode(t, err, chat.ENotFound)
	})

	// OtherKey checks isolation: one client never sees another's
	// conversation, not even by guessing its id.
	t.Run("OtherKey", func(t *testing.T) {
		s := responses(t)
		a := fullResponse("resp_a", "key_a", "", base)
		open := fullResponse("resp_open", "", "", base)
		save(t, s, a, open)
		for _, tt := range []struct{ id, key string }{
			{"resp_a", "key_b"},
			{"resp_a", ""},
			{"resp_open", "key_a"},
		} {
			_, err := s.Response(ctx, tt.id, tt.key)
			wantCode(t, err, chat.ENotFound)
		}
		// The owner still sees its own.
		got, err := s.Response(ctx, "resp_a", "key_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got, respOpts...); diff != "" {
			t.Errorf("Response (-want +got):\n%s", diff)
		}
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s := responses(t)
		first := fullResponse("resp_1", "key_a", "", base)
		save(t, s, first)
		for _, key := range []string{"key_a", "key_b"} {
			dup := fullResponse("resp_1", key, "resp_0", base.Add(time.Second))
			dup.Output = json.RawMessage(`[]`)
			if err := s.SaveResponse(ctx, dup); err == nil {
				t.Fatalf("SaveResponse of an existing ID by %s: err = nil, want an error", key)
			}
		}
		got, err := s.Response(ctx, "resp_1", "key_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, got, respOpts...); diff != "" {
			t.Errorf("Response after duplicate saves (-want +got):\n%s", diff)
		}
		_, err = s.Response(ctx, "resp_1", "key_b")
		wantCode(t, err, chat.ENotFound)
	})

	// Chain follows previous ids back to the first response, as a request
	// with previous_response_id does; a link stored by another key ends
	// the walk with ENotFound.
	t.Run("Chain", func(t *testing.T) {
		s := responses(t)
		r1 := fullResponse("resp_1", "key_a", "", base)
		r2 := fullResponse("resp_2", "key_a", "resp_1", base.Add(time.Second))
		r3 := fullResponse("resp_3", "key_a", "resp_2", base.Add(2*time.Second))
		other := fullResponse("resp_x", "key_b", "", base)
		mine := fullResponse("resp_y", "key_a", "resp_x", base.Add(time.Second))
		save(t, s, r3, r1, r2, other, mine) // out of order: links are not checked on save

		var got []*chat.Response
		for id := r3.ID; id != ""; {
			r, err := s.Response(ctx, id, "key_a")
			if err != nil {
				t.Fatalf("Response(%s): %v", id, err)
			}
			got = append(got, r)
			id = r.PreviousID
		}
		if diff := cmp.Diff([]*chat.Response{r3, r2, r1}, got, respOpts...); diff != "" {
			t.Errorf("chain (-want +got):\n%s", diff)
		}

		r, err := s.Response(ctx, mine.ID, "key_a")
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Response(ctx, r.PreviousID, "key_a")
		wantCode(t, err, chat.ENotFound)
	})
}
