package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/chat/chattest"
)

// batches is a fake store that remembers the IDs of each batch it is given.
type batches struct {
	mu  sync.Mutex
	ids [][]string
}

func (b *batches) store() *chattest.RequestStore {
	return &chattest.RequestStore{
		RecordRequestsFn: func(ctx context.Context, rs []*chat.Request) error {
			ids := make([]string, len(rs))
			for i, r := range rs {
				ids[i] = r.ID
			}
			b.mu.Lock()
			b.ids = append(b.ids, ids)
			b.mu.Unlock()
			return nil
		},
	}
}

func (b *batches) got() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]string(nil), b.ids...)
}

// logBuffer is a goroutine-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{
		// Drop the time, so lines are stable.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func record(j *Journal, ids ...string) {
	for _, id := range ids {
		j.Record(&chat.Request{ID: id})
	}
}

type counts struct{ Recorded, Dropped, Failed int64 }

func countsOf(j *Journal) counts {
	return counts{j.Recorded(), j.Dropped(), j.Failed()}
}

func TestDefaults(t *testing.T) {
	j := New(&chattest.RequestStore{}, discard(), Options{})
	defer j.Close(context.Background())
	got := Options{Capacity: j.capacity, Batch: j.batch, Interval: j.interval, Timeout: j.timeout}
	want := Options{Capacity: 4096, Batch: 256, Interval: 200 * time.Millisecond, Timeout: 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b batches
		j := New(b.store(), discard(), Options{Batch: 3, Interval: time.Second})

		record(j, "1", "2", "3", "4", "5", "6", "7")
		synctest.Wait()
		// Full batches go at once; the partial one waits for the interval.
		want := [][]string{{"1", "2", "3"}, {"4", "5", "6"}}
		if diff := cmp.Diff(want, b.got()); diff != "" {
			t.Fatalf("batches before the interval (-want +got):\n%s", diff)
		}

		time.Sleep(time.Second) // fake time: one interval
		synctest.Wait()
		want = append(want, []string{"7"})
		if diff := cmp.Diff(want, b.got()); diff != "" {
			t.Fatalf("batches after the interval (-want +got):\n%s", diff)
		}

		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, b.got()); diff != "" {
			t.Errorf("batches after Close (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(counts{Recorded: 7}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

func TestCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b batches
		j := New(b.store(), discard(), Options{Batch: 2, Interval: time.Hour})
		record(j, "1", "2", "3", "4", "5")
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"1", "2"}, {"3", "4"}, {"5"}}
		if diff := cmp.Diff(want, b.got()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(counts{Recorded: 5}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

func TestDropWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			b       batches
			logs    logBuffer
			release = make(chan struct{})
		)
		fake := b.store()
		record := fake.RecordRequestsFn
		fake.RecordRequestsFn = func(ctx context.Context, rs []*chat.Request) error {
			<-release
			return record(ctx, rs)
		}
		j := New(fake, logs.logger(), Options{Capacity: 2, Batch: 1, Interval: time.Second, Timeout: time.Hour})

		j.Record(&chat.Request{ID: "1"})
		synctest.Wait() // the goroutine holds 1 and waits in the store
		for _, id := range []string{"2", "3", "4", "5"} {
			j.Record(&chat.Request{ID: id}) // 2 and 3 fill the queue
		}
		if got := j.Dropped(); got != 2 {
			t.Fatalf("Dropped = %d, want 2", got)
		}

		close(release)
		time.Sleep(5 * time.Second) // fake time: several intervals
		synctest.Wait()
		j.Record(&chat.Request{ID: "6"})
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}

		want := [][]string{{"1"}, {"2"}, {"3"}, {"6"}}
		if diff := cmp.Diff(want, b.got()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(counts{Recorded: 4, Dropped: 2}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
		// One report over several intervals, since no more were dropped.
		wantLog := "level=WARN msg=\"journal: queue full, records dropped\" dropped=2 total=2\n"
		if diff := cmp.Diff(wantLog, logs.String()); diff != "" {
			t.Errorf("log (-want +got):\n%s", diff)
		}
	})
}

func TestRecordAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b batches
		j := New(b.store(), discard(), Options{})
		record(j, "1")
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		record(j, "2", "3")
		j.Record(nil)
		if err := j.Close(t.Context()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if diff := cmp.Diff([][]string{{"1"}}, b.got()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(counts{Recorded: 1, Dropped: 2}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

func TestStoreErrorCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		fake := &chattest.RequestStore{
			RecordRequestsFn: func(ctx context.Context, rs []*chat.Request) error {
				return errors.New("disk I/O error")
			},
		}
		j := New(fake, logs.logger(), Options{Batch: 2})
		for i := range 3 {
			j.Record(&chat.Request{ID: fmt.Sprint(i), Prompt: "the secret prompt", Completion: "the secret completion"})
		}
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(counts{Failed: 3}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
		log := logs.String()
		if got := strings.Count(log, `err="disk I/O error"`); got != 2 {
			t.Errorf("logged %d failures, want 2 (one per batch):\n%s", got, log)
		}
		if strings.Contains(log, "secret") {
			t.Errorf("log contains record content:\n%s", log)
		}
	})
}

func TestStoreTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var deadline atomic.Bool
		fake := &chattest.RequestStore{
			RecordRequestsFn: func(ctx context.Context, rs []*chat.Request) error {
				<-ctx.Done() // a store that hangs
				deadline.Store(errors.Is(ctx.Err(), context.DeadlineExceeded))
				return ctx.Err()
			},
		}
		j := New(fake, discard(), Options{Timeout: 3 * time.Second})
		record(j, "1")
		start := time.Now()
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("Close took %v, want the 3s store timeout", got)
		}
		if !deadline.Load() {
			t.Error("the store call did not end by its deadline")
		}
		if diff := cmp.Diff(counts{Failed: 1}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

func TestCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		fake := &chattest.RequestStore{
			RecordRequestsFn: func(ctx context.Context, rs []*chat.Request) error {
				calls++ // only the journal's goroutine calls
				<-ctx.Done()
				return ctx.Err()
			},
		}
		j := New(fake, discard(), Options{Batch: 1, Timeout: time.Hour})
		record(j, "1", "2", "3")

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		err := j.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want context.DeadlineExceeded", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("Close took %v, want 1s", got)
		}
		// The goroutine ends without waiting for the store timeout, and
		// without calling the store again.
		synctest.Wait()
		select {
		case <-j.done:
		default:
			t.Fatal("the goroutine still runs after Close gave up")
		}
		if calls != 1 {
			t.Errorf("store called %d times, want 1", calls)
		}
		if diff := cmp.Diff(counts{Failed: 3}, countsOf(j)); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}

// TestConcurrentRecord runs Record from many goroutines against a slow
// store under the race detector: every record is written or dropped, none
// lost or written twice.
func TestConcurrentRecord(t *testing.T) {
	const (
		writers = 8
		each    = 500
	)
	var (
		mu   sync.Mutex
		seen = make(map[string]int)
	)
	fake := &chattest.RequestStore{
		RecordRequestsFn: func(ctx context.Context, rs []*chat.Request) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs {
				seen[r.ID]++
			}
			return nil
		},
	}
	j := New(fake, discard(), Options{Capacity: 64, Batch: 16, Interval: time.Millisecond})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				j.Record(&chat.Request{ID: fmt.Sprintf("%d-%d", w, i)})
			}
		})
	}
	// Close while the writers still run: late records are dropped, never
	// sent on the closed queue.
	wg.Go(func() {
		if err := j.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()

	c := countsOf(j)
	if c.Recorded+c.Dropped != writers*each || c.Failed != 0 {
		t.Errorf("counts = %+v, want Recorded+Dropped = %d and no failures", c, writers*each)
	}
	mu.Lock()
	defer mu.Unlock()
	if int64(len(seen)) != c.Recorded {
		t.Errorf("store saw %d records, Recorded = %d", len(seen), c.Recorded)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s written %d times", id, n)
		}
	}
}
