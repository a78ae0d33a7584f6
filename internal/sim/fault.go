package sim

import (
	"fmt"
	"math"
	"time"
)

// FaultKind names a fault.
type FaultKind string

// The fault kinds.
const (
	// FaultHTTPError answers Status (429, 500, 503, 529, ...) with the
	// vendor's error body, optionally with Retry-After headers.
	FaultHTTPError FaultKind = "http_error"
	// FaultReset closes the TCP connection (with an RST where possible)
	// before sending headers.
	FaultReset FaultKind = "reset"
	// FaultHang sends nothing and blocks until the client gives up.
	FaultHang FaultKind = "hang"
	// FaultCut streams After tokens, then aborts the connection without a
	// terminator: the client sees an unexpected EOF.
	FaultCut FaultKind = "cut"
	// FaultStall streams After tokens, pauses For (zero: until the client
	// gives up), then continues normally.
	FaultStall FaultKind = "stall"
	// FaultMalformed emits one garbled data line (invalid JSON) after After
	// tokens, then continues normally.
	FaultMalformed FaultKind = "malformed"
	// FaultNoDone completes the stream but omits the end marker
	// (data: [DONE]) and ends the body cleanly.
	FaultNoDone FaultKind = "no_done"
	// FaultContextLength answers 400 context_length_exceeded.
	FaultContextLength FaultKind = "context_length"
	// FaultContentFilter answers 400 with the content-policy error.
	FaultContentFilter FaultKind = "content_filter"
	// FaultFlap makes the model answer 503 for Down, starting Start after
	// the model's first attempt (or after Server start if FromStart), then
	// healthy again; every Every if Every is set. It is chosen by the
	// clock, not by Rate, Attempts or Always.
	FaultFlap FaultKind = "flap"
)

// Fault is one failure a profile injects. A fault applies to an attempt
// when Always is set, when the model's 1-based attempt number is in
// Attempts, or with probability Rate (drawn from the attempt's seeded
// generator); flap faults apply by time instead. Exactly one selector must
// be set, except for flap, which takes none.
type Fault struct {
	// Name is recorded in Attempt.Fault. If empty, Kind is used.
	Name string
	Kind FaultKind

	// Selectors.
	Rate     float64
	Attempts []int
	Always   bool

	// Status is the HTTP status of an http_error fault (400..599).
	Status int
	// RetryAfter, if positive, is sent as the Retry-After header in whole
	// seconds (rounded up), or as an HTTP date if RetryAfterDate is set.
	RetryAfter     time.Duration
	RetryAfterDate bool
	// RetryAfterMS, if positive, is sent as the retry-after-ms header.
	RetryAfterMS int
	// ShouldRetry, if set, is sent as the x-should-retry header.
	ShouldRetry *bool
	// Code, Type and Message override the error body's fields.
	Code, Type, Message string

	// After is the number of tokens a cut, stall or malformed fault lets
	// through first. If it is larger than the answer, the fault strikes
	// after the last token, before the finish.
	After int
	// For is how long a stall lasts. Zero stalls until the client gives up.
	For time.Duration

	// Down is how long a flap lasts; Start delays its beginning and Every,
	// if positive, repeats it. FromStart measures Start from Server start
	// (New or Reset) instead of from the model's first attempt.
	Down, Start, Every time.Duration
	FromStart          bool
}

func (f *Fault) name() string {
	if f.Name != "" {
		return f.Name
	}
	return string(f.Kind)
}

// pick returns the first fault in faults that applies to attempt n of a
// model, or nil. r draws one number per rate fault, in order, so a fault's
// draw depends only on the rate faults before it. now, first and start are
// the current time, the model's first attempt and Server start.
func pick(faults []Fault, n int, r *prng, now, first, start time.Time) *Fault {
	for i := range faults {
		f := &faults[i]
		switch {
		case f.Kind == FaultFlap:
			origin := first
			if f.FromStart {
				origin = start
			}
			t := now.Sub(origin) - f.Start
			if t >= 0 && f.Every > 0 {
				t %= f.Every
			}
			if t >= 0 && t < f.Down {
				return f
			}
		case f.Always:
			return f
		case f.Rate > 0:
			if r.float64() < f.Rate {
				return f
			}
		default:
			for _, a := range f.Attempts {
				if a == n {
					return f
				}
			}
		}
	}
	return nil
}

// failKind is a wire-neutral class of error response; each wire format
// renders it in its own envelope.
type failKind uint8

const (
	failStatus        failKind = iota // a plain HTTP error status
	failContextLength                 // the prompt is too long
	failContentFilter                 // the content policy refused
	failPrefill                       // the model rejects assistant prefill
	failInvalid                       // the request is malformed; message says why
)

// failure is an error response before headers: what happened, plus the
// fault's overrides of the body ("" = the wire format's default).
type failure struct {
	status             int
	kind               failKind
	typ, code, message string
	param              string
	retryAfter         time.Duration
	retryAfterDate     bool
	retryAfterMS       int
	shouldRetry        *bool
}

