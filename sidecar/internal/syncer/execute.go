package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/version"
)

// errBusy: the app still has the file open for writing; the path is deferred with growing waits (busyWait)
// and looked at again then. It is never an error.
var errBusy = errors.New("file is open for writing")

// attemptsPerPass is how often a transient failure is retried within one pass before the path backs off
// (backoff.Default, per path, across passes), waiting actionRetry between attempts. These are filesync's
// own retries; below them the SDK retries each request (gcsstore.NewClient).
const attemptsPerPass = 3

var actionRetry = backoff.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}

// busyWait is how a file held open for writing is waited for: from the settle time, growing to 30 s.
func (s *Syncer) busyWait() backoff.Policy {
	return backoff.Policy{Initial: max(s.opt.Settle, 100*time.Millisecond), Max: 30 * time.Second}
}

// job is one action handed to a worker, with the local file it was planned from (workers never read the
// loop's index).
type job struct {
	a        plan.Action
	local    version.File
	hasLocal bool
}

// done is what a worker hands back: the job, what it changed, and how it went.
type done struct {
	job
	ch  change
	err error
}

// change is what one action did, for the loop to commit to the index and the base.
type change struct {
	base       *version.Base   // the new base entry
	dropBase   bool            // the base entry goes
	remote     *version.Object // the object now at the path
	dropRemote bool            // the object is gone
	local      *version.File   // the local file now at the path
	dropLocal  bool            // the local file is gone
	written    bool            // a file was written: syncfs before the base that records it is saved
	bytes      int64           // bytes moved
}

// jobOf prepares a's job from the index.
func (s *Syncer) jobOf(a plan.Action) job {
	l, ok := s.idx.local[a.Path]
	return job{a: a, local: l, hasLocal: ok}
}

