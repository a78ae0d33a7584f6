package router

import "time"

// window counts events over a sliding window of one-second buckets. The
// zero value counts over nothing; see newWindow. Not safe for concurrent
// use: its owner holds a lock.
type window struct {
	buckets []bucket
	width   time.Duration
}

type bucket struct {
	start    time.Time
	requests int
	failures int
	retries  int
	hedges   int
}

func newWindow(span time.Duration) window {
	n := int(span / time.Second)
	if n < 1 {
		n = 1
	}
	return window{buckets: make([]bucket, n), width: time.Second}
}

// at returns the bucket for now, recycling stale ones.
func (w *window) at(now time.Time) *bucket {
	start := now.Truncate(w.width)
	b := &w.buckets[int(start.Unix())%len(w.buckets)]
	if !b.start.Equal(start) {
		*b = bucket{start: start}
	}
	return b
}

// sum adds up the buckets still inside the window at now.
func (w *window) sum(now time.Time) bucket {
	var s bucket
	oldest := now.Truncate(w.width).Add(-w.width * time.Duration(len(w.buckets)-1))
	for _, b := range w.buckets {
		if !b.start.Before(oldest) && !b.start.After(now) {
			s.requests += b.requests
			s.failures += b.failures
			s.retries += b.retries
			s.hedges += b.hedges
		}
	}
	return s
}
