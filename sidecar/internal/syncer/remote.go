package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

// RemoteChange is one change to one object, e.g. from a bucket notification. Path is relative to the
// prefix; Generation is the generation the event names; Deleted tells a delete or archive, OverwrittenBy
// the generation that replaced it, if any.
type RemoteChange struct {
	Path          string
	Generation    int64
	Deleted       bool
	OverwrittenBy int64
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
// bucket (one get) and the pass plans what is there now. Safe for concurrent use.
func (s *Syncer) ApplyRemote(ctx context.Context, c RemoteChange) error {
	w := &remoteWait{c: c, done: make(chan error, 1)}
	s.mu.Lock()
	s.intake.changes = append(s.intake.changes, w)
	s.mu.Unlock()
	s.poke()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// needsLookup reports whether change c can tell the loop something its view does not already hold.
func (s *Syncer) needsLookup(c RemoteChange) bool {
	if filter.Internal(c.Path) || s.filter.Excluded(c.Path) || filter.CheckName(c.Path) != nil {
		return false // never synced; a listing reports such names
	}
	r, known := s.idx.remote[c.Path]
	switch {
	case !c.Deleted:
		return !known || r.Generation < c.Generation
	case c.OverwrittenBy > 0:
		return !known || r.Generation < c.OverwrittenBy // an overwrite: never a delete, but the new version may be news
	case !known:
		return false // gone already (or never seen: nothing to delete)
	default:
		return r.Generation <= c.Generation
	}
}

// applyChanges looks up, in parallel, the objects the changes name and brings the view up to date; the
// paths that changed are planned by this pass.
func (s *Syncer) applyChanges(ctx context.Context, changes []*remoteWait) {
	type found struct {
		w   *remoteWait
		o   gcsstore.Object
		err error
	}
	var lookups []*remoteWait
	seen := map[string]bool{}
	for _, w := range changes {
		if s.needsLookup(w.c) && !seen[w.c.Path] {
			seen[w.c.Path] = true
			lookups = append(lookups, w)
		}
	}
	results := make([]found, len(lookups))
	sem := make(chan struct{}, s.opt.Transfers)
	var wg sync.WaitGroup
	for i, w := range lookups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o, err := s.store.Stat(ctx, w.c.Path)
			results[i] = found{w: w, o: o, err: err}
		}()
	}
	wg.Wait()
	for _, f := range results {
		path := f.w.c.Path
		old, known := s.idx.remote[path]
		switch {
		case errors.Is(f.err, gcsstore.ErrNotFound):
			if known {
				s.idx.dropRemote(path)
				s.remoteDue[path] = true
			}
		case f.err != nil:
			for _, w := range changes { // every change naming the path: it was not applied
				if w.c.Path == path {
					w.err = f.err
				}
			}
		default:
			r := f.o.Object
			if known && old.Is(r) {
				continue
			}
			if f.o.ContentEncoding == "gzip" {
				s.unsyncable[path] = true
				if s.firstSkip("encoded:"+path, "content_encoding") {
					s.log.Warn("skipping an object stored with Content-Encoding: gzip: its bytes cannot be checked against its CRC32C",
						"object", s.store.Name(path))
				}
			}
			s.idx.setRemote(path, r)
			s.markClashes(path)
			s.remoteDue[path] = true
		}
	}
}

// markClashes keeps the clash rule (the folder wins over an object x beside objects x/...) for one object
// that appeared outside a listing: it is a clash itself if objects lie under it, and makes a clash of any
// object that is one of its folders.
func (s *Syncer) markClashes(path string) {
	if s.idx.remoteDirs[path] > 0 {
		s.unsyncable[path] = true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			if _, ok := s.idx.remote[path[:i]]; ok {
				s.unsyncable[path[:i]] = true
				s.remoteDue[path[:i]] = true
			}
		}
	}
}

// finish tells each waiting change how its pass went: applied (or unnecessary), or not (its path did not
// finish, or could not be looked up).
func (s *Syncer) finish(changes []*remoteWait, res Result) {
	if len(changes) == 0 {
		return
	}
	unfinished := map[string]bool{}
	for _, p := range res.Unfinished {
		unfinished[p] = true
	}
	for _, w := range changes {
		switch {
		case w.err != nil:
			w.done <- w.err
		case unfinished[w.c.Path]:
			w.done <- fmt.Errorf("%s: not applied yet (it is retried)", w.c.Path)
		default:
			w.done <- nil
		}
	}
}

// abandon tells each waiting change that its pass failed.
func (s *Syncer) abandon(changes []*remoteWait, err error) {
	for _, w := range changes {
		w.done <- fmt.Errorf("pass failed: %w", err)
	}
}
