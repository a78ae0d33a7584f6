// Package journal records request records in the background, so that
// recording never adds latency to a request: Record queues and returns, and
// one goroutine writes batches to a chat.RequestStore.
package journal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-ai/keel/internal/chat"
)

// Options tunes a Journal.
type Options struct {
	// Capacity is how many records may wait to be written; Record drops
	// records beyond it. If zero or less, 4096 is used.
	Capacity int
	// Batch is the most records written in one store call. If zero or
	// less, 256 is used.
	Batch int
	// Interval is the longest a record waits in a partial batch, and the
	// shortest time between two logged reports of dropped records. If zero
	// or less, 200ms is used.
	Interval time.Duration
	// Timeout bounds each store call. If zero or less, 10s is used.
	Timeout time.Duration
}

// Journal queues request records and writes them to a store in batches
// from one goroutine that it owns. Its methods are safe for concurrent use.
// Close it to flush the queue and stop the goroutine.
type Journal struct {
	store    chat.RequestStore
	log      *slog.Logger
	capacity int
	batch    int
	interval time.Duration
	timeout  time.Duration

	// The queue is a slice under a mutex, not a channel: a send to a
	// channel wakes the goroutine for every record, which cost a
	// scheduling round per request at thousands of requests per second
	// (scripts/bench, perf). The goroutine wakes once per full batch, per
	// interval, and on Close.
	mu      sync.Mutex
	closed  bool
	pending []*chat.Request
	full    chan struct{} // a batch is ready; capacity 1, sent without blocking
	stop    chan struct{} // closed by Close

	abort context.CancelFunc // cancels the store call when Close gives up
	done  chan struct{}      // closed when run returns

	recorded atomic.Int64
	dropped  atomic.Int64
	failed   atomic.Int64
}

// New returns a Journal writing to store and starts its goroutine. It logs
// failures to log, never with record content.
func New(store chat.RequestStore, log *slog.Logger, opts Options) *Journal {
	if opts.Capacity <= 0 {
		opts.Capacity = 4096
	}
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	// The goroutine's context is its parameter, not a field: Close cancels
	// it through abort.
	ctx, abort := context.WithCancel(context.Background())
	j := &Journal{
		store:    store,
		log:      log,
		capacity: opts.Capacity,
		batch:    opts.Batch,
		interval: opts.Interval,
		timeout:  opts.Timeout,
		full:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		abort:    abort,
		done:     make(chan struct{}),
	}
	go j.run(ctx)
	return j
}

// Record queues r to be written and returns at once. If the queue is full,
// or the Journal is closed, it drops r and counts it in Dropped. A nil r is
// ignored. The Journal owns r from now on: the caller must not change it.
func (j *Journal) Record(r *chat.Request) {
	if r == nil {
		return
	}
	j.mu.Lock()
	if j.closed || len(j.pending) >= j.capacity {
		j.mu.Unlock()
		j.dropped.Add(1)
		return
	}
	j.pending = append(j.pending, r)
	ready := len(j.pending)%j.batch == 0
	j.mu.Unlock()
	if ready {
		select {
		case j.full <- struct{}{}:
		default: // already signalled
		}
	}
}

// Close stops accepting records, writes those queued, and waits for the
// goroutine to finish. If ctx ends first, Close cancels the store call in
// progress, returns ctx's error, and the records not yet written are lost
// (counted in Failed). Close may be called more than once.
func (j *Journal) Close(ctx context.Context) error {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.stop)
	}
	j.mu.Unlock()

	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		j.abort()
		return fmt.Errorf("journal: close: %w", ctx.Err())
	}
}

// Recorded returns how many records the store has accepted.
func (j *Journal) Recorded() int64 { return j.recorded.Load() }

// Dropped returns how many records Record dropped because the queue was
// full or the Journal closed.
func (j *Journal) Dropped() int64 { return j.dropped.Load() }

// Failed returns how many records were lost because the store failed.
func (j *Journal) Failed() int64 { return j.failed.Load() }

// run writes the queue in batches: the full ones as soon as they are, the
// rest once an interval has passed, and everything when the Journal closes.
func (j *Journal) run(ctx context.Context) {
	defer close(j.done)
	defer j.abort()

	tick := time.NewTicker(j.interval)
	defer tick.Stop()

	var reported int64 // drops logged so far
	for {
		all := true
		stopping := false
		select {
		case <-j.full:
			all = false
		case <-tick.C:
			j.reportDrops(&reported)
		case <-j.stop:
			stopping = true
		}
		for _, b := range j.take(all) {
			j.flush(ctx, b)
		}
		if stopping {
			j.reportDrops(&reported)
			return
		}
	}
}

// take removes from the queue its full batches, and the partial one too if
// all is set.
func (j *Journal) take(all bool) [][]*chat.Request {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := len(j.pending)
	if !all {
		n -= n % j.batch
	}
	if n == 0 {
		return nil
	}
	// The store may keep what it is given, so the queue starts anew rather
	// than reuse the taken slice's memory.
	taken := j.pending[:n:n]
	j.pending = append(make([]*chat.Request, 0, max(j.batch, len(j.pending)-n)), j.pending[n:]...)
	var bs [][]*chat.Request
	for len(taken) > 0 {
		k := min(len(taken), j.batch)
		bs = append(bs, taken[:k:k])
		taken = taken[k:]
	}
	return bs
}

// flush writes batch to the store, counting and logging a failure.
func (j *Journal) flush(ctx context.Context, batch []*chat.Request) {
	if len(batch) == 0 {
		return
	}
	if ctx.Err() != nil {
		// Close gave up waiting; it reported that to its caller.
		j.failed.Add(int64(len(batch)))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	if err := j.store.RecordRequests(ctx, batch); err != nil {
		j.failed.Add(int64(len(batch)))
		// Only the count and the error: never the records' content.
		j.log.Error("journal: record requests", "records", len(batch), "err", err)
		return
	}
	j.recorded.Add(int64(len(batch)))
}

// reportDrops logs the records dropped since the last report, if any. run
// calls it once per interval, which bounds the log rate.
func (j *Journal) reportDrops(reported *int64) {
	n := j.dropped.Load()
	if n == *reported {
		return
	}
	j.log.Warn("journal: queue full, records dropped", "dropped", n-*reported, "total", n)
	*reported = n
}
