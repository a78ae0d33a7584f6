package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/keel-ai/keel/internal/h1"
)

// TestNewServer checks that http_server picks the server it names: the
// tests run on both (eachServer) would pass on either.
func TestNewServer(t *testing.T) {
	h := http.NotFoundHandler()
	for _, tc := range []struct {
		kind string
		want string
	}{
		{"", "*h1.Server"},
		{"keel", "*h1.Server"},
		{"net/http", "*http.Server"},
	} {
		srv := newServer(tc.kind, h, slog.New(slog.DiscardHandler))
		if got := fmt.Sprintf("%T", srv); got != tc.want {
			t.Errorf("newServer(%q) = %s, want %s", tc.kind, got, tc.want)
		}
		switch s := srv.(type) {
		case *h1.Server:
			if s.Handler == nil || s.ReadHeaderTimeout == 0 {
				t.Errorf("newServer(%q): handler or header timeout unset: %+v", tc.kind, s)
			}
		case *http.Server:
			if s.Handler == nil || s.ReadHeaderTimeout == 0 {
				t.Errorf("newServer(%q): handler or header timeout unset", tc.kind)
			}
		}
	}
}
