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
	"github.com/filesync/filesync/sidecar/internal/state"
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

// execute runs the plan's actions, transfers in parallel (--transfers): deletes first, so that a file can
// take the place of a directory whose files were deleted (and the reverse) in one pass. In flush mode
// (shutdown) the open-file check is skipped and an upload refused by a precondition is preserved as a
// conflict copy.
func (s *Syncer) execute(ctx context.Context, p plan.Plan, snap snapshot, flush bool) Result {
	res := Result{Plan: p}
	var deletes, others []plan.Action
	for _, a := range p.Actions {
		if a.Op == plan.DeleteLocal || a.Op == plan.DeleteRemote {
			deletes = append(deletes, a)
		} else {
			others = append(others, a)
		}
	}
	stop := s.beginRestore(ctx, p)
	defer stop()
	parallel := s.opt.Transfers
	if !s.Ready() {
		parallel = s.opt.RestoreTransfers
	}
	var mu sync.Mutex
	for _, batch := range [][]plan.Action{deletes, others} {
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for _, a := range batch {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				s.carryOut(ctx, &res, &mu, a, snap, flush)
			}()
		}
		wg.Wait()
	}
	return res
}

// carryOut runs one action and records its outcome in res, under mu (transfers run in parallel).
func (s *Syncer) carryOut(ctx context.Context, res *Result, mu *sync.Mutex, a plan.Action, snap snapshot, flush bool) {
	err := s.do(ctx, a, snap, flush)
	s.beat()
	mu.Lock()
	defer mu.Unlock()
	s.outcome(ctx, res, a, err)
}

// outcome records how one action went. Call with the result's lock held.
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
		s.clearFailure(a.Path)
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
		s.clearFailure(a.Path)
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.mu.Lock()
	defer s.mu.Unlock()
	f.n = s.failures[path].n + 1
	d := policy.Delay(f.n)
	f.next = s.now().Add(d)
	s.failures[path] = f
	return d
}

func (s *Syncer) clearFailure(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, path)
}

// do runs one action, retrying transient failures a few times with jittered backoff.
func (s *Syncer) do(ctx context.Context, a plan.Action, snap snapshot, flush bool) error {
	var err error
	for attempt := 1; attempt <= attemptsPerPass; attempt++ {
		err = s.doOnce(ctx, a, snap, flush)
		if err == nil || errors.Is(err, errBusy) || isReplan(err) || ctx.Err() != nil {
			return err
		}
		if attempt < attemptsPerPass && !backoff.Sleep(ctx, actionRetry.Delay(attempt)) {
			return err
		}
	}
	return err
}

func (s *Syncer) doOnce(ctx context.Context, a plan.Action, snap snapshot, flush bool) error {
	local, hasLocal := snap.local[a.Path]
	switch a.Op {
	case plan.Upload:
		return s.upload(ctx, a, local, flush)
	case plan.Download:
		if hasLocal && s.dir.InUse(a.Path) {
			return errBusy // never replace a file the app is writing: its later writes would be lost
		}
		return s.download(ctx, a.Path, a.Remote, local, hasLocal)
	case plan.Conflict:
		if !flush && s.dir.InUse(a.Path) {
			return errBusy
		}
		if err := s.preserveConflict(ctx, a.Path, local); err != nil {
			return err
		}
		if flush {
			return nil
		}
		return s.download(ctx, a.Path, a.Remote, local, hasLocal)
	case plan.DeleteRemote:
		if err := s.store.Delete(ctx, a.Path, a.IfGeneration); err != nil {
			return err
		}
		s.base.Delete(a.Path)
		s.setView(a.Path, nil)
		s.m.Deletes.WithLabelValues("local").Inc()
		s.log.Info("deleted remote object (deleted locally)", "path", a.Path)
		return nil
	case plan.DeleteLocal:
		if s.dir.InUse(a.Path) {
			return errBusy
		}
		if err := s.dir.Remove(a.Path, local.Stamp); err != nil {
			return err
		}
		s.base.Delete(a.Path)
		s.m.Deletes.WithLabelValues("remote").Inc()
		s.log.Info("deleted local file (deleted remotely)", "path", a.Path)
		return nil
	case plan.RecordBase:
		s.base.Set(a.Path, state.Entry{Generation: a.Remote.Generation, Size: a.Remote.Size, CRC32C: a.Remote.CRC32C, ModTime: local.ModTime})
		return nil
	case plan.ForgetBase:
		s.base.Delete(a.Path)
		return nil
	}
	return fmt.Errorf("unknown op %v", a.Op)
}

