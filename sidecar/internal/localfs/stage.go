package localfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// A directory new to this replica is assembled in StageDir and published in one rename, so the app never
// sees part of it; the new files of a tree that exists (--tree) are staged the same way and renamed into
// place one after the other in one burst (docs/design.md, "Trees arrive whole").

// TopMissingDir returns the top-most directory above rel that does not exist (rel's own folders only, never
// the root), and false if every folder of rel exists or one is not a plain directory (a symlink, a file:
// a write there fails as it always did).
func (d *Dir) TopMissingDir(rel string) (string, bool) {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		fi, err := d.root.Lstat(rel[:i])
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return rel[:i], true
		case err != nil || !fi.IsDir():
			return "", false
		}
	}
	return "", false
}

// Stage makes an empty directory in StageDir and returns its path under the directory.
func (d *Dir) Stage() (string, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	stage := StageDir + "/" + hex.EncodeToString(rnd[:])
	if err := d.root.MkdirAll(StageDir, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", StageDir, err)
	}
	if err := d.root.Mkdir(stage, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", stage, err)
	}
	return stage, nil
}

// Publish renames the staged directory stage to rel, in one rename, only if nothing is at rel: an
// existing directory is never replaced nor merged into (ErrChanged), nothing is published through a
// symlink (ErrSymlink), and rel's parent must still be a directory (ErrChanged).
func (d *Dir) Publish(stage, rel string) error {
	if err := d.checkParents(rel, false); err != nil {
		return err
	}
	if parent := path.Dir(rel); parent != "." {
		if fi, err := d.root.Lstat(parent); err != nil || !fi.IsDir() {
			return fmt.Errorf("publish %s: %w (%s is gone)", rel, ErrChanged, parent)
		}
	}
	return d.renameNoReplace(stage, rel)
}

// PublishFile renames the staged file staged (under a stage) to rel, if rel still holds what e expects;
// rel's parents are made as WriteAtomic makes them, never through a symlink.
func (d *Dir) PublishFile(staged, rel string, e Expect) error {
	if err := d.prepare(rel, e); err != nil {
		return err
	}
	if err := d.root.Rename(staged, rel); err != nil {
		return fmt.Errorf("rename into %s: %w", rel, err)
	}
	return nil
}

// Unstage removes the staged file staged (a download no longer wanted); a file already gone is no error.
func (d *Dir) Unstage(staged string) error {
	if !strings.HasPrefix(staged, StageDir+"/") {
		return fmt.Errorf("unstage %s: not in %s", staged, StageDir)
	}
	if err := d.root.Remove(staged); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unstage %s: %w", staged, err)
	}
	return nil
}

// Discard removes a staged directory and what it holds.
func (d *Dir) Discard(stage string) error {
	if path.Dir(stage) != StageDir {
		return fmt.Errorf("discard %s: not a staged directory", stage)
	}
	return d.root.RemoveAll(stage)
}

// checkThenRename renames from to to if nothing is at to when it looks.
func (d *Dir) checkThenRename(from, to string) error {
	if _, err := d.root.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("publish %s: %w (it exists now)", to, ErrChanged)
	}
	if err := d.root.Rename(from, to); err != nil {
		return fmt.Errorf("publish %s: %w", to, err)
	}
	return nil
}
