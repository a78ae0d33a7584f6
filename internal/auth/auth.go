package auth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

// Options tunes an Authenticator.
type Options struct {
	// TTL is how long a found key is trusted before the store is asked
	// again; it bounds how long a revoked key keeps working. If zero, 30s
	// is used. Negative disables caching found keys.
	TTL time.Duration
	// NegativeTTL is how long a secret the store does not know is rejected
	// without asking again; it bounds how long a new key waits to work
	// after a failed try. If zero, 5s is used. Negative disables it.
	NegativeTTL time.Duration
	// MaxEntries bounds each cache, of found and of unknown secrets, so
	// that random secrets cannot grow memory without bound. If zero or
	// less, 10000 is used.
	MaxEntries int
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
}

// Authenticator checks API keys against a chat.KeyStore, caching the
// answers by hash. It is safe for concurrent use.
type Authenticator struct {
	keys   chat.KeyStore
	ttl    time.Duration
	negTTL time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	found   map[[32]byte]foundEntry
	unknown map[[32]byte]time.Time // hash → expiry
}

type foundEntry struct {
	key     *chat.Key // never handed out: callers get copies
	expires time.Time
}

// NewAuthenticator returns an Authenticator that looks keys up in keys.
func NewAuthenticator(keys chat.KeyStore, opts Options) *Authenticator {
	if opts.TTL == 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = 5 * time.Second
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Authenticator{
		keys:    keys,
		ttl:     opts.TTL,
		negTTL:  opts.NegativeTTL,
		max:     opts.MaxEntries,
		now:     opts.Now,
		found:   make(map[[32]byte]foundEntry),
		unknown: make(map[[32]byte]time.Time),
	}
}

// Authenticate returns the active key whose secret h carries, in
// "Authorization: Bearer <secret>" (OpenAI's form) or "x-api-key: <secret>"
// (Anthropic's; issue 4). If both are present, Authorization wins. Without
// a usable secret, or for a secret of no active key, it returns a
// *chat.Error with code chat.EUnauthorized; if the store fails, that error.
// The returned key is the caller's to keep.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (*chat.Key, error) {
	secret, err := secretFrom(h)
	if err != nil {
		return nil, err
	}
	// Strings NewKey cannot have made need no lookup, nor a cache entry.
	if !wellFormed(secret) {
		return nil, errInvalid()
	}
	sum := Hash(secret)

	now := a.now()
	if k, known, ok := a.cached(sum, now); ok {
		if !known {
			return nil, errInvalid()
		}
		return k, nil
	}

	k, err := a.keys.KeyByHash(ctx, sum)
	if err != nil {
		if chat.ErrorCode(err) == chat.ENotFound {
			a.rememberUnknown(sum, now)
			return nil, errInvalid()
		}
		return nil, fmt.Errorf("auth: look up key: %w", err)
	}
	// The store found k by hash; check it really is this secret's key, and
	// active, without leaking through timing how much of the hash matched.
	if k == nil || subtle.ConstantTimeCompare(k.Hash[:], sum[:]) != 1 || !k.Revoked.IsZero() {
		return nil, errInvalid()
	}
	k = clone(k) // the store's value may be shared
	a.rememberFound(sum, k, now)
	return clone(k), nil
}

func errMissing() error { return chat.Errorf(chat.EUnauthorized, "missing API key") }

func errInvalid() error { return chat.Errorf(chat.EUnauthorized, "invalid API key") }

// secretFrom returns the secret in h, or an error for Authenticate to
// return.
func secretFrom(h http.Header) (string, error) {
	if v := strings.TrimSpace(h.Get("Authorization")); v != "" {
		scheme, token, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", errInvalid()
		}
		if token = strings.TrimSpace(token); token != "" {
			return token, nil
		}
		// "Bearer " with nothing after it: an unset variable in the
		// client's config. Fall through to x-api-key.
	}
	if v := strings.TrimSpace(h.Get("X-Api-Key")); v != "" {
		return v, nil
	}
	return "", errMissing()
}

// cached returns what the cache knows of sum at now: ok is false if it
// knows nothing; otherwise known tells a found key (k) from an unknown
// secret.
func (a *Authenticator) cached(sum [32]byte, now time.Time) (k *chat.Key, known, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, hit := a.found[sum]; hit {
		if now.Before(e.expires) && subtle.ConstantTimeCompare(e.key.Hash[:], sum[:]) == 1 {
			return clone(e.key), true, true
		}
		delete(a.found, sum)
	}
	if exp, hit := a.unknown[sum]; hit {
		if now.Before(exp) {
			return nil, false, true
		}
		delete(a.unknown, sum)
	}
	return nil, false, false
}

func (a *Authenticator) rememberFound(sum [32]byte, k *chat.Key, now time.Time) {
	if a.ttl < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.found[sum]; !ok && len(a.found) >= a.max {
		a.evictFoundLocked(now)
	}
	a.found[sum] = foundEntry{key: k, expires: now.Add(a.ttl)}
	delete(a.unknown, sum)
}

// evictFoundLocked makes room for one entry: it drops the expired entries,
// or, if none has expired, an arbitrary one. Found keys are few (one per
// issued key), so this runs rarely.
func (a *Authenticator) evictFoundLocked(now time.Time) {
	for h, e := range a.found {
		if !now.Before(e.expires) {
			delete(a.found, h)
		}
	}
	if len(a.found) < a.max {
		return
	}
	for h := range a.found {
		delete(a.found, h)
		return
	}
}

func (a *Authenticator) rememberUnknown(sum [32]byte, now time.Time) {
	if a.negTTL < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.unknown[sum]; !ok && len(a.unknown) >= a.max {
		// Anyone can fill this cache with random secrets, so emptying it
		// must stay cheap: one clear per max insertions. The cost is a
		// store lookup for the secrets forgotten.
		clear(a.unknown)
	}
	a.unknown[sum] = now.Add(a.negTTL)
}

func clone(k *chat.Key) *chat.Key {
	c := *k
	return &c
}
