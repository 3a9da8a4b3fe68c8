package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// snapshot is the input of one pass: what the scan and the listing found.
type snapshot struct {
	local  map[string]localfs.File
	remote map[string]plan.Remote
	// fresh: local files still settling (not hashed), with the time they become quiet.
	fresh map[string]time.Time
}

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

// list reads the bucket into a fresh view. Unsafe names are skipped with a warning (once per name).
func (s *Syncer) list(ctx context.Context) (map[string]plan.Remote, error) {
	return s.listEach(ctx, nil)
}

// listEach is list that also gives each object that may be synced to each (if set) as the pages arrive.
// Objects that turn out to be a folder of others too are still given: the caller decides (see
// restoreStreaming).
func (s *Syncer) listEach(ctx context.Context, each func(name string, r plan.Remote)) (map[string]plan.Remote, error) {
	view := map[string]plan.Remote{}
	unsafe := map[string]error{}
	encoded := map[string]bool{}
	err := s.store.List(ctx, func(o gcsstore.Object) {
		if filter.Internal(o.Name) || s.filter.Excluded(o.Name) {
			return
		}
		if err := filter.CheckName(o.Name); err != nil {
			unsafe[o.Name] = err
			return
		}
		r := plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C, ModTime: o.ModTime}
		view[o.Name] = r
		if o.ContentEncoding == "gzip" {
			encoded[o.Name] = true
		} else if each != nil {
			each(o.Name, r)
		}
	})
	if err != nil {
		s.m.Errors.WithLabelValues("list").Inc()
		return nil, err
	}
	clashes := findClashes(view)
	s.mu.Lock()
	s.view, s.listed = view, true
	for n := range clashes {
		if s.firstSkip("clash:"+n, "clash") {
			s.log.Warn("skipping an object that is also a folder of other objects: a local path is a file or a directory, not both; the folder's objects win",
				"object", s.store.Name(n))
		}
	}
	s.unsyncable = clashes // the clashes, and below the gzip-encoded objects
	for n := range encoded {
		s.unsyncable[n] = true
		if s.firstSkip("encoded:"+n, "content_encoding") {
			s.log.Warn("skipping an object stored with Content-Encoding: gzip: the client decompresses it, so its bytes cannot be checked against its CRC32C and filesync never publishes unchecked bytes; store it uncompressed to sync it",
				"object", s.store.Name(n))
		}
	}
	for n, reason := range unsafe {
		if s.firstUnsafe("remote:" + n) {
			s.log.Warn("skipping unsafe object name: never written locally", "object", s.store.Name(n), "reason", reason)
		}
	}
	s.mu.Unlock()
	return view, nil
}

// findClashes returns the objects whose name is also a folder of other objects (x beside x/y): a local
// path holds one or the other, so the folder wins, always, whatever the order of listing or writing.
func findClashes(view map[string]plan.Remote) map[string]bool {
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

// firstSkip counts a skipped path once (by reason) and reports whether it is new. Call with s.mu held.
func (s *Syncer) firstSkip(key, reason string) bool {
	if s.warned[key] {
		return false
	}
	s.warned[key] = true
	s.m.SkippedPaths.WithLabelValues(reason).Inc()
	return true
}

// firstUnsafe counts an unsafe name once and reports whether it is new (warn only then). Call with s.mu held.
func (s *Syncer) firstUnsafe(key string) bool {
	if s.warned[key] {
		return false
	}
	s.warned[key] = true
	s.m.SkippedUnsafe.Inc()
	return true
}

// cachedView returns the last listing (kept current with our own writes), listing if there is none.
func (s *Syncer) cachedView(ctx context.Context) (map[string]plan.Remote, error) {
	s.mu.Lock()
	if s.listed {
		v := maps.Clone(s.view)
		s.mu.Unlock()
		return v, nil
	}
	s.mu.Unlock()
	return s.list(ctx)
}

func (s *Syncer) setView(path string, r *plan.Remote) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == nil {
		delete(s.view, path)
	} else {
		s.view[path] = *r
	}
}

