package syncer

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// Trees arrive whole (docs/design.md). Once ready, the remote changes under a directory are held while
// they keep coming, and applied together once none has come for TreeQuiet:
//   - a directory new to this replica (the top-most missing folder of a download) is assembled in a stage
//     in filesync's own folder and renamed into place in one rename;
//   - a directory that exists and matches --tree (Options.Trees: a plugin, a theme) has its new files
//     staged, then renamed into place one after the other in one burst, followed by its local deletes.
// While a tree is held its downloads already run into its stage (prefetch), so that when it is due only
// the renames are left. Nothing is committed before it is published. If a download of a due tree fails,
// nothing of it is published and its paths back off together; what was staged stays staged.
// The restore before ready writes file by file: the app does not run yet.

// errTreeUnpublished: the file was downloaded, but another file of its tree failed, so none was
// published; it backs off with them.
var errTreeUnpublished = errors.New("not published: another file of its tree failed")

// treeHoldMax bounds how long a tree waits for its changes to stop coming, in TreeQuiets (30 s for the
// default 1 s): then it is applied with what it has, and the rest follows as another tree.
const treeHoldMax = 30

// heldTree is a directory whose remote changes are held (holds.trees, the loop's). Its stage mirrors the
// directory's layout: the staged file of path is stage + path[len(dir):].
type heldTree struct {
	dir         string
	whole       bool // new to this replica: published in one rename; else its files in one burst
	first, grew time.Time
	due         bool             // this pass applies it (holdTrees decides, groupTrees reads)
	gens        map[string]int64 // its held paths: the generation planned (goneGen for a local delete)
	stage       string           // "" until a download needs it
	staged      map[string]done  // downloads done into the stage, by path: committed when published
}

// goneGen is the generation a held local delete is recorded with.
const goneGen = -1

// wake is when t may be applied: quiet after its last new change, or treeHoldMax after its first.
func (t *heldTree) wake(quiet time.Duration) time.Time {
	return earliest(t.grew.Add(quiet), t.first.Add(treeHoldMax*quiet))
}

func (t *heldTree) stagedPath(p string) string { return t.stage + p[len(t.dir):] }

// tree is what one pass does for a held tree: its downloads (into the stage) and, when due, its local
// deletes and the publication. Its fields are the loop's; workers only read held.stage.
type tree struct {
	held    *heldTree // held.due: applied in this pass; else the downloads are a prefetch
	left    int       // jobs not done yet
	done    []done    // downloads done, this pass's and (when due) the ones staged before
	deletes []job     // local deletes, applied after the new files (when due)
}

// treeGroup is the actions of one pass under one tree.
type treeGroup struct {
	whole   bool
	actions []plan.Action
}

// holdTrees (step 3, once ready) groups the plan's remote changes by tree, records them in holds.trees,
// and takes out of plan p what waits: a tree's local deletes and already staged downloads until it is due
// (its downloads stay: they run into the stage). The held paths wait in holds.treeWait, all until the
// tree's wake, so that one pass plans them again together.
//
// now is the pass's start: the paths of a tree due then are all among the paths a targeted pass plans
// (holds.due is asked later).
func (s *Syncer) holdTrees(p *plan.Plan, now time.Time) {
	if !s.Ready() {
		return
	}
	groups := s.treeGroups(p.Actions)
	held := map[string]bool{}
	for d, g := range groups {
		t := s.holds.trees[d]
		if t != nil {
			t.whole = g.whole // false if the app made the new directory meanwhile: its staged files go in one by one
		} else {
			t = &heldTree{dir: d, whole: g.whole, first: now, grew: now, gens: map[string]int64{}, staged: map[string]done{}}
			s.holds.trees[d] = t
		}
		for _, a := range g.actions {
			if gen := heldGen(a); t.gens[a.Path] != gen {
				t.gens[a.Path], t.grew = gen, now
			}
		}
		wake := t.wake(s.opt.TreeQuiet)
		if t.due = !wake.After(now); t.due {
			for path := range t.gens {
				delete(s.holds.treeWait, path)
			}
			continue // due: applied by this pass (groupTrees)
		}
		for path := range t.gens {
			s.holds.treeWait[path] = wake
		}
		for _, a := range g.actions {
			if st, ok := t.staged[a.Path]; a.Op == plan.DeleteLocal || ok && st.a.Remote.Generation == a.Remote.Generation {
				held[a.Path] = true
			}
		}
	}
	for d, t := range s.holds.trees { // nothing planned under it, its wait is over and no path backs off: gone
		if _, planned := groups[d]; !planned && !t.wake(s.opt.TreeQuiet).After(now) && !s.backsOff(t, now) {
			s.dropTree(t)
		}
	}
	if len(held) > 0 {
		p.Actions = slices.DeleteFunc(p.Actions, func(a plan.Action) bool { return held[a.Path] })
	}
}

