package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Step 4 of a pass: the plan's actions run on worker goroutines, which do I/O only and hand back what
// they changed; the loop's goroutine commits each outcome as it arrives (commit.go).

// errBusy: the app still has the file open for writing; the path is deferred with growing waits (busyWait)
// and looked at again then. It is never an error.
var errBusy = errors.New("file is open for writing")

// attemptsPerPass is how often a transient failure is retried within one pass before the path backs off
// (backoff.Default, per path, across passes), waiting actionRetry between attempts. These are filesync's
// own retries; below them the SDK retries each request (gcsstore.NewClient).
const attemptsPerPass = 3

var actionRetry = backoff.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}

// job is one action handed to a worker, with the local file it was planned from (workers never read the
// loop's index).
type job struct {
	a        plan.Action
	local    snapshot.File
	hasLocal bool
	tree     *tree // a download of a held tree: written to its stage (trees.go)
	// stagedLocal is the file staged before at the path (inStage), which a newer generation replaces.
	stagedLocal snapshot.File
	inStage     bool
}

// done is what a worker hands back: the job, what it changed, and how it went.
type done struct {
	job
	ch  change
	err error
}

// change is what one action did, for the loop to commit to the index and the base.
type change struct {
	base       *snapshot.Base   // the new base entry
	dropBase   bool             // the base entry goes
	remote     *snapshot.Object // the object now at the path
	dropRemote bool             // the object is gone
	local      *snapshot.File   // the local file now at the path
	dropLocal  bool             // the local file is gone
	written    bool             // a file was written: syncfs before the base that records it is saved
	bytes      int64            // bytes moved
}

// transferrer runs actions on workers, for one plan (or the streaming restore).
type transferrer struct {
	s *Syncer
	// flush: shutdown. The open-file check is skipped for uploads and conflicts, a conflict only preserves
	// the local version, and an upload refused by a precondition is preserved as a conflict copy.
	flush bool
}

// transfer runs the plan's actions, in parallel (--transfers, or --restore-transfers before ready), in
// three batches: deletes first, so that a file can take the place of a directory whose files were deleted
// (and the reverse) in one pass; then the transfers; then the remote deletes of a folder's objects that an
// uploaded file replaces, once that upload succeeded, so that the bucket never holds neither (another
// replica listing then would see the folder's files vanish with nothing in their place).
func (s *Syncer) transfer(ctx context.Context, p plan.Plan, flush bool) Result {
	res := Result{Plan: p}
	t := transferrer{s: s, flush: flush}
	// Recording a lazy object remote-only moves nothing: committed here, first, without a job of its own
	// (the whole listing after a lazy restore plans one for every media object: 100,000 jobs would be
	// 15 MB), all at once (index.setRemoteOnly), at the object the plan was made from: nothing has changed
	// the view since.
	if s.idx.setRemoteOnly(p.RemoteOnly) {
		s.log.Debug("recorded lazy objects remote-only: the base took the listing's objects as they were", "objects", len(p.RemoteOnly))
	}
	s.fill.pushEach(func(yield func(string, snapshot.Object)) {
		for _, path := range p.RemoteOnly {
			r, _ := s.idx.remote.Get(path)
			yield(path, r)
		}
	})
	for _, path := range p.RemoteOnly {
		r, _ := s.idx.remote.Get(path)
		s.outcome(ctx, &res, plan.Action{Op: plan.RemoteOnly, Path: path, Remote: r}, nil)
	}
	deletes, others, replaced := s.batches(p)
	trees := s.groupTrees(&deletes, &others)
	stop := s.beginRestore(ctx, p)
	defer stop()
	parallel := s.opt.Transfers
	if !s.Ready() {
		parallel = s.opt.RestoreTransfers
	}
	run := func(batch []job) {
		if len(batch) == 0 {
			return
		}
		work := make(chan job)
		go func() {
			defer close(work)
			for _, j := range batch {
				select {
				case work <- j:
				case <-ctx.Done():
					return
				}
			}
		}()
		s.drain(ctx, &res, t.workers(ctx, work, min(parallel, len(batch))))
	}
	run(deletes)
	run(others)
	s.finishTrees(ctx, &res, trees)
	run(afterUploads(replaced, res.Unfinished))
	return res
}

// batches sorts the plan's actions into jobs: deletes, transfers, and the remote deletes under a path
// the plan uploads (a file that replaced a folder), by that path.
func (s *Syncer) batches(p plan.Plan) (deletes, others []job, replaced map[string][]job) {
	uploads := map[string]bool{}
	for _, a := range p.Actions {
		if a.Op == plan.Upload {
			uploads[a.Path] = true
		}
	}
	replaced = map[string][]job{}
	for _, a := range p.Actions {
		l, ok := s.idx.local[a.Path]
		j := job{a: a, local: l, hasLocal: ok}
		switch {
		case a.Op == plan.DeleteRemote && uploadedAbove(a.Path, uploads) != "":
			up := uploadedAbove(a.Path, uploads)
			replaced[up] = append(replaced[up], j)
		case a.Op == plan.DeleteLocal || a.Op == plan.DeleteRemote:
			deletes = append(deletes, j)
		default:
			others = append(others, j)
		}
	}
	return deletes, others, replaced
}

