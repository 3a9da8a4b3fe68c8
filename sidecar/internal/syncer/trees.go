package syncer

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/plan"
)

// New directories arrive whole (docs/design.md): the downloads of one pass under a directory this replica
// does not have (the top-most missing folder of their paths) are written into a stage in filesync's own
// folder and renamed into place in one rename once every one of them is there and checked; only then are
// they committed. If one fails, nothing of the directory is published, and its files back off together.
// The restore before ready writes file by file: the app does not run yet.

// errTreeUnpublished: the file was downloaded, but another file of its new directory failed, so none was
// published; it backs off with them.
var errTreeUnpublished = errors.New("not published: another file of its new directory failed")

// tree is a directory new to this replica that one pass downloads files into.
type tree struct {
	dir string // the top-most missing folder, under the root
	// once makes the stage, in the first worker that needs it; stage and err are read by the loop only
	// after all of the tree's jobs are done.
	once  sync.Once
	stage string
	err   error
	left  int    // the loop's: the tree's jobs not done yet
	held  []done // the loop's: their outcomes, held until the tree is published or given up
}

// groupTrees gives each download under a missing folder the tree of its top-most missing folder (newDirs,
// as the hold step groups them), once ready. Downloads of paths that have a local file, or whose folders
// all exist, are left as they are.
func (s *Syncer) groupTrees(jobs []job) []*tree {
	if !s.Ready() {
		return nil
	}
	actions := make([]plan.Action, len(jobs))
	for i, j := range jobs {
		actions[i] = j.a
	}
	var trees []*tree
	treeOf := map[string]*tree{}
	for d, paths := range s.newDirs(actions) {
		t := &tree{dir: d, left: len(paths)}
		trees = append(trees, t)
		for _, p := range paths {
			treeOf[p] = t
		}
	}
	for i := range jobs {
		jobs[i].tree = treeOf[jobs[i].a.Path]
	}
	return trees
}

// downloadStaged downloads a tree's file into the tree's stage (on a worker).
func (s *Syncer) downloadStaged(ctx context.Context, j job) (change, error) {
	t := j.tree
	t.once.Do(func() { t.stage, t.err = s.dir.Stage() })
	if t.err != nil {
		return change{}, t.err
	}
	return s.download(ctx, j.a.Path, t.stage+j.a.Path[len(t.dir):], j.a.Remote, j.local, false)
}

// collect holds a tree's outcome; with the tree's last, the tree is published or given up.
func (s *Syncer) collect(ctx context.Context, res *Result, d done) {
	t := d.tree
	t.held = append(t.held, d)
	t.left--
	if t.left == 0 {
		s.finishTree(ctx, res, t, nil)
	}
}

// abandonTrees gives up the trees whose jobs did not all run (the pass was cancelled).
func (s *Syncer) abandonTrees(ctx context.Context, res *Result, trees []*tree) {
	for _, t := range trees {
		if t.left > 0 {
			t.left = 0
			s.finishTree(ctx, res, t, fmt.Errorf("%s: not all of its files were downloaded: %w", t.dir, context.Cause(ctx)))
		}
	}
}

// finishTree publishes t in one rename if all its downloads succeeded (and cause is nil), then commits
// them; otherwise it removes the stage and nothing of t is committed: a failed download keeps its own
// error, and the others take the tree's (the cause, or errTreeUnpublished: they back off with it).
func (s *Syncer) finishTree(ctx context.Context, res *Result, t *tree, cause error) {
	if cause == nil {
		for _, d := range t.held {
			switch {
			case d.err == nil:
			case isReplan(d.err) || ctx.Err() != nil: // everyone's: plan again, or stop
				cause = fmt.Errorf("%s: %w", t.dir, d.err)
			default:
				cause = fmt.Errorf("%w (%s: %w)", errTreeUnpublished, d.a.Path, d.err)
			}
			if cause != nil {
				break
			}
		}
	}
	if cause == nil {
		if cause = s.dir.Publish(t.stage, t.dir); cause == nil {
			s.log.Info("published a new directory whole", "dir", t.dir, "files", len(t.held))
			for _, d := range t.held {
				s.commit(d)
				s.outcome(ctx, res, d.a, nil)
			}
			return
		}
	}
	if t.stage != "" {
		if err := s.dir.Discard(t.stage); err != nil {
			s.log.Warn("removing a staged directory", "dir", t.dir, "stage", t.stage, "err", err)
		}
	}
	paths := make([]string, 0, len(t.held))
	for _, d := range t.held {
		err := d.err
		if err == nil {
			err = cause
		}
		s.outcome(ctx, res, d.a, err)
		paths = append(paths, d.a.Path)
	}
	s.holds.together(paths)
}

