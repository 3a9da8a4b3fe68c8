package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/version"
)

// Result tells how a pass went.
type Result struct {
	Plan    plan.Plan
	Done    int
	Failed  int
	Deleted int  // deletes carried out (either side), for the --max-delete window
	Replan  bool // a precondition failed or a file changed under us: plan again with a fresh listing
	// Unfinished lists the paths whose action did not complete (failed, busy or re-planned).
	Unfinished []string
	NextWake   time.Time // when a deferred (settling or backing-off) path should be looked at again
}

// Clean reports whether the pass left nothing behind.
func (r Result) Clean() bool {
	return r.Failed == 0 && !r.Replan && r.NextWake.IsZero()
}

// listing is what one listing of the bucket found, before the loop adopts it.
type listing struct {
	view    map[string]version.Object
	unsafe  map[string]error
	encoded map[string]bool
}

// fetchListing lists the bucket. It touches no loop state, so it may run beside the loop's work (the
// streaming restore); each, if set, is given every object that may be synced as the pages arrive, with
// whether it is a folder of other objects too (the caller decides). Before ready (a restore, or the start
// of a pod whose directory or base survived) a large bucket is listed listParallel requests at a time
// (gcsstore.Store.List), objects then arriving in no particular order; afterwards a poll makes one request
// at a time.
func (s *Syncer) fetchListing(ctx context.Context, each func(name string, r version.Object, folder bool)) (listing, error) {
	parallel := 1
	if !s.Ready() {
		parallel = listParallel
	}
	l := listing{view: map[string]version.Object{}, unsafe: map[string]error{}, encoded: map[string]bool{}}
	err := s.store.List(ctx, parallel, func(o gcsstore.Object) {
		if filter.Internal(o.Name) || s.filter.Excluded(o.Name) {
			return
		}
		if err := filter.CheckName(o.Name); err != nil {
			l.unsafe[o.Name] = err
			return
		}
		r := o.Object
		l.view[o.Name] = r
		if o.ContentEncoding == "gzip" {
			l.encoded[o.Name] = true
		} else if each != nil {
			each(o.Name, r, o.Folder)
		}
	})
	if err != nil {
		s.m.Errors.WithLabelValues("list").Inc()
		return listing{}, err
	}
	return l, nil
}

// list lists the bucket and adopts the listing, returning whether it differs from the view it replaces.
func (s *Syncer) list(ctx context.Context) (bool, error) {
	l, err := s.fetchListing(ctx, nil)
	if err != nil {
		return false, err
	}
	return s.adopt(l), nil
}

// adopt makes a listing the remote side of the index, notes the objects that changed since the view it
// replaces (the next pass plans them), and reports the objects left alone (once each). It reports whether
// anything changed.
func (s *Syncer) adopt(l listing) bool {
	changed := !s.idx.listed
	for name, r := range l.view {
		if old, ok := s.idx.remote[name]; !ok || !old.Is(r) {
			s.remoteDue[name], changed = true, true
		}
	}
	for name := range s.idx.remote {
		if _, ok := l.view[name]; !ok {
			s.remoteDue[name], changed = true, true
		}
	}
	if changed {
		s.idx.replaceRemote(l.view)
	}
	clashes := findClashes(l.view)
	for n := range clashes {
		if s.firstSkip("clash:"+n, "clash") {
			s.log.Warn("skipping an object that is also a folder of other objects: a local path is a file or a directory, not both; the folder's objects win",
				"object", s.store.Name(n))
		}
	}
	s.unsyncable = clashes // the clashes, and below the gzip-encoded objects
	for n := range l.encoded {
		s.unsyncable[n] = true
		if s.firstSkip("encoded:"+n, "content_encoding") {
			s.log.Warn("skipping an object stored with Content-Encoding: gzip: the client decompresses it, so its bytes cannot be checked against its CRC32C and filesync never publishes unchecked bytes; store it uncompressed to sync it",
				"object", s.store.Name(n))
		}
	}
	for n, reason := range l.unsafe {
		if s.firstUnsafe("remote:" + n) {
			s.log.Warn("skipping unsafe object name: never written locally", "object", s.store.Name(n), "reason", reason)
		}
	}
	return changed
}

