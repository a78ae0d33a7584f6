package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/chat"
)

// requestLogVersion is the migration that moved records into request_log.
const requestLogVersion = 5

// sampleRequests returns records covering every field, with text that
// needs escaping in JSON, attempts of every shape and none.
func sampleRequests(at time.Time) []*chat.Request {
	return []*chat.Request{
		{
			ID: "req_full", Time: at, KeyID: "key_0123456789abcdef", API: "chat.completions", Model: "gpt-4o",
			Stream: true, Provider: "anthropic", ServedModel: "claude-sonnet-4-5",
			Attempts: []chat.Attempt{
				{Provider: "openai", Model: "gpt-4o", Start: at, Duration: 1500 * time.Microsecond,
					Outcome: "rate_limit", Status: 429, Error: `Rate limit "reached" for C:\models`, Reason: "first"},
				{Provider: "openai", Model: "gpt-4o", Start: at.Add(2 * time.Millisecond), Duration: 30 * time.Second,
					Outcome: "timeout", Error: "no first token\nwithin 30s\t\x01\x1f\x7f", Reason: "retry"},
				{Provider: "anthropic", Model: "claude-sonnet-4-5", Start: at.Add(30*time.Second + 3*time.Millisecond),
					Duration: 2*time.Second + 7*time.Microsecond, Outcome: chat.OutcomeOK, Status: 200},
			},
			Status: 200, TTFT: 30*time.Second + 400*time.Millisecond, Duration: 32*time.Second + 10*time.Microsecond,
			InputTokens: 1234, OutputTokens: 567,
			Prompt: "user: What is the capital of France? ünïcødé 🚀", Completion: "Paris.\n",
		},
		{ID: "req_minimal", Time: at.Add(time.Second)},
		{
			ID: "req_failed", Time: at.Add(-time.Hour), API: "messages", Model: "claude-opus-4 ✓",
			Attempts: []chat.Attempt{{Provider: "anthropic", Model: "claude-opus-4", Start: at.Add(-time.Hour),
				Duration: time.Second, Outcome: "overloaded", Status: 529, Error: "Overloaded 😩"}},
			Status: 503, Error: `all upstreams failed: "overloaded" \ 529`, Duration: time.Second,
			InputTokens: 1 << 40,
		},
		{
			ID: "req_skipped", Time: at, Model: "m",
			Attempts: []chat.Attempt{{Provider: "p", Model: "m", Start: at, Outcome: chat.OutcomeSkipped,
				Reason: "skipped", Error: "the target does not support tools"}},
			Status: 400, Error: "no target supports tools",
		},
	}
}

// recordOld writes rs to the requests and attempts tables of a database at
// migration 4, as keel did before request_log.
func recordOld(t *testing.T, db *DB, rs []*chat.Request) {
	t.Helper()
	tx, err := db.write.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, r := range rs {
		if _, err := tx.Exec(`INSERT INTO requests (id, time, key_id, api, model, stream, provider, served_model,
				status, error, ttft_us, duration_us, input_tokens, output_tokens, prompt, completion)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, micros(r.Time), r.KeyID, r.API, r.Model, r.Stream, r.Provider, r.ServedModel,
			r.Status, r.Error, durMicros(r.TTFT), durMicros(r.Duration), r.InputTokens, r.OutputTokens,
			sql.NullString{String: r.Prompt, Valid: r.Prompt != ""},
			sql.NullString{String: r.Completion, Valid: r.Completion != ""}); err != nil {
			t.Fatal(err)
		}
		for i, a := range r.Attempts {
			if _, err := tx.Exec(`INSERT INTO attempts (request_id, seq, provider, model, start, duration_us,
					outcome, status, error, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ID, i, a.Provider, a.Model, micros(a.Start), durMicros(a.Duration),
				string(a.Outcome), a.Status, a.Error, a.Reason); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// table is the result of a query: its column names, then its rows.
type table struct {
	Columns []string
	Rows    [][]any
}

func query(t *testing.T, db *sql.DB, q string) table {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tb table
	if tb.Columns, err = rows.Columns(); err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		row := make([]any, len(tb.Columns))
		ptrs := make([]any, len(row))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		tb.Rows = append(tb.Rows, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return tb
}

// The queries reading what the requests and attempts tables held, and the
// views of the same names show since request_log.
const (
	selectRequests = `SELECT * FROM requests ORDER BY id`
	selectAttempts = `SELECT * FROM attempts ORDER BY request_id, seq`
)

// TestMigrateRequestLog checks that records written before request_log
// read back the same after the migration, through the store and through
// the views that replace the old tables.
func TestMigrateRequestLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keel.db")
	want := sampleRequests(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))

	old, err := open(ctx, path, requestLogVersion-1)
	if err != nil {
		t.Fatal(err)
	}
	recordOld(t, old, want)
	oldRequests := query(t, old.read, selectRequests)
	oldAttempts := query(t, old.read, selectAttempts)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(oldRequests.Rows); n != len(want) {
		t.Fatalf("%d rows in requests before the migration, want %d", n, len(want))
	}

	db := openTest(t, path)
	for _, w := range want {
		got, err := db.Request(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Request(%s) after the migration (-want +got):\n%s", w.ID, diff)
		}
	}
	list, err := db.Requests(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantList := []*chat.Request{want[1], want[3], want[0], want[2]} // time, then ID, descending
	if diff := cmp.Diff(wantList, list, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Requests after the migration (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(oldRequests, query(t, db.read, selectRequests)); diff != "" {
		t.Errorf("requests: the view differs from the old table (-old +view):\n%s", diff)
	}
	if diff := cmp.Diff(oldAttempts, query(t, db.read, selectAttempts)); diff != "" {
		t.Errorf("attempts: the view differs from the old table (-old +view):\n%s", diff)
	}
}

// TestViews checks that the views requests and attempts show the records
// RecordRequests writes as the old tables held the same records.
func TestViews(t *testing.T) {
	ctx := context.Background()
	rs := sampleRequests(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))

	old, err := open(ctx, ":memory:", requestLogVersion-1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	recordOld(t, old, rs)

	db := openTest(t, ":memory:")
	if err := db.RecordRequests(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{selectRequests, selectAttempts} {
		if diff := cmp.Diff(query(t, old.read, q), query(t, db.read, q)); diff != "" {
			t.Errorf("%s (-old table +view):\n%s", q, diff)
		}
	}
}

// TestRecordRequestsNil checks that nil records are skipped, also between
// records in one INSERT, and that the rows after them keep their own
// records.
func TestRecordRequestsNil(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, ":memory:")
	rs := sampleRequests(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))
	batch := []*chat.Request{nil, rs[0], nil, nil, rs[1], rs[2], nil, rs[3], nil}
	if err := db.RecordRequests(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, w := range rs {
		got, err := db.Request(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Request(%s) (-want +got):\n%s", w.ID, diff)
		}
	}
	if err := db.RecordRequests(ctx, []*chat.Request{nil}); err != nil {
		t.Errorf("RecordRequests of only nil: %v", err)
	}
}