// backsOff reports whether a path of t backs off after a failure (its tree waits for it, staged).
func (s *Syncer) backsOff(t *heldTree, now time.Time) bool {
	for p := range t.gens {
		if s.holds.backingOff(p, now) {
			return true
		}
	}
	return false
}

func heldGen(a plan.Action) int64 {
	if a.Op == plan.DeleteLocal {
		return goneGen
	}
	return a.Remote.Generation
}

// treeGroups groups the remote changes of actions by tree: a download or local delete under a directory
// that exists and matches --tree goes with that directory; a download into a missing folder with its
// top-most missing folder (whole). Other actions belong to no tree.
func (s *Syncer) treeGroups(actions []plan.Action) map[string]*treeGroup {
	groups := map[string]*treeGroup{}
	top := map[string]string{} // a path's folder -> its top-most missing folder ("": none)
	for _, a := range actions {
		parent := path.Dir(a.Path)
		if a.Op != plan.Download && a.Op != plan.DeleteLocal || parent == "." {
			continue
		}
		d, whole := "", false
		if root, ok := s.opt.Trees.Root(a.Path); ok {
			if missing, _ := s.dir.TopMissingDir(root + "/x"); missing == "" { // root and its folders exist
				d = root
			}
		}
		if _, local := s.idx.local[a.Path]; d == "" && a.Op == plan.Download && !local {
			m, ok := top[parent]
			if !ok {
				m, _ = s.dir.TopMissingDir(a.Path)
				top[parent] = m
			}
			d, whole = m, true
		}
		if d == "" {
			continue
		}
		g := groups[d]
		if g == nil {
			g = &treeGroup{whole: whole}
			groups[d] = g
		}
		g.actions = append(g.actions, a)
	}
	return groups
}

// groupTrees (step 4) gives each job of a held tree its pass's tree: downloads run into the stage; when the
// tree is due, its local deletes leave the deletes batch (they follow its new files), its downloads staged
// before at the planned generation need no transfer, and what was staged for paths it no longer plans is
// removed from the stage.
func (s *Syncer) groupTrees(deletes, others *[]job) []*tree {
	if len(s.holds.trees) == 0 {
		return nil
	}
	byDir := map[string]*tree{}
	of := func(p string) *tree {
		d, ok := s.heldDir(p)
		if !ok {
			return nil
		}
		t := byDir[d]
		if t == nil {
			h := s.holds.trees[d]
			t = &tree{held: h}
			byDir[d] = t
		}
		return t
	}
	*deletes = slices.DeleteFunc(*deletes, func(j job) bool {
		if t := of(j.a.Path); t != nil && t.held.due && j.a.Op == plan.DeleteLocal {
			t.deletes = append(t.deletes, j)
			return true
		}
		return false
	})
	*others = slices.DeleteFunc(*others, func(j job) bool {
		t := of(j.a.Path)
		if t == nil || j.a.Op != plan.Download {
			return false
		}
		if st, ok := t.held.staged[j.a.Path]; ok && st.a.Remote.Generation == j.a.Remote.Generation {
			t.done = append(t.done, done{job: j, ch: st.ch}) // staged before: published with the rest
			return true
		}
		return false
	})
	var trees []*tree
	for _, t := range byDir {
		trees = append(trees, t)
		if t.held.due {
			s.unstageUnplanned(t, *others)
		}
	}
	for i, j := range *others {
		if t := of(j.a.Path); t != nil && j.a.Op == plan.Download {
			if t.held.stage == "" {
				stage, err := s.dir.Stage()
				if err != nil {
					s.log.Error("making a stage: the tree's files are downloaded one by one", "dir", t.held.dir, "err", err)
					*deletes = append(*deletes, t.deletes...) // its local deletes run as any other
					s.dropTree(t.held)
					delete(byDir, t.held.dir)
					continue
				}
				t.held.stage = stage
			}
			(*others)[i].tree = t
			if st, ok := t.held.staged[j.a.Path]; ok { // a newer generation: downloaded over it
				(*others)[i].stagedLocal, (*others)[i].inStage = *st.ch.local, true
			}
			t.left++
		}
	}
	return slices.DeleteFunc(trees, func(t *tree) bool { return byDir[t.held.dir] == nil })
}

