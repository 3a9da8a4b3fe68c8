package syncer

import (
	"context"
	"time"

	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// A pass, in six steps, each a method below (Run, Once, Flush and DryRun compose the same steps):
//
//  1. observeRemote: list the bucket if asked (a fresh pod's restore downloads while it lists), then apply
//     the remote hints and the objects the read-through fetched;
//  2. observeLocal: walk the whole tree, or look only at the hinted paths and those whose wait is over;
//  3. plan: the pure planner over the paths observed; a targeted plan that would delete remotely is
//     planned again on a fresh walk first;
//  4. transfer: deletes, then transfers, on worker goroutines;
//  5. commit: each outcome applied to the index, the base, the holds and the metrics as it arrives;
//  6. conclude: the holds and the guard carried to the next pass, the state persisted, the waiting remote
//     changes answered, ready set.

// passKind says what a pass observes and how it acts.
type passKind struct {
	walk bool // walk the whole tree (else look at what was hinted or is due)
	list bool // list the bucket (else use the view: the last listing, kept current by hints and own writes)
	mode passMode
}

type passMode uint8

const (
	normal passMode = iota
	// flush: shutdown. The settle time and the open-file check are ignored, only outgoing actions run, and
	// an upload refused by a precondition is preserved as a conflict copy.
	flush
	// dryRun: plan only; nothing is transferred, nothing is restored while listing.
	dryRun
)

// settle is the settle time a pass of this kind waits for.
func (k passKind) settle(opt Options) time.Duration {
	if k.mode != normal {
		return 0
	}
	return opt.Settle
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

// add counts another set of transfers (the streaming restore's) in r.
func (r *Result) add(o Result) {
	r.Done += o.Done
	r.Failed += o.Failed
	r.Replan = r.Replan || o.Replan
	r.Unfinished = append(r.Unfinished, o.Unfinished...)
}

// work is what one pass carries from step to step.
type work struct {
	kind     passKind
	start    time.Time
	settle   time.Duration
	in       intake          // what other goroutines handed the loop for this pass
	only     map[string]bool // the paths to plan (nil: the whole tree)
	restored Result          // the streaming restore's downloads, if this pass restored
	plan     plan.Plan
}

// Pass runs one full pass: it walks the whole tree and, with freshList, lists the bucket (otherwise it
// uses the view).
func (s *Syncer) Pass(ctx context.Context, freshList bool) (Result, error) {
	return s.pass(ctx, passKind{walk: true, list: freshList})
}

// pass runs the six steps. A targeted pass (no walk) does work in proportion to the change, not to the
// tree.
func (s *Syncer) pass(ctx context.Context, k passKind) (res Result, err error) {
	w := s.begin(k)
	defer func() {
		if err != nil {
			answer(w.in.changes, Result{}, err)
		}
		s.countCache(w)
	}()
	if err = s.observeAndPlan(ctx, w); err != nil {
		return Result{}, err
	}
	res = s.transfer(ctx, w.plan, k.mode == flush)
	res.add(w.restored)
	s.conclude(w, &res)
	return res, nil
}

// countCache publishes the bytes of the local lazy files for the lazy downloads (reserveRoom), which now
// count the files fetched that this pass took from the intake.
func (s *Syncer) countCache(w *work) {
	s.status.cacheBytes.Store(s.idx.lazyBytes)
	for path, r := range w.in.fetched {
		if s.lazy(path) {
			s.fill.uncounted.Add(-r.Size)
		}
	}
}

// begin starts a pass of kind k: it takes the intake, which may ask for more (a walk after lost events, a
// listing for a reconcile); the first pass walks and lists whatever it was asked.
func (s *Syncer) begin(k passKind) *work {
	s.beat()
	in := s.intake.take()
	k.walk = k.walk || in.overflow || !s.idx.walked
	// The pass after a restore that left the lazy folders out lists the whole bucket; a flush (shutdown)
	// does not wait for that.
	k.list = k.list || in.reconcile || !s.idx.listed || (s.lazyUnlisted && k.mode == normal)
	return &work{kind: k, start: s.now(), settle: k.settle(s.opt), in: in}
}

// observeAndPlan runs steps 1 to 3.
func (s *Syncer) observeAndPlan(ctx context.Context, w *work) error {
	if err := s.observeRemote(ctx, w); err != nil {
		return err
	}
	if err := s.observeLocal(w); err != nil {
		return err
	}
	return s.planPass(w)
}

// observeRemote is step 1.
func (s *Syncer) observeRemote(ctx context.Context, w *work) error {
	switch {
	case !w.kind.list:
	case w.kind.mode == normal && !s.Ready() && s.base.Len() == 0 && s.dir.Empty():
		l, restored, err := s.restoreStreaming(ctx)
		if err != nil {
			return err
		}
		s.adopt(l)
		w.restored = restored
	default:
		if _, err := s.list(ctx, w.kind.mode == normal && !s.Ready()); err != nil {
			return err
		}
	}
	s.applyChanges(ctx, w.in.changes)
	s.applyFetched(w.in.fetched)
	return nil
}

// observeLocal is step 2.
func (s *Syncer) observeLocal(w *work) error {
	if w.kind.walk {
		if err := s.walk(w.settle); err != nil {
			return err
		}
		s.forgetExcluded()
		return nil
	}
	for p := range s.holds.due(s.now()) {
		if _, hinted := w.in.paths[p]; !hinted {
			w.in.paths[p] = false
		}
	}
	touched, err := s.look(w.in.paths, w.settle)
	if err != nil {
		return err
	}
	w.only = touched
	return nil
}

// planPass is step 3. Deletes are judged on the whole tree as it is now, not on the picture the hints
// built: lost events must never turn into deletes.
func (s *Syncer) planPass(w *work) error {
	if w.only != nil {
		for p := range s.idx.due {
			w.only[p] = true
		}
	}
	allDue := s.idx.allDue
	s.idx.allDue, s.idx.due = false, map[string]bool{}
	s.holds.forgetSkipped(func(path string) (int64, bool) {
		r, ok := s.idx.remote.Get(path)
		return r.Generation, ok
	}, func(path string) (snapshot.Stamp, bool) {
		f, ok := s.idx.local[path]
		return f.Stamp, ok
	})
	// A targeted plan copies what the index holds of its paths; past wholePlan of them (the whole listing
	// after a lazy restore marks every media object due) the whole tree is planned instead, from the index
	// itself: the same plan for those paths (FuzzTargeted), without copies of 100,000 entries.
	planned := w.only
	if allDue || len(w.only) > s.idx.wholePlan() {
		planned = nil
	}
	w.plan = s.compute(planned, w.settle)
	if w.only != nil && s.guard.needsWalk(w.plan) {
		if err := s.walk(w.settle); err != nil {
			return err
		}
		w.kind.walk, w.only = true, nil
		w.plan = s.compute(nil, w.settle)
	}
	if planned == nil {
		w.only = nil // the whole tree was planned
	}
	if w.kind.mode == flush {
		w.plan.Actions, w.plan.RemoteOnly = outgoing(w.plan.Actions), nil
	}
	if w.kind.mode == normal {
		s.holdTrees(&w.plan, w.start)
	}
	return nil
}

// outgoing keeps the actions that take a local change to the bucket.
func outgoing(actions []plan.Action) []plan.Action {
	var out []plan.Action
	for _, a := range actions {
		if a.Op == plan.Upload || a.Op == plan.DeleteRemote || a.Op == plan.Conflict {
			out = append(out, a)
		}
	}
	return out
}

// compute plans the paths in only (nil: every path). A targeted plan also covers every base entry that
// a side lacks or whose object the sync leaves alone (plan.Input.Unsyncable), with the files or objects named like one of its folders (a file that took a folder's
// place), and is told the whole base's size, so that its wipe and guard verdicts are the whole tree's
// (plan.Input.Known). The planner's callbacks only read.
func (s *Syncer) compute(only map[string]bool, settle time.Duration) plan.Plan {
	now := s.now()
	in := plan.Input{
		Now: now, Settle: settle, Delete: s.opt.Delete, MaxDeletePercent: s.opt.MaxDelete,
		Window: s.guard.window, WindowLength: s.opt.DeleteWindow,
		ChangedAt: func(p string, f snapshot.File) time.Time {
			t, _ := s.holds.quietSince(p, f.Stamp, now)
			return t
		},
		Skip: func(p string) bool {
			return s.holds.isFresh(p) || s.holds.backingOff(p, now) || s.leftAlone(p) || (s.lazyUnlisted && s.lazy(p))
		},
		Unsyncable: func(p string) bool { return s.idx.objectRule(p) != noReason },
	}
	if s.opt.Lazy != nil {
		in.Lazy = s.lazy
	}
	if only == nil {
		// The whole tree: the planner reads the index and the base as they are (it never writes), so a
		// full pass holds no copy of them.
		in.Local, in.Remote, in.Base = plan.Map[snapshot.File](s.idx.local), s.idx.remote, s.base.Entries()
		return plan.Compute(in)
	}
	sub := subset{local: plan.Map[snapshot.File]{}, remote: plan.Map[snapshot.Object]{}, base: plan.Map[snapshot.Base]{}}
	in.Local, in.Remote, in.Base = sub.local, sub.remote, sub.base
	in.Known, in.KnownRemoteOnly = s.base.Len(), int(s.idx.remoteOnly)
	for _, paths := range []map[string]struct{}{s.idx.missingLocal, s.idx.missingRemote, s.idx.unsyncableBase()} {
		for p := range paths {
			s.idx.copyInto(sub, p)
			for i := len(p) - 1; i > 0; i-- {
				if p[i] == '/' && s.idx.has(p[:i]) {
					s.idx.copyInto(sub, p[:i])
				}
			}
		}
	}
	for p := range only {
		s.idx.copyInto(sub, p)
	}
	return plan.Compute(in)
}

// conclude is step 6.
func (s *Syncer) conclude(w *work, res *Result) {
	s.holds.replan(w.only, w.plan.Unsettled)
	res.NextWake = s.holds.nextWake()
	failing := s.holds.failing()
	s.status.failing.Store(failing)
	s.m.PendingUploads.Set(float64(s.holds.pending()))
	s.guard.after(w.plan, res.Deleted, s.opt.MaxDelete, s.m, s.log)
	if w.kind.mode == normal {
		s.evict()
	}
	s.saveState()
	answer(w.in.changes, *res, nil)
	s.m.KnownFiles.Set(float64(s.base.Len()))
	s.status.lazyFiles.Store(s.idx.remoteOnly)
	s.status.lazyBytes.Store(s.idx.remoteOnlyBytes)
	s.m.LazyCacheBytes.Set(float64(s.idx.lazyBytes))
	s.m.LazyFiles.Set(float64(s.idx.remoteOnly))
	s.m.LazyBytes.Set(float64(s.idx.remoteOnlyBytes))
	if w.kind.mode == flush {
		return // the last pass: no pass to count, nothing to be ready for
	}
	kind := "targeted"
	if w.kind.walk {
		kind = "full"
	}
	s.m.Passes.WithLabelValues(kind).Inc()
	s.m.PassDuration.Observe(s.now().Sub(w.start).Seconds())
	if res.Failed == 0 && !res.Replan {
		s.m.LastSuccess.Set(float64(s.now().Unix()))
		// Ready means restored: nothing failed in this pass and no path is still backing off after a failure.
		if failing.n == 0 && (len(w.plan.Unsettled) == 0 || s.Ready()) {
			s.setReady()
		}
	}
	if len(w.plan.Actions) > 0 || res.Failed > 0 {
		s.log.Info("pass", "actions", len(w.plan.Actions), "done", res.Done, "failed", res.Failed,
			"replan", res.Replan, "settling", len(s.holds.fresh)+len(s.holds.unsettled), "walked", w.kind.walk,
			"listed", w.kind.list, "planned", w.plan.Paths, "duration", s.now().Sub(w.start).Round(time.Millisecond))
	}
}

// DryRun walks, lists and returns the plan of one pass without changing anything.
func (s *Syncer) DryRun(ctx context.Context) (plan.Plan, error) {
	w := s.begin(passKind{walk: true, list: true, mode: dryRun})
	err := s.observeAndPlan(ctx, w)
	return w.plan, err
}

// Flush uploads what changed locally (and deletes remotely what was deleted locally), ignoring the settle
// time and open files, within ctx's deadline: a pass in flush mode. It is the last thing done on SIGTERM:
// the app has stopped writing. It returns the paths it could not flush.
func (s *Syncer) Flush(ctx context.Context) ([]string, error) {
	clear(s.holds.failures) // last chance: paths backing off are tried too
	res, err := s.pass(ctx, passKind{walk: true, mode: flush})
	return res.Unfinished, err
}