// findClashes returns the objects whose name is also a folder of other objects (x beside x/y): a local
// path holds one or the other, so the folder wins, always, whatever the order of listing or writing.
func findClashes(view map[string]version.Object) map[string]bool {
	clashes := map[string]bool{}
	for name := range view {
		for i := 0; i < len(name); i++ {
			if name[i] == '/' {
				if _, ok := view[name[:i]]; ok {
					clashes[name[:i]] = true
				}
			}
		}
	}
	return clashes
}

// firstSkip counts a skipped path once (by reason) and reports whether it is new.
func (s *Syncer) firstSkip(key, reason string) bool {
	if s.warned[key] {
		return false
	}
	s.warned[key] = true
	s.m.SkippedPaths.WithLabelValues(reason).Inc()
	return true
}

// firstUnsafe counts an unsafe name once and reports whether it is new (warn only then).
func (s *Syncer) firstUnsafe(key string) bool {
	if s.warned[key] {
		return false
	}
	s.warned[key] = true
	s.m.SkippedUnsafe.Inc()
	return true
}

// scanOptions are the options of every scan: a file whose stamp the base or the index knows is not read
// again; one modified within settle is listed unhashed (fresh).
func (s *Syncer) scanOptions(settle time.Duration, now time.Time) localfs.ScanOptions {
	return localfs.ScanOptions{
		Cache: func(rel string, st version.Stamp) (uint32, bool) {
			if e, ok := s.base.Get(rel); ok && e.Knows(st) {
				return e.CRC32C, true
			}
			if f, ok := s.idx.local[rel]; ok && !s.isFresh(rel) && f.Stamp == st {
				return f.CRC32C, true
			}
			return 0, false
		},
		Fresh: func(rel string, st version.Stamp) bool {
			return settle > 0 && now.Sub(s.changedAt(rel, st, now)) < settle
		},
	}
}

// walk scans the whole directory into the index. Paths it cannot read are remembered (s.unreadable) so
// the plan leaves them alone.
func (s *Syncer) walk(settle time.Duration) error {
	now := s.now()
	s.pruneFirstSeen(now)
	res, err := s.dir.Scan(s.filter, s.scanOptions(settle, now))
	if err != nil {
		s.m.Errors.WithLabelValues("scan").Inc()
		return err
	}
	clear(s.fresh)
	for rel := range res.Fresh {
		s.fresh[rel] = s.changedAt(rel, res.Files[rel].Stamp, now).Add(settle)
	}
	s.idx.replaceLocal(res.Files)
	s.walked = true
	s.unreadable = res.Unreadable
	s.reportScan(res)
	return nil
}

// look brings the index up to date for the hinted local paths (a file, or a directory's tree) and
// returns every path whose local side may have changed.
func (s *Syncer) look(paths map[string]bool, settle time.Duration) (map[string]bool, error) {
	now := s.now()
	s.pruneFirstSeen(now)
	opt := s.scanOptions(settle, now)
	touched := map[string]bool{}
	for p := range paths {
		res, err := s.dir.ScanPath(s.filter, p, opt)
		if err != nil {
			s.m.Errors.WithLabelValues("scan").Inc()
			return nil, err
		}
		// What the index held at and under p and the scan no longer finds is gone.
		for _, old := range append(s.idx.under(p), p) {
			if _, still := res.Files[old]; !still {
				if _, had := s.idx.local[old]; had {
					s.idx.dropLocal(old)
					touched[old] = true
				}
				delete(s.fresh, old)
			}
		}
		for rel, f := range res.Files {
			if res.Fresh[rel] {
				s.fresh[rel] = s.changedAt(rel, f.Stamp, now).Add(settle)
			} else {
				delete(s.fresh, rel)
			}
			s.idx.setLocal(rel, f)
			touched[rel] = true
		}
		for rel := range s.unreadable {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				delete(s.unreadable, rel) // looked at again: readable now, or reported again below
			}
		}
		for rel, err := range res.Unreadable {
			s.unreadable[rel] = err
		}
		s.reportScan(res)
		touched[p] = true
	}
	return touched, nil
}

