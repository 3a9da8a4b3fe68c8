package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// errBusy: the app still has the file open; it is looked at again after the settle time.
var errBusy = errors.New("file is open for writing")

// attemptsPerPass is how often a transient failure is retried within one pass before the path backs off,
// waiting actionRetry between attempts.
const attemptsPerPass = 3

var actionRetry = backoff.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}

// execute runs the plan's actions, transfers in parallel (--transfers). In flush mode (shutdown) the
// open-file check is skipped and an upload refused by a precondition is preserved as a conflict copy.
func (s *Syncer) execute(ctx context.Context, p plan.Plan, snap snapshot, flush bool) Result {
	res := Result{Plan: p}
	var mu sync.Mutex
	sem := make(chan struct{}, s.opt.Transfers)
	var wg sync.WaitGroup
	for _, a := range p.Actions {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.do(ctx, a, snap, flush)
			s.beat()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Unfinished = append(res.Unfinished, a.Path)
			}
			switch {
			case err == nil:
				res.Done++
				s.clearFailure(a.Path)
			case errors.Is(err, errBusy):
				res.NextWake = earliest(res.NextWake, s.now().Add(max(s.opt.Settle, 100*time.Millisecond)))
			case isReplan(err):
				res.Replan = true
				s.m.Preconditions.Inc()
				s.log.Info("re-planning: changed by someone else meanwhile", "op", a.Op.String(), "path", a.Path, "err", err)
			case ctx.Err() != nil:
				res.Failed++
			default:
				res.Failed++
				s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
				next := s.recordFailure(a.Path)
				s.log.Error("sync action failed", "op", a.Op.String(), "path", a.Path, "err", err, "retry_in", next.Round(time.Millisecond))
			}
		}()
	}
	wg.Wait()
	return res
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

func (s *Syncer) recordFailure(path string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[path]
	f.n++
	d := backoff.Default.Delay(f.n)
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
		return s.download(ctx, a.Path, a.Remote, local, hasLocal)
	case plan.Conflict:
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
	o, err := s.store.Upload(ctx, a.Path, fh, local.Size, local.CRC32C, a.IfGeneration)
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
	s.base.Set(a.Path, state.Entry{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C, ModTime: local.ModTime})
	s.setView(a.Path, &plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C})
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
	st, err := s.dir.WriteAtomic(path, rd, rd.Object.Size, rd.Object.CRC32C, expect)
	if err != nil {
		return err
	}
	s.written.Store(true)
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
	if _, err := s.store.Upload(ctx, name, fh, local.Size, local.CRC32C, 0); err != nil {
		return fmt.Errorf("preserve conflict copy: %w", err)
	}
	s.m.Conflicts.Inc()
	s.log.Warn("conflict: the remote version keeps the path; the local one is preserved",
		"path", path, "conflict_copy", s.store.Name(name))
	return nil
}