// scan walks the directory, hashing only files whose stamp the base or the hash cache does not know, and
// leaving files modified within the settle time unhashed (fresh). Paths it cannot read are remembered
// (s.unreadable) so the plan leaves them alone.
func (s *Syncer) scan(settle time.Duration) (map[string]localfs.File, map[string]time.Time, error) {
	now := s.now()
	s.mu.Lock()
	s.pruneFirstSeen(now)
	s.mu.Unlock()
	res, err := s.dir.Scan(s.filter, localfs.ScanOptions{
		Cache: func(rel string, st localfs.Stamp) (uint32, bool) {
			if e, ok := s.base.Get(rel); ok && e.Size == st.Size && e.ModTime == st.ModTime {
				return e.CRC32C, true
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if h, ok := s.hashes[rel]; ok && h.stamp == st {
				return h.crc, true
			}
			return 0, false
		},
		Fresh: func(rel string, st localfs.Stamp) bool {
			return settle > 0 && now.Sub(s.changedAt(rel, st, now)) < settle
		},
	})
	if err != nil {
		s.m.Errors.WithLabelValues("scan").Inc()
		return nil, nil, err
	}
	fresh := map[string]time.Time{}
	s.mu.Lock()
	for rel, f := range res.Files {
		if f.Fresh {
			fresh[rel] = s.changedAtLocked(rel, f.Stamp, now).Add(settle)
		} else if _, inBase := s.base.Get(rel); !inBase {
			s.hashes[rel] = cachedHash{stamp: f.Stamp, crc: f.CRC32C}
		}
	}
	for rel := range s.hashes {
		if _, ok := res.Files[rel]; !ok {
			delete(s.hashes, rel)
		}
	}
	for _, n := range res.Unsafe {
		if s.firstUnsafe("local:" + n) {
			s.log.Warn("skipping local file with an unsafe name", "path", n)
		}
	}
	s.unreadable = res.Unreadable
	for rel, err := range res.Unreadable {
		if s.firstSkip("unreadable:"+rel, "unreadable") {
			s.m.Errors.WithLabelValues("scan").Inc()
			s.log.Warn("cannot read a local path: leaving it and everything under it alone on both sides", "path", rel, "err", err)
		}
	}
	s.mu.Unlock()
	return res.Files, fresh, nil
}

// changedAt is when the file last changed, for the settle time: its mtime, unless that lies in the future
// (a wrong clock, `touch -d`), in which case it is when this stamp was first seen; otherwise such a file
// would settle only when the clock catches up.
func (s *Syncer) changedAt(rel string, st localfs.Stamp, now time.Time) time.Time {
	if mt := time.Unix(0, st.ModTime); !mt.After(now) {
		return mt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changedAtLocked(rel, st, now)
}

// changedAtLocked is changedAt with s.mu held.
func (s *Syncer) changedAtLocked(rel string, st localfs.Stamp, now time.Time) time.Time {
	if mt := time.Unix(0, st.ModTime); !mt.After(now) {
		return mt
	}
	if f, ok := s.firstSeen[rel]; ok && f.stamp == st {
		return f.at
	}
	s.firstSeen[rel] = seen{stamp: st, at: now}
	return now
}

// pruneFirstSeen forgets future stamps whose time has come. Call with s.mu held.
func (s *Syncer) pruneFirstSeen(now time.Time) {
	for rel, f := range s.firstSeen {
		if !time.Unix(0, f.stamp.ModTime).After(now) {
			delete(s.firstSeen, rel)
		}
	}
}

// baseSnapshot copies the base for the planner. Entries of paths excluded after they were synced are
// forgotten (nothing is done to the files themselves: excluded paths are never touched on either side).
func (s *Syncer) baseSnapshot() map[string]plan.Base {
	b := make(map[string]plan.Base, s.base.Len())
	var forget []string
	s.base.Range(func(p string, e state.Entry) {
		if s.filter.Skip(p) {
			forget = append(forget, p)
			return
		}
		b[p] = plan.Base{Generation: e.Generation, Size: e.Size, CRC32C: e.CRC32C}
	})
	for _, p := range forget {
		s.base.Delete(p)
	}
	return b
}

func (s *Syncer) backingOff(path string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.failures[path]
	return ok && now.Before(f.next)
}

// compute builds the plan of a snapshot.
func (s *Syncer) compute(snap snapshot, settle time.Duration) plan.Plan {
	now := s.now()
	local := make(map[string]plan.Local, len(snap.local))
	for p, f := range snap.local {
		local[p] = plan.Local{Size: f.Size, CRC32C: f.CRC32C, ModTime: s.changedAt(p, f.Stamp, now)}
	}
	return plan.Compute(plan.Input{
		Local: local, Remote: snap.remote, Base: s.baseSnapshot(),
		Now: now, Settle: settle, Delete: s.opt.Delete, MaxDeletePercent: s.opt.MaxDelete,
		Window: s.window, WindowLength: s.opt.DeleteWindow,
		Skip: func(p string) bool {
			_, fresh := snap.fresh[p]
			return fresh || s.backingOff(p, now) || s.leftAlone(p, snap.remote)
		},
	})
}

// leftAlone reports whether path is out of the sync for now: unreadable locally (itself or a folder
// above it), an object that is also a folder of others, or skipped until its object changes.
func (s *Syncer) leftAlone(path string, remote map[string]plan.Remote) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
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
		if r, has := remote[path]; has && r.Generation == gen {
			return true
		}
		delete(s.skipped, path) // the object changed or is gone: try again
		delete(s.warned, "skip:"+path)
	}
	return false
}

