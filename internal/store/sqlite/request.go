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

const requestColumns = `id, time, key_id, api, model, stream, provider, served_model,
	status, error, ttft_us, duration_us, input_tokens, output_tokens, prompt, completion`

const attemptColumns = `request_id, seq, provider, model, start, duration_us, outcome, status, error, reason`

// RecordRequests stores the records and their attempts in one transaction:
// either all are stored or none. A record whose ID exists fails the batch.
// Nil records are skipped. Prompt and Completion are stored as NULL when
// empty.
func (db *DB) RecordRequests(ctx context.Context, rs []*chat.Request) error {
	if len(rs) == 0 {
		return nil
	}
	if err := db.recordRequests(ctx, rs); err != nil {
		return fmt.Errorf("sqlite: record %d requests: %w", len(rs), err)
	}
	return nil
}

func (db *DB) recordRequests(ctx context.Context, rs []*chat.Request) error {
	// Rows go in multi-row INSERTs, all requests before their attempts
	// (foreign keys): one statement per row made SQLite the largest cost
	// of recording (scripts/bench, perf).
	var reqs, atts [][]any
	for _, r := range rs {
		if r == nil {
			continue
		}
		reqs = append(reqs, []any{
			r.ID, micros(r.Time), r.KeyID, r.API, r.Model, r.Stream, r.Provider, r.ServedModel,
			r.Status, r.Error, durMicros(r.TTFT), durMicros(r.Duration), r.InputTokens, r.OutputTokens,
			nullString(r.Prompt), nullString(r.Completion)})
		for i, a := range r.Attempts {
			atts = append(atts, []any{
				r.ID, i, a.Provider, a.Model, micros(a.Start), durMicros(a.Duration),
				string(a.Outcome), a.Status, a.Error, a.Reason})
		}
	}
	// The statements are prepared before the transaction takes the one
	// write connection.
	inserts, err := db.inserts(ctx, "requests", requestColumns, reqs)
	if err != nil {
		return err
	}
	attInserts, err := db.inserts(ctx, "attempts", attemptColumns, atts)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, in := range append(inserts, attInserts...) {
		if _, err := tx.StmtContext(ctx, in.stmt).ExecContext(ctx, in.args...); err != nil {
			return fmt.Errorf("%s: %w", in.table, err)
		}
	}
	return tx.Commit()
}

// batchRows is the most rows one INSERT carries.
const batchRows = 32

// insert is one multi-row INSERT, ready to run.
type insert struct {
	table string
	stmt  *sql.Stmt
	args  []any
}

// inserts returns the statements inserting rows into table, batchRows per
// statement.
func (db *DB) inserts(ctx context.Context, table, columns string, rows [][]any) ([]insert, error) {
	var ins []insert
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		stmt, err := db.insertStmt(ctx, table, columns, len(rows[0]), n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		args := make([]any, 0, n*len(rows[0]))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		ins = append(ins, insert{table, stmt, args})
		rows = rows[n:]
	}
	return ins, nil
}

// insertStmt returns the statement inserting n rows of cols columns into
// table, prepared once on the write connection: parsing a 32-row INSERT
// for every batch was a quarter of recording's cost (perf).
func (db *DB) insertStmt(ctx context.Context, table, columns string, cols, n int) (*sql.Stmt, error) {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	q := "INSERT INTO " + table + " (" + columns + ") VALUES " + row + strings.Repeat(", "+row, n-1)
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
	r, err := db.request(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.Errorf(chat.ENotFound, "request %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: request %s: %w", id, err)
	}
	return r, nil
}

func (db *DB) request(ctx context.Context, id string) (*chat.Request, error) {
	// One read transaction, so the record and its attempts come from the
	// same snapshot.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE request_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	if err := scanAttempts(rows, map[string]*chat.Request{id: r}); err != nil {
		return nil, err
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
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	const newest = `SELECT id FROM requests ORDER BY time DESC, id DESC LIMIT ?`
	rows, err := tx.QueryContext(ctx,
		`SELECT `+requestColumns+` FROM requests ORDER BY time DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	var rs []*chat.Request
	byID := make(map[string]*chat.Request)
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		rs = append(rs, r)
		byID[r.ID] = r
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}

	rows, err = tx.QueryContext(ctx,
		`SELECT `+attemptColumns+` FROM attempts WHERE request_id IN (`+newest+`) ORDER BY request_id, seq`, limit)
	if err != nil {
		return nil, err
	}
	if err := scanAttempts(rows, byID); err != nil {
		return nil, err
	}
	return rs, nil
}

func scanRequest(s scanner) (*chat.Request, error) {
	var (
		r                  chat.Request
		t, ttft, dur       int64
		prompt, completion sql.NullString
	)
	if err := s.Scan(&r.ID, &t, &r.KeyID, &r.API, &r.Model, &r.Stream, &r.Provider, &r.ServedModel,
		&r.Status, &r.Error, &ttft, &dur, &r.InputTokens, &r.OutputTokens, &prompt, &completion); err != nil {
		return nil, err
	}
	r.Time = fromMicros(t)
	r.TTFT = fromDurMicros(ttft)
	r.Duration = fromDurMicros(dur)
	r.Prompt = prompt.String
	r.Completion = completion.String
	return &r, nil
}

// scanAttempts appends the attempts in rows, ordered by seq, to their
// records in byID, and closes rows.
func scanAttempts(rows *sql.Rows, byID map[string]*chat.Request) error {
	defer rows.Close()
	for rows.Next() {
		var (
			a          chat.Attempt
			id         string
			seq        int
			start, dur int64
			outcome    string
		)
		if err := rows.Scan(&id, &seq, &a.Provider, &a.Model, &start, &dur, &outcome, &a.Status, &a.Error, &a.Reason); err != nil {
			return err
		}
		a.Start = fromMicros(start)
		a.Duration = fromDurMicros(dur)
		a.Outcome = chat.Outcome(outcome)
		r, ok := byID[id]
		if !ok {
			return fmt.Errorf("attempt %d of unexpected request %s", seq, id)
		}
		r.Attempts = append(r.Attempts, a)
	}
	return rows.Err()
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
