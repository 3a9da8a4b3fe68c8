package syncer

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/filesync/filesync/sidecar/internal/plan"
)

// restoreProgress counts the downloads of the restore (the passes before Ready), for the progress log
// lines, the filesync_restore_* gauges and /readyz's body. Transfers add to it; readers only load.
type restoreProgress struct {
	start                time.Time
	files, bytes         int64 // to download in this pass
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
			rp.files++
			rp.bytes += a.Remote.Size
		}
	}
	if rp.files == 0 {
		return func() {}
	}
	s.restore.Store(rp)
	s.m.RestoreFiles.Set(float64(rp.files))
	s.m.RestoreBytes.Set(float64(rp.bytes))
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
				s.logRestore(rp)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		s.logRestore(rp)
	}
}

// countRestored adds one finished download to the restore's progress.
func (s *Syncer) countRestored() {
	if rp := s.restore.Load(); rp != nil {
		s.m.RestoreFilesDone.Set(float64(rp.filesDone.Add(1)))
	}
}

// countRestoredBytes adds transferred bytes to the restore's progress.
func (s *Syncer) countRestoredBytes(n int) {
	if rp := s.restore.Load(); rp != nil {
		s.m.RestoreBytesDone.Set(float64(rp.bytesDone.Add(int64(n))))
	}
}

func (s *Syncer) logRestore(rp *restoreProgress) {
	s.log.Info("restoring", "files_done", rp.filesDone.Load(), "files", rp.files,
		"bytes_done", rp.bytesDone.Load(), "bytes", rp.bytes, "rate", rp.rate(s.now()), "eta", rp.eta(s.now()).String())
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
	done, total := rp.bytesDone.Load(), rp.bytes
	if total == 0 {
		done, total = rp.filesDone.Load(), rp.files
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
	return fmt.Sprintf("restoring: %d/%d files, %s/%s, %s, ETA %s", rp.filesDone.Load(), rp.files,
		size(rp.bytesDone.Load()), size(rp.bytes), rp.rate(now), rp.eta(now))
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
