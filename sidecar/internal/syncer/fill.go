package syncer

import (
	"container/heap"
	"context"
	"errors"
	"slices"
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
// Owner: the queue is the fill's; the loop only pushes to it (transfer, when it records remote-only
// bases). An item is checked against the base (safe for concurrent reads) before its download, so one the
// loop has since changed or forgotten is skipped.

// fillTransfers is how many lazy downloads the fill has in flight: a quarter of --transfers, at least 1.
func (s *Syncer) fillTransfers() int { return max(1, s.opt.Transfers/4) }

// fillBatch is how many remote-only paths the queue holds at most: the next ones to fill. A site's
// media may be 100,000 remote-only paths, and a queue of them all 6 MB beside the base that lists them
// already; the rest are found in the base when these run out (fillQueue.refill).
const fillBatch = 1024

// fillItem is one remote-only path, with the object its base recorded.
type fillItem struct {
	path string
	o    snapshot.Object
}

// newer reports whether a is filled before b: the newer object first (by the mtime it carries), then by
// path.
func (a fillItem) newer(b fillItem) bool {
	if !a.o.ModTime.Equal(b.o.ModTime) {
		return a.o.ModTime.After(b.o.ModTime)
	}
	return a.path < b.path
}

// fillQueue holds the next remote-only paths to fill, newest object first: at most fillBatch of them,
// every path not taken yet that is newer than bound (or as new); the base holds the others, and refill
// takes the next fillBatch of them from it when the queue runs out.
type fillQueue struct {
	mu sync.Mutex
	// items: oldest first (pop takes the last), at most fillBatch.
	items []fillItem
	// bound: every remote-only path of the base not taken yet that is newer than bound, or bound itself,
	// is in items; all: every one is (bound means nothing). Neither: none is yet (the queue's start).
	bound fillItem
	all   bool
	// remoteOnly ranges over the base's remote-only entries (the syncer's, safe beside the loop).
	remoteOnly func(yield func(path string, o snapshot.Object))
	kick       chan struct{} // 1-buffered: something was pushed
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

// newFillQueue returns a queue over the remote-only entries that remoteOnly ranges over: those the base
// holds already (a restart with --state-dir) are taken from it as the others.
func newFillQueue(remoteOnly func(yield func(path string, o snapshot.Object))) *fillQueue {
	return &fillQueue{remoteOnly: remoteOnly, kick: make(chan struct{}, 1)}
}

// push adds a remote-only path (put back by the fill, or recorded by the loop: pushEach).
func (q *fillQueue) push(path string, o snapshot.Object) {
	q.pushEach(func(yield func(string, snapshot.Object)) { yield(path, o) })
}

// pushEach adds the remote-only paths each yields (a pass's records), all under one lock, and then wakes
// the fill: a worker never takes one of them before the newer ones of the same batch are in, so that
// newest first holds across the batch (the whole listing after a lazy restore records every media
// object at once, while the fill is already running).
func (q *fillQueue) pushEach(each func(yield func(path string, o snapshot.Object))) {
	q.mu.Lock()
	each(func(path string, o snapshot.Object) {
		if it := (fillItem{path, o}); q.all || q.bound.path != "" && !q.bound.newer(it) {
			q.insert(it)
		} // else older than bound: the base holds it, and refill will find it
	})
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// insert puts it in items in its place; past fillBatch, the oldest item goes back to the base's keeping
// (bound moves up to the oldest kept). Call with q.mu held.
func (q *fillQueue) insert(it fillItem) {
	i, _ := slices.BinarySearchFunc(q.items, it, func(x, t fillItem) int {
		if t.newer(x) {
			return -1
		}
		return 1
	})
	q.items = slices.Insert(q.items, i, it)
	if len(q.items) > fillBatch {
		q.items = q.items[1:]
		q.bound, q.all = q.items[0], false
	}
}

// pop takes the newest item, or reports that there is none.
func (q *fillQueue) pop() (fillItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && !q.all {
		q.refill()
	}
	if len(q.items) == 0 {
		return fillItem{}, false
	}
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it, true
}

// refill takes from the base the fillBatch newest remote-only paths older than bound (all of them, at
// the start). Call with q.mu held.
func (q *fillQueue) refill() {
	var next fillHeap // the fillBatch newest found so far, oldest on top
	q.remoteOnly(func(path string, o snapshot.Object) {
		it := fillItem{path, o}
		switch {
		case q.bound.path != "" && !q.bound.newer(it): // in items or taken already
		case len(next) < fillBatch:
			heap.Push(&next, it)
		case it.newer(next[0]):
			next[0] = it
			heap.Fix(&next, 0)
		}
	})
	q.items = q.items[:0]
	for next.Len() > 0 {
		q.items = append(q.items, heap.Pop(&next).(fillItem))
	}
	if len(q.items) < fillBatch {
		q.all = true
	} else {
		q.bound = q.items[0]
	}
}

// fillHeap keeps the oldest item on top (refill's selection of the newest).
type fillHeap []fillItem

func (h fillHeap) Len() int           { return len(h) }
func (h fillHeap) Less(i, j int) bool { return h[j].newer(h[i]) }
func (h fillHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *fillHeap) Push(x any)        { *h = append(*h, x.(fillItem)) }
func (h *fillHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// remoteOnlyEntries ranges over the base's remote-only entries (for the fill queue, beside the loop).
func (s *Syncer) remoteOnlyEntries(yield func(path string, o snapshot.Object)) {
	s.base.Range(func(path string, b snapshot.Base) {
		if b.RemoteOnly {
			yield(path, b.Object)
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
