package syncer

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// The background fill (--lazy, docs/design.md "Lazy paths"): the restore records a lazy object as
// remote-only instead of downloading it, so a pod is ready once its eager files are local. Once ready,
// the fill downloads the remote-only paths in the background, newest object first (the media a site
// shows first), fillTransfers at a time, and only while no read-through fetch is in flight: the app's
// misses are first in line. A fetched file reaches the loop like a read-through's (handFetched); the next
// pass records its base, and it is an ordinary local file from then on.
//
// Owner: the queue is the fill's; the loop only pushes to it (commit, when it records a remote-only
// base; Run, for those the state directory kept). An item is checked against the base (safe for
// concurrent reads) before its download, so one the loop has since changed or forgotten is skipped.

// fillTransfers is how many lazy downloads the fill has in flight: a quarter of --transfers, at least 1.
func (s *Syncer) fillTransfers() int { return max(1, s.opt.Transfers/4) }

// fillItem is one remote-only path, with the object its base recorded.
type fillItem struct {
	path string
	o    snapshot.Object
}

// fillQueue holds the remote-only paths to fill, newest object first.
type fillQueue struct {
	mu    sync.Mutex
	items fillHeap
	kick  chan struct{} // 1-buffered: something was pushed
	// fetching counts the read-through fetches in flight (Fetch): the fill waits while any is.
	fetching atomic.Int64
	// uncounted: bytes of lazy files fetched or filled that no pass has counted yet (handFetched adds,
	// conclude subtracts what its pass took): with status.cacheBytes, the fill's view of the cache.
	uncounted atomic.Int64
	// room guards reserved: the bytes of the lazy downloads in flight (the fill's and the read-through's),
	// taken before each starts (reserveRoom) so that two never both take the last of the budget.
	room     sync.Mutex
	reserved int64
	// wanted: the bytes of read-through fetches waiting for room; the loop's eviction makes room for them.
	wanted atomic.Int64
}

func newFillQueue() *fillQueue { return &fillQueue{kick: make(chan struct{}, 1)} }

// push adds a remote-only path.
func (q *fillQueue) push(path string, o snapshot.Object) {
	q.mu.Lock()
	heap.Push(&q.items, fillItem{path: path, o: o})
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// pop takes the newest item, or reports that there is none.
func (q *fillQueue) pop() (fillItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items.Len() == 0 {
		return fillItem{}, false
	}
	return heap.Pop(&q.items).(fillItem), true
}

// fillHeap orders items newest object first (by the mtime the object carries), then by path.
type fillHeap []fillItem

func (h fillHeap) Len() int { return len(h) }
func (h fillHeap) Less(i, j int) bool {
	if !h[i].o.ModTime.Equal(h[j].o.ModTime) {
		return h[i].o.ModTime.After(h[j].o.ModTime)
	}
	return h[i].path < h[j].path
}
func (h fillHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *fillHeap) Push(x any)   { *h = append(*h, x.(fillItem)) }
func (h *fillHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// seedFill queues the remote-only entries the base holds (a restart with --state-dir). The loop's.
func (s *Syncer) seedFill() {
	s.base.Range(func(path string, b snapshot.Base) {
		if b.RemoteOnly {
			s.fill.push(path, b.Object)
		}
	})
}

// runFill fills remote-only paths until ctx is done, once the replica is ready.
func (s *Syncer) runFill(ctx context.Context) {
	for !s.Ready() {
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			return
		}
	}
	var wg sync.WaitGroup
	for range s.fillTransfers() {
		wg.Go(func() { s.fillWorker(ctx) })
	}
	wg.Wait()
}

// fillWorker downloads queued items one at a time, waiting for the queue and for the read-through.
func (s *Syncer) fillWorker(ctx context.Context) {
	for ctx.Err() == nil {
		it, ok := s.fill.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.fill.kick:
			}
			continue
		}
		for s.fill.fetching.Load() > 0 { // the app's misses first
			if !backoff.Sleep(ctx, 20*time.Millisecond) {
				return
			}
		}
		if !s.reserveRoom(it.o.Size) {
			// The cache is full: the fill stops here (the item waits) until evictions or deletes make room.
			s.fill.push(it.path, it.o)
			if !backoff.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		err := s.fillOne(ctx, it)
		for attempt := 1; err != nil && !errors.Is(err, gcsstore.ErrNotFound) && attempt < attemptsPerPass; attempt++ {
			if !backoff.Sleep(ctx, actionRetry.Delay(attempt)) {
				break
			}
			err = s.fillOne(ctx, it)
		}
		s.releaseRoom(it.o.Size)
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, gcsstore.ErrNotFound):
			// Replaced or deleted since it was recorded: the loop learns it from the bucket (a notification
			// or a listing) and records the new version, which comes back to the queue.
			s.log.Debug("lazy file not filled: its object changed", "path", it.path, "err", err)
		default:
			s.m.Errors.WithLabelValues("fill").Inc()
			s.log.Warn("lazy file not filled: the read-through still serves it", "path", it.path, "err", err)
		}
	}
}

// fillOne downloads one remote-only path, if it still is one (the base's entry, that generation) and
// has no local file: temp + CRC32C + rename, never over a file the app put there meanwhile.
func (s *Syncer) fillOne(ctx context.Context, it fillItem) error {
	if b, ok := s.base.Get(it.path); !ok || !b.RemoteOnly || b.Generation != it.o.Generation {
		return nil // no longer remote-only, or another version (queued again when recorded)
	}
	if _, err := s.dir.Stat(it.path); err == nil {
		return nil // fetched by the read-through, or written by the app: the loop decides
	}
	_, err := s.writeFetched(ctx, "fill", it.path, it.o)
	if errors.Is(err, localfs.ErrChanged) {
		return nil // someone else put a file there meanwhile: the loop decides
	}
	return err
}
