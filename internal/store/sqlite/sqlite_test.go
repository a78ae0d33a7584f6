package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/chat/chattest"
)

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	t.Run("File", func(t *testing.T) {
		chattest.Run(t, func(t *testing.T) chattest.Stores {
			db := openTest(t, filepath.Join(t.TempDir(), "keel.db"))
			return chattest.Stores{Keys: db, Requests: db, Responses: db}
		})
	})
	t.Run("Memory", func(t *testing.T) {
		chattest.Run(t, func(t *testing.T) chattest.Stores {
			db := openTest(t, ":memory:")
			return chattest.Stores{Keys: db, Requests: db, Responses: db}
		})
	})
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestPragmas(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keel.db"))
	want := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
		"busy_timeout": "5000",
	}
	for _, h := range []struct {
		name string
		db   *sql.DB
	}{{"write", db.write}, {"read", db.read}} {
		got := make(map[string]string)
		for name := range want {
			got[name] = pragma(t, h.db, name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s connection pragmas (-want +got):\n%s", h.name, diff)
		}
	}
	if got := pragma(t, db.read, "query_only"); got != "1" {
		t.Errorf("read connection query_only = %s, want 1", got)
	}
}

func TestReadPoolRefusesWrites(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keel.db"))
	if _, err := db.read.Exec(`DELETE FROM keys`); err == nil {
		t.Error("write through the read pool: err = nil, want an error")
	}
}

func TestCreatesParentDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "keel.db")
	openTest(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{"", "keel.db?mode=ro"} {
		if db, err := Open(context.Background(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q): err = nil, want an error", path)
		}
	}
}

func TestMemoryDatabasesAreDistinct(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, ":memory:")
	b := openTest(t, ":memory:")
	if err := a.RecordRequests(ctx, []*chat.Request{{ID: "req_1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(ctx, "req_1"); chat.ErrorCode(err) != chat.ENotFound {
		t.Errorf("Request in the other database: err = %v, want code %s", err, chat.ENotFound)
	}
}

func migrationCount(t *testing.T) int {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keel.db")
	for i := range 3 {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n int
		if err := db.read.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if want := migrationCount(t); n != want {
			t.Fatalf("open %d: %d migrations recorded, want %d", i, n, want)
		}
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keel.db")
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	key := &chat.Key{ID: "key_1", Name: "ci", Hash: [32]byte{1, 2, 3}, Created: at}
	req := &chat.Request{
		ID: "req_1", Time: at, KeyID: key.ID, Model: "gpt-4o", Status: 200,
		Attempts: []chat.Attempt{{Provider: "openai", Model: "gpt-4o", Start: at, Duration: time.Second, Outcome: chat.OutcomeOK, Status: 200}},
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRequests(ctx, []*chat.Request{req}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Close checkpoints: the log is empty and the file holds everything.
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("after Close, the WAL holds %d bytes, want 0", fi.Size())
	}

	db = openTest(t, path)
	gotKey, err := db.KeyByHash(ctx, key.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(key, gotKey); diff != "" {
		t.Errorf("KeyByHash after reopen (-want +got):\n%s", diff)
	}
	gotReq, err := db.Request(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, gotReq); diff != "" {
		t.Errorf("Request after reopen (-want +got):\n%s", diff)
	}
}

// TestContentNullWhenEmpty checks that a record without content leaves the
// prompt and completion columns NULL, not empty strings, so "was content
// recorded" stays answerable in SQL.
func TestContentNullWhenEmpty(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, ":memory:")
	rs := []*chat.Request{
		{ID: "req_without"},
		{ID: "req_with", Prompt: "hi", Completion: "hello"},
	}
	if err := db.RecordRequests(ctx, rs); err != nil {
		t.Fatal(err)
	}
	rows, err := db.read.Query(`SELECT id, prompt IS NULL, completion IS NULL FROM requests ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type nulls struct {
		ID                 string
		Prompt, Completion bool
	}
	var got []nulls
	for rows.Next() {
		var n nulls
		if err := rows.Scan(&n.ID, &n.Prompt, &n.Completion); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []nulls{{"req_with", false, false}, {"req_without", true, true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NULL columns (-want +got):\n%s", diff)
	}
}

func TestCanceledContext(t *testing.T) {
	db := openTest(t, ":memory:")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.RecordRequests(ctx, []*chat.Request{{ID: "req_1"}}); err == nil {
		t.Error("RecordRequests with a canceled context: err = nil, want an error")
	}
	if _, err := db.Request(context.Background(), "req_1"); chat.ErrorCode(err) != chat.ENotFound {
		t.Errorf("Request after canceled write: err = %v, want code %s", err, chat.ENotFound)
	}
}
