// Package auth issues API keys and authenticates requests by them.
//
// A secret is "sk-keel-" followed by 40 base62 characters (about 238 bits)
// from crypto/rand. keel stores only the secret's SHA-256 hash: a fast hash
// is enough, since the secret is random and long, not a password.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

// Prefix starts every secret. It marks keel's keys in logs and secret
// scanners, and lets Authenticate reject other strings without a lookup.
const Prefix = "sk-keel-"

// secretLen is the number of random characters after Prefix.
const secretLen = 40

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewKey returns a new secret and the key record to store for it, named
// name and created at now. Show the secret to its owner once; it cannot be
// recovered from the record.
func NewKey(name string, now time.Time) (secret string, k *chat.Key) {
	secret = Prefix + randomBase62(secretLen)
	var id [8]byte
	rand.Read(id[:]) // never fails
	return secret, &chat.Key{
		ID:      "key_" + hex.EncodeToString(id[:]),
		Name:    name,
		Hash:    Hash(secret),
		Created: now.UTC(),
	}
}

// Hash returns the SHA-256 hash of secret, the form keys are stored and
// looked up by.
func Hash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// randomBase62 returns n characters drawn uniformly from base62.
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:]) // never fails
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the draw uniform.
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// wellFormed reports whether s could be a secret NewKey made.
func wellFormed(s string) bool {
	if len(s) != len(Prefix)+secretLen || s[:len(Prefix)] != Prefix {
		return false
	}
	for i := len(Prefix); i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// ctxKey is the context key for the authenticated *chat.Key.
type ctxKey struct{}

// WithKey returns a copy of ctx carrying k, the request's authenticated key.
func WithKey(ctx context.Context, k *chat.Key) context.Context {
	return context.WithValue(ctx, ctxKey{}, k)
}

// KeyFrom returns the key WithKey stored in ctx, if any.
func KeyFrom(ctx context.Context) (*chat.Key, bool) {
	k, ok := ctx.Value(ctxKey{}).(*chat.Key)
	return k, ok && k != nil
}
