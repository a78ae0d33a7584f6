// Package sqlite implements keel's stores on SQLite, through the pure-Go
// driver modernc.org/sqlite.
//
// A DB holds two handles: one write connection, which serialises writers
// inside the process (SQLite allows one writer at a time), and a pool of
// read-only connections, which WAL mode lets run alongside the writer.
// An in-memory database uses one connection for both.
//
// Times are stored as UTC unix microseconds and durations as microseconds,
// so anything finer than a microsecond is dropped.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for another process's lock.
const busyTimeout = 5 * time.Second

// DB is a SQLite database holding keel's keys and request records. It is
// safe for concurrent use. Close it when done.
type DB struct {
	path  string
	write *sql.DB // one connection; every write goes through it
	read  *sql.DB // read-only pool; the same handle as write for :memory:

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared on write, by query
}

// Open opens the database at path, creating it and its parent directory if
// missing, and applies any pending migrations. A path of ":memory:" opens a
// private in-memory database that lives until Close.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, math.MaxInt)
}

// open is Open applying the migrations up to version through only, so that
// tests can build a database as an older keel left it.
func open(ctx context.Context, path string, through int) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	// The driver splits its parameters off at the first '?'.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: path must not contain '?'", path)
	}
	memory := path == ":memory:"

	params := "_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(wal)" +
		"&_pragma=synchronous(normal)"

	db := &DB{path: path}
	var err error
	if memory {
		// Each connection to ":memory:" is its own database, so there is
		// exactly one, and it must never be closed while idle.
		db.write, err = sql.Open("sqlite", path+"?"+params+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
		}
		db.write.SetMaxOpenConns(1)
		db.write.SetMaxIdleConns(1)
		db.write.SetConnMaxLifetime(0)
		db.write.SetConnMaxIdleTime(0)
		db.read = db.write
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
		}
		// BEGIN IMMEDIATE takes the write lock up front, so a write
		// transaction waits under busy_timeout instead of failing with
		// SQLITE_BUSY when it upgrades from a read.
		db.write, err = sql.Open("sqlite", path+"?"+params+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
		}
		db.write.SetMaxOpenConns(1)
		db.write.SetMaxIdleConns(1)
		db.write.SetConnMaxLifetime(0)
		db.write.SetConnMaxIdleTime(0)

		db.read, err = sql.Open("sqlite", path+"?"+params+"&_pragma=query_only(1)")
		if err != nil {
			db.write.Close()
			return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		db.read.SetMaxOpenConns(n)
		db.read.SetMaxIdleConns(n)
	}

	// Connect the writer first: it switches the file to WAL mode before any
	// reader opens it.
	if err := db.write.PingContext(ctx); err != nil {
		db.closeHandles()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := db.migrate(ctx, through); err != nil {
		db.closeHandles()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return db, nil
}

// Close checkpoints the write-ahead log into the database file and closes
// the database. The DB must not be used after Close.
func (db *DB) Close() error {
	var errs []error
	if db.path != ":memory:" {
		// TRUNCATE leaves an empty -wal file, so a copied database file is
		// complete on its own.
		if _, err := db.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
	}
	errs = append(errs, db.closeHandles())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %q: %w", db.path, err)
	}
	return nil
}

func (db *DB) closeHandles() error {
	var errs []error
	db.mu.Lock()
	for _, st := range db.stmts {
		errs = append(errs, st.Close())
	}
	db.stmts = nil
	db.mu.Unlock()
	if db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	return errors.Join(errs...)
}

// migrate applies, in name order, each embedded migration up to version
// through not yet recorded in schema_migrations, each in its own
// transaction. A migration file is named NNNN_description.sql; NNNN is its
// version.
func (db *DB) migrate(ctx context.Context, through int) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql") // sorted
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		if err := db.migrateOne(ctx, name, through); err != nil {
			return fmt.Errorf("migrate %s: %w", filepath.Base(name), err)
		}
	}
	return nil
}

func (db *DB) migrateOne(ctx context.Context, name string, through int) error {
	base := filepath.Base(name)
	prefix, _, ok := strings.Cut(base, "_")
	if !ok {
		return errors.New("name is not NNNN_description.sql")
	}
	version, err := strconv.Atoi(prefix)
	if err != nil {
		return fmt.Errorf("name is not NNNN_description.sql: %w", err)
	}
	if version > through {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}

	// The check runs inside the (immediate) transaction, so two processes
	// opening the same file apply each migration once.
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
		version, base, time.Now().UTC().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// micros and fromMicros convert between time.Time and the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func durMicros(d time.Duration) int64 { return d.Microseconds() }

func fromDurMicros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