// heldDir returns the held tree whose paths include p.
func (s *Syncer) heldDir(p string) (string, bool) {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if t := s.holds.trees[d]; t != nil {
			if _, ok := t.gens[p]; ok {
				return d, true
			}
		}
	}
	return "", false
}

// unstageUnplanned removes from a due tree's stage the files of paths this pass does not download: their
// object changed again (a newer generation is downloaded over it), or is gone.
func (s *Syncer) unstageUnplanned(t *tree, others []job) {
	planned := map[string]bool{}
	for _, d := range t.done {
		planned[d.a.Path] = true
	}
	for _, j := range others {
		planned[j.a.Path] = true
	}
	for p := range t.held.staged {
		if planned[p] {
			continue
		}
		if err := s.dir.Unstage(t.held.stagedPath(p)); err != nil {
			s.log.Warn("removing a staged file", "path", p, "err", err)
		}
		delete(t.held.staged, p)
	}
}

// downloadStaged downloads a tree's file into the tree's stage (on a worker), over what was staged before.
func (s *Syncer) downloadStaged(ctx context.Context, j job) (change, error) {
	return s.download(ctx, j.a.Path, j.tree.held.stagedPath(j.a.Path), j.a.Remote, j.stagedLocal, j.inStage)
}

// collect holds a tree's download outcome until the pass's trees are finished.
func (s *Syncer) collect(d done) {
	d.tree.done = append(d.tree.done, d)
	d.tree.left--
}

// finishTrees ends the pass's trees: a prefetch keeps what it staged; a due tree is applied whole or not
// at all. A tree whose jobs did not all run (the pass was cancelled) is applied nowhere.
func (s *Syncer) finishTrees(ctx context.Context, res *Result, trees []*tree) {
	for _, t := range trees {
		var cause error
		if t.left > 0 {
			cause = fmt.Errorf("%s: not all of its files were downloaded: %w", t.held.dir, context.Cause(ctx))
		}
		if !t.held.due {
			s.keepStaged(ctx, res, t)
			continue
		}
		s.finishTree(ctx, res, t, cause)
	}
}

// keepStaged records a prefetch's downloads in the held tree; a failed one backs off as any download.
func (s *Syncer) keepStaged(ctx context.Context, res *Result, t *tree) {
	for _, d := range t.done {
		if d.err != nil {
			s.outcome(ctx, res, d.a, d.err)
			continue
		}
		t.held.staged[d.a.Path] = d
	}
}

