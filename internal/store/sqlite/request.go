package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/keel-ai/keel/internal/chat"
)

var _ chat.RequestStore = (*DB)(nil)

// logColumns are request_log's columns, in the order insertStmt binds them
// and scanRequest reads them.
const logColumns = `id, time, record, prompt, completion`

// RecordRequests stores the records in one transaction: either all are
// stored or none. A record whose ID exists fails the batch. Nil records are
// skipped. Prompt and Completion are stored as NULL when empty.
func (db *DB) RecordRequests(ctx context.Context, rs []*chat.Request) error {
	if len(rs) == 0 {
		return nil
	}
	if err := db.recordRequests(ctx, rs); err != nil {
		return fmt.Errorf("sqlite: record %d requests: %w", len(rs), err)
	}
	return nil
}

// batchRows is the most rows one INSERT carries.
const batchRows = 32

func (db *DB) recordRequests(ctx context.Context, rs []*chat.Request) error {
	live := make([]*chat.Request, 0, len(rs))
	for _, r := range rs {
		if r != nil {
			live = append(live, r)
		}
	}
	// Rows go in multi-row INSERTs: one statement per row made SQLite the
	// largest cost of recording (scripts/bench, perf). The statements are
	// prepared before the transaction takes the one write connection.
	type insert struct {
		stmt *sql.Stmt
		args []any
	}
	var (
		ins     []insert
		scratch []byte
	)
	for len(live) > 0 {
		n := min(len(live), batchRows)
		stmt, err := db.insertStmt(ctx, n)
		if err != nil {
			return err
		}
		args := make([]any, 0, n*5)
		for _, r := range live[:n] {
			scratch = appendRecord(scratch[:0], r)
			args = append(args, r.ID, micros(r.Time), string(scratch), nullable(r.Prompt), nullable(r.Completion))
		}
		ins = append(ins, insert{stmt, args})
		live = live[n:]
	}

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, in := range ins {
		if _, err := tx.StmtContext(ctx, in.stmt).ExecContext(ctx, in.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// insertStmt returns the statement inserting n rows into request_log,
// prepared once on the write connection: parsing a 32-row INSERT for every
// batch was a quarter of recording's cost (perf).
func (db *DB) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	const row = "(?, ?, ?, ?, ?)"
	q := "INSERT INTO request_log (" + logColumns + ") VALUES " + row + strings.Repeat(", "+row, n-1)
	db.mu.Lock()
	defer db.mu.Unlock()
	if st, ok := db.stmts[q]; ok {
		return st, nil
	}
	st, err := db.write.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if db.stmts == nil {
		db.stmts = make(map[string]*sql.Stmt)
	}
	db.stmts[q] = st
	return st, nil
}

// Request returns the record with the given id, or an error with code
// chat.ENotFound.
func (db *DB) Request(ctx context.Context, id string) (*chat.Request, error) {
	// One row holds the whole record, attempts included, so one statement
	// reads it from one snapshot without a transaction.
	r, err := scanRequest(db.read.QueryRowContext(ctx, `SELECT `+logColumns+` FROM request_log WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.Errorf(chat.ENotFound, "request %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: request %s: %w", id, err)
	}
	return r, nil
}

// Requests returns up to limit records, newest first; records with the same
// time are ordered by ID, descending. A limit of zero or less returns none.
func (db *DB) Requests(ctx context.Context, limit int) ([]*chat.Request, error) {
	if limit <= 0 {
		return nil, nil
	}
	rs, err := db.requests(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: requests: %w", err)
	}
	return rs, nil
}

func (db *DB) requests(ctx context.Context, limit int) ([]*chat.Request, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+logColumns+` FROM request_log ORDER BY time DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs []*chat.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

func scanRequest(s scanner) (*chat.Request, error) {
	var (
		r                  chat.Request
		t                  int64
		record             string
		prompt, completion sql.NullString
	)
	if err := s.Scan(&r.ID, &t, &record, &prompt, &completion); err != nil {
		return nil, err
	}
	if err := parseRecord(record, &r); err != nil {
		return nil, fmt.Errorf("record of %s: %w", r.ID, err)
	}
	r.Time = fromMicros(t)
	r.Prompt = prompt.String
	r.Completion = completion.String
	return &r, nil
}

// nullable returns s, or nil, stored as NULL, if s is empty. Not
// sql.NullString: boxing it allocated, and database/sql called its Value
// method for every row.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
