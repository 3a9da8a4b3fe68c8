package syncer

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// restoreProgress counts the downloads of the restore (the passes before Ready), for the progress log
// lines, the filesync_restore_* gauges and /readyz's body. Transfers add to it; readers only load.
type restoreProgress struct {
	start                time.Time
	files, bytes         atomic.Int64 // to download (they grow while a streaming restore lists)
	filesDone, bytesDone atomic.Int64
}

// beginRestore starts counting the downloads of plan p, if the replica is not ready yet, and logs the
// progress every ProgressInterval until the returned stop is called (it logs a last line then).
func (s *Syncer) beginRestore(ctx context.Context, p plan.Plan) (stop func()) {
	if s.Ready() {
		return func() {}
	}
	rp := &restoreProgress{start: s.now()}
	for _, a := range p.Actions {
		if a.Op == plan.Download || a.Op == plan.Conflict {
			s.toRestore(rp, a)
		}
	}
	if rp.files.Load() == 0 {
		return func() {}
	}
	return s.reportRestore(ctx, rp)
}

// toRestore adds a download to the restore's totals.
func (s *Syncer) toRestore(rp *restoreProgress, a plan.Action) {
	s.m.RestoreFiles.Set(float64(rp.files.Add(1)))
	s.m.RestoreBytes.Set(float64(rp.bytes.Add(a.Remote.Size)))
}

// reportRestore publishes rp (for /readyz and the gauges) and logs it every ProgressInterval until the
// returned stop is called, which logs a last line.
func (s *Syncer) reportRestore(ctx context.Context, rp *restoreProgress) (stop func()) {
	s.status.restore.Store(rp)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(s.opt.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				if rp.files.Load() > 0 {
					s.logRestore(rp)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if rp.files.Load() > 0 { // an empty bucket restores nothing: nothing to report
			s.logRestore(rp)
		}
	}
}

// countRestored adds one finished download to the restore's progress.
func (s *Syncer) countRestored() {
	if rp := s.status.restore.Load(); rp != nil {
		s.m.RestoreFilesDone.Set(float64(rp.filesDone.Add(1)))
	}
}

// countRestoredBytes adds transferred bytes to the restore's progress.
func (s *Syncer) countRestoredBytes(n int) {
	if rp := s.status.restore.Load(); rp != nil {
		s.m.RestoreBytesDone.Set(float64(rp.bytesDone.Add(int64(n))))
	}
}

func (s *Syncer) logRestore(rp *restoreProgress) {
	s.log.Info("restoring", "files_done", rp.filesDone.Load(), "files", rp.files.Load(),
		"bytes_done", rp.bytesDone.Load(), "bytes", rp.bytes.Load(), "rate", rp.rate(s.now()), "eta", rp.eta(s.now()).String())
	if s.opt.OnProgress != nil {
		s.opt.OnProgress(rp.String(s.now()))
	}
}

// rate is the bytes per second so far, as text ("12.3 MB/s").
func (rp *restoreProgress) rate(now time.Time) string {
	el := now.Sub(rp.start).Seconds()
	if el <= 0 {
		return "0 B/s"
	}
	return size(int64(float64(rp.bytesDone.Load())/el)) + "/s"
}

// eta estimates the time left from the bytes done so far (files, when there are no bytes to move).
func (rp *restoreProgress) eta(now time.Time) time.Duration {
	el := now.Sub(rp.start)
	done, total := rp.bytesDone.Load(), rp.bytes.Load()
	if total == 0 {
		done, total = rp.filesDone.Load(), rp.files.Load()
	}
	if done <= 0 || el <= 0 {
		return 0
	}
	left := time.Duration(float64(el) * float64(total-done) / float64(done))
	if left < 10*time.Second {
		return left.Round(100 * time.Millisecond)
	}
	return left.Round(time.Second)
}

// String is the one-line progress: "restoring: 120/2000 files, 12.0 MB/240.0 MB, 6.0 MB/s, ETA 38s".
func (rp *restoreProgress) String(now time.Time) string {
	return fmt.Sprintf("restoring: %d/%d files, %s/%s, %s, ETA %s", rp.filesDone.Load(), rp.files.Load(),
		size(rp.bytesDone.Load()), size(rp.bytes.Load()), rp.rate(now), rp.eta(now))
}

func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// listParallel is how many listing requests a listing before ready (fetchListing) has in flight for a
// bucket of more than one page.
// Eight pages of up to 1,000 objects every 0.1-0.3 s (GCS) keep well ahead of RestoreTransfers downloads.
const listParallel = 8

// restoreStreaming is the restore of a fresh pod: no base and an empty directory, so nothing can be
// deleted or conflict and every listed object is a download. The downloads start while the listing's pages
// are still arriving (on GCS a page of 1,000 objects takes 0.1-0.3 s), RestoreTransfers at a time; a
// large bucket is listed listParallel requests at a time, split into folders. An object x beside objects
// x/... is never downloaded (the folder wins; adopt warns about x): the listing gives each object once it
// knows which it is (objectRule). The listing runs on its own goroutine and touches no loop state; the loop commits the
// downloads as they finish. It returns the listing, for the loop to adopt, and how the downloads went.
func (s *Syncer) restoreStreaming(ctx context.Context) (listing, Result, error) {
	rp := &restoreProgress{start: s.now()}
	stop := s.reportRestore(ctx, rp)
	defer stop()
	work := make(chan job, 2*s.opt.RestoreTransfers)
	type listResult struct {
		l   listing
		err error
	}
	result := make(chan listResult, 1)
	go func() {
		defer close(work)
		send := func(a plan.Action) {
			s.toRestore(rp, a)
			select {
			case work <- job{a: a}:
			case <-ctx.Done():
			}
		}
		l, err := s.fetchListing(ctx, true, func(name string, r snapshot.Object, folder bool) {
			if objectRule("", folder) == noReason && !s.lazy(name) { // the listing passes no gzip-encoded object; lazy ones are recorded by the pass
				send(plan.Action{Op: plan.Download, Path: name, Remote: r, Reason: "restore of a fresh pod"})
			}
		})
		result <- listResult{l, err}
	}()
	var res Result
	s.drain(ctx, &res, transferrer{s: s}.workers(ctx, work, s.opt.RestoreTransfers))
	r := <-result
	return r.l, res, r.err
}
