//go:build interop

package interop

import (
	"testing"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// tree is the content of the round trips: binary and text, nested folders, a space and a non-ASCII name,
// distinct mtimes in the past.
func tree() map[string]file {
	return map[string]file{
		"index.html":                {[]byte("<!doctype html><p>hello</p>\n"), at("2020-01-02T03:04:05Z")},
		"uploads/2026/12/photo.jpg": {harness.RandomBytes(300 << 10), at("2024-02-29T12:00:01Z")},
		"uploads/a b/café.txt":      {[]byte("naïve\n"), at("2001-09-09T01:46:40Z")},
		"empty.txt":                 {nil, at("2010-10-10T10:10:10Z")},
	}
}

// TestContentAndMtime: files written by each tool are restored by filesync byte-identical with their
// mtimes to the second, and files filesync uploaded are downloaded so by each tool.
func TestContentAndMtime(t *testing.T) {
	t.Parallel()
	e := need(t)
	roundTrips(t, e, tree())
}

// TestPre1970Mtimes: an mtime before 1970 (a negative goog-reserved-file-mtime, which rclone and gcloud
// write) survives both ways.
func TestPre1970Mtimes(t *testing.T) {
	t.Parallel()
	e := need(t)
	files := map[string]file{
		"moon.txt":  {[]byte("one small step\n"), at("1969-07-20T20:17:40Z")},
		"after.txt": {[]byte("a control after 1970\n"), at("1999-12-31T23:59:59Z")},
	}
	roundTrips(t, e, files)
}

// roundTrips runs the four directions with files: rclone → filesync, gcloud → filesync, filesync →
// rclone, filesync → gcloud (for a pre-1970 mtime gcloud itself cannot set one on download, so that
// direction compares the mtime key filesync stored with the one gcloud stores for the same file).
func roundTrips(t *testing.T, e *env, files map[string]file) {
	t.Run("rclone→filesync", func(t *testing.T) {
		r := e.newRemote(t)
		src, dst := t.TempDir(), t.TempDir()
		writeTree(t, src, files)
		e.rclone(t, "copy", src, r.rclone())
		e.once(t, r, dst, "")
		checkTree(t, "filesync's restore", dst, files)
	})
	t.Run("gcloud→filesync", func(t *testing.T) {
		r := e.newRemote(t)
		src, dst := t.TempDir(), t.TempDir()
		writeTree(t, src, files)
		e.gcloud(t, "storage", "rsync", "--recursive", src, r.gs())
		e.once(t, r, dst, "")
		checkTree(t, "filesync's restore", dst, files)
	})
	t.Run("filesync→rclone", func(t *testing.T) {
		r := e.newRemote(t)
		src, dst := t.TempDir(), t.TempDir()
		writeTree(t, src, files)
		e.once(t, r, src, "")
		checkTree(t, "filesync's directory after its upload", src, files)
		e.rclone(t, "copy", r.rclone(), dst)
		checkTree(t, "rclone's download", dst, files)
	})
	t.Run("filesync→gcloud", func(t *testing.T) {
		r := e.newRemote(t)
		src, dst := t.TempDir(), t.TempDir()
		writeTree(t, src, files)
		pre1970 := false
		for _, f := range files {
			pre1970 = pre1970 || f.mtime.Unix() < 0
		}
		if !pre1970 {
			e.once(t, r, src, "")
			checkTree(t, "filesync's directory after its upload", src, files)
			e.gcloud(t, "storage", "rsync", "--recursive", r.gs(), dst)
			checkTree(t, "gcloud's download", dst, files)
			return
		}
		ref := e.newRemote(t)
		e.gcloud(t, "storage", "rsync", "--recursive", src, ref.gs())
		e.once(t, r, src, "")
		checkTree(t, "filesync's directory after its upload", src, files)
		for p := range files {
			got, want := r.attrs(t, p).Metadata[mtimeKey], ref.attrs(t, p).Metadata[mtimeKey]
			if got != want || want == "" {
				t.Errorf("%s: filesync stored %s=%q, gcloud stores %q", p, mtimeKey, got, want)
			}
		}
	})
}

// mtimeKey is the object metadata key of a file's mtime (unix seconds) that gsutil, gcloud and rclone
// write and read.
const mtimeKey = "goog-reserved-file-mtime"