// reportScan warns once about the unsafe names and unreadable paths a scan found.
func (s *Syncer) reportScan(res localfs.ScanResult) {
	for _, n := range res.Unsafe {
		if s.firstUnsafe("local:" + n) {
			s.log.Warn("skipping local file with an unsafe name", "path", n)
		}
	}
	for rel, err := range res.Unreadable {
		if s.firstSkip("unreadable:"+rel, "unreadable") {
			s.m.Errors.WithLabelValues("scan").Inc()
			s.log.Warn("cannot read a local path: leaving it and everything under it alone on both sides", "path", rel, "err", err)
		}
	}
}

// isFresh reports whether the index holds rel unhashed (still settling).
func (s *Syncer) isFresh(rel string) bool {
	_, ok := s.fresh[rel]
	return ok
}

// changedAt is when the file last changed, for the settle time: its mtime, unless that lies in the future
// (a wrong clock, `touch -d`), in which case it is when this stamp was first seen; otherwise such a file
// would settle only when the clock catches up.
func (s *Syncer) changedAt(rel string, st version.Stamp, now time.Time) time.Time {
	if mt := time.Unix(0, st.ModTime); !mt.After(now) {
		return mt
	}
	if f, ok := s.firstSeen[rel]; ok && f.stamp == st {
		return f.at
	}
	s.firstSeen[rel] = seen{stamp: st, at: now}
	return now
}

// pruneFirstSeen forgets future stamps whose time has come.
func (s *Syncer) pruneFirstSeen(now time.Time) {
	for rel, f := range s.firstSeen {
		if !time.Unix(0, f.stamp.ModTime).After(now) {
			delete(s.firstSeen, rel)
		}
	}
}

// forgetExcluded drops the base entries of paths excluded after they were synced (nothing is done to the
// files themselves: excluded paths are never touched on either side). It walks the whole base, so only
// passes that walk the tree call it.
func (s *Syncer) forgetExcluded() {
	var forget []string
	s.base.Range(func(p string, _ version.Base) {
		if s.filter.Skip(p) {
			forget = append(forget, p)
		}
	})
	for _, p := range forget {
		s.idx.dropBase(p)
	}
}

func (s *Syncer) backingOff(path string, now time.Time) bool {
	f, ok := s.failures[path]
	return ok && now.Before(f.next)
}

// compute plans the paths in only (nil: every path). A targeted plan also covers every base entry that
// a side lacks, and is told the whole base's size, so that its wipe and guard verdicts are the whole
// tree's (plan.Input.Known).
func (s *Syncer) compute(only map[string]bool, settle time.Duration) plan.Plan {
	now := s.now()
	in := plan.Input{
		Now: now, Settle: settle, Delete: s.opt.Delete, MaxDeletePercent: s.opt.MaxDelete,
		Window: s.window, WindowLength: s.opt.DeleteWindow,
		ChangedAt: func(p string, f version.File) time.Time { return s.changedAt(p, f.Stamp, now) },
		Skip: func(p string) bool {
			return s.isFresh(p) || s.backingOff(p, now) || s.leftAlone(p)
		},
	}
	if only == nil {
		// The whole tree: the planner reads the index and the base as they are (it never writes), so a
		// full pass holds no copy of them.
		in.Local, in.Remote, in.Base = s.idx.local, s.idx.remote, s.base.Entries()
		return plan.Compute(in)
	}
	in.Local, in.Remote, in.Base = map[string]version.File{}, map[string]version.Object{}, map[string]version.Base{}
	in.Known = s.base.Len()
	add := func(p string) {
		if f, ok := s.idx.local[p]; ok {
			in.Local[p] = f
		}
		if r, ok := s.idx.remote[p]; ok {
			in.Remote[p] = r
		}
		if e, ok := s.base.Get(p); ok {
			in.Base[p] = e
		}
	}
	for p := range only {
		add(p)
	}
	for p := range s.idx.missingLocal {
		add(p)
	}
	for p := range s.idx.missingRemote {
		add(p)
	}
	return plan.Compute(in)
}

