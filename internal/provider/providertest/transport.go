package providertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/llm"
)

// RoundTripperFunc is an http.RoundTripper that calls itself.
type RoundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip returns f(r).
func (f RoundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Trickle returns an HTTP client whose upstream answers every request with
// a 200 event stream that sends chunks, each after its delay, and then
// stays silent. Like net/http, it fails a body read once the request's
// context ends. Its delays are real sleeps: use it under testing/synctest.
func Trickle(chunks []string, delays []time.Duration) *http.Client {
	return &http.Client{Transport: RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			<-r.Context().Done()
			pw.CloseWithError(r.Context().Err())
		}()
		go func() {
			for i, c := range chunks {
				time.Sleep(delays[i])
				if _, err := io.WriteString(pw, c); err != nil {
					return
				}
			}
		}()
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
	})}
}

// Unanswered returns an HTTP client whose upstream never sends headers:
// each request fails with its context's error once that context ends.
func Unanswered() *http.Client {
	return &http.Client{Transport: RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})}
}

// CheckHeaderDeadline checks a provider's header deadline against an
// upstream that never answers, under testing/synctest: mk builds the
// provider with a 7s header timeout on client hc, and req builds a chat
// request. A stream's call must fail at 7s exactly; a whole answer's
// headers come only once it is written, so only the caller's deadline,
// 20s, may end that call.
func CheckHeaderDeadline(t *testing.T, mk func(header time.Duration, hc *http.Client) llm.Provider, req func(stream bool) *llm.Request) {
	for _, tt := range []struct {
		stream bool
		want   time.Duration
	}{
		{true, 7 * time.Second},
		{false, 20 * time.Second},
	} {
		t.Run(fmt.Sprintf("stream=%v", tt.stream), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := mk(7*time.Second, Unanswered())
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				start := time.Now()
				_, err := p.Chat(ctx, req(tt.stream))
				if KindOf(err) != llm.KindTimeout || time.Since(start) != tt.want {
					t.Errorf("err = %v (kind %v) after %v, want a timeout after %v", err, KindOf(err), time.Since(start), tt.want)
				}
			})
		})
	}
}
