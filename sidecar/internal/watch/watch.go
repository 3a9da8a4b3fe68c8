// Package watch turns fsnotify events under a directory tree into hints: this path changed, this new
// directory appeared (scan it), or events were lost (overflow: rescan everything). It watches every
// directory (new ones as they appear). It is a hint, not the truth: the syncer rescans periodically anyway.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// Hint is what the watcher tells the syncer.
type Hint struct {
	// Path is the changed path, relative to the root ("" with Overflow).
	Path string
	// NewDir: Path is a directory that just appeared; files may have landed in it before it was watched.
	NewDir bool
	// Overflow: the kernel dropped events; only a full rescan can tell what changed.
	Overflow bool
}

// Watcher watches a directory tree.
type Watcher struct {
	fsw    *fsnotify.Watcher
	root   string
	filter *filter.Filter
	log    *slog.Logger
	// dirs are the watched directories (relative paths). Only the goroutine running New, then Run,
	// touches it, so no mutex is needed.
	dirs map[string]bool
}

// New starts watching root and every directory below it that the filter does not skip.
func New(root string, f *filter.Filter, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{fsw: fsw, root: root, filter: f, log: log, dirs: map[string]bool{}}
	if err := w.addTree(root); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// addTree watches dir and the directories below it. Symlinked directories are not followed. Only the root
// must be watchable: a directory below it that cannot be read or watched (lost+found for a non-root user)
// is left out with a warning; the periodic rescan still covers it.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel := w.rel(p)
		if err == nil && !d.IsDir() {
			return nil
		}
		if rel != "" && w.filter.SkipDir(rel) {
			return filepath.SkipDir
		}
		if err == nil {
			err = w.fsw.Add(p)
		}
		switch {
		case err == nil:
			w.dirs[rel] = true
			return nil
		case p == w.root:
			return fmt.Errorf("watch %s: %w", p, err)
		case !errors.Is(err, fs.ErrNotExist):
			w.log.Warn("not watching a directory it cannot read; the periodic rescan covers it", "path", rel, "err", err)
		}
		if d != nil && d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
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
			_ = w.fsw.Remove(filepath.Join(w.root, d)) // the moved directory's own may be gone already
		}
	}
}

func (w *Watcher) rel(p string) string {
	r, err := filepath.Rel(w.root, p)
	if err != nil || r == "." {
		return ""
	}
	return filepath.ToSlash(r)
}

// Run delivers hints to notify until ctx is done, then closes the watcher. notify must not block for long.
func (w *Watcher) Run(ctx context.Context, notify func(Hint)) {
	defer w.fsw.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			rel := w.rel(ev.Name)
			if rel == "" || w.filter.SkipDir(rel) {
				continue
			}
			if ev.Has(fsnotify.Remove) {
				delete(w.dirs, rel) // a removed directory was empty; fsnotify drops its watch
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					// New, or moved in with everything below it (from an excluded folder, from outside the
					// tree or from elsewhere in it): watch its tree, then ask for it to be scanned, as files
					// may have landed in it before the watch.
					if err := w.addTree(ev.Name); err != nil {
						w.log.Warn("watch new directory", "path", rel, "err", err)
					}
					notify(Hint{Path: rel, NewDir: true})
					continue
				}
			}
			if ev.Has(fsnotify.Rename) {
				w.unwatch(rel)
			}
			if w.filter.Skip(rel) {
				continue
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // metadata only
			}
			notify(Hint{Path: rel})
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("fsnotify event overflow: rescanning")
				notify(Hint{Overflow: true})
				continue
			}
			w.log.Warn("fsnotify", "err", err)
		}
	}
}