// newTreeHoldMax bounds how long a new directory waits for its objects to stop coming, in NewTreeQuiets
// (30 s for the default 1 s): then it is published with what it has, and the rest follows file by file.
const newTreeHoldMax = 30

// newTree is a directory new to this replica whose objects have been seen coming (holds.trees).
type newTree struct {
	first, grew time.Time       // when its first object was planned, and its last new one
	paths       map[string]bool // its objects planned so far
}

// holdNewTrees (step 3, once ready, with Options.NewTreeQuiet) takes out of plan p the downloads under a
// directory new to this replica while its objects are still coming (a writer uploading a plugin: with
// notifications each object is its own event), so that the directory is published whole, with every file,
// once none has come for NewTreeQuiet, or after newTreeHoldMax from the first. The held paths wait in
// holds.treeWait, all until the same time, so that one pass plans them again together.
func (s *Syncer) holdNewTrees(p *plan.Plan) {
	if s.opt.NewTreeQuiet <= 0 || !s.Ready() {
		return
	}
	now := s.now()
	byDir := s.newDirs(p.Actions)
	held := map[string]bool{}
	for d, paths := range byDir {
		t := s.holds.trees[d]
		if t == nil {
			t = &newTree{first: now, grew: now, paths: map[string]bool{}}
			s.holds.trees[d] = t
		}
		for _, path := range paths {
			if !t.paths[path] {
				t.paths[path], t.grew = true, now
			}
		}
		wake := t.wake(s.opt.NewTreeQuiet)
		if !wake.After(now) {
			s.dropNewTree(d) // published by this pass (or given up by it: a later pass starts again)
			continue
		}
		for path := range t.paths {
			held[path] = true
			s.holds.treeWait[path] = wake
		}
	}
	for d, t := range s.holds.trees { // no object planned this pass and the wait is over: gone
		if _, planned := byDir[d]; !planned && !t.wake(s.opt.NewTreeQuiet).After(now) {
			s.dropNewTree(d)
		}
	}
	if len(held) > 0 {
		p.Actions = slices.DeleteFunc(p.Actions, func(a plan.Action) bool { return held[a.Path] })
	}
}

// newDirs groups the downloads of actions whose folders do not all exist locally by their top-most
// missing folder.
func (s *Syncer) newDirs(actions []plan.Action) map[string][]string {
	byDir := map[string][]string{}
	top := map[string]string{} // a path's folder -> its top-most missing folder ("": none)
	for _, a := range actions {
		parent := path.Dir(a.Path)
		if _, local := s.idx.local[a.Path]; a.Op != plan.Download || local || parent == "." {
			continue
		}
		d, ok := top[parent]
		if !ok {
			d, _ = s.dir.TopMissingDir(a.Path)
			top[parent] = d
		}
		if d != "" {
			byDir[d] = append(byDir[d], a.Path)
		}
	}
	return byDir
}

// wake is when t may be published: quiet after its last new object, or newTreeHoldMax after its first.
func (t *newTree) wake(quiet time.Duration) time.Time {
	return earliest(t.grew.Add(quiet), t.first.Add(newTreeHoldMax*quiet))
}

func (s *Syncer) dropNewTree(d string) {
	for path := range s.holds.trees[d].paths {
		delete(s.holds.treeWait, path)
	}
	delete(s.holds.trees, d)
}
