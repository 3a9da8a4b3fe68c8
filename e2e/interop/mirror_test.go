//go:build interop

package interop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The exclusions docs/manifests.md gives for mirroring a directory into the bucket, so that a mirror does
// not delete filesync's conflict copies (PREFIX/.filesync/conflicts/...).
const (
	rcloneExclude = "/.filesync/**"
	gcloudExclude = `^\.filesync/`
)

// TestMirrorsLeaveConflictCopies: a mirror of a directory into the bucket (`rclone sync`, `gcloud storage
// rsync --delete-unmatched-destination-objects`) deletes what the directory lacks, conflict copies among
// them; with the documented exclusion it leaves them (and still deletes the rest, and a .filesync/ deeper
// down, which is no conflict copy). Without it the copies go: why the docs say so.
func TestMirrorsLeaveConflictCopies(t *testing.T) {
	t.Parallel()
	e := need(t)
	doc, err := os.ReadFile(filepath.Join(e.root, "docs", "manifests.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--exclude '" + rcloneExclude + "'", "--exclude '" + gcloudExclude + "'"} {
		if !strings.Contains(string(doc), flag) {
			t.Errorf("docs/manifests.md does not give %s: the exclusion tested here is the documented one", flag)
		}
	}
	for _, c := range []struct {
		name     string
		mirror   func(t *testing.T, src string, r remote)
		keepsAll bool
	}{
		{"rclone sync --exclude '" + rcloneExclude + "'", func(t *testing.T, src string, r remote) {
			e.rclone(t, "sync", src, r.rclone(), "--exclude", rcloneExclude)
		}, true},
		{"gcloud storage rsync --delete-unmatched-destination-objects --exclude '" + gcloudExclude + "'", func(t *testing.T, src string, r remote) {
			e.gcloudDeleting(t, "storage", "rsync", "--recursive", "--delete-unmatched-destination-objects", "--exclude", gcloudExclude, src, r.gs())
		}, true},
		{"rclone sync without the exclusion (control)", func(t *testing.T, src string, r remote) {
			e.rclone(t, "sync", src, r.rclone())
		}, false},
		{"gcloud storage rsync --delete-unmatched-destination-objects without the exclusion (control)", func(t *testing.T, src string, r remote) {
			e.gcloudDeleting(t, "storage", "rsync", "--recursive", "--delete-unmatched-destination-objects", src, r.gs())
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.newRemote(t)
			copies := conflictCopies(t, e, r)
			ctx := context.Background()
			for _, name := range []string{"stale.txt", "themes/.filesync/not-a-copy"} {
				if err := e.gcs.Upload(ctx, r.bucket, r.object(name), []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			src := t.TempDir()
			writeTree(t, src, map[string]file{"doc.txt": {[]byte("the mirror's version\n"), at("2024-01-01T00:00:00Z")}})
			c.mirror(t, src, r)
			for _, name := range copies {
				if got := r.exists(t, name); got != c.keepsAll {
					t.Errorf("conflict copy %s: exists=%v after the mirror, want %v", name, got, c.keepsAll)
				}
			}
			for _, name := range []string{"stale.txt", "themes/.filesync/not-a-copy"} {
				if r.exists(t, name) {
					t.Errorf("%s is still there: the mirror did not delete what the directory lacks", name)
				}
			}
		})
	}
}

// conflictCopies makes filesync preserve a conflict copy for real (two replicas write doc.txt
// differently; the second one's version is kept under .filesync/conflicts/) and returns the copies'
// names under the prefix.
func conflictCopies(t *testing.T, e *env, r remote) []string {
	t.Helper()
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, map[string]file{"doc.txt": {[]byte("replica a's version\n"), at("2024-01-01T00:00:00Z")}})
	writeTree(t, b, map[string]file{"doc.txt": {[]byte("replica b's version, which loses\n"), at("2024-01-01T00:00:00Z")}})
	e.once(t, r, a, "")
	e.once(t, r, b, "")
	objs, err := e.gcs.List(context.Background(), r.bucket, r.object(".filesync/conflicts/"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, strings.TrimPrefix(o.Name, r.prefix+"/"))
	}
	if len(names) != 1 {
		t.Fatalf("want one conflict copy to start from, got %v", names)
	}
	return names
}