func (s *Syncer) upload(ctx context.Context, a plan.Action, local localfs.File, flush bool) error {
	if !flush && s.dir.InUse(a.Path) {
		return errBusy
	}
	fh, err := s.dir.OpenFile(a.Path, local.Stamp)
	if err != nil {
		return err
	}
	defer fh.Close()
	mtime := time.Unix(0, local.ModTime) // stored in whole seconds; the local file takes the same below
	o, err := s.store.Upload(ctx, a.Path, s.progress(fh), local.Size, local.CRC32C, mtime, a.IfGeneration)
	if errors.Is(err, gcsstore.ErrMismatch) {
		// The bucket holds something other than what was sent (a server that does not check CRC32C, a file
		// rewritten during the upload). Record what is really there, with no local stamp, so the next pass
		// re-hashes the file and uploads it again over that generation.
		s.base.Set(a.Path, state.Entry{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C})
		s.setView(a.Path, &plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C})
		return err
	}
	if err != nil {
		if flush && isReplan(err) {
			// Shutting down, so there is no later pass to merge in: keep this version as a conflict copy.
			if cerr := s.preserveConflict(ctx, a.Path, local); cerr != nil {
				return cerr
			}
			return nil
		}
		return err
	}
	stamp := local.ModTime
	if st, err := s.dir.Stat(a.Path); err != nil || st != local.Stamp {
		stamp = 0 // changed while it was uploaded: the next pass hashes it again and compares
	} else if o.ModTime != 0 && local.ModTime != o.ModTime*int64(time.Second) {
		// The stored mtime is whole seconds: the file takes it, so this replica serves the ETag and
		// Last-Modified the others will.
		stamp = 0
		if st, err := s.dir.SetModTime(a.Path, local.Stamp, time.Unix(o.ModTime, 0)); err == nil {
			stamp = st.ModTime
		}
	}
	s.base.Set(a.Path, state.Entry{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C, ModTime: stamp})
	s.setView(a.Path, &plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C, ModTime: o.ModTime})
	s.m.Uploads.Inc()
	s.m.Bytes.WithLabelValues("upload").Add(float64(o.Size))
	s.log.Debug("uploaded", "path", a.Path, "generation", o.Generation, "bytes", o.Size)
	return nil
}

func (s *Syncer) download(ctx context.Context, path string, r plan.Remote, local localfs.File, hasLocal bool) error {
	rd, err := s.store.Open(ctx, path, r.Generation)
	if err != nil {
		return err
	}
	defer rd.Close()
	expect := localfs.Expect{Absent: !hasLocal, Stamp: local.Stamp}
	st, err := s.dir.WriteAtomic(path, beatReader{r: rd, beat: s.beat, moved: s.countRestoredBytes}, rd.Object.Size, rd.Object.CRC32C,
		unixTime(r.ModTime), expect)
	if err != nil {
		return err
	}
	s.written.Store(true)
	s.countRestored()
	s.base.Set(path, state.Entry{Generation: rd.Object.Generation, Size: rd.Object.Size, CRC32C: rd.Object.CRC32C, ModTime: st.ModTime})
	s.m.Downloads.Inc()
	s.m.Bytes.WithLabelValues("download").Add(float64(rd.Object.Size))
	s.log.Debug("downloaded", "path", path, "generation", rd.Object.Generation, "bytes", rd.Object.Size)
	return nil
}

// preserveConflict uploads the local version to .filesync/conflicts/<path>.<pod>.<unix-time>.
func (s *Syncer) preserveConflict(ctx context.Context, path string, local localfs.File) error {
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
