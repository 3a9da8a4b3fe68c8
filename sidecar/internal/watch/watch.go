// Package watch turns fsnotify events under a directory tree into hints: this path changed, this new
// directory appeared (scan it), or events were lost (overflow: rescan everything). It watches every
// directory: new ones as they appear, moved-in ones with everything below them. One it cannot watch yet
// (the sidecar's user cannot read it, or the inotify watch limit is reached) is tried again, at once on an
// event for it or for a directory above it (a chmod or chown is one) and otherwise with backoff, until it
// is watched; then it is hinted as a new directory. It is a hint, not the truth: the syncer rescans
// periodically anyway.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/filter"
)

// Hint is what the watcher tells the syncer.
type Hint struct {
	// Path is the changed path, relative to the root ("" with Overflow).
	Path string
	// NewDir: Path is a directory that just appeared, or that was just watched after it could not be;
	// files may have landed in it before it was watched.
	NewDir bool
	// Overflow: the kernel dropped events; only a full rescan can tell what changed.
	Overflow bool
}

// Unwatched counts the directories not watched now (they are tried again until they are; the periodic
// rescan covers them meanwhile) and names the first of them by name. The directories below one are not
// known, so not counted.
type Unwatched struct {
	Count int
	First string // relative path; "" when Count is 0
}

// Option tunes New.
type Option func(*Watcher)

// ReportUnwatched has the watcher call report with the number of directories not watched, once from New
// and then whenever it changes (from Run's goroutine: report must not block).
func ReportUnwatched(report func(n int)) Option { return func(w *Watcher) { w.report = report } }

// retrying replaces the retry policy (backoff.Default: 0.5 s doubling to 30 s), for tests.
func retrying(p backoff.Policy) Option { return func(w *Watcher) { w.backlog.policy = p } }

// refusing has watching a directory fail with refuse's error first, for tests: they run as root, which
// reads every directory, so they cannot make one unreadable to the watcher.
func refusing(refuse func(dir string) error) Option { return func(w *Watcher) { w.refuse = refuse } }

// Watcher watches a directory tree.
type Watcher struct {
	fsw    *fsnotify.Watcher
	root   string
	filter *filter.Filter
	log    *slog.Logger
	report func(int)              // nil: nobody asked
	refuse func(dir string) error // nil but in tests

	// Only the goroutine running New, then Run, touches these, so no mutex is needed.
	dirs    map[string]bool // the watched directories (relative paths)
	backlog *backlog        // the directories that could not be watched yet

	unwatched atomic.Pointer[Unwatched] // the backlog's summary, for any goroutine
}

// New starts watching root and every directory below it that the filter does not skip. Only the root
// must be watchable: a directory below it that cannot be watched goes to the backlog (a warning) and is
// tried again while Run runs.
func New(root string, f *filter.Filter, log *slog.Logger, opts ...Option) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{fsw: fsw, root: root, filter: f, log: log, dirs: map[string]bool{},
		backlog: newBacklog(backoff.Default)}
	for _, o := range opts {
		o(w)
	}
	if err := w.watchTree("", time.Now()); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w.publish()
	return w, nil
}

// Unwatched says how many directories are not watched now, and the first; safe from any goroutine.
func (w *Watcher) Unwatched() Unwatched { return *w.unwatched.Load() }

// Run delivers hints to notify until ctx is done, then closes the watcher. notify must not block for long.
func (w *Watcher) Run(ctx context.Context, notify func(Hint)) {
	defer w.fsw.Close()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		if next, ok := w.backlog.next(); ok {
			retry.Reset(time.Until(next))
		} else {
			retry.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			now := time.Now()
			w.retry(w.backlog.due(now), now, notify)
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.handle(ev, notify)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("fsnotify", "err", err)
				continue
			}
			// The lost events may have created directories: watch the tree again (what is watched already
			// stays so), then ask for the rescan, which sees whatever happened before.
			w.log.Warn("fsnotify event overflow: watching the tree again and rescanning")
			if err := w.watchTree("", time.Now()); err != nil {
				w.log.Warn("watch the root again after an overflow", "err", err)
			}
			notify(Hint{Overflow: true})
		}
		w.publish()
	}
}

