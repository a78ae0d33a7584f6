package provider

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-ai/keel/internal/h1"
	"github.com/keel-ai/keel/internal/llm"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ms   string // retry-after-ms
		s    string // Retry-After
		want time.Duration
	}{
		{"none", "", "", 0},
		{"ms", "1750", "", 1750 * time.Millisecond},
		{"ms fractional", "1.5", "", 1500 * time.Microsecond},
		{"ms wins", "50", "2", 50 * time.Millisecond},
		{"zero ms falls back", "0", "2", 2 * time.Second},
		{"negative ms falls back", "-5", "3", 3 * time.Second},
		{"garbage ms falls back", "soon", "1", time.Second},
		{"infinite ms falls back", "Inf", "1", time.Second},
		{"seconds", "", "2", 2 * time.Second},
		{"seconds fractional", "", "0.25", 250 * time.Millisecond},
		{"a day", "", "86400", 24 * time.Hour},
		{"zero", "", "0", 0},
		{"negative", "", "-1", 0},
		{"NaN", "", "NaN", 0},
		{"infinite", "", "+Inf", 0},
		{"overflows a Duration", "", "1e300", 0},
		{"ms overflow", "1e300", "", 0},
		{"garbage", "", "soon", 0},
		{"HTTP date", "", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"RFC 850 date", "", now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second},
		{"ANSI C date", "", now.Add(time.Hour).Format(time.ANSIC), time.Hour},
		{"date now", "", now.Format(http.TimeFormat), 0},
		{"date past", "", now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ms != "" {
				h.Set("retry-after-ms", tt.ms)
			}
			if tt.s != "" {
				h.Set("retry-after", tt.s)
			}
			if got := RetryAfter(h, now); got != tt.want {
				t.Errorf("RetryAfter(ms=%q, s=%q) = %v, want %v", tt.ms, tt.s, got, tt.want)
			}
		})
	}
}

func TestStatusKind(t *testing.T) {
	tests := []struct {
		status int
		want   llm.Kind
	}{
		{0, llm.KindUnknown},
		{200, llm.KindUnknown},
		{301, llm.KindUnknown},
		{400, llm.KindInvalid},
		{401, llm.KindAuth},
		{402, llm.KindAuth},
		{403, llm.KindAuth},
		{404, llm.KindNotFound},
		{405, llm.KindInvalid},
		{408, llm.KindTimeout},
		{409, llm.KindServer},
		{413, llm.KindInvalid},
		{422, llm.KindInvalid},
		{429, llm.KindRateLimit},
		{500, llm.KindServer},
		{502, llm.KindServer},
		{503, llm.KindOverloaded},
		{504, llm.KindServer},
		{529, llm.KindOverloaded},
		{599, llm.KindServer},
	}
	for _, tt := range tests {
		if got := StatusKind(tt.status); got != tt.want {
			t.Errorf("StatusKind(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

// TestDeadlineHeader checks that a call with no headers in time is
// canceled as a timeout, at the header deadline.
func TestDeadlineHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, d := StartDeadline(t.Context(), 5*time.Second, time.Second)
		defer d.Stop()
		<-ctx.Done()
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("canceled after %v, want 5s", got)
		}
		err := TransportError(ctx, "p", ctx.Err())
		if err.Kind != llm.KindTimeout || !errors.Is(err, ErrHeaderTimeout) {
			t.Errorf("err = %v, want a timeout for ErrHeaderTimeout", err)
		}
	})
}

// TestDeadlineIdle checks that reading the body switches the deadline from
// headers to idle, that every read restarts it, and that silence past it
// cancels the call as a timeout.
func TestDeadlineIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, d := StartDeadline(t.Context(), 5*time.Second, 2*time.Second)
		defer d.Stop()
		time.Sleep(4 * time.Second) // headers after 4s: within 5s
		pr, pw := io.Pipe()
		body := d.Body(pr)
		go func() {
			// Data every 1.5s for 9s: past the header deadline, never
			// past the idle one.
			for range 6 {
				time.Sleep(1500 * time.Millisecond)
				pw.Write([]byte("data: x\n\n"))
			}
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
		}()
		buf := make([]byte, 64)
		for range 6 {
			if _, err := body.Read(buf); err != nil {
				t.Fatalf("read: %v (cause %v)", err, context.Cause(ctx))
			}
		}
		last := time.Now()
		_, err := body.Read(buf)
		if err == nil {
			t.Fatal("read after silence succeeded")
		}
		if got := time.Since(last); got != 2*time.Second {
			t.Errorf("canceled %v after the last read, want 2s", got)
		}
		if k := TransportKind(ctx, err); k != llm.KindTimeout || !errors.Is(context.Cause(ctx), ErrIdleTimeout) {
			t.Errorf("kind %v, cause %v; want timeout, ErrIdleTimeout", k, context.Cause(ctx))
		}
	})
}