// failureOf is the error response of fault f, or false if f does not end
// the attempt with an error status.
func failureOf(f *Fault) (failure, bool) {
	fl := failure{
		typ: f.Type, code: f.Code, message: f.Message,
		retryAfter: f.RetryAfter, retryAfterDate: f.RetryAfterDate,
		retryAfterMS: f.RetryAfterMS, shouldRetry: f.ShouldRetry,
	}
	switch f.Kind {
	case FaultHTTPError:
		fl.status = f.Status
	case FaultFlap:
		fl.status = 503
	case FaultContextLength:
		fl.status, fl.kind = 400, failContextLength
	case FaultContentFilter:
		fl.status, fl.kind = 400, failContentFilter
	default:
		return failure{}, false
	}
	return fl, true
}

func (f *Fault) validate(path string) error {
	switch f.Kind {
	case FaultHTTPError, FaultReset, FaultHang, FaultCut, FaultStall, FaultMalformed,
		FaultNoDone, FaultContextLength, FaultContentFilter, FaultFlap:
	case "":
		return fmt.Errorf("%s.kind: required", path)
	default:
		return fmt.Errorf("%s.kind: unknown fault kind %q", path, f.Kind)
	}

	selectors := 0
	if f.Always {
		selectors++
	}
	if len(f.Attempts) > 0 {
		selectors++
	}
	if f.Rate != 0 {
		selectors++
	}
	if f.Rate < 0 || f.Rate > 1 || math.IsNaN(f.Rate) {
		return fmt.Errorf("%s.rate: %v is not a probability (want 0..1)", path, f.Rate)
	}
	for i, a := range f.Attempts {
		if a < 1 {
			return fmt.Errorf("%s.attempts[%d]: %d is not a 1-based attempt number", path, i, a)
		}
	}
	switch {
	case f.Kind == FaultFlap && selectors > 0:
		return fmt.Errorf("%s: flap is selected by time; remove rate, attempts and always", path)
	case f.Kind != FaultFlap && selectors == 0:
		return fmt.Errorf("%s: one of rate, attempts or always is required", path)
	case selectors > 1:
		return fmt.Errorf("%s: set only one of rate, attempts or always", path)
	}

	// Fields that the kind does not use are mistakes; name them.
	isError := f.Kind == FaultHTTPError || f.Kind == FaultFlap ||
		f.Kind == FaultContextLength || f.Kind == FaultContentFilter
	unused := func(field string, set bool, allowed bool) error {
		if set && !allowed {
			return fmt.Errorf("%s.%s: not used by kind %s", path, field, f.Kind)
		}
		return nil
	}
	checks := []struct {
		field        string
		set, allowed bool
	}{
		{"status", f.Status != 0, f.Kind == FaultHTTPError},
		{"retry_after", f.RetryAfter != 0, isError},
		{"retry_after_date", f.RetryAfterDate, isError},
		{"retry_after_ms", f.RetryAfterMS != 0, isError},
		{"should_retry", f.ShouldRetry != nil, isError},
		{"code", f.Code != "", isError},
		{"type", f.Type != "", isError},
		{"message", f.Message != "", isError},
		{"after", f.After != 0, f.Kind == FaultCut || f.Kind == FaultStall || f.Kind == FaultMalformed},
		{"for", f.For != 0, f.Kind == FaultStall},
		{"down", f.Down != 0, f.Kind == FaultFlap},
		{"start", f.Start != 0, f.Kind == FaultFlap},
		{"every", f.Every != 0, f.Kind == FaultFlap},
		{"from_start", f.FromStart, f.Kind == FaultFlap},
	}
	for _, c := range checks {
		if err := unused(c.field, c.set, c.allowed); err != nil {
			return err
		}
	}

	switch {
	case f.Kind == FaultHTTPError && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("%s.status: %d is not an HTTP error status (want 400..599)", path, f.Status)
	case f.RetryAfter < 0:
		return fmt.Errorf("%s.retry_after: %v is negative", path, f.RetryAfter)
	case f.RetryAfterDate && f.RetryAfter <= 0:
		return fmt.Errorf("%s.retry_after_date: needs a positive retry_after", path)
	case f.RetryAfterMS < 0:
		return fmt.Errorf("%s.retry_after_ms: %d is negative", path, f.RetryAfterMS)
	case f.After < 0:
		return fmt.Errorf("%s.after: %d is negative", path, f.After)
	case f.For < 0:
		return fmt.Errorf("%s.for: %v is negative", path, f.For)
	case f.Kind == FaultFlap && f.Down <= 0:
		return fmt.Errorf("%s.down: flap needs a positive down duration", path)
	case f.Start < 0:
		return fmt.Errorf("%s.start: %v is negative", path, f.Start)
	case f.Every < 0 || (f.Every > 0 && f.Every <= f.Down):
		return fmt.Errorf("%s.every: %v must be longer than down (%v)", path, f.Every, f.Down)
	}
	return nil
}