// handle turns one event into hints, and keeps the watches and the backlog in step with the tree.
func (w *Watcher) handle(ev fsnotify.Event, notify func(Hint)) {
	rel := w.rel(ev.Name)
	now := time.Now()
	if ev.Has(fsnotify.Chmod) {
		// Its mode or owner changed (a chmod or chown of a directory is also an event of its parent's for
		// it): what could not be watched at or below it may be readable now (a search permission on a
		// parent reaches its children). The root's own changes count too.
		w.retry(w.backlog.at(rel), now, notify)
	}
	if rel == "" || w.filter.SkipDir(rel) {
		return
	}
	switch {
	case ev.Has(fsnotify.Create):
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			// New, or moved in with everything below it (from an excluded folder, from outside the tree or
			// from elsewhere in it): watch its tree, then ask for it to be scanned, as files may have landed
			// in it before the watch. One that cannot be watched yet is in the backlog now.
			_ = w.watchTree(rel, now)
			notify(Hint{Path: rel, NewDir: true})
			return
		}
	case ev.Has(fsnotify.Rename):
		w.unwatch(rel)
		w.backlog.gone(rel)
	case ev.Has(fsnotify.Remove):
		delete(w.dirs, rel) // a removed directory was empty; fsnotify drops its watch
		w.backlog.gone(rel)
	}
	if w.filter.Skip(rel) {
		return
	}
	if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
		return // metadata only
	}
	notify(Hint{Path: rel})
}

// retry tries the backlog's directories rels again (parents first). Each watched now, with everything
// below it, is hinted as a new directory: what landed in it meanwhile is scanned.
func (w *Watcher) retry(rels []string, now time.Time, notify func(Hint)) {
	var watched []string
	for _, rel := range rels {
		if covered(rel, watched) {
			continue // watched in the walk of a directory above it, just now
		}
		if w.watchTree(rel, now) == nil {
			notify(Hint{Path: rel, NewDir: true})
			watched = append(watched, rel)
		}
	}
}

// covered reports whether rel is one of dirs or below one of them.
func covered(rel string, dirs []string) bool {
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// watchTree watches the directory rel and every directory below it that the filter does not skip.
// Symlinked directories are not followed. A directory that cannot be watched or listed (permissions, the
// watch limit) goes to the backlog; one that is gone leaves it. It returns rel's own error (nil: watched).
func (w *Watcher) watchTree(rel string, now time.Time) error {
	entries, err := w.watchDir(w.abs(rel))
	switch {
	case err == nil:
		if n := w.backlog.watched(rel); n > 0 {
			w.log.Info("watching a directory it could not watch before", "path", rel, "failed_attempts", n)
		}
	case rel == "":
		return err
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		// Gone, or replaced by a file (inotify watches files too: drop that watch).
		_ = w.fsw.Remove(w.abs(rel))
		delete(w.dirs, rel)
		w.backlog.gone(rel)
		return err
	default:
		if w.backlog.failed(rel, now) {
			msg := "cannot watch a directory yet: trying again; the periodic rescan covers it meanwhile"
			if errors.Is(err, syscall.ENOSPC) {
				msg = "cannot watch a directory: the inotify watch limit (fs.inotify.max_user_watches) is reached; trying again, and the periodic rescan covers it meanwhile"
			}
			w.log.Warn(msg, "path", rel, "err", err)
		}
		return err
	}
	w.dirs[rel] = true
	for _, e := range entries {
		child := path.Join(rel, e.Name())
		if e.IsDir() && !w.filter.SkipDir(child) {
			_ = w.watchTree(child, now)
		}
	}
	return nil
}

// watchDir adds dir's watch, then lists it. A directory the sidecar's user cannot read fails the add
// with EACCES (inotify needs read permission).
func (w *Watcher) watchDir(dir string) ([]fs.DirEntry, error) {
	if w.refuse != nil {
		if err := w.refuse(dir); err != nil {
			return nil, err
		}
	}
	if err := w.fsw.Add(dir); err != nil {
		return nil, err
	}
	return os.ReadDir(dir)
}

// unwatch drops the watches of a directory that moved away (rel is its old path) and of every directory
// below it. inotify's watches follow the inode, so fsnotify would go on reporting the moved tree's events
// under their old names, and adding the new names would hand back those stale watches (the moved
// directory's own watch is then dropped by fsnotify, leaving it unwatched). Where it lands inside the tree
// (a Create event) it is watched afresh.
func (w *Watcher) unwatch(rel string) {
	if !w.dirs[rel] {
		return // not a watched directory: a file, or an unwatched directory
	}
	for d := range w.dirs {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(w.dirs, d)
			_ = w.fsw.Remove(w.abs(d)) // the moved directory's own may be gone already
		}
	}
}

// publish makes the backlog's summary visible to Unwatched, and reports a changed count.
func (w *Watcher) publish() {
	old := w.unwatched.Load()
	if old != nil && !w.backlog.changed {
		return
	}
	w.backlog.changed = false
	u := w.backlog.summary()
	w.unwatched.Store(&u)
	if w.report != nil && (old == nil || old.Count != u.Count) {
		w.report(u.Count)
	}
}

func (w *Watcher) abs(rel string) string { return filepath.Join(w.root, filepath.FromSlash(rel)) }

func (w *Watcher) rel(p string) string {
	r, err := filepath.Rel(w.root, p)
	if err != nil || r == "." {
		return ""
	}
	return filepath.ToSlash(r)
}
