package router

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/keel-ai/keel/internal/llm"
)

// verdict is what the router does after an attempt fails. wait delays
// whichever attempt comes next. It is the
// output of decide, the one place that maps a failure to an action
// (STYLE.md: adapters classify errors; the router decides here).
type verdict struct {
	// retry tries the same target again.
	retry bool
	wait  time.Duration
	// failover moves on to the next target; with neither set, keel gives
	// up and returns the error.
	failover bool
	// context switches to the route's larger-context fallbacks.
	context bool
	// upstream reports whether the failure was the upstream's fault and
	// counts against its health. Client cancellations and rejected requests
	// do not.
	upstream bool
	// cool keeps other requests off the target until now+cool (Retry-After).
	cool time.Duration
}

// situation is what decide knows besides the error.
type situation struct {
	policy Policy
	// tries is how many attempts this request already made on the target.
	tries int
	// next reports whether another target remains.
	next bool
	// left is the time remaining until the request's deadline.
	left time.Duration
	// contextFailovers counts failovers already spent on context length.
	contextFailovers int
	// limited counts the rate limits this request met, this one included:
	// the backoff grows with it whichever target is next.
	limited int
}

// decide maps one failed attempt to a verdict (issue 3, "Required
// behaviour" 1–13).
func decide(err error, s situation) verdict {
	var e *llm.Error
	if !errors.As(err, &e) {
		return verdict{}
	}
	p := s.policy
	switch e.Kind {
	case llm.KindCanceled:
		return verdict{}

	case llm.KindRateLimit:
		v := verdict{upstream: true}
		if e.RetryAfter > 0 {
			// 1: wait as told when it fits, else fail over; never hammer.
			v.cool = e.RetryAfter
			limit := p.MaxRetryAfter
			if s.next {
				limit = p.RetryAfterWait
			}
			if e.RetryAfter <= limit && e.RetryAfter < s.left && s.tries < 2 {
				v.retry, v.wait = true, e.RetryAfter
				return v
			}
			v.failover = s.next
			return v
		}
		// 2: exponential backoff with jitter, then fail over. The backoff
		// spans the request, failovers included, so that a request never
		// makes more than 4 attempts in 3 s against rate limits.
		v.wait = backoff(p, s.limited)
		v.retry = s.tries < 2
		v.failover = !v.retry && s.next
		return v

	case llm.KindQuota:
		return verdict{upstream: true, failover: s.next, cool: time.Minute}

	case llm.KindServer, llm.KindOverloaded:
		// 3, 4: retry the same target once, then fail over.
		if s.tries < 2 {
			return verdict{upstream: true, retry: true, wait: backoff(p, s.tries)}
		}
		return verdict{upstream: true, failover: s.next}

	case llm.KindConnect, llm.KindStream:
		// 5, 8: another target if there is one, else the same once more.
		if s.next {
			return verdict{upstream: true, failover: true}
		}
		return verdict{upstream: true, retry: s.tries < 2, wait: backoff(p, s.tries)}

	case llm.KindTimeout:
		// 6, 7, 9: never wait on a silent target twice.
		return verdict{upstream: true, failover: s.next}

	case llm.KindAuth, llm.KindNotFound:
		// keel's credentials or model name are wrong for this target only.
		return verdict{upstream: true, failover: s.next}

	case llm.KindContextLength:
		// 12: never the same model again; the dedicated fallbacks, or the
		// next target once.
		if len(p.ContextFallbacks) > 0 && s.contextFailovers == 0 {
			return verdict{context: true}
		}
		return verdict{failover: s.next && s.contextFailovers == 0}

	case llm.KindContentFilter:
		// 13: the vendor's refusal stands unless the route says otherwise.
		return verdict{failover: s.next && p.FailoverContentFilter}
	}
	return verdict{} // KindInvalid, KindUnknown: the request itself is wrong
}

// backoff is the wait before retry number tries (1-based): Backoff doubled
// per retry, capped at MaxBackoff, with "equal jitter" (half fixed, half
// random) so that clients spread out without ever retrying at once.
func backoff(p Policy, tries int) time.Duration {
	d := p.Backoff << max(tries-1, 0)
	if d > p.MaxBackoff || d <= 0 {
		d = p.MaxBackoff
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
