package syncer

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// fakeRemoteOnly is a base's remote-only entries, for a fill queue without a syncer.
type fakeRemoteOnly struct {
	mu      sync.Mutex
	entries map[string]snapshot.Object
}

func (f *fakeRemoteOnly) rangeOver(yield func(string, snapshot.Object)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, o := range f.entries {
		yield(p, o)
	}
}

// record adds a remote-only entry as commit does: the base first, then the queue.
func (f *fakeRemoteOnly) record(q *fillQueue, path string, o snapshot.Object) {
	f.mu.Lock()
	f.entries[path] = o
	f.mu.Unlock()
	q.push(path, o)
}

// TestFillQueueHoldsABatch: the fill queue holds at most fillBatch items, however many remote-only paths
// the base holds, yet hands out every one of them exactly once, newest first: those the base held when
// the queue started (a restart with --state-dir), those recorded by the thousand while it hands out
// (the whole listing after a lazy restore), and one put back when the cache had no room.
func TestFillQueueHoldsABatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	object := func() (string, snapshot.Object) {
		n++
		// Few distinct mtimes, so that the path breaks most ties.
		return fmt.Sprintf("uploads/%02d/m%06d.jpg", r.IntN(50), n), snapshot.Object{Generation: int64(n), ModTime: t0.Add(time.Duration(r.IntN(500)) * time.Hour)}
	}
	base := &fakeRemoteOnly{entries: map[string]snapshot.Object{}}
	for range 3000 {
		p, o := object()
		base.entries[p] = o
	}
	q := newFillQueue(base.rangeOver)
	taken := map[string]bool{}
	// take pops k items and checks that they come newest first among those not taken yet.
	take := func(k int) {
		t.Helper()
		for range k {
			it, ok := q.pop()
			if !ok {
				t.Fatalf("the queue is empty with %d of %d paths not handed out", len(base.entries)-len(taken), len(base.entries))
			}
			if taken[it.path] {
				t.Fatalf("%s handed out twice", it.path)
			}
			for p, o := range base.entries {
				if !taken[p] && p != it.path && (fillItem{p, o}).newer(it) {
					t.Fatalf("%s (%v) handed out before the newer %s (%v)", it.path, it.o.ModTime, p, o.ModTime)
				}
			}
			taken[it.path] = true
			if len(q.items) > fillBatch {
				t.Fatalf("the queue holds %d items, more than %d", len(q.items), fillBatch)
			}
		}
	}
	take(100)
	for range 5000 { // recorded while the queue hands out, newer and older than what it holds
		p, o := object()
		if !taken[p] {
			base.record(q, p, o)
		}
	}
	take(2500)
	it, _ := q.pop()
	q.push(it.path, it.o) // no room in the cache: put back, and handed out next
	if again, _ := q.pop(); again.path != it.path {
		t.Fatalf("put back %s, then handed out %s", it.path, again.path)
	}
	taken[it.path] = true
	take(len(base.entries) - len(taken))
	if it, ok := q.pop(); ok {
		t.Fatalf("handed out %s after every path was", it.path)
	}
	// Recorded after it ran out: handed out without a scan of the base.
	p, o := object()
	base.record(q, p, o)
	if it, ok := q.pop(); !ok || it.path != p {
		t.Fatalf("a path recorded after the queue ran out: got %q, %v", it.path, ok)
	}
}

// TestFillTakesABatchNewestFirst: a pass's records go into the queue at once. A worker that pops while
// they are going in (the fill runs once ready, and the whole listing after a lazy restore records every
// media object then) waits for the batch and takes its newest, not the first one pushed.
func TestFillTakesABatchNewestFirst(t *testing.T) {
	q := newFillQueue((&fakeRemoteOnly{entries: map[string]snapshot.Object{}}).rangeOver)
	if _, ok := q.pop(); ok { // the fill's start: nothing remote-only yet
		t.Fatal("popped from an empty queue")
	}
	t0 := time.Unix(1700000000, 0)
	popped := make(chan string)
	q.pushEach(func(yield func(string, snapshot.Object)) {
		yield("uploads/m00.jpg", snapshot.Object{Generation: 1, ModTime: t0})
		go func() {
			it, _ := q.pop()
			popped <- it.path
		}()
		time.Sleep(50 * time.Millisecond) // a pop not held off by the batch takes m00 by now
		yield("uploads/m11.jpg", snapshot.Object{Generation: 2, ModTime: t0.Add(time.Hour)})
	})
	if got := <-popped; got != "uploads/m11.jpg" {
		t.Fatalf("popped %s while the batch went in, want uploads/m11.jpg (its newest)", got)
	}
}