// finishTree applies a due tree if all its downloads succeeded (and cause is nil): a new directory in one
// rename, an existing one file by file in one burst and then its local deletes; each applied path is
// committed. Otherwise nothing of it is applied: a failed download keeps its own error, the others take
// the tree's (cause, or errTreeUnpublished) and stay staged, and they all back off together.
func (s *Syncer) finishTree(ctx context.Context, res *Result, t *tree, cause error) {
	h := t.held
	for _, d := range t.done {
		if cause != nil {
			break
		}
		switch {
		case d.err == nil:
		case isReplan(d.err) || ctx.Err() != nil: // everyone's: plan again, or stop
			cause = fmt.Errorf("%s: %w", h.dir, d.err)
		default:
			cause = fmt.Errorf("%w (%s: %w)", errTreeUnpublished, d.a.Path, d.err)
		}
	}
	if cause == nil && h.whole {
		if cause = s.publishWhole(ctx, res, t); cause == nil {
			return
		}
		if isReplan(cause) { // the app made the directory, or moved its parent: start again
			s.dropTree(h)
		}
	}
	if cause == nil {
		s.applyBurst(ctx, res, t)
		return
	}
	paths := make([]string, 0, len(t.done)+len(t.deletes))
	for _, d := range t.done {
		err := d.err
		if err == nil {
			err = cause
			h.staged[d.a.Path] = d
		}
		s.outcome(ctx, res, d.a, err)
		paths = append(paths, d.a.Path)
	}
	for _, j := range t.deletes {
		s.outcome(ctx, res, j.a, cause)
		paths = append(paths, j.a.Path)
	}
	s.holds.together(paths)
}

// publishWhole renames a new directory's stage into place and commits its files.
func (s *Syncer) publishWhole(ctx context.Context, res *Result, t *tree) error {
	h := t.held
	if h.stage == "" {
		s.dropTree(h) // nothing to publish (its objects are gone)
		return nil
	}
	if err := s.dir.Publish(h.stage, h.dir); err != nil {
		return err
	}
	h.stage = "" // published: nothing to discard
	s.log.Info("published a new directory whole", "dir", h.dir, "files", len(t.done))
	for _, d := range t.done {
		s.commit(d)
		s.outcome(ctx, res, d.a, nil)
	}
	s.dropTree(h)
	return nil
}

// applyBurst renames a tree's staged files into place one after the other, the new paths first (nothing
// of the old version requires them) and then the changed ones, and then carries out its local deletes;
// only then does it commit them: the window in which the app sees both versions is these renames and
// removes, nothing else.
func (s *Syncer) applyBurst(ctx context.Context, res *Result, t *tree) {
	h := t.held
	slices.SortStableFunc(t.done, func(a, b done) int {
		if a.hasLocal == b.hasLocal {
			return 0
		}
		if b.hasLocal {
			return -1
		}
		return 1
	})
	start := time.Now()
	published := make([]error, len(t.done))
	for i, d := range t.done {
		published[i] = s.dir.PublishFile(h.stagedPath(d.a.Path), d.a.Path, localExpect(d.job))
	}
	removed := make([]error, len(t.deletes))
	for i, j := range t.deletes {
		removed[i] = errBusy
		if !s.dir.InUse(j.a.Path) {
			removed[i] = s.dir.Remove(j.a.Path, j.local.Stamp)
		}
	}
	window := time.Since(start)
	for i, d := range t.done {
		if published[i] == nil {
			s.commit(d)
		}
		s.outcome(ctx, res, d.a, published[i])
	}
	for i, j := range t.deletes {
		if removed[i] == nil {
			s.commit(done{job: j, ch: s.deletedLocal(j.a)})
		}
		s.outcome(ctx, res, j.a, removed[i])
	}
	if len(t.done)+len(t.deletes) > 0 {
		s.log.Info("applied a tree's changes in one burst", "dir", h.dir, "files", len(t.done), "deleted", len(t.deletes),
			"window", window.Round(time.Microsecond))
	}
	s.dropTree(h)
}

// localExpect is what the local path of a job must still hold when its staged file replaces it.
func localExpect(j job) localfs.Expect {
	return localfs.Expect{Absent: !j.hasLocal, Stamp: j.local.Stamp}
}

// dropTree forgets a held tree and removes what is left of its stage.
func (s *Syncer) dropTree(t *heldTree) {
	for path := range t.gens {
		delete(s.holds.treeWait, path)
	}
	delete(s.holds.trees, t.dir)
	if t.stage != "" {
		if err := s.dir.Discard(t.stage); err != nil {
			s.log.Warn("removing a staged directory", "dir", t.dir, "stage", t.stage, "err", err)
		}
	}
}