// leftAlone reports whether path is out of the sync for now: unreadable locally (itself or a folder
// above it), an object that is also a folder of others, or skipped until its object changes.
func (s *Syncer) leftAlone(path string) bool {
	if s.unsyncable[path] {
		return true
	}
	if len(s.unreadable) > 0 {
		for i := 0; i <= len(path); i++ {
			if i == len(path) || path[i] == '/' {
				if _, ok := s.unreadable[path[:i]]; ok {
					return true
				}
			}
		}
	}
	if gen, ok := s.skipped[path]; ok {
		if r, has := s.idx.remote[path]; has && r.Generation == gen {
			return true
		}
		delete(s.skipped, path) // the object changed or is gone: try again
		delete(s.warned, "skip:"+path)
	}
	return false
}

// DryRun walks, lists and returns the plan of one pass without changing anything.
func (s *Syncer) DryRun(ctx context.Context) (plan.Plan, error) {
	if err := s.walk(0); err != nil {
		return plan.Plan{}, err
	}
	if _, err := s.list(ctx); err != nil {
		return plan.Plan{}, err
	}
	return s.compute(nil, 0), nil
}

// Pass runs one full pass: it walks the whole tree and, with freshList, lists the bucket (otherwise it
// uses the view: the last listing, kept current with this replica's own writes and remote hints).
func (s *Syncer) Pass(ctx context.Context, freshList bool) (Result, error) {
	return s.pass(ctx, true, freshList)
}

