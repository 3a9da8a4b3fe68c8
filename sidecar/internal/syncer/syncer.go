// Package syncer runs sync passes: scan the directory and list the bucket, compute the plan, execute it,
// commit the base. Run loops on fsnotify hints, remote polls and periodic rescans; Flush is the bounded
// final upload on shutdown.
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
)

// Options are the sync settings of docs/design.md's command line.
type Options struct {
	PollInterval   time.Duration
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
type Syncer struct {
	dir    *localfs.Dir
	store  *gcsstore.Store
	base   *state.Store
	filter *filter.Filter
	m      *metrics.Metrics
	log    *slog.Logger
	opt    Options
	now    func() time.Time

	trigger chan struct{} // one slot: "something changed locally"
	rescan  atomic.Bool

	mu         sync.Mutex
	view       map[string]plan.Remote // last listing, kept current with our own writes
	listed     bool
	unsyncable map[string]bool       // objects of the last listing left alone: a folder of other objects too (x and x/y), gzip-encoded
	warned     map[string]bool       // unsafe names and skipped paths already reported
	failures   map[string]failure    // paths backing off after errors, or waiting for the app to close them
	hashes     map[string]cachedHash // CRCs of files not in the base (e.g. waiting to settle)
	skipped    map[string]int64      // paths left alone until their object changes (clash, symlink, corrupt): the generation
	firstSeen  map[string]seen       // when a stamp with a future mtime was first seen (settle then counts from it)
	unreadable map[string]error      // paths the last scan could not read: neither present nor missing

	// Only the goroutine running passes (Run, Once or Flush) touches these, so they need no lock.
	window  plan.DeleteWindow // the --max-delete budget in force
	blocked string            // the deletes the guard withheld last, to report each new set once
	wiped   [2]bool           // local, remote: a wipe already reported

	written atomic.Bool // files were written since the last syncfs

	restore   atomic.Pointer[restoreProgress] // the restore in progress (before Ready), nil after
	ready     atomic.Bool
	heartbeat atomic.Int64
	running   atomic.Bool
}

type failure struct {
	n        int
	next     time.Time
	busy     bool // the app has the file open for writing: deferred, not an error
	outgoing bool // an upload (a local change waiting to leave), for filesync_pending_uploads
	err      error
}

type seen struct {
	stamp localfs.Stamp
	at    time.Time
}

type cachedHash struct {
	stamp localfs.Stamp
	crc   uint32
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
		view:       map[string]plan.Remote{},
		unsyncable: map[string]bool{},
		warned:     map[string]bool{},
		failures:   map[string]failure{},
		hashes:     map[string]cachedHash{},
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, f := range s.failures {
		if !f.busy {
			return fmt.Sprintf("restoring: %d paths failed and are being retried (%s: %v)", s.failedLocked(), p, f.err)
		}
	}
	if rp := s.restore.Load(); rp != nil {
		return rp.String(s.now())
	}
	return "restoring: first pass not complete"
}

// failedLocked counts the paths backing off after an error. Call with s.mu held.
func (s *Syncer) failedLocked() int {
	n := 0
	for _, f := range s.failures {
		if !f.busy {
			n++
		}
	}
	return n
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

// Notify tells the syncer something changed locally; overflow means events were lost, so the next pass
// also lists the bucket afresh. It never blocks: while a pass is pending, further hints add nothing
// (model: git-sync's hook trigger).
func (s *Syncer) Notify(overflow bool) {
	if overflow {
		s.rescan.Store(true)
	}
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// saveState makes the files written so far durable (one syncfs), then saves the base that records them,
// so a crash can never leave a torn file that the base calls in sync.
func (s *Syncer) saveState() {
	if !s.base.Persistent() {
		return
	}
	if s.written.Swap(false) {
		if err := s.dir.Sync(); err != nil {
			s.written.Store(true)
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
