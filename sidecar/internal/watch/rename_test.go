package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/eventually"
)

// mkdirs makes each directory (with its parents) under root.
func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// hintedOnWrite writes the file rel until the watcher hints it (a write before the watch is in place is
// not an event): it fails if no hint names rel within the timeout.
func hintedOnWrite(t *testing.T, r *recorder, root, rel string) {
	t.Helper()
	eventually.True(t, 5*time.Second, "a hint for "+rel+" written after the watch", func() bool {
		_ = os.WriteFile(filepath.Join(root, rel), []byte("x"), 0o644)
		return r.has(func(h Hint) bool { return h.Path == rel })
	})
}

// TestPluginMovedInFromTheUpgradeFolderIsWatched: WordPress's upgrader unpacks a plugin under
// wp-content/upgrade/ (excluded) and renames it into plugins/. The watcher hints it as a new directory
// (its files are scanned and uploaded at once) and watches its whole tree: a file written later deep
// inside it is hinted too, without a rescan.
func TestPluginMovedInFromTheUpgradeFolderIsWatched(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "upgrade/akismet-x1/akismet/views/admin", "plugins")
	if err := os.WriteFile(filepath.Join(root, "upgrade/akismet-x1/akismet/akismet.php"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, root, "upgrade/**")
	if err := os.Rename(filepath.Join(root, "upgrade/akismet-x1/akismet"), filepath.Join(root, "plugins/akismet")); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint for plugins/akismet", func() bool {
		return r.has(func(h Hint) bool { return h.NewDir && h.Path == "plugins/akismet" })
	})
	hintedOnWrite(t, r, root, "plugins/akismet/views/admin/settings.php")
	hintedOnWrite(t, r, root, "plugins/akismet/readme.txt")
	if r.has(func(h Hint) bool { return filepath.Dir(h.Path) == "upgrade" || h.Path == "upgrade/akismet-x1/akismet" }) {
		t.Fatalf("a hint for the excluded folder: %+v", r.hints)
	}
}

// TestDirectoryMovedWithinTheTreeIsWatchedUnderItsNewName: inotify's watches follow the directory, not
// its name. A directory moved from one watched place to another (a plugin moved aside for a rollback, a
// gallery renamed) is hinted under its new name, and so are the files written in it and in every directory
// below it afterwards; nothing is hinted under the old names.
func TestDirectoryMovedWithinTheTreeIsWatchedUnderItsNewName(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "a/gallery/2026/11", "b")
	r := start(t, root)
	if err := os.Rename(filepath.Join(root, "a/gallery"), filepath.Join(root, "b/gallery")); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint for b/gallery", func() bool {
		return r.has(func(h Hint) bool { return h.NewDir && h.Path == "b/gallery" })
	})
	hintedOnWrite(t, r, root, "b/gallery/2026/11/a.jpg")
	hintedOnWrite(t, r, root, "b/gallery/b.jpg")
	if r.has(func(h Hint) bool { return len(h.Path) > len("a/gallery") && h.Path[:len("a/gallery/")] == "a/gallery/" }) {
		t.Fatalf("hints under the old name: %+v", r.hints)
	}
}

// TestDirectoryMovedOutIsNoLongerWatched: a directory moved to an excluded folder keeps no watch: what is
// written in it there is not hinted (under its old name or any other).
func TestDirectoryMovedOutIsNoLongerWatched(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "plugins/akismet/views", "upgrade-temp-backup/plugins")
	r := start(t, root, "upgrade-temp-backup/**")
	if err := os.Rename(filepath.Join(root, "plugins/akismet"), filepath.Join(root, "upgrade-temp-backup/plugins/akismet")); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a hint that plugins/akismet went", func() bool {
		return r.has(func(h Hint) bool { return h.Path == "plugins/akismet" })
	})
	if err := os.WriteFile(filepath.Join(root, "upgrade-temp-backup/plugins/akismet/views/x.php"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	hintedOnWrite(t, r, root, "marker") // the watcher has handled every event before the marker's
	if r.has(func(h Hint) bool { return filepath.Base(h.Path) == "x.php" }) {
		t.Fatalf("a file of the moved-out directory was hinted: %+v", r.hints)
	}
}
