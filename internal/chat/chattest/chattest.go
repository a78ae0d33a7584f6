// Package chattest holds the conformance suite every implementation of
// chat's store interfaces must pass, and hand-written fakes of those
// interfaces for other packages' tests.
package chattest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/chat"
)

// Stores is what one implementation offers the suite.
type Stores struct {
	Keys     chat.KeyStore
	Requests chat.RequestStore
	// Responses may be nil for an implementation that does not store
	// responses; its tests are then skipped.
	Responses chat.ResponseStore
}

// Run runs the conformance suite. open must return empty stores, distinct
// from any it returned before, and arrange (with t.Cleanup) to close them.
//
// The contract it checks, beyond the interfaces' doc comments:
//   - Times and durations round-trip to the microsecond. The suite only
//     uses values at microsecond precision, and compares times with
//     time.Time.Equal.
//   - Keys lists every key, revoked ones included, oldest first.
//   - RevokeKey on an unknown id fails with chat.ENotFound; revoking twice
//     succeeds and keeps the first time.
//   - Requests orders records by Time descending, then ID descending, and
//     returns none for a limit of zero or less.
//   - RecordRequests is atomic: a batch with a duplicate ID stores nothing.
//   - A nil and an empty Attempts slice are the same.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Keys", func(t *testing.T) { testKeys(t, open) })
	t.Run("Requests", func(t *testing.T) { testRequests(t, open) })
	t.Run("Responses", func(t *testing.T) { testResponses(t, open) })
}

// base is the suite's reference time, at microsecond precision.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// cmpOpts compares records across the store round-trip.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

func hashOf(s string) [32]byte {
	var h [32]byte
	copy(h[:], s)
	return h
}

func newKey(id string, created time.Time) *chat.Key {
	return &chat.Key{ID: id, Name: "name of " + id, Hash: hashOf("hash-" + id), Created: created}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %q", code)
	}
	if got := chat.ErrorCode(err); got != code {
		t.Fatalf("err = %v with code %q, want code %q", err, got, code)
	}
}