// pass runs one pass. With walk it walks the whole tree and plans every path; otherwise it looks only at
// the hinted local paths and plans those, the objects whose listing changed, the paths due again
// (settled, backed off) and the base entries a side lacks: work in proportion to the change, not to the
// tree. A targeted plan that would delete remotely, or finds the directory wiped, is checked by a whole
// walk before anything is deleted: lost events must never turn into deletes.
func (s *Syncer) pass(ctx context.Context, walk, list bool) (Result, error) {
	start := s.now()
	s.beat()
	in := s.takeIntake()
	walk = walk || in.overflow || !s.walked
	list = list || in.reconcile || !s.idx.listed
	var restored Result
	switch {
	case list && !s.Ready() && s.base.Len() == 0 && s.dir.Empty():
		l, res, err := s.restoreStreaming(ctx)
		if err != nil {
			s.abandon(in.changes, err)
			return Result{}, err
		}
		s.adopt(l)
		restored = res
	case list:
		if _, err := s.list(ctx); err != nil {
			s.abandon(in.changes, err)
			return Result{}, err
		}
	}
	s.applyChanges(ctx, in.changes)
	for path, r := range in.fetched {
		if old, ok := s.idx.remote[path]; !ok || old.Generation < r.Generation {
			s.idx.setRemote(path, r)
		}
		s.remoteDue[path] = true
		s.written = true // the fetched file is made durable before the base that will record it
	}
	settle := s.opt.Settle
	var only map[string]bool
	if walk {
		if err := s.walk(settle); err != nil {
			s.abandon(in.changes, err)
			return Result{}, err
		}
		s.forgetExcluded()
	} else {
		now := s.now()
		for p := range s.duePaths(now) {
			if _, hinted := in.paths[p]; !hinted {
				in.paths[p] = false
			}
		}
		touched, err := s.look(in.paths, settle)
		if err != nil {
			s.abandon(in.changes, err)
			return Result{}, err
		}
		only = touched
	}
	for p := range s.remoteDue {
		if only != nil {
			only[p] = true
		}
	}
	clear(s.remoteDue)
	p := s.compute(only, settle)
	if only != nil && s.needsWalk(p) {
		// Deletes are judged on the whole tree as it is now, not on the picture the hints built.
		if err := s.walk(settle); err != nil {
			s.abandon(in.changes, err)
			return Result{}, err
		}
		walk, only = true, nil
		p = s.compute(nil, settle)
	}
	res := s.execute(ctx, p, false)
	res.Done += restored.Done
	res.Failed += restored.Failed
	res.Replan = res.Replan || restored.Replan
	res.Unfinished = append(res.Unfinished, restored.Unfinished...)

	// What waits for a later pass: settling files, unsettled changes, paths backing off.
	if only == nil {
		clear(s.unsettled)
	} else {
		for path := range only {
			delete(s.unsettled, path)
		}
	}
	for path, at := range p.Unsettled {
		s.unsettled[path] = at
	}
	waiting := 0
	for _, f := range s.failures {
		if f.outgoing {
			waiting++ // a local change held back: open for writing, or its upload backing off
		}
	}
	res.NextWake = s.nextWake()
	failing := s.publishFailures()
	s.m.PendingUploads.Set(float64(len(s.fresh) + len(s.unsettled) + waiting))

	s.window = p.Window
	s.window.Deleted += res.Deleted
	s.reportGuard(p)
	s.reportWipes(p)
	s.saveState()
	s.finish(in.changes, res)
	s.m.KnownFiles.Set(float64(s.base.Len()))
	if walk {
		s.m.Passes.WithLabelValues("full").Inc()
	} else {
		s.m.Passes.WithLabelValues("targeted").Inc()
	}
	s.m.PassDuration.Observe(s.now().Sub(start).Seconds())
	if res.Failed == 0 && !res.Replan {
		s.m.LastSuccess.Set(float64(s.now().Unix()))
		// Ready means restored: nothing failed in this pass and no path is still backing off after a failure.
		if failing == 0 && (len(p.Unsettled) == 0 || s.Ready()) {
			s.setReady()
		}
	}
	if len(p.Actions) > 0 || res.Failed > 0 {
		s.log.Info("pass", "actions", len(p.Actions), "done", res.Done, "failed", res.Failed,
			"replan", res.Replan, "settling", len(s.fresh)+len(s.unsettled), "walked", walk, "listed", list, "planned", p.Paths,
			"duration", s.now().Sub(start).Round(time.Millisecond))
	}
	return res, nil
}

// needsWalk reports whether a targeted plan must be checked against a whole walk first: it deletes
// remotely, finds the directory wiped, or withholds a new set of remote deletes. Each of those judges
// files that are missing locally, and a lost event would look exactly like a missing file.
func (s *Syncer) needsWalk(p plan.Plan) bool {
	if p.Count(plan.DeleteRemote) > 0 || p.LocalWiped && !s.wiped[0] {
		return true
	}
	for _, a := range p.BlockedDeletes {
		if a.Op == plan.DeleteRemote {
			return blockedKey(p) != s.blocked
		}
	}
	return false
}

func blockedKey(p plan.Plan) string {
	if len(p.BlockedDeletes) == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%s:%s", len(p.BlockedDeletes), p.BlockedDeletes[0].Path, p.BlockedDeletes[len(p.BlockedDeletes)-1].Path)
}

// duePaths returns the paths waiting for a time that has come: settled, or done backing off.
func (s *Syncer) duePaths(now time.Time) map[string]bool {
	due := map[string]bool{}
	for p, t := range s.fresh {
		if !t.After(now) {
			due[p] = true
		}
	}
	for p, t := range s.unsettled {
		if !t.After(now) {
			due[p] = true
		}
	}
	for p, f := range s.failures {
		if !f.next.After(now) {
			due[p] = true
		}
	}
	return due
}

