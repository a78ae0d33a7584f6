package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/memnet"
)

// TestIdleConnTimeout runs on a fake clock: an idle conn is closed once it
// has idled for IdleConnTimeout, and the next request dials again.
func TestIdleConnTimeout(t *testing.T) {
	tests := []struct {
		name      string
		timeout   time.Duration
		idle      time.Duration
		wantDials int64
	}{
		{"within timeout", time.Minute, 59 * time.Second, 1},
		{"past timeout", time.Minute, 61 * time.Second, 2},
		{"default", 0, DefaultIdleConnTimeout + time.Second, 2},
		{"never", -1, 24 * time.Hour, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln := memnet.Listen()
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, "ok")
				})}
				go srv.Serve(ln)
				defer srv.Close()

				var dials atomic.Int64
				tr := &Transport{
					IdleConnTimeout: tt.timeout,
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						dials.Add(1)
						return ln.DialContext(ctx, network, addr)
					},
				}
				defer tr.CloseIdleConnections()
				fetch(t, tr, "http://upstream/")
				time.Sleep(tt.idle) // fake clock
				synctest.Wait()
				fetch(t, tr, "http://upstream/")
				if n := dials.Load(); n != tt.wantDials {
					t.Errorf("dials = %d, want %d", n, tt.wantDials)
				}
			})
		})
	}
}
