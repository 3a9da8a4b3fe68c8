// Package syncer runs sync passes: look at what changed (or, at start, after lost events and every
// --rescan-interval, walk the whole tree and list the whole bucket), compute the plan of those paths,
// execute it, commit the outcomes. Run loops on fsnotify hints, remote polls or notifications, due retries
// and periodic rescans; Flush is the bounded final upload on shutdown.
package syncer

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/state"
	"github.com/filesync/filesync/sidecar/internal/version"
	"github.com/filesync/filesync/sidecar/internal/watch"
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
	// Pod names this replica in conflict copies.
	Pod string
	// ProgressInterval is how often the restore logs its progress (default 5 s); OnProgress, if set, is
	// also given the progress as one line (--once in a terminal).
	ProgressInterval time.Duration
	OnProgress       func(line string)
}

// Syncer keeps one directory and one bucket prefix in sync.
//
// Who owns what: the goroutine running passes (Run, or a caller of Once, Pass, Flush, DryRun) owns the
// index, the base's writes, the failure table and every map below "the loop's own"; transfers run on
// worker goroutines that do I/O only and hand their outcome back to it (execute.go). Other goroutines talk
// to the loop only through the intake (Notify, ApplyRemote, Reconcile) and read only the atomics.
type Syncer struct {
	dir    *localfs.Dir
	store  *gcsstore.Store
	base   *state.Store
	filter *filter.Filter
	m      *metrics.Metrics
	log    *slog.Logger
	opt    Options
	now    func() time.Time

	// The intake, under mu: what other goroutines ask of the loop. trigger has one slot: "look at the intake".
	mu      sync.Mutex
	intake  intake
	trigger chan struct{}

	// The loop's own.
	idx        index
	walked     bool                 // a whole walk has filled idx.local
	remoteDue  map[string]bool      // objects whose listing changed since the last pass planned them
	fresh      map[string]time.Time // local files still settling (not hashed), and when they will be quiet
	unsettled  map[string]time.Time // changed files the last plan found too recent to upload
	failures   map[string]failure   // paths backing off after errors, or waiting for the app to close them
	unsyncable map[string]bool      // objects of the last listing left alone: a folder of other objects too (x and x/y), gzip-encoded
	warned     map[string]bool      // unsafe names and skipped paths already reported
	skipped    map[string]int64     // paths left alone until their object changes (clash, symlink, corrupt): the generation
	firstSeen  map[string]seen      // when a stamp with a future mtime was first seen (settle then counts from it)
	unreadable map[string]error     // paths the scans could not read: neither present nor missing
	window     plan.DeleteWindow    // the --max-delete budget in force
	blocked    string               // the deletes the guard withheld last, to report each new set once
	wiped      [2]bool              // local, remote: a wipe already reported
	written    bool                 // files were written since the last syncfs

	// Published by the loop for other goroutines.
	restore   atomic.Pointer[restoreProgress] // the restore in progress (before Ready), nil after
	failing   atomic.Pointer[failingPaths]    // the paths backing off after errors, for /readyz
	ready     atomic.Bool
	heartbeat atomic.Int64
	running   atomic.Bool
}

// intake is what other goroutines hand the loop between passes.
type intake struct {
	paths     map[string]bool           // local paths hinted by fsnotify (true: a new directory, scan its tree)
	overflow  bool                      // events were lost: walk the whole tree
	reconcile bool                      // list the bucket afresh
	changes   []*remoteWait             // remote changes waiting for a pass (ApplyRemote)
	fetched   map[string]version.Object // objects Fetch downloaded (for the read-through)
}

// failingPaths summarises the failure table for /readyz.
type failingPaths struct {
	n     int
	first string
	err   error
}

type failure struct {
	n        int
	next     time.Time
	busy     bool // the app has the file open for writing: deferred, not an error
	outgoing bool // an upload (a local change waiting to leave), for filesync_pending_uploads
	err      error
}

type seen struct {
	stamp version.Stamp
	at    time.Time
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
	s := &Syncer{
		dir: dir, store: store, base: base, filter: f, m: m, log: log, opt: opt, now: time.Now,
		trigger:    make(chan struct{}, 1),
		intake:     intake{paths: map[string]bool{}},
		idx:        newIndex(base),
		remoteDue:  map[string]bool{},
		fresh:      map[string]time.Time{},
		unsettled:  map[string]time.Time{},
		unsyncable: map[string]bool{},
		warned:     map[string]bool{},
		failures:   map[string]failure{},
		skipped:    map[string]int64{},
		firstSeen:  map[string]seen{},
		unreadable: map[string]error{},
	}
	if opt.DeleteWindow <= 0 {
		s.opt.DeleteWindow = time.Hour
	}
	if opt.ProgressInterval <= 0 {
		s.opt.ProgressInterval = 5 * time.Second
	}
	s.beat()
	m.KnownFiles.Set(float64(base.Len()))
	return s
}

// Ready reports whether the first full pass (the restore) has completed with every transfer done.
func (s *Syncer) Ready() bool { return s.ready.Load() }

// NotReadyReason says why Ready is false, for /readyz's body.
func (s *Syncer) NotReadyReason() string {
	if f := s.failing.Load(); f != nil && f.n > 0 {
		return fmt.Sprintf("restoring: %d paths failed and are being retried (%s: %v)", f.n, f.first, f.err)
	}
	if rp := s.restore.Load(); rp != nil {
		return rp.String(s.now())
	}
	return "restoring: first pass not complete"
}

// publishFailures counts the paths backing off after an error, and publishes them for /readyz.
func (s *Syncer) publishFailures() int {
	f := &failingPaths{}
	for p, fl := range s.failures {
		if !fl.busy {
			f.n++
			if f.first == "" || p < f.first {
				f.first, f.err = p, fl.err
			}
		}
	}
	s.failing.Store(f)
	return f.n
}

// Healthy reports whether the loop is alive: running and not stuck (it beats on every pass, and while
// transfers move bytes, so one long transfer keeps it healthy).
func (s *Syncer) Healthy() bool {
	if !s.running.Load() {
		return false
	}
	limit := max(2*time.Minute, 10*s.opt.PollInterval)
	return s.now().Sub(time.Unix(0, s.heartbeat.Load())) < limit
}

func (s *Syncer) beat() { s.heartbeat.Store(s.now().UnixNano()) }

// Notify hands the loop an fsnotify hint: a changed path (a targeted pass looks at it), a new directory
// (its tree is scanned: files may have landed in it before it was watched), or an overflow (events were
// lost: the whole tree is walked and the bucket listed afresh). It never blocks: hints for one pass
// coalesce (model: git-sync's hook trigger).
func (s *Syncer) Notify(h watch.Hint) {
	s.mu.Lock()
	switch {
	case h.Overflow:
		s.intake.overflow = true
	case h.Path != "":
		s.intake.paths[h.Path] = s.intake.paths[h.Path] || h.NewDir
	}
	s.mu.Unlock()
	s.poke()
}

// Reconcile asks the loop for a full listing of the bucket soon (never blocks).
func (s *Syncer) Reconcile() {
	s.mu.Lock()
	s.intake.reconcile = true
	s.mu.Unlock()
	s.poke()
}

func (s *Syncer) poke() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// takeIntake empties the intake for a pass.
func (s *Syncer) takeIntake() intake {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.intake
	s.intake = intake{paths: map[string]bool{}}
	return in
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

func (s *Syncer) setReady() {
	if !s.ready.Swap(true) {
		s.restore.Store(nil)
		s.m.Ready.Set(1)
		s.log.Info("ready: first full pass complete", "known_files", s.base.Len())
	}
}
