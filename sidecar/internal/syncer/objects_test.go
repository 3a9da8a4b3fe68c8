package syncer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func (b *bucket) putMeta(name, content string, meta map[string]string) {
	b.t.Helper()
	w := b.srv.Client().Bucket(testBucket).Object(name).NewWriter(context.Background())
	w.Metadata = meta
	if _, err := io.WriteString(w, content); err != nil {
		b.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.t.Fatal(err)
	}
}

func (r *replica) chtimes(rel string, mtime time.Time) {
	r.t.Helper()
	if err := os.Chtimes(filepath.Join(r.dir, filepath.FromSlash(rel)), mtime, mtime); err != nil {
		r.t.Fatal(err)
	}
}

func TestRcloneMtimeIsRead(t *testing.T) {
	b := newBucket(t)
	exact := time.Date(2021, 3, 4, 5, 6, 7, 123_456_789, time.UTC)
	b.putMeta(testPrefix+"/rclone-old.jpg", "a", map[string]string{"mtime": "2021-03-04T05:06:07.123456789Z"})
	b.putMeta(testPrefix+"/rclone-new.jpg", "b", map[string]string{"mtime": "2021-03-04T05:06:07.123456789Z",
		"goog-reserved-file-mtime": "1614834367"})
	b.putMeta(testPrefix+"/disagree.jpg", "c", map[string]string{"mtime": "2021-03-04T05:06:07.123456789Z",
		"goog-reserved-file-mtime": "1600000000"})
	b.putMeta(testPrefix+"/zone.jpg", "d", map[string]string{"mtime": "2021-03-04T06:06:07.5+01:00"})
	r := b.replica("r")
	r.settle()
	for name, want := range map[string]time.Time{"rclone-old.jpg": exact, "rclone-new.jpg": exact,
		"disagree.jpg": time.Unix(1_600_000_000, 0), "zone.jpg": time.Date(2021, 3, 4, 5, 6, 7, 500_000_000, time.UTC)} {
		if got := r.mtime(name); !got.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", name, got.UTC(), want.UTC())
		}
	}
}

func TestMtimesAtAndBefore1970RoundTrip(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	want := map[string]time.Time{
		"moon.txt":  time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
		"epoch.txt": time.Unix(0, 0),
		"frac.txt":  time.Date(1969, 12, 31, 23, 59, 59, 250_000_000, time.UTC),
	}
	for name, mt := range want {
		a.write(name, name)
		a.chtimes(name, mt)
	}
	a.settle()
	c.settle()
	d := b.replica("d") // a fresh pod: the restore
	d.settle()
	for _, r := range []*replica{a, c, d} {
		for name, mt := range want {
			if got := r.mtime(name); !got.Equal(mt) {
				t.Errorf("[%s] %s: mtime %v, want %v", r.name, name, got.UTC(), mt.UTC())
			}
		}
	}
	o, err := b.srv.GetObject(testBucket, testPrefix+"/moon.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Metadata["goog-reserved-file-mtime"]; got != "-14182940" {
		t.Errorf("moon.txt: goog-reserved-file-mtime %q, want -14182940", got)
	}
}
