package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

// BenchmarkRecordRequests measures recording, per request, in the batches
// the journal writes: a typical record with one attempt.
func BenchmarkRecordRequests(b *testing.B) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "keel.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const batch = 256
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		rs := make([]*chat.Request, batch)
		for j := range rs {
			rs[j] = &chat.Request{
				ID: fmt.Sprintf("req_%012d", i+j), Time: now, API: "openai.chat", Model: "gpt-4o", Stream: true,
				Provider: "openai", ServedModel: "gpt-4o", Status: 200, TTFT: 300 * time.Millisecond, Duration: time.Second,
				InputTokens: 12, OutputTokens: 240,
				Attempts: []chat.Attempt{{Provider: "openai", Model: "gpt-4o", Start: now, Duration: time.Second, Outcome: chat.OutcomeOK, Reason: "first"}},
			}
		}
		if err := db.RecordRequests(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequests measures listing, per record, a page of typical
// records with one attempt each.
func BenchmarkRequests(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "keel.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n, page = 1000, 100
	now := time.Now()
	rs := make([]*chat.Request, n)
	for i := range rs {
		at := now.Add(time.Duration(i) * time.Millisecond)
		rs[i] = &chat.Request{
			ID: fmt.Sprintf("req_%012d", i), Time: at, API: "openai.chat", Model: "gpt-4o", Stream: true,
			Provider: "openai", ServedModel: "gpt-4o", Status: 200, TTFT: 300 * time.Millisecond, Duration: time.Second,
			InputTokens: 12, OutputTokens: 240,
			Attempts: []chat.Attempt{{Provider: "openai", Model: "gpt-4o", Start: at, Duration: time.Second, Outcome: chat.OutcomeOK, Reason: "first"}},
		}
	}
	if err := db.RecordRequests(ctx, rs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += page {
		got, err := db.Requests(ctx, page)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != page {
			b.Fatalf("Requests returned %d records, want %d", len(got), page)
		}
	}
}
