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
	Plan   plan.Plan
	Done   int
	Failed int
	Replan bool // a precondition failed or a file changed under us: plan again with a fresh listing
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
	view := map[string]plan.Remote{}
	unsafe := map[string]error{}
	err := s.store.List(ctx, func(o gcsstore.Object) {
		if filter.Internal(o.Name) || s.filter.Excluded(o.Name) {
			return
		}
		if err := filter.CheckName(o.Name); err != nil {
			unsafe[o.Name] = err
			return
		}
		view[o.Name] = plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C}
	})
	if err != nil {
		s.m.Errors.WithLabelValues("list").Inc()
		return nil, err
	}
	s.mu.Lock()
	s.view, s.listed = view, true
	for n, reason := range unsafe {
		if s.firstUnsafe("remote:" + n) {
			s.log.Warn("skipping unsafe object name: never written locally", "object", s.store.Name(n), "reason", reason)
		}
	}
	s.mu.Unlock()
	return view, nil
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
// leaving files modified within the settle time unhashed (fresh).
func (s *Syncer) scan(settle time.Duration) (map[string]localfs.File, map[string]time.Time, error) {
	now := s.now()
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
		Fresh: func(st localfs.Stamp) bool {
			return settle > 0 && now.Sub(time.Unix(0, st.ModTime)) < settle
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
			fresh[rel] = time.Unix(0, f.ModTime).Add(settle)
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
	s.mu.Unlock()
	return res.Files, fresh, nil
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
		local[p] = plan.Local{Size: f.Size, CRC32C: f.CRC32C, ModTime: time.Unix(0, f.ModTime)}
	}
	return plan.Compute(plan.Input{
		Local: local, Remote: snap.remote, Base: s.baseSnapshot(),
		Now: now, Settle: settle, Delete: s.opt.Delete, MaxDeletePercent: s.opt.MaxDelete,
		Skip: func(p string) bool {
			_, fresh := snap.fresh[p]
			return fresh || s.backingOff(p, now)
		},
	})
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
	var err error
	if freshList {
		remote, err = s.list(ctx)
	} else {
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
	for _, t := range fresh {
		res.NextWake = earliest(res.NextWake, t)
	}
	for _, t := range p.Unsettled {
		res.NextWake = earliest(res.NextWake, t)
	}
	s.mu.Lock()
	for _, f := range s.failures {
		res.NextWake = earliest(res.NextWake, f.next)
	}
	s.mu.Unlock()
	s.m.PendingUploads.Set(float64(max(0, len(fresh)+len(p.Unsettled)+res.Failed)))

	s.reportGuard(p)
	s.saveState()
	s.m.KnownFiles.Set(float64(s.base.Len()))
	s.m.PassDuration.Observe(s.now().Sub(start).Seconds())
	if res.Failed == 0 && !res.Replan {
		s.m.LastSuccess.Set(float64(s.now().Unix()))
		if len(p.Unsettled) == 0 || s.Ready() {
			s.setReady()
		}
	}
	if len(p.Actions) > 0 || res.Failed > 0 {
		s.log.Info("pass", "actions", len(p.Actions), "done", res.Done, "failed", res.Failed,
			"replan", res.Replan, "settling", len(fresh)+len(p.Unsettled), "duration", s.now().Sub(start).Round(time.Millisecond))
	}
	return res, nil
}

func (s *Syncer) reportGuard(p plan.Plan) {
	if len(p.BlockedDeletes) == 0 {
		s.m.DeleteBlocked.Set(0)
		return
	}
	s.m.DeleteGuard.Inc()
	s.m.DeleteBlocked.Set(1)
	s.log.Error("refusing a mass delete: nothing deleted (raise --max-delete if this is intended)",
		"deletes", len(p.BlockedDeletes), "known_files", p.Known, "max_delete_percent", s.opt.MaxDelete,
		"first", p.BlockedDeletes[0].Path)
}

// Once runs passes until one is clean (for --once and init containers): a pass that hit precondition
// failures is followed by another, settling files are waited for, and failures are retried with backoff.
func (s *Syncer) Once(ctx context.Context) error {
	var last Result
	for attempt := 1; attempt <= 8; attempt++ {
		res, err := s.Pass(ctx, true)
		if err != nil {
			last = Result{Failed: 1}
			s.log.Error("pass failed", "attempt", attempt, "err", err)
			if !backoff.Sleep(ctx, time.Duration(attempt)*time.Second) {
				return ctx.Err()
			}
			continue
		}
		last = res
		if res.Clean() {
			return nil
		}
		if res.Replan {
			continue
		}
		if wait := res.NextWake.Sub(s.now()); wait > 0 && !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("sync did not converge: %d failed actions in the last pass", last.Failed)
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
