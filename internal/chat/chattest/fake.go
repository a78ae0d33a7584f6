package chattest

import (
	"context"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

var (
	_ chat.KeyStore     = (*KeyStore)(nil)
	_ chat.RequestStore = (*RequestStore)(nil)
)

// KeyStore is a chat.KeyStore whose methods call the matching Fn field.
// Calling a method whose Fn is nil panics.
type KeyStore struct {
	CreateKeyFn func(ctx context.Context, k *chat.Key) error
	KeyByHashFn func(ctx context.Context, h [32]byte) (*chat.Key, error)
	KeysFn      func(ctx context.Context) ([]*chat.Key, error)
	RevokeKeyFn func(ctx context.Context, id string, at time.Time) error
}

func (s *KeyStore) CreateKey(ctx context.Context, k *chat.Key) error { return s.CreateKeyFn(ctx, k) }

func (s *KeyStore) KeyByHash(ctx context.Context, h [32]byte) (*chat.Key, error) {
	return s.KeyByHashFn(ctx, h)
}

func (s *KeyStore) Keys(ctx context.Context) ([]*chat.Key, error) { return s.KeysFn(ctx) }

func (s *KeyStore) RevokeKey(ctx context.Context, id string, at time.Time) error {
	return s.RevokeKeyFn(ctx, id, at)
}

// RequestStore is a chat.RequestStore whose methods call the matching Fn
// field. Calling a method whose Fn is nil panics.
type RequestStore struct {
	RecordRequestsFn func(ctx context.Context, rs []*chat.Request) error
	RequestFn        func(ctx context.Context, id string) (*chat.Request, error)
	RequestsFn       func(ctx context.Context, limit int) ([]*chat.Request, error)
}

func (s *RequestStore) RecordRequests(ctx context.Context, rs []*chat.Request) error {
	return s.RecordRequestsFn(ctx, rs)
}

func (s *RequestStore) Request(ctx context.Context, id string) (*chat.Request, error) {
	return s.RequestFn(ctx, id)
}

func (s *RequestStore) Requests(ctx context.Context, limit int) ([]*chat.Request, error) {
	return s.RequestsFn(ctx, limit)
}
