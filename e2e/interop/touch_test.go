//go:build interop

package interop

import (
	"testing"
	"time"
)

// TestTouchReachesEveryReplica: a change of the mtime alone (the bytes stay the same) made by another
// tool reaches the local file of every running filesync replica, so all of them serve the same
// Last-Modified and ETag: `rclone touch`, and gcloud uploading the same bytes again with a new mtime.
func TestTouchReachesEveryReplica(t *testing.T) {
	t.Parallel()
	e := need(t)
	r := e.newRemote(t)
	src := t.TempDir()
	files := map[string]file{
		"touched-by-rclone.jpg": {[]byte("rclone touch changes only the mtime\n"), at("2020-01-01T00:00:00Z")},
		"reuploaded.css":        {[]byte("body{}\n"), at("2020-01-01T00:00:00Z")},
	}
	writeTree(t, src, files)
	e.rclone(t, "copy", src, r.rclone())
	dirs := []string{t.TempDir(), t.TempDir()}
	for i, d := range dirs {
		e.start(t, r, []string{"replica-a", "replica-b"}[i], d)
	}
	arrived := func(p string, want time.Time) func() bool {
		return func() bool {
			for _, d := range dirs {
				if mtimeOf(d, p).Unix() != want.Unix() {
					return false
				}
			}
			return true
		}
	}
	for p, f := range files {
		if !waitFor(arrived(p, f.mtime)) {
			t.Fatalf("%s was not restored on both replicas with its mtime within %s", p, deadline)
		}
	}
	check := func(t *testing.T, p string, want time.Time) {
		t.Helper()
		if !waitFor(arrived(p, want)) {
			for i, d := range dirs {
				t.Errorf("replica %d: %s has mtime %s, want %s", i, p, mtimeOf(d, p).UTC().Format(time.RFC3339), want.Format(time.RFC3339))
			}
		}
	}
	t.Run("rclone touch", func(t *testing.T) {
		want := at("2021-05-06T07:08:09Z")
		e.rclone(t, "touch", r.rclone()+"/touched-by-rclone.jpg", "--timestamp", want.Format("2006-01-02T15:04:05"))
		check(t, "touched-by-rclone.jpg", want)
	})
	t.Run("gcloud re-upload of the same bytes", func(t *testing.T) {
		want := at("2022-07-08T09:10:11Z")
		setMtime(t, src+"/reuploaded.css", want)
		e.gcloud(t, "storage", "cp", "--preserve-posix", src+"/reuploaded.css", r.gs()+"/reuploaded.css")
		check(t, "reuploaded.css", want)
	})
}
