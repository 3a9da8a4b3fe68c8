package syncer

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/localfs"
)

// TestCorruptDownloadIsNeverPublished: bytes that do not match the object's CRC32C never reach the
// directory, not even as a partial file; the temp file is removed and the error counted.
func TestCorruptDownloadIsNeverPublished(t *testing.T) {
	b := newBucket(t)
	b.put(testPrefix+"/uploads/photo.jpg", strings.Repeat("pixels", 1000))
	b.put(testPrefix+"/uploads/fine.jpg", "fine")
	c := b.replica("b", withTransport(corruptMedia("photo.jpg")))
	res := c.pass()
	if res.Failed != 1 {
		t.Fatalf("want the corrupt download to fail, got %+v\n%s", res, res.Plan)
	}
	files := c.files()
	if _, ok := files["uploads/photo.jpg"]; ok {
		t.Fatal("a corrupt download was published")
	}
	if files["uploads/fine.jpg"] != "fine" {
		t.Fatal("one failing path blocked another")
	}
	for p := range files {
		if strings.HasPrefix(p, ".filesync/") {
			t.Fatalf("temp file left behind: %s", p)
		}
	}
	if testutil.ToFloat64(c.m.Errors.WithLabelValues("download")) != 1 {
		t.Fatal("download error not counted")
	}
}

// TestUploadsCarryCRC32C: every upload sends the file's CRC32C, so GCS rejects corruption in transit.
func TestUploadsCarryCRC32C(t *testing.T) {
	b := newBucket(t)
	rec := &recordBodies{}
	a := b.replica("a", withTransport(rec.wrap))
	a.write("a.jpg", "content of a")
	a.settle()
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], localfs.CRC32C([]byte("content of a")))
	want := `"crc32c":"` + base64.StdEncoding.EncodeToString(sum[:]) + `"`
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.bodies) != 1 || !strings.Contains(rec.bodies[0], want) {
		t.Fatalf("upload request does not carry %s: %q", want, rec.bodies)
	}
}

// TestUnsafeObjectNamesAreSkipped: object names that would land outside the directory are never written.
// "dir/" is a folder placeholder: never written either, but ignored, not counted as unsafe
// (TestFolderPlaceholdersAreIgnored).
func TestUnsafeObjectNamesAreSkipped(t *testing.T) {
	b := newBucket(t)
	for _, n := range []string{"../escape.txt", "a/../../escape2.txt", "/abs.txt", `..\win.txt`, "nul\x00.txt", "dir/"} {
		b.put(testPrefix+"/"+n, "evil")
	}
	b.put(testPrefix+"/ok.txt", "ok")
	parent := t.TempDir()
	c := b.replica("b")
	c.dir = filepath.Join(parent, "dir")
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.start()
	c.settle()
	if got := c.files(); len(got) != 1 || got["ok.txt"] != "ok" {
		t.Fatalf("directory has\n%s", describe(got))
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Fatalf("something was written next to the directory: %v", entries)
	}
	if n := testutil.ToFloat64(c.m.SkippedUnsafe); n != 5 {
		t.Fatalf("skipped_unsafe = %v, want 5", n)
	}
	c.settle() // warned once per name, not every pass
	if n := testutil.ToFloat64(c.m.SkippedUnsafe); n != 5 {
		t.Fatalf("skipped_unsafe = %v after a second pass, want still 5", n)
	}
}

// TestSymlinksAreNotFollowed: a symlink in the directory (to a file or a directory outside) is not synced,
// and a download never writes through one.
func TestSymlinksAreNotFollowed(t *testing.T) {
	b := newBucket(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := b.replica("a")
	_ = os.Symlink(filepath.Join(outside, "secret"), filepath.Join(a.dir, "link-to-file"))
	_ = os.Symlink(outside, filepath.Join(a.dir, "link-to-dir"))
	a.write("real.txt", "real")
	a.settle()
	if got := b.objects(); len(got) != 1 || got["real.txt"] != "real" {
		t.Fatalf("bucket has\n%s", describe(got))
	}
	// A remote object under the symlinked directory's name must not land in the outside directory.
	b.put(testPrefix+"/link-to-dir/planted", "planted")
	a.pass()
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Fatal("a download was written through a symlink out of the directory")
	}
}

// TestExcludedPathsAreUntouchedOnBothSides: excluded globs are never uploaded, downloaded or deleted.
func TestExcludedPathsAreUntouchedOnBothSides(t *testing.T) {
	b := newBucket(t)
	b.put(testPrefix+"/cache/remote-cache.bin", "remote cache")
	a := b.replica("a", withExcludes("cache/**", "*.tmp"))
	a.write("cache/local-cache.bin", "local cache")
	a.write("upload.tmp", "partial")
	a.write("uploads/real.jpg", "real")
	a.settle()
	objs := b.objects()
	if len(objs) != 2 || objs["uploads/real.jpg"] != "real" || objs["cache/remote-cache.bin"] != "remote cache" {
		t.Fatalf("bucket has\n%s", describe(objs))
	}
	files := a.files()
	if _, ok := files["cache/remote-cache.bin"]; ok || files["cache/local-cache.bin"] != "local cache" || files["upload.tmp"] != "partial" {
		t.Fatalf("directory has\n%s", describe(files))
	}
	// Deleting the local excluded file deletes nothing remote.
	a.remove("cache/local-cache.bin")
	a.settle()
	if _, ok := b.objects()["cache/remote-cache.bin"]; !ok {
		t.Fatal("an excluded remote object was deleted")
	}
}