// nextWake is when the next path waiting for a time is due (zero: none is waiting).
func (s *Syncer) nextWake() time.Time {
	var t time.Time
	for _, at := range s.fresh {
		t = earliest(t, at)
	}
	for _, at := range s.unsettled {
		t = earliest(t, at)
	}
	for _, f := range s.failures {
		t = earliest(t, f.next)
	}
	return t
}

// reportGuard says once, for each new set of withheld deletes, that the guard tripped; the gauge stays 1
// while deletes are withheld.
func (s *Syncer) reportGuard(p plan.Plan) {
	if len(p.BlockedDeletes) == 0 {
		s.m.DeleteBlocked.Set(0)
		s.blocked = ""
		return
	}
	s.m.DeleteBlocked.Set(1)
	key := blockedKey(p)
	if key == s.blocked {
		return
	}
	s.blocked = key
	s.m.DeleteGuard.Inc()
	s.log.Error("refusing a mass delete: nothing deleted (raise --max-delete, or wait for --max-delete-window, if this is intended)",
		"deletes", len(p.BlockedDeletes), "deleted_in_window", p.Window.Deleted, "known_at_window_start", p.Window.Known,
		"window_start", p.Window.Start, "max_delete_percent", s.opt.MaxDelete, "first", p.BlockedDeletes[0].Path)
}

// reportWipes says once per episode that a side was wiped and is being restored.
func (s *Syncer) reportWipes(p plan.Plan) {
	for i, w := range []struct {
		side, what string
		wiped      bool
	}{{"local", "the local directory", p.LocalWiped}, {"remote", "the bucket", p.RemoteWiped}} {
		if w.wiped && !s.wiped[i] {
			s.m.Wipes.WithLabelValues(w.side).Inc()
			s.log.Warn(w.what+" lost more than --max-delete of the known files at once: restoring it from the other side, deleting nothing",
				"known_files", p.Known, "max_delete_percent", s.opt.MaxDelete)
		}
		s.wiped[i] = w.wiped
	}
}

// maxFailedPasses is how many passes with failures Once tolerates before it gives up.
const maxFailedPasses = 8

// Once runs passes until one is clean (for --once and init containers): a pass that hit precondition
// failures is followed by another, files still settling or open for writing are waited for (without
// limit: they are the app's), and failures are retried with the same backoff as Run, up to
// maxFailedPasses passes with failures.
func (s *Syncer) Once(ctx context.Context) error {
	failed, replans := 0, 0
	for {
		res, err := s.Pass(ctx, true)
		wait := time.Duration(0)
		switch {
		case err != nil:
			failed++
			if failed >= maxFailedPasses {
				return fmt.Errorf("sync did not converge: %w", err)
			}
			wait = backoff.Default.Delay(failed)
			s.log.Error("pass failed", "attempt", failed, "err", err, "retry_in", wait.Round(time.Millisecond))
		case res.Clean():
			return nil
		case res.Replan:
			if replans++; replans > 4*maxFailedPasses {
				return fmt.Errorf("sync did not converge: other writers kept changing %v", res.Unfinished)
			}
			continue
		default:
			if res.Failed > 0 {
				failed++
				if failed >= maxFailedPasses {
					return fmt.Errorf("sync did not converge: %d actions failed in the last pass: %v", res.Failed, res.Unfinished)
				}
			}
			wait = res.NextWake.Sub(s.now())
		}
		if wait > 0 && !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// isReplan reports whether err means "the world changed under this action": plan again, no backoff.
func isReplan(err error) bool {
	return errors.Is(err, gcsstore.ErrPrecondition) || errors.Is(err, localfs.ErrChanged) ||
		errors.Is(err, gcsstore.ErrNotFound)
}