func testKeys(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("CreateAndLookup", func(t *testing.T) {
		s := open(t).Keys
		want := newKey("key_0000000000000001", base)
		if err := s.CreateKey(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.KeyByHash(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("KeyByHash (-want +got):\n%s", diff)
		}
	})

	t.Run("LookupUnknown", func(t *testing.T) {
		s := open(t).Keys
		if err := s.CreateKey(ctx, newKey("key_0000000000000001", base)); err != nil {
			t.Fatal(err)
		}
		_, err := s.KeyByHash(ctx, hashOf("no such hash"))
		wantCode(t, err, chat.ENotFound)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s := open(t).Keys
		k := newKey("key_0000000000000001", base)
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		dup := *k
		dup.Hash = hashOf("another hash")
		if err := s.CreateKey(ctx, &dup); err == nil {
			t.Fatal("CreateKey with an existing ID: err = nil, want an error")
		}
	})

	t.Run("DuplicateHash", func(t *testing.T) {
		s := open(t).Keys
		k := newKey("key_0000000000000001", base)
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		dup := *k
		dup.ID = "key_0000000000000002"
		if err := s.CreateKey(ctx, &dup); err == nil {
			t.Fatal("CreateKey with an existing hash: err = nil, want an error")
		}
	})

	t.Run("ListEmpty", func(t *testing.T) {
		s := open(t).Keys
		got, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("Keys = %v, want none", got)
		}
	})

	t.Run("ListOldestFirst", func(t *testing.T) {
		s := open(t).Keys
		// Created out of order, and with a revoked key among them.
		k2 := newKey("key_0000000000000002", base.Add(2*time.Second))
		k1 := newKey("key_0000000000000001", base.Add(time.Second))
		k3 := newKey("key_0000000000000003", base.Add(3*time.Second))
		for _, k := range []*chat.Key{k2, k3, k1} {
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		revoked := base.Add(time.Hour + time.Microsecond)
		if err := s.RevokeKey(ctx, k2.ID, revoked); err != nil {
			t.Fatal(err)
		}
		k2.Revoked = revoked
		got, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*chat.Key{k1, k2, k3}, got); diff != "" {
			t.Errorf("Keys (-want +got):\n%s", diff)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s := open(t).Keys
		k := newKey("key_0000000000000001", base)
		other := newKey("key_0000000000000002", base)
		for _, k := range []*chat.Key{k, other} {
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		at := base.Add(time.Minute)
		if err := s.RevokeKey(ctx, k.ID, at); err != nil {
			t.Fatal(err)
		}
		_, err := s.KeyByHash(ctx, k.Hash)
		wantCode(t, err, chat.ENotFound)
		// The other key is untouched.
		got, err := s.KeyByHash(ctx, other.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(other, got); diff != "" {
			t.Errorf("KeyByHash(other) (-want +got):\n%s", diff)
		}

		// Revoking again succeeds and keeps the first time.
		if err := s.RevokeKey(ctx, k.ID, at.Add(time.Hour)); err != nil {
			t.Fatalf("second RevokeKey: %v", err)
		}
		ks, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := *k
		want.Revoked = at
		if diff := cmp.Diff([]*chat.Key{&want, other}, ks); diff != "" {
			t.Errorf("Keys (-want +got):\n%s", diff)
		}
	})

	t.Run("RevokeUnknown", func(t *testing.T) {
		s := open(t).Keys
		err := s.RevokeKey(ctx, "key_ffffffffffffffff", base)
		wantCode(t, err, chat.ENotFound)
	})

	t.Run("CreateRevoked", func(t *testing.T) {
		s := open(t).Keys
		k := newKey("key_0000000000000001", base)
		k.Revoked = base.Add(time.Second)
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		_, err := s.KeyByHash(ctx, k.Hash)
		wantCode(t, err, chat.ENotFound)
		ks, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*chat.Key{k}, ks); diff != "" {
			t.Errorf("Keys (-want +got):\n%s", diff)
		}
	})
}

// fullRequest returns a record with every field set, and three attempts:
// two failures, then the success.
func fullRequest(id string, at time.Time) *chat.Request {
	return &chat.Request{
		ID:          id,
		Time:        at,
		KeyID:       "key_0123456789abcdef",
		API:         "chat.completions",
		Model:       "gpt-4o",
		Stream:      true,
		Provider:    "anthropic",
		ServedModel: "claude-sonnet-4-5",
		Attempts: []chat.Attempt{
			{
				Provider: "openai", Model: "gpt-4o",
				Start: at, Duration: 1500 * time.Microsecond,
				Outcome: "rate_limit", Status: 429, Error: "Rate limit reached for gpt-4o", Reason: "first",
			},
			{
				Provider: "openai", Model: "gpt-4o",
				Start: at.Add(2 * time.Millisecond), Duration: 30 * time.Second,
				Outcome: "timeout", Error: "no first token within 30s", Reason: "retry",
			},
			{
				Provider: "anthropic", Model: "claude-sonnet-4-5",
				Start: at.Add(30*time.Second + 3*time.Millisecond), Duration: 2*time.Second + 7*time.Microsecond,
				Outcome: chat.OutcomeOK, Status: 200,
			},
		},
		Status:       200,
		TTFT:         30*time.Second + 400*time.Millisecond,
		Duration:     32*time.Second + 10*time.Microsecond,
		InputTokens:  1234,
		OutputTokens: 567,
		Prompt:       "user: What is the capital of France? ünïcødé 🚀",
		Completion:   "Paris.\n",
	}
}

// minimalRequest returns a record with only ID and Time set: a request
// that failed before reaching any upstream, recorded without content.
func minimalRequest(id string, at time.Time) *chat.Request {
	return &chat.Request{ID: id, Time: at}
}

func testRequests(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		tests := []struct {
			name string
			r    *chat.Request
		}{
			{"Full", fullRequest("req_full", base)},
			{"Minimal", minimalRequest("req_minimal", base)},
			{"FailedNoAnswer", &chat.Request{
				ID: "req_failed", Time: base, KeyID: "key_0123456789abcdef", API: "messages",
				Model: "claude-opus-4", Attempts: []chat.Attempt{{
					Provider: "anthropic", Model: "claude-opus-4", Start: base,
					Duration: time.Second, Outcome: "overloaded", Status: 529, Error: "Overloaded",
				}},
				Status: 503, Error: "all upstreams failed", Duration: time.Second,
			}},
			{"Canceled", &chat.Request{
				ID: "req_canceled", Time: base, Stream: true, Attempts: []chat.Attempt{{
					Provider: "openai", Model: "gpt-4o", Start: base,
					Duration: time.Millisecond, Outcome: chat.OutcomeCanceled,
				}},
				Status: 499, Duration: time.Millisecond,
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t).Requests
				if err := s.RecordRequests(ctx, []*chat.Request{tt.r}); err != nil {
					t.Fatal(err)
				}
				got, err := s.Request(ctx, tt.r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.r, got, cmpOpts...); diff != "" {
					t.Errorf("Request (-want +got):\n%s", diff)
				}
				list, err := s.Requests(ctx, 10)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]*chat.Request{tt.r}, list, cmpOpts...); diff != "" {
					t.Errorf("Requests (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t).Requests
		if err := s.RecordRequests(ctx, []*chat.Request{minimalRequest("req_1", base)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Request(ctx, "req_2")
		wantCode(t, err, chat.ENotFound)
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t).Requests
		if err := s.RecordRequests(ctx, nil); err != nil {
			t.Fatalf("RecordRequests(nil): %v", err)
		}
		got, err := s.Requests(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("Requests = %v, want none", got)
		}
	})

	t.Run("NewestFirst", func(t *testing.T) {
		s := open(t).Requests
		// Recorded out of order over two batches; two share a time.
		r1 := fullRequest("req_1", base)
		r2 := minimalRequest("req_2", base.Add(time.Second))
		r3a := fullRequest("req_3a", base.Add(2*time.Second))
		r3b := minimalRequest("req_3b", base.Add(2*time.Second))
		r4 := fullRequest("req_4", base.Add(3*time.Second))
		if err := s.RecordRequests(ctx, []*chat.Request{r3a, r1, r4}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRequests(ctx, []*chat.Request{r2, r3b}); err != nil {
			t.Fatal(err)
		}
		all := []*chat.Request{r4, r3b, r3a, r2, r1}

		tests := []struct {
			name  string
			limit int
			want  []*chat.Request
		}{
			{"Zero", 0, nil},
			{"Negative", -1, nil},
			{"One", 1, all[:1]},
			{"Three", 3, all[:3]},
			{"Exact", 5, all},
			{"More", 100, all},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Requests(ctx, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, cmpOpts...); diff != "" {
					t.Errorf("Requests(%d) (-want +got):\n%s", tt.limit, diff)
				}
			})
		}
	})

	t.Run("BigBatch", func(t *testing.T) {
		s := open(t).Requests
		const n = 1000
		want := make([]*chat.Request, n)
		for i := range want {
			// Newest first, as Requests returns them.
			at := base.Add(time.Duration(n-i) * time.Millisecond)
			if i%2 == 0 {
				want[i] = fullRequest(fmt.Sprintf("req_%04d", i), at)
			} else {
				want[i] = minimalRequest(fmt.Sprintf("req_%04d", i), at)
			}
		}
		if err := s.RecordRequests(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Requests(ctx, n+1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Errorf("Requests (-want +got):\n%s", diff)
		}
	})

	t.Run("BatchIsAtomic", func(t *testing.T) {
		s := open(t).Requests
		first := fullRequest("req_1", base)
		if err := s.RecordRequests(ctx, []*chat.Request{first}); err != nil {
			t.Fatal(err)
		}
		// The duplicate comes last, after records that would be new.
		batch := []*chat.Request{
			fullRequest("req_2", base.Add(time.Second)),
			minimalRequest("req_3", base.Add(2*time.Second)),
			minimalRequest("req_1", base.Add(3*time.Second)),
		}
		if err := s.RecordRequests(ctx, batch); err == nil {
			t.Fatal("RecordRequests with a duplicate ID: err = nil, want an error")
		}
		got, err := s.Requests(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*chat.Request{first}, got, cmpOpts...); diff != "" {
			t.Errorf("Requests after failed batch (-want +got):\n%s", diff)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t).Requests
		const (
			writers = 8
			batches = 5
			perB    = 10
		)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					rs := make([]*chat.Request, perB)
					for i := range rs {
						id := fmt.Sprintf("req_%d_%d_%d", w, b, i)
						rs[i] = fullRequest(id, base.Add(time.Duration(w*batches*perB+b*perB+i)*time.Microsecond))
					}
					if err := s.RecordRequests(ctx, rs); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			})
		}
		// Read while writing: readers must not fail or see half a batch.
		wg.Go(func() {
			for range 10 {
				rs, err := s.Requests(ctx, writers*batches*perB)
				if err == nil && len(rs)%perB != 0 {
					err = fmt.Errorf("read %d records, not whole batches of %d", len(rs), perB)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}

		got, err := s.Requests(ctx, writers*batches*perB+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != writers*batches*perB {
			t.Fatalf("Requests returned %d records, want %d", len(got), writers*batches*perB)
		}
		for i := 1; i < len(got); i++ {
			if !got[i-1].Time.After(got[i].Time) {
				t.Fatalf("record %d (%v) is not newer than record %d (%v)", i-1, got[i-1].Time, i, got[i].Time)
			}
		}
		one, err := s.Request(ctx, "req_3_2_5")
		if err != nil {
			t.Fatal(err)
		}
		want := fullRequest("req_3_2_5", base.Add((3*batches*perB+2*perB+5)*time.Microsecond))
		if diff := cmp.Diff(want, one, cmpOpts...); diff != "" {
			t.Errorf("Request (-want +got):\n%s", diff)
		}
	})
}