// DryRun scans, lists and returns the plan of one pass without changing anything.
func (s *Syncer) DryRun(ctx context.Context) (plan.Plan, error) {
	local, fresh, err := s.scan(0)
	if err != nil {
		return plan.Plan{}, err
	}
	remote, err := s.list(ctx)
	if err != nil {
		return plan.Plan{}, err
	}
	return s.compute(snapshot{local: local, remote: remote, fresh: fresh}, 0), nil
}

// Pass runs one full pass. With freshList it lists the bucket; otherwise it uses the last listing, kept
// current with this replica's own writes (enough for local changes: every write is generation-fenced).
func (s *Syncer) Pass(ctx context.Context, freshList bool) (Result, error) {
	start := s.now()
	s.beat()
	var remote map[string]plan.Remote
	var restored Result
	var err error
	switch {
	case freshList && !s.Ready() && s.base.Len() == 0 && s.dir.Empty():
		remote, restored, err = s.restoreStreaming(ctx)
	case freshList:
		remote, err = s.list(ctx)
	default:
		remote, err = s.cachedView(ctx)
	}
	if err != nil {
		return Result{}, err
	}
	local, fresh, err := s.scan(s.opt.Settle)
	if err != nil {
		return Result{}, err
	}
	snap := snapshot{local: local, remote: remote, fresh: fresh}
	p := s.compute(snap, s.opt.Settle)
	res := s.execute(ctx, p, snap, false)
	res.Done += restored.Done
	res.Failed += restored.Failed
	res.Replan = res.Replan || restored.Replan
	res.Unfinished = append(res.Unfinished, restored.Unfinished...)
	for _, t := range fresh {
		res.NextWake = earliest(res.NextWake, t)
	}
	for _, t := range p.Unsettled {
		res.NextWake = earliest(res.NextWake, t)
	}
	s.mu.Lock()
	waiting, failing := 0, s.failedLocked()
	for _, f := range s.failures {
		res.NextWake = earliest(res.NextWake, f.next)
		if f.outgoing {
			waiting++ // a local change held back: open for writing, or its upload backing off
		}
	}
	s.mu.Unlock()
	s.m.PendingUploads.Set(float64(len(fresh) + len(p.Unsettled) + waiting))

	s.window = p.Window
	s.window.Deleted += res.Deleted
	s.reportGuard(p)
	s.reportWipes(p)
	s.saveState()
	s.m.KnownFiles.Set(float64(s.base.Len()))
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
			"replan", res.Replan, "settling", len(fresh)+len(p.Unsettled), "duration", s.now().Sub(start).Round(time.Millisecond))
	}
	return res, nil
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
	key := fmt.Sprintf("%d:%s:%s", len(p.BlockedDeletes), p.BlockedDeletes[0].Path, p.BlockedDeletes[len(p.BlockedDeletes)-1].Path)
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
