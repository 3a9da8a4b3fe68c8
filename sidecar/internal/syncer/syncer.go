// Package syncer runs sync passes: look at what changed (or, at start, after lost events and every
// --rescan-interval, walk the whole tree and list the whole bucket), compute the plan of those paths,
// execute it, commit the outcomes. Run loops on local hints, remote polls or notifications, due retries
// and periodic rescans; Once runs passes until one is clean; Flush is the bounded final upload on
// shutdown; DryRun prints a plan. All four are composed from the steps of a pass (pass.go).
//
// Files: syncer.go (the Syncer and what it publishes), intake.go (what other goroutines hand the loop),
// loop.go (Run, Once and their retry policy), pass.go (a pass as steps), remote.go and local.go (observing
// each side), rules.go (what is synced), holds.go (why a path waits), guard.go (the delete guard),
// transfer.go and commit.go (executing a plan and committing its outcomes), trees.go (a new directory
// downloaded into a stage and published in one rename), restore.go (the restore and its progress),
// index.go (the loop's picture of both sides), fetch.go (the read-through's download).
package syncer

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// Options are the sync settings of docs/design.md's command line.
type Options struct {
	PollInterval time.Duration
	// Notified: remote changes arrive as hints (ApplyRemote, from bucket notifications), so PollInterval is
	// the reconcile and the periodic rescan walks the directory without listing the bucket.
	Notified       bool
	RescanInterval time.Duration
	Settle         time.Duration
	Delete         bool
	MaxDelete      int           // percent
	DeleteWindow   time.Duration // how long one --max-delete budget lasts
	Transfers      int
	// RestoreTransfers is the parallelism of the restore (the passes before ready): nothing else runs then,
	// and against GCS every request waits tens of milliseconds, so more requests in flight are what makes
	// it fast. 0: Transfers.
	RestoreTransfers int
	// TreeQuiet: once ready, the remote changes of a tree (a directory new to this replica, or one matching
	// Trees) wait until none has come under it for this long (at most treeHoldMax times that from the
	// first), so that it is applied whole (trees.go). 0: no wait (each pass applies what it has).
	TreeQuiet time.Duration
	// Trees (--tree) matches the directories whose remote changes are applied together, in one burst.
	Trees *filter.Filter
	// Lazy (--lazy) matches the paths not needed before ready: recorded remote-only rather than downloaded
	// (plan.Input.Lazy), then filled in behind (fill.go) or fetched by the read-through. nil: none.
	Lazy *filter.Filter
	// CacheSize (--cache-size) bounds the bytes of the local files at lazy paths: over it, the fill stops
	// and the least recently read of them are evicted (cache.go). 0: no bound.
	CacheSize int64
	// Pod names this replica in conflict copies.
	Pod string
	// MaxConflicts is how many conflict copies of one path are kept (the newest); 0: all of them.
	MaxConflicts int
	// ProgressInterval is how often the restore logs its progress (default 5 s); OnProgress, if set, is
	// also given the progress as one line (--once in a terminal).
	ProgressInterval time.Duration
	OnProgress       func(line string)
	// OnChange, if set, is told of every change this replica made in the bucket, once committed (commit.go,
	// report). It is called on the loop's goroutine and must not block (internal/hooks queues it).
	OnChange func(Change)
}

// Change is a change this replica made in the bucket: an object it stored or deleted. One writer per
// change: a download or a local delete applies another replica's change, which that replica reported.
type Change struct {
	Path string // relative to the prefix (and to --dir)
	// Deleted: the object was deleted; otherwise a new generation of it was stored.
	Deleted bool
	// Generation is the generation stored, or the generation deleted.
	Generation int64
	Time       time.Time // when the loop committed it
}

// Syncer keeps one directory and one bucket prefix in sync.
//
// Who owns what: the goroutine running passes (Run, or a caller of Once, Pass, Flush, DryRun) owns idx,
// holds, guard and written, and is the only writer of base; transfers run on worker goroutines that do
// I/O only and hand their outcome back to it (transfer.go, commit.go). Other goroutines talk to the loop
// only through the intake and read only status.
type Syncer struct {
	dir    *localfs.Dir     // the local side (read-only here but for the loop's writes)
	store  *gcsstore.Store  // the remote side
	base   *state.Store     // what was last seen in sync; written by the loop, through idx
	filter *filter.Filter   // --exclude (rules.go)
	m      *metrics.Metrics // counters and gauges; written by the loop, and by transfers for bytes
	log    *slog.Logger     //
	opt    Options          // fixed after New
	now    func() time.Time // the clock (tests replace it)

	intake intakeQueue // other goroutines → the loop: hints, remote changes, fetched objects (intake.go)
	idx    index       // the loop's: both sides as last seen, what each lacks of the base (index.go)
	holds  holds       // the loop's: why a path waits or is left alone (holds.go)
	guard  guard       // the loop's: the delete budget and what was reported of it (guard.go)
	// written (the loop's): files were written since the last syncfs, so the next save syncs first.
	written bool
	// lazyUnlisted (the loop's): the view comes from a listing that left out the wholly lazy folders (the
	// restore, with --lazy): lazy paths are not planned until a pass lists the whole bucket, the next one.
	lazyUnlisted bool
	fill         *fillQueue // the loop → the background fill: remote-only paths to download (fill.go)
	status       status     // the loop → everyone: ready, healthy, restore progress, failing paths
}

