package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keel-ai/keel/internal/chat"
)

var _ chat.ResponseStore = (*DB)(nil)

// SaveResponse stores r. Saving an ID that exists fails. r holds
// conversation content; callers save it only when the client asked to
// (store: true).
func (db *DB) SaveResponse(ctx context.Context, r *chat.Response) error {
	if _, err := db.write.ExecContext(ctx,
		`INSERT INTO responses (id, key_id, created, model, previous_id, input, output) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.KeyID, micros(r.Created), r.Model, r.PreviousID, string(r.Input), string(r.Output),
	); err != nil {
		return fmt.Errorf("sqlite: save response %s: %w", r.ID, err)
	}
	return nil
}

// Response returns the response with the given id stored by keyID, or an
// error with code chat.ENotFound, also when another key stored it.
func (db *DB) Response(ctx context.Context, id, keyID string) (*chat.Response, error) {
	var (
		r             chat.Response
		created       int64
		input, output string
	)
	err := db.read.QueryRowContext(ctx,
		`SELECT id, key_id, created, model, previous_id, input, output FROM responses WHERE id = ? AND key_id = ?`, id, keyID,
	).Scan(&r.ID, &r.KeyID, &created, &r.Model, &r.PreviousID, &input, &output)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.Errorf(chat.ENotFound, "response %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: response %s: %w", id, err)
	}
	r.Created = fromMicros(created)
	if input != "" {
		r.Input = json.RawMessage(input)
	}
	if output != "" {
		r.Output = json.RawMessage(output)
	}
	return &r, nil
}
