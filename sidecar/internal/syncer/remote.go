package syncer

import (
	"context"
	"errors"
	"sync"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Observing the bucket: a listing (the whole bucket) or hints (one object each: bucket notifications,
// objects the read-through fetched), both brought into the index's remote side. The objects that changed
// are marked due; the next plan covers them.

// listing is what one listing of the bucket found, before the loop adopts it.
type listing struct {
	view    listed              // the objects nameRule syncs
	unsafe  map[string]error    // names never written locally, and why
	noExec  []string            // executable names under --no-exec
	encoded map[string]struct{} // objects of view stored gzip-encoded
	// partial: the folders that are wholly lazy were left out (lazyLater): view lacks their objects.
	partial bool
}

// fetchListing lists the bucket. It writes no loop state, so it may run beside the loop's work (the
// streaming restore); each, if set, is given every object the loop may download as the pages arrive,
// with whether it is a folder of other objects too (the caller decides). Before ready (a restore, or the
// start of a pod whose directory or base survived), and for the first whole listing after a restore that
// left the lazy folders out, a large bucket is listed listParallel requests at a time
// (gcsstore.Store.List), objects then arriving in no particular order; afterwards a poll makes one
// request at a time.
//
// lazyLater (the restore, with --lazy) leaves out the folders that are wholly lazy (filter.SkipDir), so
// that ready waits on listing the eager part only: the listing is then partial, and the pass after ready
// lists the whole bucket (Syncer.lazyUnlisted).
func (s *Syncer) fetchListing(ctx context.Context, lazyLater bool, each func(name string, r snapshot.Object, folder bool)) (listing, error) {
	parallel := 1
	if !s.Ready() || s.lazyUnlisted { // the restore, and the listing of the lazy folders it left out
		parallel = listParallel
	}
	l := listing{unsafe: map[string]error{}, encoded: map[string]struct{}{}}
	// The objects go straight into arrays (pathmap.Builder): a Go map of them all first would be the
	// largest thing a replica holds when it lists 100,000 objects (issue 23), each name the base's string
	// where the base has the path.
	view := listedBuilder{canon: s.base.Key}
	var skip func(string) bool
	if lazyLater && s.opt.Lazy != nil {
		skip = func(folder string) bool {
			if s.opt.Lazy.SkipDir(folder) {
				l.partial = true
				return true
			}
			return false
		}
	}
	err := s.store.ListSkipping(ctx, parallel, skip, func(o gcsstore.Object) {
		ignore, noExec, unsafe := s.nameRule(o.Name)
		switch {
		case noExec:
			l.noExec = append(l.noExec, o.Name)
			return
		case ignore:
			return
		case unsafe != nil:
			l.unsafe[o.Name] = unsafe
			return
		}
		view.add(o.Name, o.Object)
		if objectRule(o.ContentEncoding, false) == gzipEncoded {
			l.encoded[o.Name] = struct{}{}
		} else if each != nil {
			each(o.Name, o.Object, o.Folder)
		}
	})
	if err != nil {
		s.m.Errors.WithLabelValues("list").Inc()
		return listing{}, err
	}
	l.view = view.listed()
	return l, nil
}

// list lists the bucket and adopts the listing, returning whether it differs from the view it replaces:
// a new object, a new generation, a new mtime (sameObject), or an object gone. It does not compare with the base, which may never
// catch up (deletes withheld by the guard, a download that keeps failing) and would turn every poll into a
// pass.
func (s *Syncer) list(ctx context.Context, lazyLater bool) (bool, error) {
	l, err := s.fetchListing(ctx, lazyLater, nil)
	if err != nil {
		return false, err
	}
	return s.adopt(l), nil
}

// adopt makes a listing the remote side of the index, marks due the objects that changed since the view
// it replaces, and reports the objects left alone (once each). It reports whether anything changed.
func (s *Syncer) adopt(l listing) bool {
	// The first whole listing after a partial one: the lazy objects the partial view held anyway (lazy
	// files in a folder that is not wholly lazy, which the restore lists) were skipped while it was
	// partial, so they are due now as well as the new ones.
	completed := s.lazyUnlisted && !l.partial
	s.lazyUnlisted = l.partial
	changed := !s.idx.listed || completed
	if completed {
		s.idx.markAllDue()
	}
	for name, r := range l.view.All() {
		if s.idx.allDue {
			break
		}
		if old, ok := s.idx.remote.Get(name); !ok || !sameObject(old, r) {
			s.idx.markDue(name)
			changed = true
		}
	}
	for name := range s.idx.remote.All() {
		if s.idx.allDue {
			break
		}
		if _, ok := l.view.Get(name); !ok {
			s.idx.markDue(name)
			changed = true
		}
	}
	changed = changed || s.idx.allDue
	if changed {
		before := s.idx.folderObjects()
		s.idx.replaceRemote(l.view, l.encoded)
		for name := range before { // no longer a folder: it may be synced now
			if s.idx.objectRule(name) == noReason {
				s.idx.markDue(name)
			}
		}
	}
	for name := range s.idx.remote.All() { // the listing's objects (l.view holds only some of them if taken)
		s.reportObjectRule(name)
	}
	for name, why := range l.unsafe {
		if s.holds.firstTime(unsafeRemote, name) {
			s.log.Warn("skipping unsafe object name: never written locally", "object", s.store.Name(name), "reason", why)
		}
	}
	for _, name := range l.noExec {
		s.reportNoExec(name)
	}
	return changed
}

// reportObjectRule says once that the object at path is left alone, if objectRule (on the view) says so.
func (s *Syncer) reportObjectRule(path string) {
	why := s.idx.objectRule(path)
	if why != noReason && s.holds.firstTime(why, path) {
		s.log.Warn(objectWarnings[why], "object", s.store.Name(path))
	}
}

// reportNoExec says once that an object with an executable name under --no-exec is never written here.
func (s *Syncer) reportNoExec(path string) {
	if s.holds.firstTime(noExec, path) {
		s.log.Warn("skipping an object with an executable name under --no-exec: a script from the bucket is never written where the web server would run it",
			"object", s.store.Name(path))
	}
}

// needsLookup reports whether change c can tell the loop something its view does not already hold.
func (s *Syncer) needsLookup(c RemoteChange) bool {
	ignore, noExec, unsafe := s.nameRule(c.Path)
	if noExec && !c.Deleted {
		s.reportNoExec(c.Path)
	}
	if ignore || unsafe != nil {
		return false // never synced; a listing reports unsafe names
	}
	r, known := s.idx.remote.Get(c.Path)
	switch {
	case c.Metadata:
		return !known || r.Generation <= c.Generation // the generation's metadata changed: its mtime may have
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

// sameObject reports whether the view's object old is r as far as the sync is concerned: the same
// version, and the same mtime. A metadata change (rclone touch, gsutil setmeta) keeps the generation but may
// bring a new mtime, which every replica's file must take (plan.Touch).
// The mtime is compared exactly, so the view holds the bucket's; the planner decides which differences
// matter (plan.Touch: whole seconds).
func sameObject(old, r snapshot.Object) bool { return old.Is(r) && old.ModTime.Equal(r.ModTime) }

// lookup is one object a remote hint named, as the bucket has it now.
type lookup struct {
	path string
	o    gcsstore.Object
	err  error
}

// applyChanges looks up, in parallel, the objects the changes name and brings the view up to date; the
// paths that changed are due. A change whose object could not be looked up is told so (not applied).
func (s *Syncer) applyChanges(ctx context.Context, changes []*remoteWait) {
	for _, f := range s.lookUp(ctx, changes) {
		old, known := s.idx.remote.Get(f.path)
		switch {
		case errors.Is(f.err, gcsstore.ErrNotFound):
			if known {
				s.idx.dropRemote(f.path)
				s.idx.markDue(f.path)
				s.clashesChanged(f.path)
			}
		case f.err != nil:
			for _, w := range changes { // every change naming the path: it was not applied
				if w.c.Path == f.path {
					w.err = f.err
				}
			}
		case !known || !sameObject(old, f.o.Object):
			s.idx.setRemote(f.path, f.o.Object)
			s.idx.setEncoded(f.path, objectRule(f.o.ContentEncoding, false) == gzipEncoded)
			s.idx.markDue(f.path)
			s.clashesChanged(f.path)
		}
	}
}

// lookUp gets the objects named by the changes that need it, once per path, Transfers at a time. A path
// whose changes are all new generations described by their events (RemoteChange.Object) takes the newest
// of them without a request; any other change of a path (a delete, a metadata update, an event without a
// payload) has it looked up: what the bucket holds now.
func (s *Syncer) lookUp(ctx context.Context, changes []*remoteWait) []lookup {
	var paths []string
	told := map[string]*gcsstore.Object{} // the newest generation an event described, per path
	ask := map[string]bool{}              // per path: whether it is looked up
	for _, w := range changes {
		c := w.c
		if !s.needsLookup(c) {
			continue
		}
		if _, seen := ask[c.Path]; !seen {
			paths = append(paths, c.Path)
			ask[c.Path] = false
		}
		if o := c.Object; o != nil && !c.Deleted && !c.Metadata && o.Generation == c.Generation {
			if t := told[c.Path]; t == nil || t.Generation < o.Generation {
				told[c.Path] = o
			}
		} else {
			ask[c.Path] = true
		}
	}
	results := make([]lookup, len(paths))
	sem := make(chan struct{}, s.opt.Transfers)
	var wg sync.WaitGroup
	for i, path := range paths {
		if !ask[path] {
			results[i] = lookup{path: path, o: *told[path]}
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o, err := s.store.Stat(ctx, path)
			results[i] = lookup{path: path, o: o, err: err}
		})
	}
	wg.Wait()
	return results
}

// clashesChanged marks due, and reports, the objects whose objectRule verdict an object new or gone at
// path may have changed: itself (objects may lie under it) and any object that is one of its folders.
func (s *Syncer) clashesChanged(path string) {
	s.reportObjectRule(path)
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			if _, ok := s.idx.remote.Get(path[:i]); ok {
				s.idx.markDue(path[:i])
				s.reportObjectRule(path[:i])
			}
		}
	}
}

// applyFetched puts the objects the read-through fetched into the view (unless it holds a newer
// generation) and marks them due; the files are made durable before the base that will record them.
func (s *Syncer) applyFetched(fetched map[string]snapshot.Object) {
	for path, r := range fetched {
		if old, ok := s.idx.remote.Get(path); !ok || old.Generation < r.Generation {
			s.idx.setRemote(path, r)
		}
		s.idx.markDue(path)
		s.written = true
	}
}
