package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/chat/chattest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyStore is a fake chat.KeyStore over a map, counting lookups.
type keyStore struct {
	mu      sync.Mutex
	keys    map[[32]byte]*chat.Key
	lookups int
	err     error // if set, KeyByHash fails with it
}

func newKeyStore(ks ...*chat.Key) *keyStore {
	s := &keyStore{keys: make(map[[32]byte]*chat.Key)}
	for _, k := range ks {
		s.keys[k.Hash] = k
	}
	return s
}

func (s *keyStore) fake() *chattest.KeyStore {
	return &chattest.KeyStore{
		KeyByHashFn: func(ctx context.Context, h [32]byte) (*chat.Key, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.lookups++
			if s.err != nil {
				return nil, s.err
			}
			k, ok := s.keys[h]
			if !ok || !k.Revoked.IsZero() {
				return nil, chat.Errorf(chat.ENotFound, "key not found")
			}
			c := *k
			return &c, nil
		},
	}
}

func (s *keyStore) add(k *chat.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.Hash] = k
}

func (s *keyStore) revoke(h [32]byte, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[h].Revoked = at
}

func (s *keyStore) lookupCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// clock is an injected time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestNewKey(t *testing.T) {
	secret, k := NewKey("ci", t0.In(time.FixedZone("CET", 3600)))

	if !regexp.MustCompile(`^sk-keel-[0-9A-Za-z]{40}$`).MatchString(secret) {
		t.Errorf("secret %q has the wrong form", secret)
	}
	if !regexp.MustCompile(`^key_[0-9a-f]{16}$`).MatchString(k.ID) {
		t.Errorf("ID %q has the wrong form", k.ID)
	}
	want := &chat.Key{ID: k.ID, Name: "ci", Hash: Hash(secret), Created: t0}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}
	if k.Created.Location() != time.UTC {
		t.Errorf("Created is in %v, want UTC", k.Created.Location())
	}

	// The record holds nothing of the secret but its hash.
	rec := fmt.Sprintf("%s %s %x %s", k.ID, k.Name, k.Hash, k.Hash)
	for _, part := range []string{secret, secret[len(Prefix):], secret[len(Prefix) : len(Prefix)+8]} {
		if strings.Contains(rec, part) {
			t.Errorf("key record %q contains the secret's %q", rec, part)
		}
	}
	if bytes.Equal(k.Hash[:], []byte(secret)[:len(k.Hash)]) {
		t.Error("the stored hash is the secret itself")
	}

	secret2, k2 := NewKey("ci", t0)
	if secret2 == secret || k2.ID == k.ID {
		t.Error("two NewKey calls returned the same secret or ID")
	}
}

func TestNewKeyUniform(t *testing.T) {
	// Every base62 character turns up: the draw is not stuck in a subrange.
	seen := make(map[rune]bool)
	for range 100 {
		secret, _ := NewKey("", t0)
		for _, c := range secret[len(Prefix):] {
			seen[c] = true
		}
	}
	if len(seen) != 62 {
		t.Errorf("saw %d distinct characters in 4000, want 62", len(seen))
	}
}

func TestHash(t *testing.T) {
	got := Hash("abc")
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // FIPS 180-2
	if diff := cmp.Diff(want, hex.EncodeToString(got[:])); diff != "" {
		t.Errorf("Hash(abc) (-want +got):\n%s", diff)
	}
}