// uploadedAbove returns the folder of path that uploads holds, or "".
func uploadedAbove(path string, uploads map[string]bool) string {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' && uploads[path[:i]] {
			return path[:i]
		}
	}
	return ""
}

// afterUploads returns the replaced folders' deletes whose upload finished (is not in unfinished): the
// others wait for a later pass, which plans them again.
func afterUploads(replaced map[string][]job, unfinished []string) []job {
	failed := map[string]bool{}
	for _, p := range unfinished {
		failed[p] = true
	}
	var out []job
	for up, jobs := range replaced {
		if !failed[up] {
			out = append(out, jobs...)
		}
	}
	return out
}

// workers starts n workers on jobs and returns their outcomes; the channel closes when jobs is closed
// and every job is done.
func (t transferrer) workers(ctx context.Context, jobs <-chan job, n int) <-chan done {
	out := make(chan done)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for j := range jobs {
				ch, err := t.do(ctx, j)
				out <- done{job: j, ch: ch, err: err}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

// waitsForClose says whether an action must wait while the app has the file open for writing: an upload
// or a conflict copy would publish half a file (unless flushing: the app has stopped), a download would
// replace a file whose later writes would be lost, a delete would delete it under the app.
func (t transferrer) waitsForClose(j job) bool {
	switch j.a.Op {
	case plan.Upload, plan.Conflict:
		return !t.flush
	case plan.Download:
		return j.hasLocal
	case plan.DeleteLocal:
		return true
	}
	return false
}

// do runs one action on a worker, retrying transient failures a few times with jittered backoff. It
// does I/O only and returns what changed; the loop commits it.
func (t transferrer) do(ctx context.Context, j job) (change, error) {
	var ch change
	var err error
	for attempt := 1; attempt <= attemptsPerPass; attempt++ {
		if t.waitsForClose(j) && t.s.dir.InUse(j.a.Path) {
			return change{}, errBusy
		}
		ch, err = t.doOnce(ctx, j)
		if err == nil || isReplan(err) || ctx.Err() != nil || !retryable(err) {
			return ch, err
		}
		if attempt < attemptsPerPass && !backoff.Sleep(ctx, actionRetry.Delay(attempt)) {
			return ch, err
		}
	}
	return ch, err
}

func (t transferrer) doOnce(ctx context.Context, j job) (change, error) {
	s, a, local := t.s, j.a, j.local
	switch a.Op {
	case plan.Upload:
		return t.upload(ctx, a, local)
	case plan.Download:
		if j.tree != nil {
			return s.downloadStaged(ctx, j)
		}
		return s.download(ctx, a.Path, a.Path, a.Remote, local, j.hasLocal)
	case plan.Conflict:
		if err := s.preserveConflict(ctx, a.Path, local); err != nil || t.flush {
			return change{}, err
		}
		return s.download(ctx, a.Path, a.Path, a.Remote, local, j.hasLocal)
	case plan.DeleteRemote:
		if err := s.store.Delete(ctx, a.Path, a.IfGeneration); err != nil {
			return change{}, err
		}
		s.log.Info("deleted remote object (deleted locally)", "path", a.Path)
		return change{dropBase: true, dropRemote: true}, nil
	case plan.DeleteLocal:
		return s.deleteLocal(a, local)
	case plan.RecordBase:
		return change{base: &snapshot.Base{Object: a.Remote, ModTime: local.ModTime}}, nil
	case plan.Touch:
		// Same bytes, the object's mtime: no download. The new stamp is the base's and the index's, so the
		// change this makes locally is never taken for a local edit.
		st, err := s.dir.SetModTime(a.Path, local.Stamp, a.Remote.ModTime)
		if err != nil {
			return change{}, err
		}
		s.log.Debug("set the object's mtime", "path", a.Path, "mtime", a.Remote.ModTime)
		return change{base: &snapshot.Base{Object: a.Remote, ModTime: st.ModTime}, remote: &a.Remote,
			local: &snapshot.File{Stamp: st, CRC32C: local.CRC32C}}, nil
	case plan.ForgetBase:
		return change{dropBase: true}, nil
	}
	return change{}, fmt.Errorf("unknown op %v", a.Op)
}

func (t transferrer) upload(ctx context.Context, a plan.Action, local snapshot.File) (change, error) {
	s := t.s
	fh, err := s.dir.OpenFile(a.Path, local.Stamp)
	if err != nil {
		return change{}, err
	}
	defer fh.Close()
	mtime := time.Unix(0, local.ModTime) // stored to the nanosecond; the local file takes what was stored below
	o, err := s.store.Upload(ctx, a.Path, gcsstore.Content{R: s.progress(fh), Size: local.Size, CRC32C: local.CRC32C, ModTime: mtime},
		a.IfGeneration)
	r := o.Object
	switch {
	case errors.Is(err, gcsstore.ErrMismatch):
		// The bucket holds something other than what was sent (a server that does not check CRC32C, a file
		// rewritten during the upload). Record what is really there, with no local stamp, so the next pass
		// re-hashes the file and uploads it again over that generation.
		return change{base: &snapshot.Base{Object: r}, remote: &r}, err
	case err != nil && t.flush && isReplan(err):
		// Shutting down, so there is no later pass to merge in: keep this version as a conflict copy.
		return change{}, s.preserveConflict(ctx, a.Path, local)
	case err != nil:
		return change{}, err
	}
	ch := change{remote: &r, bytes: o.Size}
	stamp := local.ModTime
	if st, err := s.dir.Stat(a.Path); err != nil || st != local.Stamp {
		stamp = 0 // changed while it was uploaded: the next pass hashes it again and compares
	} else if !o.ModTime.IsZero() && local.ModTime != o.ModTime.UnixNano() {
		// The stored mtime is not the file's (a server that dropped rclone's mtime key keeps whole
		// seconds): the file takes it, so this replica serves the ETag and Last-Modified the others will.
		stamp = 0
		if st, err := s.dir.SetModTime(a.Path, local.Stamp, o.ModTime); err == nil {
			stamp = st.ModTime
			ch.local = &snapshot.File{Stamp: st, CRC32C: local.CRC32C}
		}
	}
	ch.base = &snapshot.Base{Object: r, ModTime: stamp}
	s.log.Debug("uploaded", "path", a.Path, "generation", o.Generation, "bytes", o.Size)
	return ch, nil
}

// deleteLocal deletes the local file of a (if it is still local) and the directories it leaves empty, as a
// new pod would not have them: rmdir, nearest first, stopping at one that holds anything (the app's) or is
// excluded.
func (s *Syncer) deleteLocal(a plan.Action, local snapshot.File) (change, error) {
	if err := s.dir.Remove(a.Path, local.Stamp); err != nil {
		return change{}, err
	}
	return s.deletedLocal(a), nil
}

// deletedLocal is what follows a local delete: the log line, and the directories it left empty removed.
func (s *Syncer) deletedLocal(a plan.Action) change {
	s.log.Info("deleted local file ("+a.Reason+")", "path", a.Path)
	if dirs := s.dir.RemoveEmptyParents(a.Path, s.filter.Excluded); len(dirs) > 0 {
		s.log.Debug("removed emptied directories", "path", a.Path, "dirs", dirs)
	}
	return change{dropBase: true, dropLocal: true}
}

// download writes the object at path to the local path to (path itself, or its place in a stage).
func (s *Syncer) download(ctx context.Context, path, to string, r snapshot.Object, local snapshot.File, hasLocal bool) (change, error) {
	rd, err := s.store.Open(ctx, path, r.Generation)
	if err != nil {
		return change{}, err
	}
	defer rd.Close()
	expect := localfs.Expect{Absent: !hasLocal, Stamp: local.Stamp}
	st, err := s.dir.WriteAtomic(to, beatReader{r: rd, beat: s.beat, moved: s.countRestoredBytes}, rd.Object.Size, rd.Object.CRC32C,
		r.ModTime, expect)
	if err != nil {
		return change{}, err
	}
	s.countRestored()
	o := rd.Object
	o.ModTime = r.ModTime // a media read does not tell it; the listing did
	s.log.Debug("downloaded", "path", path, "generation", o.Generation, "bytes", o.Size)
	return change{
		base:    &snapshot.Base{Object: o.Object, ModTime: st.ModTime},
		remote:  &o.Object,
		local:   &snapshot.File{Stamp: st, CRC32C: o.CRC32C},
		written: true, bytes: o.Size,
	}, nil
}

// progress wraps a transfer's reader so that the heartbeat moves with the bytes: a long transfer is
// progress, not a hung loop.
func (s *Syncer) progress(r io.Reader) io.Reader { return beatReader{r: r, beat: s.beat} }

type beatReader struct {
	r     io.Reader
	beat  func()
	moved func(n int) // optional: also told how many bytes moved
}

func (b beatReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.beat()
		if b.moved != nil {
			b.moved(n)
		}
	}
	return n, err
}

// retryable reports whether err may go away if the action is tried again within the pass: not a rate limit
// (GCS allows about one write per second to an object: the path backs off for at least rateLimitWait, and
// its latest version goes then) nor a refusal for good (a retention policy or an object hold).
func retryable(err error) bool {
	return !errors.Is(err, gcsstore.ErrRateLimited) && !errors.Is(err, gcsstore.ErrRetained)
}

// isReplan reports whether err means "the world changed under this action": plan again, no backoff.
func isReplan(err error) bool {
	return errors.Is(err, gcsstore.ErrPrecondition) || errors.Is(err, localfs.ErrChanged) ||
		errors.Is(err, gcsstore.ErrShortSource) || errors.Is(err, gcsstore.ErrNotFound)
}