// TestDeadlineIdleDisabled checks that with no idle deadline the header
// deadline stops once the body is reached.
func TestDeadlineIdleDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, d := StartDeadline(t.Context(), time.Second, 0)
		defer d.Stop()
		d.Body(io.NopCloser(nil))
		time.Sleep(time.Hour)
		if err := ctx.Err(); err != nil {
			t.Errorf("call canceled: %v (cause %v)", err, context.Cause(ctx))
		}
	})
}

func TestDeadlineNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, d := StartDeadline(t.Context(), 0, 0)
		defer d.Stop()
		time.Sleep(time.Hour)
		if err := ctx.Err(); err != nil {
			t.Errorf("call canceled: %v", err)
		}
	})
}

// TestDeadlineParentCanceled checks that a client leaving is told apart
// from a timeout.
func TestDeadlineParentCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(t.Context())
		ctx, d := StartDeadline(parent, 5*time.Second, time.Second)
		defer d.Stop()
		time.Sleep(time.Second)
		cancel()
		<-ctx.Done()
		time.Sleep(10 * time.Second) // the header timer must not re-classify it
		err := TransportError(ctx, "p", ctx.Err())
		if err.Kind != llm.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v (kind %v), want canceled", err, err.Kind)
		}
	})
}

// TestDeadlineStop checks that Stop ends the call for good: the timers it
// had armed no longer fire as timeouts.
func TestDeadlineStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, d := StartDeadline(t.Context(), 5*time.Second, 0)
		d.Stop()
		d.Stop() // twice is fine
		if ctx.Err() == nil {
			t.Fatal("Stop did not cancel the call")
		}
		time.Sleep(time.Minute)
		if k := TransportKind(ctx, ctx.Err()); k != llm.KindCanceled {
			t.Errorf("kind after Stop = %v, want canceled", k)
		}
	})
}

type netError struct{ timeout bool }

func (e netError) Error() string   { return "net" }
func (e netError) Timeout() bool   { return e.timeout }
func (e netError) Temporary() bool { return false }

func TestTransportKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want llm.Kind
	}{
		{"refused", errors.New("connect: connection refused"), llm.KindConnect},
		{"reset", io.ErrUnexpectedEOF, llm.KindConnect},
		{"net timeout", netError{timeout: true}, llm.KindTimeout},
		{"net error", netError{}, llm.KindConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, d := StartDeadline(context.Background(), 0, 0)
			defer d.Stop()
			if got := TransportKind(ctx, tt.err); got != tt.want {
				t.Errorf("TransportKind(%v) = %v, want %v", tt.err, got, tt.want)
			}
			e := TransportError(ctx, "p", tt.err)
			if e.Kind != tt.want || e.Provider != "p" || !errors.Is(e, tt.err) {
				t.Errorf("TransportError = %+v", e)
			}
		})
	}
}

// FuzzRetryAfter checks that no header value yields a negative wait.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"2", "1750", "0.5", "-1", "Inf", "NaN", "1e300", "Wed, 21 Oct 2015 07:28:00 GMT"} {
		f.Add(s, s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ms, s string) {
		h := http.Header{"Retry-After-Ms": {ms}, "Retry-After": {s}}
		if d := RetryAfter(h, now); d < 0 {
			t.Fatalf("RetryAfter(ms=%q, s=%q) = %v", ms, s, d)
		}
	})
}

// TestSchemes: plain http:// goes through h1 unless a proxy applies;
// https:// always through net/http.
func TestSchemes(t *testing.T) {
	proxy, _ := url.Parse("http://proxy.example:3128")
	direct := &schemes{plain: &h1.Transport{}, std: &http.Transport{}}
	proxied := &schemes{plain: &h1.Transport{}, std: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	tests := []struct {
		name  string
		s     *schemes
		url   string
		plain bool
	}{
		{"http", direct, "http://127.0.0.1:11434/v1/chat/completions", true},
		{"https", direct, "https://api.openai.com/v1/chat/completions", false},
		{"http through a proxy", proxied, "http://10.0.0.5:8000/v1/chat/completions", false},
		{"https through a proxy", proxied, "https://api.openai.com/v1/chat/completions", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", tt.url, nil)
			_, got := tt.s.pick(req).(*h1.Transport)
			if got != tt.plain {
				t.Errorf("through h1 = %v, want %v", got, tt.plain)
			}
		})
	}
}