// status is what the loop publishes for other goroutines (/readyz, /healthz, the progress lines).
type status struct {
	restore   atomic.Pointer[restoreProgress] // the restore in progress (before Ready), nil after
	failing   atomic.Pointer[failingPaths]    // the paths backing off after errors
	ready     atomic.Bool
	heartbeat atomic.Int64 // unix nanoseconds of the last sign of progress
	running   atomic.Bool  // Run is looping
	// lazyFiles and lazyBytes: the remote-only entries of the base (the fill's work left), as of the
	// last pass.
	lazyFiles, lazyBytes atomic.Int64
	// cacheBytes: the bytes of the local files at lazy paths, as of the last pass (index.lazyBytes).
	cacheBytes atomic.Int64
}

// failingPaths summarises the failure table for /readyz.
type failingPaths struct {
	n     int
	first string
	err   error
}

// New returns a Syncer. Nothing runs until Pass, Run or Flush.
func New(dir *localfs.Dir, store *gcsstore.Store, base *state.Store, f *filter.Filter, m *metrics.Metrics,
	log *slog.Logger, opt Options) *Syncer {
	if opt.Transfers < 1 {
		opt.Transfers = 1
	}
	if opt.RestoreTransfers < 1 {
		opt.RestoreTransfers = opt.Transfers
	}
	if opt.Pod == "" {
		opt.Pod, _ = os.Hostname()
	}
	if opt.DeleteWindow <= 0 {
		opt.DeleteWindow = time.Hour
	}
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = 5 * time.Second
	}
	s := &Syncer{
		dir: dir, store: store, base: base, filter: f, m: m, log: log, opt: opt, now: time.Now,
		intake: newIntakeQueue(), idx: newIndex(base), holds: newHolds(m),
	}
	s.fill = newFillQueue(s.remoteOnlyEntries)
	if opt.Lazy != nil {
		s.idx.isLazy = s.lazy
	}
	s.beat()
	m.KnownFiles.Set(float64(base.Len()))
	return s
}

// Ready reports whether the first full pass (the restore) has completed with every transfer done.
func (s *Syncer) Ready() bool { return s.status.ready.Load() }

// NotReadyReason says why Ready is false, for /readyz's body.
func (s *Syncer) NotReadyReason() string {
	if f := s.status.failing.Load(); f != nil && f.n > 0 {
		return fmt.Sprintf("restoring: %d paths failed and are being retried (%s: %v)", f.n, f.first, f.err)
	}
	if rp := s.status.restore.Load(); rp != nil {
		return rp.String(s.now())
	}
	return "restoring: first pass not complete"
}

// Healthy reports whether the loop is alive: running and not stuck (it beats on every pass, and while
// transfers move bytes, so one long transfer keeps it healthy).
func (s *Syncer) Healthy() bool {
	if !s.status.running.Load() {
		return false
	}
	limit := max(2*time.Minute, 10*s.opt.PollInterval)
	return s.now().Sub(time.Unix(0, s.status.heartbeat.Load())) < limit
}

// lazy reports whether path is lazy (--lazy).
func (s *Syncer) lazy(path string) bool { return s.opt.Lazy != nil && s.opt.Lazy.Excluded(path) }

// LazyStatus is a line for /readyz's body while lazy files are not local yet ("" when there are none):
// how many, and how many bytes.
func (s *Syncer) LazyStatus() string {
	n, b := s.status.lazyFiles.Load(), s.status.lazyBytes.Load()
	if s.opt.Lazy == nil || n == 0 {
		return ""
	}
	return fmt.Sprintf("lazy: %d files (%s) not local yet: filled in behind, newest first; the read-through serves them meanwhile", n, size(b))
}

// LazyLeft is --once's last word on the lazy paths (issue 23, point 6): what it left in the bucket. A
// restore lists no folder that is wholly lazy (the pass after ready would), so their files are not even
// counted; the lazy files it did list (those of other folders, or remote-only entries of the state) are.
// Empty without --lazy; read it once Once has returned.
func (s *Syncer) LazyLeft() string {
	if s.opt.Lazy == nil {
		return ""
	}
	line := fmt.Sprintf("lazy: %d files (%s) left in the bucket", s.status.lazyFiles.Load(), size(s.status.lazyBytes.Load()))
	if s.lazyUnlisted {
		line += ", and the folders wholly lazy (not listed)"
	}
	return line
}

func (s *Syncer) beat() { s.status.heartbeat.Store(s.now().UnixNano()) }

func (s *Syncer) setReady() {
	if !s.status.ready.Swap(true) {
		s.status.restore.Store(nil)
		s.m.Ready.Set(1)
		s.log.Info("ready: first full pass complete", "known_files", s.base.Len())
	}
}
