// Package watch turns fsnotify events under a directory tree into "something changed" hints. It watches
// every directory (new ones as they appear), and reports an event overflow as a request for a full rescan.
// It is a hint, not the truth: the syncer rescans periodically anyway.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// Hint is what the watcher tells the syncer.
type Hint struct {
	// Path is the changed path, relative to the root ("" with Rescan).
	Path string
	// Rescan asks for a full scan: events were lost (overflow) or a new directory appeared.
	Rescan bool
}

// Watcher watches a directory tree.
type Watcher struct {
	fsw    *fsnotify.Watcher
	root   string
	filter *filter.Filter
	log    *slog.Logger
}

// New starts watching root and every directory below it that the filter does not skip.
func New(root string, f *filter.Filter, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{fsw: fsw, root: root, filter: f, log: log}
	if err := w.addTree(root); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// addTree watches dir and the directories below it. Symlinked directories are not followed.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != w.root {
				return nil
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if !d.IsDir() {
			return nil
		}
		if rel := w.rel(p); rel != "" && w.filter.Skip(rel) {
			return filepath.SkipDir
		}
		if err := w.fsw.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

func (w *Watcher) rel(p string) string {
	r, err := filepath.Rel(w.root, p)
	if err != nil || r == "." {
		return ""
	}
	return filepath.ToSlash(r)
}

// Run delivers hints to notify until ctx is done, then closes the watcher. notify must not block for long.
func (w *Watcher) Run(ctx context.Context, notify func(Hint)) error {
	defer w.fsw.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			rel := w.rel(ev.Name)
			if rel == "" || w.filter.Skip(rel) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					// Files may have landed in it before the watch: ask for a scan after watching it.
					if err := w.addTree(ev.Name); err != nil {
						w.log.Warn("watch new directory", "path", rel, "err", err)
					}
					notify(Hint{Rescan: true})
					continue
				}
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // metadata only
			}
			notify(Hint{Path: rel})
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("fsnotify event overflow: rescanning")
				notify(Hint{Rescan: true})
				continue
			}
			w.log.Warn("fsnotify", "err", err)
		}
	}
}
