package syncer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// exists reports whether rel exists in the replica's directory.
func (r *replica) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(r.dir, filepath.FromSlash(rel)))
	return err == nil
}

// TestFileOverwrittenByAGzipObjectLeavesEveryReplica (P8): a synced file overwritten in the bucket by a
// gzip-encoded object (which filesync never syncs) ends as on a new pod, which gets none: the running
// replicas remove their stale copy instead of keeping it (and serving it, or letting a copy tool push it
// back); the object in the bucket is left alone.
func TestFileOverwrittenByAGzipObjectLeavesEveryReplica(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("assets/style.css", "body{}")
	a.write("assets/keep.css", "p{}")
	a.settle()
	c.settle()
	b.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket,
		Name: testPrefix + "/assets/style.css", ContentEncoding: "gzip"}, Content: []byte("\x1f\x8b compressed")})
	gen := b.generation("assets/style.css")
	a.settle()
	c.settle()
	d := b.replica("d") // a new pod
	d.settle()
	want := map[string]string{"assets/keep.css": "p{}"}
	for _, r := range []*replica{a, c, d} {
		if got := r.files(); !equalMaps(got, want) {
			t.Errorf("[%s] has\n%swant, as a new pod\n%s", r.name, describe(got), describe(want))
		}
		if !r.s.Ready() {
			t.Errorf("[%s] not ready", r.name)
		}
	}
	if g := b.generation("assets/style.css"); g != gen {
		t.Errorf("the gzip-encoded object was overwritten: generation %d, was %d", g, gen)
	}
	// A plain object in its place later syncs again, everywhere.
	b.put(testPrefix+"/assets/style.css", "body{color:red}")
	want["assets/style.css"] = "body{color:red}"
	for _, r := range []*replica{a, c, d} {
		r.settle()
		if got := r.files(); !equalMaps(got, want) {
			t.Errorf("[%s] after a plain object: has\n%swant\n%s", r.name, describe(got), describe(want))
		}
	}
}

// TestRemoteDeleteRemovesEmptiedDirectories: a remote delete that takes the last file of a local
// directory takes the directories it leaves empty too (as a new pod would not have them), up to the
// first that still holds something, never the sync root; a directory the app keeps a file or an empty
// directory in stays.
func TestRemoteDeleteRemovesEmptiedDirectories(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("uploads/2026/12/a.jpg", "a")
	a.write("uploads/2025/01/b.jpg", "b")
	a.write("uploads/keep.jpg", "k")
	a.write("solo/only.jpg", "o")
	for _, p := range []string{"k1", "k2", "k3", "k4", "k5", "k6"} { // the deletes stay under --max-delete
		a.write("uploads/"+p+".jpg", p)
	}
	a.settle()
	c.settle()
	if err := os.MkdirAll(filepath.Join(c.dir, "uploads", "2025", "app-made"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"uploads/2026/12/a.jpg", "uploads/2025/01/b.jpg", "solo/only.jpg"} {
		b.del(testPrefix + "/" + p)
	}
	c.settle()
	for _, gone := range []string{"uploads/2026/12/a.jpg", "uploads/2026/12", "uploads/2026", "uploads/2025/01", "solo"} {
		if c.exists(gone) {
			t.Errorf("%s is still there", gone)
		}
	}
	for _, kept := range []string{"uploads/keep.jpg", "uploads/2025/app-made", "uploads"} {
		if !c.exists(kept) {
			t.Errorf("%s was removed", kept)
		}
	}
	if _, err := os.Stat(c.dir); err != nil {
		t.Fatalf("the sync root: %v", err)
	}
}
