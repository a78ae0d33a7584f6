package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

var _ chat.KeyStore = (*DB)(nil)

// CreateKey stores k. Creating a key whose ID or hash exists fails.
func (db *DB) CreateKey(ctx context.Context, k *chat.Key) error {
	var revoked sql.NullInt64
	if !k.Revoked.IsZero() {
		revoked = sql.NullInt64{Int64: micros(k.Revoked), Valid: true}
	}
	if _, err := db.write.ExecContext(ctx,
		`INSERT INTO keys (id, name, hash, created, revoked) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Hash[:], micros(k.Created), revoked); err != nil {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	return nil
}

// KeyByHash returns the active key with hash h, or an error with code
// chat.ENotFound.
func (db *DB) KeyByHash(ctx context.Context, h [32]byte) (*chat.Key, error) {
	row := db.read.QueryRowContext(ctx,
		`SELECT id, name, hash, created, revoked FROM keys WHERE hash = ? AND revoked IS NULL`, h[:])
	k, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.Errorf(chat.ENotFound, "key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: key by hash: %w", err)
	}
	return k, nil
}

// Keys returns every key, revoked ones included, oldest first.
func (db *DB) Keys(ctx context.Context) ([]*chat.Key, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, name, hash, created, revoked FROM keys ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rows.Close()
	var ks []*chat.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	return ks, nil
}

// RevokeKey marks the key revoked at time at. Revoking a revoked key keeps
// the first time and succeeds; an unknown id is an error with code
// chat.ENotFound.
func (db *DB) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE keys SET revoked = coalesce(revoked, ?) WHERE id = ?`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	}
	if n == 0 {
		return chat.Errorf(chat.ENotFound, "key %q not found", id)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

func scanKey(s scanner) (*chat.Key, error) {
	var (
		k       chat.Key
		hash    []byte
		created int64
		revoked sql.NullInt64
	)
	if err := s.Scan(&k.ID, &k.Name, &hash, &created, &revoked); err != nil {
		return nil, err
	}
	if len(hash) != len(k.Hash) {
		return nil, fmt.Errorf("key %s: hash has %d bytes, want %d", k.ID, len(hash), len(k.Hash))
	}
	copy(k.Hash[:], hash)
	k.Created = fromMicros(created)
	if revoked.Valid {
		k.Revoked = fromMicros(revoked.Int64)
	}
	return &k, nil
}