// execute runs the plan's actions, transfers in parallel (--transfers): deletes first, so that a file can
// take the place of a directory whose files were deleted (and the reverse) in one pass. Workers only do
// I/O; this goroutine (the loop) commits each outcome as it arrives (commit, outcome). In flush mode
// (shutdown) the open-file check is skipped and an upload refused by a precondition is preserved as a
// conflict copy.
func (s *Syncer) execute(ctx context.Context, p plan.Plan, flush bool) Result {
	res := Result{Plan: p}
	var deletes, others []job
	for _, a := range p.Actions {
		if a.Op == plan.DeleteLocal || a.Op == plan.DeleteRemote {
			deletes = append(deletes, s.jobOf(a))
		} else {
			others = append(others, s.jobOf(a))
		}
	}
	stop := s.beginRestore(ctx, p)
	defer stop()
	parallel := s.opt.Transfers
	if !s.Ready() {
		parallel = s.opt.RestoreTransfers
	}
	for _, batch := range [][]job{deletes, others} {
		if len(batch) == 0 {
			continue
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
		s.drain(ctx, &res, s.workers(ctx, work, min(parallel, len(batch)), flush))
	}
	return res
}

// workers starts n workers on jobs and returns their outcomes; the channel closes when jobs is closed
// and every job is done.
func (s *Syncer) workers(ctx context.Context, jobs <-chan job, n int, flush bool) <-chan done {
	out := make(chan done)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ch, err := s.do(ctx, j, flush)
				out <- done{job: j, ch: ch, err: err}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

// drain commits outcomes as they arrive, on the loop's goroutine.
func (s *Syncer) drain(ctx context.Context, res *Result, outcomes <-chan done) {
	for d := range outcomes {
		s.beat()
		s.commit(d)
		s.outcome(ctx, res, d.a, d.err)
	}
}

// commit applies what one action changed to the index, the base and the metrics. Only the loop calls it.
func (s *Syncer) commit(d done) {
	c, path := d.ch, d.a.Path
	if c.base != nil {
		s.idx.setBase(path, *c.base)
	}
	if c.dropBase {
		s.idx.dropBase(path)
	}
	if c.remote != nil {
		s.idx.setRemote(path, *c.remote)
	}
	if c.dropRemote {
		s.idx.dropRemote(path)
	}
	if c.local != nil {
		s.idx.setLocal(path, *c.local)
		delete(s.fresh, path)
	}
	if c.dropLocal {
		s.idx.dropLocal(path)
	}
	s.written = s.written || c.written
	if d.err != nil {
		return
	}
	switch d.a.Op {
	case plan.Upload:
		s.m.Uploads.Inc()
		s.m.Bytes.WithLabelValues("upload").Add(float64(c.bytes))
	case plan.Download, plan.Conflict:
		if c.local != nil {
			s.m.Downloads.Inc()
			s.m.Bytes.WithLabelValues("download").Add(float64(c.bytes))
		}
	case plan.DeleteRemote:
		s.m.Deletes.WithLabelValues("local").Inc()
	case plan.DeleteLocal:
		s.m.Deletes.WithLabelValues("remote").Inc()
	}
}

// outcome records how one action went in res and the failure table.
func (s *Syncer) outcome(ctx context.Context, res *Result, a plan.Action, err error) {
	if err != nil {
		res.Unfinished = append(res.Unfinished, a.Path)
	}
	outgoing := a.Op == plan.Upload || a.Op == plan.Conflict
	switch {
	case err == nil:
		res.Done++
		if a.Op == plan.DeleteLocal || a.Op == plan.DeleteRemote {
			res.Deleted++
		}
		delete(s.failures, a.Path)
	case errors.Is(err, errBusy):
		next := s.recordFailure(a.Path, failure{busy: true, outgoing: outgoing, err: err}, s.busyWait())
		s.log.Debug("waiting for the app to close the file", "op", a.Op.String(), "path", a.Path, "retry_in", next.Round(time.Millisecond))
	case isReplan(err):
		res.Replan = true
		s.m.Preconditions.Inc()
		s.log.Info("re-planning: changed by someone else meanwhile", "op", a.Op.String(), "path", a.Path, "err", err)
	case ctx.Err() != nil:
		res.Failed++
	case s.skipUntilChanged(a, err):
		delete(s.failures, a.Path)
	default:
		res.Failed++
		s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
		next := s.recordFailure(a.Path, failure{outgoing: outgoing, err: err}, backoff.Default)
		s.log.Error("sync action failed", "op", a.Op.String(), "path", a.Path, "err", err, "retry_in", next.Round(time.Millisecond))
	}
}

// skipUntilChanged leaves a path alone until its object changes when retrying cannot help: the object
// would have to be written through a symlink, in place of a directory that holds files, or its bytes never
// match its checksum. It says so once and reports whether it applied.
func (s *Syncer) skipUntilChanged(a plan.Action, err error) bool {
	if a.Op != plan.Download && a.Op != plan.Conflict && a.Op != plan.DeleteLocal {
		return false
	}
	var reason, msg string
	switch {
	case errors.Is(err, localfs.ErrSymlink):
		reason, msg = "symlink", "skipping an object under a symlinked local directory: nothing is written through a symlink"
	case errors.Is(err, localfs.ErrClash):
		reason, msg = "clash", "skipping an object whose local path is taken by a directory with files (or under a file): the local files win until the object changes"
	case errors.Is(err, localfs.ErrCorrupt):
		reason, msg = "corrupt", "giving up on an object whose bytes never match its checksum (tried again when it changes)"
	default:
		return false
	}
	s.skipped[a.Path] = a.Remote.Generation
	if reason == "symlink" {
		if s.firstUnsafe("skip:" + a.Path) {
			s.log.Warn(msg, "path", a.Path, "err", err)
		}
		return true
	}
	if s.firstSkip("skip:"+a.Path, reason) {
		s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
		s.log.Warn(msg, "path", a.Path, "generation", a.Remote.Generation, "err", err)
	}
	return true
}

func metricOp(op plan.Op) string {
	switch op {
	case plan.DeleteRemote:
		return "delete_remote"
	case plan.DeleteLocal:
		return "delete_local"
	}
	return op.String()
}

// recordFailure backs path off by policy (one more attempt than last time) and returns the wait.
func (s *Syncer) recordFailure(path string, f failure, policy backoff.Policy) time.Duration {
	f.n = s.failures[path].n + 1
	d := policy.Delay(f.n)
	f.next = s.now().Add(d)
	s.failures[path] = f
	return d
}

// do runs one action on a worker, retrying transient failures a few times with jittered backoff. It
// does I/O only and returns what changed; the loop commits it.
func (s *Syncer) do(ctx context.Context, j job, flush bool) (change, error) {
	var ch change
	var err error
	for attempt := 1; attempt <= attemptsPerPass; attempt++ {
		ch, err = s.doOnce(ctx, j, flush)
		if err == nil || errors.Is(err, errBusy) || isReplan(err) || ctx.Err() != nil {
			return ch, err
		}
		if attempt < attemptsPerPass && !backoff.Sleep(ctx, actionRetry.Delay(attempt)) {
			return ch, err
		}
	}
	return ch, err
}

func (s *Syncer) doOnce(ctx context.Context, j job, flush bool) (change, error) {
	a, local := j.a, j.local
	switch a.Op {
	case plan.Upload:
		return s.upload(ctx, a, local, flush)
	case plan.Download:
		if j.hasLocal && s.dir.InUse(a.Path) {
			return change{}, errBusy // never replace a file the app is writing: its later writes would be lost
		}
		return s.download(ctx, a.Path, a.Remote, local, j.hasLocal)
	case plan.Conflict:
		if !flush && s.dir.InUse(a.Path) {
			return change{}, errBusy
		}
		if err := s.preserveConflict(ctx, a.Path, local); err != nil {
			return change{}, err
		}
		if flush {
			return change{}, nil
		}
		return s.download(ctx, a.Path, a.Remote, local, j.hasLocal)
	case plan.DeleteRemote:
		if err := s.store.Delete(ctx, a.Path, a.IfGeneration); err != nil {
			return change{}, err
		}
		s.log.Info("deleted remote object (deleted locally)", "path", a.Path)
		return change{dropBase: true, dropRemote: true}, nil
	case plan.DeleteLocal:
		if s.dir.InUse(a.Path) {
			return change{}, errBusy
		}
		if err := s.dir.Remove(a.Path, local.Stamp); err != nil {
			return change{}, err
		}
		s.log.Info("deleted local file (deleted remotely)", "path", a.Path)
		return change{dropBase: true, dropLocal: true}, nil
	case plan.RecordBase:
		return change{base: &version.Base{Object: a.Remote, ModTime: local.ModTime}}, nil
	case plan.ForgetBase:
		return change{dropBase: true}, nil
	}
	return change{}, fmt.Errorf("unknown op %v", a.Op)
}

func (s *Syncer) upload(ctx context.Context, a plan.Action, local version.File, flush bool) (change, error) {
	if !flush && s.dir.InUse(a.Path) {
		return change{}, errBusy
	}
	fh, err := s.dir.OpenFile(a.Path, local.Stamp)
	if err != nil {
		return change{}, err
	}
	defer fh.Close()
	mtime := time.Unix(0, local.ModTime) // stored in whole seconds; the local file takes the same below
	o, err := s.store.Upload(ctx, a.Path, s.progress(fh), local.Size, local.CRC32C, mtime, a.IfGeneration)
	r := o.Object
	if errors.Is(err, gcsstore.ErrMismatch) {
		// The bucket holds something other than what was sent (a server that does not check CRC32C, a file
		// rewritten during the upload). Record what is really there, with no local stamp, so the next pass
		// re-hashes the file and uploads it again over that generation.
		return change{base: &version.Base{Object: r}, remote: &r}, err
	}
	if err != nil {
		if flush && isReplan(err) {
			// Shutting down, so there is no later pass to merge in: keep this version as a conflict copy.
			if cerr := s.preserveConflict(ctx, a.Path, local); cerr != nil {
				return change{}, cerr
			}
			return change{}, nil
		}
		return change{}, err
	}
	ch := change{remote: &r, bytes: o.Size}
	stamp := local.ModTime
	if st, err := s.dir.Stat(a.Path); err != nil || st != local.Stamp {
		stamp = 0 // changed while it was uploaded: the next pass hashes it again and compares
	} else if o.ModTime != 0 && local.ModTime != o.ModTime*int64(time.Second) {
		// The stored mtime is whole seconds: the file takes it, so this replica serves the ETag and
		// Last-Modified the others will.
		stamp = 0
		if st, err := s.dir.SetModTime(a.Path, local.Stamp, time.Unix(o.ModTime, 0)); err == nil {
			stamp = st.ModTime
			ch.local = &version.File{Stamp: st, CRC32C: local.CRC32C}
		}
	}
	ch.base = &version.Base{Object: r, ModTime: stamp}
	s.log.Debug("uploaded", "path", a.Path, "generation", o.Generation, "bytes", o.Size)
	return ch, nil
}

func (s *Syncer) download(ctx context.Context, path string, r version.Object, local version.File, hasLocal bool) (change, error) {
	rd, err := s.store.Open(ctx, path, r.Generation)
	if err != nil {
		return change{}, err
	}
	defer rd.Close()
	expect := localfs.Expect{Absent: !hasLocal, Stamp: local.Stamp}
	st, err := s.dir.WriteAtomic(path, beatReader{r: rd, beat: s.beat, moved: s.countRestoredBytes}, rd.Object.Size, rd.Object.CRC32C,
		unixTime(r.ModTime), expect)
	if err != nil {
		return change{}, err
	}
	s.countRestored()
	o := rd.Object
	o.ModTime = r.ModTime // a media read does not tell it; the listing did
	s.log.Debug("downloaded", "path", path, "generation", o.Generation, "bytes", o.Size)
	return change{
		base:    &version.Base{Object: o.Object, ModTime: st.ModTime},
		remote:  &o.Object,
		local:   &version.File{Stamp: st, CRC32C: o.CRC32C},
		written: true, bytes: o.Size,
	}, nil
}

// preserveConflict uploads the local version to .filesync/conflicts/<path>.<pod>.<unix-time>.
func (s *Syncer) preserveConflict(ctx context.Context, path string, local version.File) error {
	fh, err := s.dir.OpenFile(path, local.Stamp)
	if err != nil {
		return err
	}
	defer fh.Close()
	name := fmt.Sprintf("%s/conflicts/%s.%s.%d", filter.InternalDir, path, s.opt.Pod, s.now().Unix())
	if _, err := s.store.Upload(ctx, name, fh, local.Size, local.CRC32C, time.Unix(0, local.ModTime), 0); err != nil {
		return fmt.Errorf("preserve conflict copy: %w", err)
	}
	s.m.Conflicts.Inc()
	s.log.Warn("conflict: the remote version keeps the path; the local one is preserved",
		"path", path, "conflict_copy", s.store.Name(name))
	return nil
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
