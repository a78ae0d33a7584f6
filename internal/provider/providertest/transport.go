package providertest

import (
	"io"
	"net/http"
	"time"
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
