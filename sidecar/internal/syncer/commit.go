package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Step 5 of a pass: commit has one owner. The loop's goroutine applies each outcome a worker hands back
// to the index, the base, the holds and the metrics; conclude then persists (saveState).

// drain commits outcomes as they arrive, on the loop's goroutine.
func (s *Syncer) drain(ctx context.Context, res *Result, outcomes <-chan done) {
	for d := range outcomes {
		s.beat()
		if d.tree != nil {
			s.collect(d) // committed once the tree is published (trees.go)
			continue
		}
		s.commit(d)
		s.outcome(ctx, res, d.a, d.err)
	}
}

// commit applies what one action changed to the index, the base and the metrics.
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
		delete(s.holds.fresh, path)
	}
	if c.dropLocal {
		s.idx.dropLocal(path)
	}
	s.written = s.written || c.written
	if d.err == nil {
		s.count(d.a.Op, c)
	}
	s.report(d)
}

// report tells Options.OnChange of what this replica changed in the bucket (docs/design.md, "Change
// hooks"): an upload that stored a generation (also one whose stored object turned out to differ from
// what was sent: the object changed all the same) and a remote delete. Downloads, local deletes and
// conflict copies (under .filesync/) are not reported.
func (s *Syncer) report(d done) {
	if s.opt.OnChange == nil {
		return
	}
	switch {
	case d.a.Op == plan.Upload && d.ch.remote != nil:
		s.opt.OnChange(Change{Path: d.a.Path, Generation: d.ch.remote.Generation, Time: s.now()})
	case d.a.Op == plan.DeleteRemote && d.err == nil:
		s.opt.OnChange(Change{Path: d.a.Path, Deleted: true, Generation: d.a.IfGeneration, Time: s.now()})
	}
}

// count adds a finished action to the transfer metrics.
func (s *Syncer) count(op plan.Op, c change) {
	switch op {
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

// busyWait is how a file held open for writing is waited for: from the settle time, growing to 30 s.
func (s *Syncer) busyWait() backoff.Policy {
	return backoff.Policy{Initial: max(s.opt.Settle, 100*time.Millisecond), Max: 30 * time.Second}
}

// outcome records how one action went in res and the holds.
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
		delete(s.holds.failures, a.Path)
	case errors.Is(err, errTreeUnpublished):
		next := s.holds.fail(a.Path, failure{err: err}, backoff.Default, s.now())
		s.log.Debug("not published: its new directory waits", "path", a.Path, "err", err, "retry_in", next.Round(time.Millisecond))
	case errors.Is(err, errBusy):
		next := s.holds.fail(a.Path, failure{busy: true, outgoing: outgoing, err: err}, s.busyWait(), s.now())
		s.log.Debug("waiting for the app to close the file", "op", a.Op.String(), "path", a.Path, "retry_in", next.Round(time.Millisecond))
	case isReplan(err):
		res.Replan = true
		s.m.Preconditions.Inc()
		s.log.Info("re-planning: changed by someone else meanwhile", "op", a.Op.String(), "path", a.Path, "err", err)
	case ctx.Err() != nil:
		res.Failed++
	case s.skipUntilChanged(a, err):
		delete(s.holds.failures, a.Path)
	case errors.Is(err, gcsstore.ErrRetained) && (a.Op == plan.Upload || a.Op == plan.DeleteRemote):
		s.refused(a, err)
	case errors.Is(err, gcsstore.ErrRateLimited):
		// Not an error of this replica's: the path waits at least a second (busy: readiness is not held),
		// and the version it has then is the one sent, so changes made meanwhile go in one write.
		s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
		next := s.holds.fail(a.Path, failure{busy: true, outgoing: outgoing, err: err}, rateLimitWait, s.now())
		s.log.Warn("rate limited by the bucket: the path waits", "op", a.Op.String(), "path", a.Path, "retry_in", next.Round(time.Millisecond))
	default:
		res.Failed++
		s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
		next := s.holds.fail(a.Path, failure{outgoing: outgoing, err: err}, backoff.Default, s.now())
		s.log.Error("sync action failed", "op", a.Op.String(), "path", a.Path, "err", err, "retry_in", next.Round(time.Millisecond))
	}
}

// rateLimitWait is how a path the bucket rate-limited (HTTP 429) backs off: never less than a second, the
// rate GCS allows writes to one object name.
var rateLimitWait = backoff.Policy{Initial: 2 * time.Second, Max: 30 * time.Second}

// refused leaves a path alone whose upload or remote delete the bucket refused for good (a retention
// policy or an object hold: HTTP 403), until its object or its local file changes: one ERROR line and one
// count, no retries every pass, and readiness not held.
func (s *Syncer) refused(a plan.Action, err error) {
	gen := a.IfGeneration
	if r, ok := s.idx.remote.Get(a.Path); ok {
		gen = r.Generation
	}
	var local *snapshot.Stamp
	if f, ok := s.idx.local[a.Path]; ok {
		local = &f.Stamp
	}
	s.holds.refuse(a.Path, gen, local)
	s.m.PermanentFailures.WithLabelValues("retention").Inc()
	s.log.Error("the bucket refuses this write for good (retention policy or object hold): not retried until the file or the object changes",
		"op", a.Op.String(), "path", a.Path, "generation", gen, "err", err)
}

// skipMessages are the lines said once when an object is skipped until it changes.
var skipMessages = map[reason]string{
	underSymlink: "skipping an object under a symlinked local directory: nothing is written through a symlink",
	localClash:   "skipping an object whose local path is taken by a directory with files (or under a file): the local files win until the object changes",
	corrupt:      "giving up on an object whose bytes never match its checksum (tried again when it changes)",
}

// skipUntilChanged leaves a path alone until its object changes when retrying cannot help: the object
// would have to be written through a symlink, in place of a directory that holds files, or its bytes never
// match its checksum. It says so once and reports whether it applied.
func (s *Syncer) skipUntilChanged(a plan.Action, err error) bool {
	if a.Op != plan.Download && a.Op != plan.Conflict && a.Op != plan.DeleteLocal {
		return false
	}
	var why reason
	switch {
	case errors.Is(err, localfs.ErrSymlink):
		why = underSymlink
	case errors.Is(err, localfs.ErrClash):
		why = localClash
	case errors.Is(err, localfs.ErrCorrupt):
		why = corrupt
	default:
		return false
	}
	s.holds.skipUntilChanged(a.Path, a.Remote.Generation, why)
	if s.holds.firstTime(why, a.Path) {
		if why != underSymlink {
			s.m.Errors.WithLabelValues(metricOp(a.Op)).Inc()
		}
		s.log.Warn(skipMessages[why], "path", a.Path, "generation", a.Remote.Generation, "err", err)
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

// saveState makes the files written so far durable (one syncfs), then saves the base that records them,
// so a crash can never leave a torn file that the base calls in sync.
func (s *Syncer) saveState() {
	if !s.base.Persistent() {
		return
	}
	if s.written {
		s.written = false
		if err := s.dir.Sync(); err != nil {
			s.written = true
			s.m.Errors.WithLabelValues("state").Inc()
			s.log.Error("flushing downloads to disk; state not saved", "err", err)
			return
		}
	}
	if err := s.base.Save(); err != nil {
		s.m.Errors.WithLabelValues("state").Inc()
		s.log.Error("saving state", "err", err)
	}
}
