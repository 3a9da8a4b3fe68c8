package syncer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

func (r *replica) mtime(rel string) time.Time {
	r.t.Helper()
	fi, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(rel)))
	if err != nil {
		r.t.Fatal(err)
	}
	return fi.ModTime()
}

// TestEveryReplicaGivesAFileTheSameMtime: the writer stores its file's mtime with the object
// (goog-reserved-file-mtime, whole seconds, and rclone's mtime, nanoseconds) and keeps it; every replica
// that downloads it, and a fresh pod that restores it, gets that mtime, so their web servers send the
// same ETag and Last-Modified. An object written by another tool, without the metadata, gets its updated
// time on every replica alike.
func TestEveryReplicaGivesAFileTheSameMtime(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("uploads/p.jpg", "photo")
	orig := time.Date(2025, 6, 1, 8, 0, 0, 123_456_789, time.UTC)
	if err := os.Chtimes(filepath.Join(a.dir, "uploads", "p.jpg"), orig, orig); err != nil {
		t.Fatal(err)
	}
	a.settle()
	want := orig
	o, err := b.srv.GetObject(testBucket, testPrefix+"/uploads/p.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Metadata[gcsstore.MtimeKey]; got != "1748764800" {
		t.Errorf("object metadata %s = %q, want 1748764800", gcsstore.MtimeKey, got)
	}
	if got := o.Metadata[gcsstore.RcloneMtimeKey]; got != "2025-06-01T08:00:00.123456789Z" {
		t.Errorf("object metadata %s = %q, want 2025-06-01T08:00:00.123456789Z", gcsstore.RcloneMtimeKey, got)
	}
	if got := a.mtime("uploads/p.jpg"); !got.Equal(want) {
		t.Errorf("writer's mtime %v, want %v (its own, stored to the nanosecond)", got, want)
	}
	c.settle()
	if got := c.mtime("uploads/p.jpg"); !got.Equal(want) {
		t.Errorf("downloaded mtime %v, want %v", got, want)
	}
	a.settle() // nothing to do: the writer's new mtime is its base
	if res := a.pass(); len(res.Plan.Actions) != 0 {
		t.Errorf("the writer re-plans after taking the stored mtime:\n%s", res.Plan)
	}

	b.put(testPrefix+"/uploads/other.jpg", "by gsutil without -P")
	c.settle()
	d := b.replica("d") // a fresh pod: the streaming restore
	d.settle()
	attrs, err := b.srv.Client().Bucket(testBucket).Object(testPrefix + "/uploads/other.jpg").Attrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{c, d} {
		if got := r.mtime("uploads/other.jpg"); !got.Equal(attrs.Updated) {
			t.Errorf("[%s] other.jpg mtime %v, want the object's updated time %v", r.name, got, attrs.Updated)
		}
		if got := r.mtime("uploads/p.jpg"); !got.Equal(want) {
			t.Errorf("[%s] p.jpg mtime %v, want %v", r.name, got, want)
		}
	}
}
