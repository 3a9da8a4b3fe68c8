package syncer

import (
	"context"
	"fmt"
	"sync"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"github.com/filesync/filesync/sidecar/internal/watch"
)

// intakeQueue is how other goroutines hand the loop work between passes: they add to pending under mu and
// poke trigger, whose one slot means "look at the intake" (model: git-sync's hook trigger); the loop takes
// the whole of it at the start of a pass.
type intakeQueue struct {
	mu      sync.Mutex
	pending intake
	trigger chan struct{}
}

// intake is what other goroutines hand the loop for one pass.
type intake struct {
	paths     map[string]bool            // local paths hinted by the watcher (true: a new directory, scan its tree)
	overflow  bool                       // events were lost: walk the whole tree
	reconcile bool                       // list the bucket afresh
	changes   []*remoteWait              // remote changes waiting for a pass (ApplyRemote)
	fetched   map[string]snapshot.Object // objects Fetch downloaded (for the read-through)
}

func newIntakeQueue() intakeQueue {
	return intakeQueue{pending: intake{paths: map[string]bool{}}, trigger: make(chan struct{}, 1)}
}

// add changes the pending intake under the lock, then pokes the loop. It never blocks on the loop.
func (q *intakeQueue) add(f func(in *intake)) {
	q.mu.Lock()
	f(&q.pending)
	q.mu.Unlock()
	select {
	case q.trigger <- struct{}{}:
	default:
	}
}

// take empties the intake for a pass.
func (q *intakeQueue) take() intake {
	q.mu.Lock()
	defer q.mu.Unlock()
	in := q.pending
	q.pending = intake{paths: map[string]bool{}}
	return in
}

// HintLocal hands the loop a hint from the directory's watcher: a changed path (a targeted pass looks at
// it), a new directory (its tree is scanned: files may have landed in it before it was watched), or an
// overflow (events were lost: the whole tree is walked and the bucket listed afresh). It never blocks:
// hints for one pass coalesce.
func (s *Syncer) HintLocal(h watch.Hint) {
	s.intake.add(func(in *intake) {
		switch {
		case h.Overflow:
			in.overflow = true
		case h.Path != "":
			in.paths[h.Path] = in.paths[h.Path] || h.NewDir
		}
	})
}

// Reconcile asks the loop for a full listing of the bucket soon (never blocks).
func (s *Syncer) Reconcile() {
	s.intake.add(func(in *intake) { in.reconcile = true })
}

// handFetched tells the loop about an object a fetch (or the background fill) downloaded: the next pass
// puts it in the view and looks at the local file (as the watcher's event for the rename would have it:
// it need not wait for that), so it plans "same content on both sides" and records the base, and makes
// the file durable before that base is saved.
func (s *Syncer) handFetched(path string, r snapshot.Object) {
	if s.lazy(path) {
		s.fill.uncounted.Add(r.Size)
	}
	s.intake.add(func(in *intake) {
		if in.fetched == nil {
			in.fetched = map[string]snapshot.Object{}
		}
		in.fetched[path] = r
		if _, hinted := in.paths[path]; !hinted {
			in.paths[path] = false
		}
	})
}

// RemoteChange is one change to one object, e.g. from a bucket notification. Path is relative to the
// prefix; Generation is the generation the event names; Deleted tells a delete or archive, OverwrittenBy
// the generation that replaced it, if any; Metadata a change of the generation's metadata only (its mtime
// may be new: the object is looked up even though the view holds that generation). Object, if set, is the
// object at Generation as the event described it (a FINALIZE's payload): taken instead of a lookup.
type RemoteChange struct {
	Path          string
	Generation    int64
	Deleted       bool
	OverwrittenBy int64
	Metadata      bool
	Object        *gcsstore.Object
}

// remoteWait is a change waiting for a pass, and where to say how it went.
type remoteWait struct {
	c    RemoteChange
	done chan error
	err  error // the object could not be looked up
}

// ApplyRemote hands a change to the loop and returns once a pass has applied it or found it unnecessary
// (then a notification may be acked), or ctx is done. An error means it was not applied (nack: it comes
// again). Changes arrive out of order and more than once, so the event only says which path to look at:
// unless the view already holds the generation it names (or a newer one), the object is looked up in the
// bucket (one get) and the pass plans what is there now; a new generation the event describes itself
// (Object) needs no lookup. Safe for concurrent use.
func (s *Syncer) ApplyRemote(ctx context.Context, c RemoteChange) error {
	w := &remoteWait{c: c, done: make(chan error, 1)}
	s.intake.add(func(in *intake) { in.changes = append(in.changes, w) })
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer tells each waiting change how its pass went: applied (or unnecessary), or not (the pass failed,
// its path did not finish, or it could not be looked up).
func answer(changes []*remoteWait, res Result, passErr error) {
	unfinished := map[string]bool{}
	for _, p := range res.Unfinished {
		unfinished[p] = true
	}
	for _, w := range changes {
		switch {
		case passErr != nil:
			w.done <- fmt.Errorf("pass failed: %w", passErr)
		case w.err != nil:
			w.done <- w.err
		case unfinished[w.c.Path]:
			w.done <- fmt.Errorf("%s: not applied yet (it is retried)", w.c.Path)
		default:
			w.done <- nil
		}
	}
}