func TestAuthenticate(t *testing.T) {
	secret, key := NewKey("ci", t0)
	revokedSecret, revoked := NewKey("old", t0)
	revoked.Revoked = t0
	unknown, _ := NewKey("never stored", t0)

	tests := []struct {
		name    string
		header  http.Header
		wantID  string
		wantErr string // the message of a chat.EUnauthorized error
	}{
		{name: "Bearer", header: http.Header{"Authorization": {"Bearer " + secret}}, wantID: key.ID},
		{name: "BearerLowercase", header: http.Header{"Authorization": {"bearer " + secret}}, wantID: key.ID},
		{name: "BearerUppercase", header: http.Header{"Authorization": {"BEARER " + secret}}, wantID: key.ID},
		{name: "BearerSpaces", header: http.Header{"Authorization": {"  Bearer   " + secret + "  "}}, wantID: key.ID},
		{name: "XAPIKey", header: http.Header{"X-Api-Key": {secret}}, wantID: key.ID},
		{name: "BothBearerWins", header: http.Header{"Authorization": {"Bearer " + secret}, "X-Api-Key": {unknown}}, wantID: key.ID},
		{name: "EmptyBearerThenXAPIKey", header: http.Header{"Authorization": {"Bearer "}, "X-Api-Key": {secret}}, wantID: key.ID},

		{name: "NilHeader", header: nil, wantErr: "missing API key"},
		{name: "Missing", header: http.Header{"Content-Type": {"application/json"}}, wantErr: "missing API key"},
		{name: "EmptyAuthorization", header: http.Header{"Authorization": {""}}, wantErr: "missing API key"},
		{name: "EmptyBearer", header: http.Header{"Authorization": {"Bearer"}}, wantErr: "missing API key"},
		{name: "EmptyBearerSpace", header: http.Header{"Authorization": {"Bearer   "}}, wantErr: "missing API key"},
		{name: "EmptyXAPIKey", header: http.Header{"X-Api-Key": {" "}}, wantErr: "missing API key"},
		{name: "NoValues", header: http.Header{"Authorization": {}}, wantErr: "missing API key"},

		{name: "BareSecret", header: http.Header{"Authorization": {secret}}, wantErr: "invalid API key"},
		{name: "Basic", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, wantErr: "invalid API key"},
		{name: "Unknown", header: http.Header{"Authorization": {"Bearer " + unknown}}, wantErr: "invalid API key"},
		{name: "UnknownXAPIKey", header: http.Header{"X-Api-Key": {unknown}}, wantErr: "invalid API key"},
		{name: "Revoked", header: http.Header{"Authorization": {"Bearer " + revokedSecret}}, wantErr: "invalid API key"},
		{name: "Truncated", header: http.Header{"Authorization": {"Bearer " + secret[:len(secret)-1]}}, wantErr: "invalid API key"},
		{name: "TooLong", header: http.Header{"Authorization": {"Bearer " + secret + "x"}}, wantErr: "invalid API key"},
		{name: "OtherVendor", header: http.Header{"Authorization": {"Bearer sk-proj-abcdef"}}, wantErr: "invalid API key"},
		{name: "BadChar", header: http.Header{"Authorization": {"Bearer " + secret[:len(secret)-1] + "-"}}, wantErr: "invalid API key"},
		{name: "Garbage", header: http.Header{"Authorization": {"Bearer \x00\xff\xfe"}}, wantErr: "invalid API key"},
		{name: "SecretWithSpace", header: http.Header{"Authorization": {"Bearer " + secret + " extra"}}, wantErr: "invalid API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAuthenticator(newKeyStore(key, revoked).fake(), Options{})
			got, err := a.Authenticate(context.Background(), tt.header)
			if tt.wantErr != "" {
				want := &chat.Error{Code: chat.EUnauthorized, Message: tt.wantErr}
				var ce *chat.Error
				if !errors.As(err, &ce) {
					t.Fatalf("Authenticate = %v, %v; want error %v", got, err, want)
				}
				if diff := cmp.Diff(want, ce); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				if got != nil {
					t.Errorf("Authenticate returned key %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(key, got); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFormatCheckedBeforeLookup checks that secrets NewKey cannot have made
// are rejected without asking the store or filling the cache.
func TestFormatCheckedBeforeLookup(t *testing.T) {
	s := newKeyStore()
	a := NewAuthenticator(s.fake(), Options{})
	for i := range 100 {
		h := http.Header{"Authorization": {fmt.Sprintf("Bearer not-a-key-%d", i)}}
		if _, err := a.Authenticate(context.Background(), h); chat.ErrorCode(err) != chat.EUnauthorized {
			t.Fatalf("Authenticate = %v, want code %s", err, chat.EUnauthorized)
		}
	}
	if n := s.lookupCount(); n != 0 {
		t.Errorf("store asked %d times, want 0", n)
	}
	if n := len(a.unknown); n != 0 {
		t.Errorf("negative cache holds %d entries, want 0", n)
	}
}

func bearer(secret string) http.Header {
	return http.Header{"Authorization": {"Bearer " + secret}}
}

func TestRevocationSeenAfterTTL(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	s := newKeyStore(key)
	c := &clock{t: t0}
	a := NewAuthenticator(s.fake(), Options{TTL: 30 * time.Second, Now: c.now})

	if _, err := a.Authenticate(ctx, bearer(secret)); err != nil {
		t.Fatal(err)
	}
	s.revoke(key.Hash, c.t)

	// Within the TTL the cached key still works, without a lookup.
	c.advance(29 * time.Second)
	if _, err := a.Authenticate(ctx, bearer(secret)); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	if n := s.lookupCount(); n != 1 {
		t.Errorf("store asked %d times within the TTL, want 1", n)
	}

	c.advance(time.Second)
	_, err := a.Authenticate(ctx, bearer(secret))
	if diff := cmp.Diff("invalid API key", chat.ErrorMessage(err)); diff != "" || chat.ErrorCode(err) != chat.EUnauthorized {
		t.Errorf("after the TTL: err = %v, want unauthorized: invalid API key", err)
	}
}

func TestNegativeCache(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	s := newKeyStore()
	c := &clock{t: t0}
	a := NewAuthenticator(s.fake(), Options{NegativeTTL: 5 * time.Second, Now: c.now})

	for range 3 {
		if _, err := a.Authenticate(ctx, bearer(secret)); chat.ErrorCode(err) != chat.EUnauthorized {
			t.Fatalf("unknown key: err = %v, want code %s", err, chat.EUnauthorized)
		}
	}
	if n := s.lookupCount(); n != 1 {
		t.Errorf("store asked %d times for one unknown key, want 1", n)
	}

	// A key created after a failed try works once the entry expires.
	s.add(key)
	c.advance(5 * time.Second)
	got, err := a.Authenticate(ctx, bearer(secret))
	if err != nil {
		t.Fatalf("after the negative TTL: %v", err)
	}
	if diff := cmp.Diff(key, got); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}
}

func TestCachingDisabled(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	unknown, _ := NewKey("x", t0)
	s := newKeyStore(key)
	a := NewAuthenticator(s.fake(), Options{TTL: -1, NegativeTTL: -1})
	for range 3 {
		a.Authenticate(ctx, bearer(secret))
		a.Authenticate(ctx, bearer(unknown))
	}
	if n := s.lookupCount(); n != 6 {
		t.Errorf("store asked %d times, want 6", n)
	}
}

func TestStoreError(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	s := newKeyStore(key)
	broken := errors.New("database is locked")
	s.err = broken
	a := NewAuthenticator(s.fake(), Options{})

	_, err := a.Authenticate(ctx, bearer(secret))
	if !errors.Is(err, broken) {
		t.Fatalf("err = %v, want %v", err, broken)
	}
	if code := chat.ErrorCode(err); code != chat.EInternal {
		t.Errorf("code = %s, want %s", code, chat.EInternal)
	}

	// A failure is not cached as an unknown key.
	s.mu.Lock()
	s.err = nil
	s.mu.Unlock()
	if _, err := a.Authenticate(ctx, bearer(secret)); err != nil {
		t.Errorf("after the store recovered: %v", err)
	}
}

// TestStoreReturnsWrongKey checks the constant-time hash comparison after
// lookup: a store that returns another key (a bug) does not authenticate.
func TestStoreReturnsWrongKey(t *testing.T) {
	secret, _ := NewKey("ci", t0)
	_, other := NewKey("other", t0)
	a := NewAuthenticator(&chattest.KeyStore{
		KeyByHashFn: func(ctx context.Context, h [32]byte) (*chat.Key, error) { return other, nil },
	}, Options{})
	if _, err := a.Authenticate(context.Background(), bearer(secret)); chat.ErrorCode(err) != chat.EUnauthorized {
		t.Errorf("err = %v, want code %s", err, chat.EUnauthorized)
	}
}

// TestReturnedKeyIsCopy checks that a caller changing the returned key
// does not change what the cache hands the next caller.
func TestReturnedKeyIsCopy(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	a := NewAuthenticator(newKeyStore(key).fake(), Options{})
	for range 2 {
		got, err := a.Authenticate(ctx, bearer(secret))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(key, got); diff != "" {
			t.Fatalf("key (-want +got):\n%s", diff)
		}
		got.Name = "changed"
	}
}

func TestCacheBound(t *testing.T) {
	ctx := context.Background()
	const max = 8
	s := newKeyStore()
	a := NewAuthenticator(s.fake(), Options{MaxEntries: max, Now: (&clock{t: t0}).now})

	// Random well-formed secrets cannot grow the negative cache past max.
	for range 10 * max {
		secret, _ := NewKey("", t0)
		a.Authenticate(ctx, bearer(secret))
		if n := len(a.unknown); n > max {
			t.Fatalf("negative cache holds %d entries, want at most %d", n, max)
		}
	}

	// Nor can more keys than max grow the positive cache, and every key
	// still works.
	var secrets []string
	for range 3 * max {
		secret, k := NewKey("", t0)
		s.add(k)
		secrets = append(secrets, secret)
	}
	for range 2 {
		for _, secret := range secrets {
			if _, err := a.Authenticate(ctx, bearer(secret)); err != nil {
				t.Fatal(err)
			}
			if n := len(a.found); n > max {
				t.Fatalf("cache holds %d keys, want at most %d", n, max)
			}
		}
	}
}

func TestConcurrentAuthenticate(t *testing.T) {
	ctx := context.Background()
	secret, key := NewKey("ci", t0)
	unknown, _ := NewKey("x", t0)
	a := NewAuthenticator(newKeyStore(key).fake(), Options{MaxEntries: 4})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := a.Authenticate(ctx, bearer(secret)); err != nil {
					t.Error(err)
					return
				}
				other, _ := NewKey("", t0)
				a.Authenticate(ctx, bearer(other))
				a.Authenticate(ctx, bearer(unknown))
			}
		})
	}
	wg.Wait()
}

func TestKeyContext(t *testing.T) {
	ctx := context.Background()
	if k, ok := KeyFrom(ctx); ok || k != nil {
		t.Errorf("KeyFrom(empty) = %v, %v; want nil, false", k, ok)
	}
	if k, ok := KeyFrom(WithKey(ctx, nil)); ok || k != nil {
		t.Errorf("KeyFrom(WithKey(nil)) = %v, %v; want nil, false", k, ok)
	}
	_, key := NewKey("ci", t0)
	got, ok := KeyFrom(WithKey(ctx, key))
	if !ok || got != key {
		t.Errorf("KeyFrom(WithKey(k)) = %v, %v; want k, true", got, ok)
	}
}

// FuzzAuthenticate checks that no header value panics, and that a
// well-formed secret is found in either header form.
func FuzzAuthenticate(f *testing.F) {
	secret, key := NewKey("ci", t0)
	for _, s := range []string{"Bearer " + secret, "bearer " + secret, secret, "", "Bearer", "Basic x", "Bearer \x00", " \t"} {
		f.Add(s, "")
		f.Add("", s)
	}
	a := NewAuthenticator(newKeyStore(key).fake(), Options{MaxEntries: 16})
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		h := http.Header{}
		if authorization != "" {
			h.Set("Authorization", authorization)
		}
		if apiKey != "" {
			h.Set("X-Api-Key", apiKey)
		}
		k, err := a.Authenticate(context.Background(), h)
		if err != nil {
			if code := chat.ErrorCode(err); code != chat.EUnauthorized {
				t.Fatalf("err = %v, want code %s", err, chat.EUnauthorized)
			}
			return
		}
		if k.ID != key.ID {
			t.Fatalf("authenticated as %s, want %s", k.ID, key.ID)
		}
	})
}
