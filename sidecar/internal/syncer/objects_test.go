package syncer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What filesync reads from and writes to objects besides their bytes (issue 24): the Content-Type of the
// path, the mtime other tools write, mtimes at or before 1970, and the Cloud Console's folder placeholders.

// putMeta writes an object directly, with custom metadata, as another tool would.
// TestConflictCopyHasTheContentTypeOfItsPath: a conflict copy's name ends in the writer's pod and a unix
// time, yet it is stored with the Content-Type of the path it preserves.
func TestConflictCopyHasTheContentTypeOfItsPath(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("theme/style.css", "body { color: red }")
	c.write("theme/style.css", "body { color: blue }")
	a.settle()
	c.settle()
	n := 0
	for name := range b.objects() {
		if !strings.HasPrefix(name, ".filesync/conflicts/theme/style.css.b.") {
			continue
		}
		n++
		o, err := b.srv.GetObject(testBucket, testPrefix+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if o.ContentType != "text/css" {
			t.Errorf("conflict copy %s stored as %q, want text/css", name, o.ContentType)
		}
	}
	if n != 1 {
		t.Fatalf("%d conflict copies, want 1:\n%s", n, describe(b.objects()))
	}
}

// TestRcloneMtimeIsRead: an object carrying only rclone's mtime key (RFC 3339, nanoseconds: what rclone
// before v1.56 wrote) restores with that mtime to the nanosecond; with both keys, agreeing to the second,
// rclone's finer one is taken; when they disagree, goog-reserved-file-mtime wins.
// TestMtimesAtAndBefore1970RoundTrip: a file dated before 1970 (negative unix seconds) or exactly at the
// epoch keeps its mtime on every replica and after a restore, instead of taking the upload time.
// TestFolderPlaceholdersAreIgnored: zero-byte objects named "dir/" (the Cloud Console's "Create folder")
// are not files: never warned about nor counted as unsafe, never downloaded (no empty directory either),
// never deleted, and a placeholder "a/" does not make an object or a file "a" a folder.

func TestFolderPlaceholdersAreIgnored(t *testing.T) {
	b := newBucket(t)
	for _, name := range []string{"uploads/2026/", "empty/", "nested/deeper/", "a/", "f/"} {
		b.put(testPrefix+"/"+name, "")
	}
	b.put(testPrefix+"/a", "object a beside the placeholder a/")
	b.put(testPrefix+"/uploads/2026/x.jpg", "x")
	r, c := b.replica("r"), b.replica("c")
	c.write("f", "file f beside the placeholder f/")
	for _, name := range []string{"keep1.jpg", "keep2.jpg", "keep3.jpg"} {
		c.write(name, name)
	}
	c.settle()
	r.settle()
	for _, x := range []*replica{r, c} {
		if n := testutil.ToFloat64(x.m.SkippedUnsafe); n != 0 {
			t.Errorf("[%s] filesync_skipped_unsafe_total = %v, want 0", x.name, n)
		}
		if n := testutil.ToFloat64(x.m.SkippedPaths.WithLabelValues("clash")); n != 0 {
			t.Errorf("[%s] filesync_skipped_paths_total{reason=clash} = %v, want 0", x.name, n)
		}
	}
	c.settle()
	if got := r.files()["a"]; got != "object a beside the placeholder a/" {
		t.Errorf("[r] a = %q: the object beside a placeholder was not downloaded", got)
	}
	if got := r.files()["f"]; got != "file f beside the placeholder f/" {
		t.Errorf("[r] f = %q: the file beside a placeholder was not synced", got)
	}
	for _, dir := range []string{"empty", "nested"} {
		if _, err := os.Lstat(filepath.Join(r.dir, dir)); err == nil {
			t.Errorf("[r] a placeholder was downloaded: %s exists", dir)
		}
	}
	// Deleting the folder's only file locally deletes that object, not the placeholder.
	r.remove("uploads/2026/x.jpg")
	r.settle()
	c.settle()
	objs := b.objects()
	if _, ok := objs["uploads/2026/x.jpg"]; ok {
		t.Errorf("uploads/2026/x.jpg was not deleted")
	}
	for _, name := range []string{"uploads/2026/", "empty/", "nested/deeper/", "a/", "f/"} {
		if _, ok := objs[name]; !ok {
			t.Errorf("placeholder %s was deleted", name)
		}
	}
}
