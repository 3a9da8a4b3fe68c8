package syncer

// This file is the syncer's API for remote changes learnt without listing the bucket (bucket notifications,
// internal/notify). It is a shim on the current loop until the change-driven engine provides targeted
// passes: a change updates the loop's view of the bucket (one metadata get, never a listing), then the loop
// runs an ordinary pass on that view, and ApplyRemote waits until such a pass has completed.

import (
	"context"
	"errors"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// RemoteChange is one change to one object, e.g. from a bucket notification. Path is relative to the prefix.
type RemoteChange struct {
	Path          string
	Generation    int64
	Deleted       bool
	OverwrittenBy int64
}

// ApplyRemote hands a change to the loop and returns once a pass has applied it or found it unnecessary
// (then the notification may be acked), or ctx is done. Safe for concurrent use.
//
// The change is a hint, checked against the bucket: the object's live version is read (one get) and
// becomes the loop's view of that path, so a reordered or duplicated notification can only make the view
// more current. A finalize never removes anything from the view; a delete removes the path only when the
// object is gone and the view held the deleted generation or an older one. A change the view already
// reflects (this replica's own writes, a duplicate) is found unnecessary without a request or a pass.
func (s *Syncer) ApplyRemote(ctx context.Context, c RemoteChange) error {
	if c.Path == "" || filter.Internal(c.Path) || s.filter.Excluded(c.Path) || filter.CheckName(c.Path) != nil {
		return nil // never synced: a listing skips it too
	}
	s.mu.Lock()
	known, has := s.view[c.Path]
	listed := s.listed
	s.mu.Unlock()
	if listed && !remoteNews(c, known, has) {
		return nil
	}
	if listed {
		changed, err := s.refreshPath(ctx, c)
		if err != nil || !changed {
			return err
		}
	}
	// Not listed yet: the first pass lists the bucket, which covers the change.
	return s.awaitPass(ctx)
}

// Reconcile asks the loop for a full listing pass soon (never blocks).
func (s *Syncer) Reconcile() { s.Notify(true) }

// remoteNews reports whether c may tell the view something it does not know.
func remoteNews(c RemoteChange, known plan.Remote, has bool) bool {
	switch {
	case c.Deleted && c.OverwrittenBy != 0:
		return !has || known.Generation < c.OverwrittenBy // the new generation may be unknown yet
	case c.Deleted:
		return has && known.Generation <= c.Generation
	default:
		return !has || known.Generation < c.Generation
	}
}

// refreshPath reads the live object of c.Path into the view and reports whether the view changed.
func (s *Syncer) refreshPath(ctx context.Context, c RemoteChange) (bool, error) {
	o, err := s.store.Stat(ctx, c.Path)
	gone := errors.Is(err, gcsstore.ErrNotFound)
	if err != nil && !gone {
		s.m.Errors.WithLabelValues("stat").Inc()
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known, has := s.view[c.Path]
	if gone {
		// Only a delete removes, and only the generation it names or an older one: a newer object the view
		// knows of is gone only when its own delete says so (or the next listing does).
		if !c.Deleted || c.OverwrittenBy != 0 || !has || known.Generation > c.Generation {
			return false, nil
		}
		delete(s.view, c.Path)
		return true, nil
	}
	r := plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C}
	if has && known.Generation >= r.Generation {
		return false, nil // the view is as current (this replica's own write raced the get)
	}
	s.view[c.Path] = r
	if o.ContentEncoding == "gzip" {
		s.unsyncable[c.Path] = true
		if s.firstSkip("encoded:"+c.Path, "content_encoding") {
			s.log.Warn("skipping an object stored with Content-Encoding: gzip: the client decompresses it, so its bytes cannot be checked against its CRC32C and filesync never publishes unchecked bytes; store it uncompressed to sync it",
				"object", s.store.Name(c.Path))
		}
	}
	if !has {
		s.markClashesLocked(c.Path)
	}
	return true, nil
}

// markClashesLocked adds the clashes a new object name makes (x beside x/...) to the unsyncable set, as a
// listing would. Clashes that a delete resolves are forgotten at the next listing. Call with s.mu held.
func (s *Syncer) markClashesLocked(name string) {
	var clashes []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			if _, ok := s.view[name[:i]]; ok {
				clashes = append(clashes, name[:i])
			}
		}
	}
	for other := range s.view {
		if strings.HasPrefix(other, name+"/") {
			clashes = append(clashes, name)
			break
		}
	}
	for _, n := range clashes {
		s.unsyncable[n] = true
		if s.firstSkip("clash:"+n, "clash") {
			s.log.Warn("skipping an object that is also a folder of other objects: a local path is a file or a directory, not both; the folder's objects win",
				"object", s.store.Name(n))
		}
	}
}

// awaitPass triggers the loop and waits until a pass that started after the trigger has completed. The
// trigger is taken by the loop only between passes, so once the slot is empty every earlier pass has ended
// and the next completed pass is a later one; should that pass end before it is counted here, the wait
// asks again after a while (at worst one more pass).
func (s *Syncer) awaitPass(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		s.Notify(false)
		for len(s.trigger) > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		n := s.passesDone()
		ask := time.Now().Add(time.Second)
		for s.passesDone() == n && time.Now().Before(ask) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if s.passesDone() > n {
			return nil
		}
	}
}

// passesDone is the number of passes completed (the count of filesync_pass_duration_seconds).
func (s *Syncer) passesDone() uint64 {
	var m dto.Metric
	if err := s.m.PassDuration.Write(&m); err != nil {
		return 0
	}
	return m.GetHistogram().GetSampleCount()
}
