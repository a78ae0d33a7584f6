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
