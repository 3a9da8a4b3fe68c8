package syncer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// setRemoteMtime patches the object's mtime metadata in place, as `rclone touch` (or rclone's "Updated
// modification time in destination") does: the same generation, a new metageneration and mtime.
func (b *bucket) setRemoteMtime(rel string, mtime time.Time) {
	b.t.Helper()
	o := b.srv.Client().Bucket(testBucket).Object(testPrefix + "/" + rel)
	if _, err := o.Update(context.Background(), storage.ObjectAttrsToUpdate{
		Metadata: map[string]string{gcsstore.MtimeKey: strconv.FormatInt(mtime.Unix(), 10)}}); err != nil {
		b.t.Fatal(err)
	}
}

// putWithMtime writes an object with an mtime in its metadata, as `gcloud storage rsync` re-uploading the
// same bytes does: a new generation, the same CRC32C.
func (b *bucket) putWithMtime(rel, content string, mtime time.Time) {
	b.t.Helper()
	w := b.srv.Client().Bucket(testBucket).Object(testPrefix + "/" + rel).NewWriter(context.Background())
	w.Metadata = map[string]string{gcsstore.MtimeKey: strconv.FormatInt(mtime.Unix(), 10)}
	if _, err := io.WriteString(w, content); err != nil {
		b.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.t.Fatal(err)
	}
}

// TestNewRemoteMtimeReachesRunningReplicas (P1): a new mtime on identical bytes in the bucket (rclone touch:
// same generation; gcloud storage rsync: a new generation, the same CRC32C) reaches every running replica's
// file, as a new pod gets it, with no download; and taking it is not a local change pushed back.
func TestNewRemoteMtimeReachesRunningReplicas(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("uploads/p.jpg", "photo")
	a.settle()
	c.settle()
	gen := b.generation("uploads/p.jpg")

	touched := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	b.setRemoteMtime("uploads/p.jpg", touched)
	if g := b.generation("uploads/p.jpg"); g != gen {
		t.Fatalf("the metadata patch made generation %d of %d: the test does not model rclone touch", g, gen)
	}
	reads := c.requests("read")
	for _, r := range []*replica{a, c} {
		r.settle()
		if got := r.mtime("uploads/p.jpg"); !got.Equal(touched) {
			t.Errorf("[%s] after rclone touch: mtime %v, want the object's %v", r.name, got, touched)
		}
	}
	if c.requests("read") != reads {
		t.Errorf("a new mtime cost %v downloads", c.requests("read")-reads)
	}
	d := b.replica("d") // a new pod agrees
	d.settle()
	if got := d.mtime("uploads/p.jpg"); !got.Equal(touched) {
		t.Errorf("[d] new pod: mtime %v, want %v", got, touched)
	}

	rsynced := time.Date(2024, 4, 1, 10, 0, 0, 0, time.UTC)
	b.putWithMtime("uploads/p.jpg", "photo", rsynced)
	for _, r := range []*replica{a, c, d} {
		r.settle()
		if got := r.mtime("uploads/p.jpg"); !got.Equal(rsynced) {
			t.Errorf("[%s] after a re-upload of the same bytes: mtime %v, want %v", r.name, got, rsynced)
		}
		if res := r.pass(); len(res.Plan.Actions) != 0 {
			t.Errorf("[%s] plans again after taking the mtime:\n%s", r.name, res.Plan)
		}
	}
	if g := b.generation("uploads/p.jpg"); g == gen {
		t.Fatal("no new generation")
	}
	gen = b.generation("uploads/p.jpg")
	if ups := testutil.ToFloat64(a.m.Uploads) + testutil.ToFloat64(c.m.Uploads) + testutil.ToFloat64(d.m.Uploads); ups != 1 {
		t.Errorf("%v uploads, want only the first: a new mtime taken here must not go back up", ups)
	}

	// A local touch of identical bytes: nothing goes up (no upload, no metadata write); the file takes the
	// object's mtime back, so this replica serves what the others and a new pod serve.
	local := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(c.dir, "uploads", "p.jpg"), local, local); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := c.mtime("uploads/p.jpg"); !got.Equal(rsynced) {
		t.Errorf("[b] after a local touch: mtime %v, want the object's %v", got, rsynced)
	}
	if g := b.generation("uploads/p.jpg"); g != gen || testutil.ToFloat64(c.m.Uploads) != 0 {
		t.Errorf("a local touch was uploaded (generation %d, was %d)", g, gen)
	}
}

// TestNotifiedMetadataUpdateReachesTheFile (P1, notifications): a METADATA_UPDATE names a generation the
// view holds; the loop reads the object's attributes again (one get) and the file takes the new mtime.
func TestNotifiedMetadataUpdateReachesTheFile(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 1, withOptions(func(o *Options) { o.PollInterval, o.RescanInterval = time.Hour, time.Hour }))
	const p = "uploads/2026/01/f0000.jpg"
	gen := b.generation(p)
	touched := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	b.setRemoteMtime(p, touched)
	gets, lists := a.requests("get"), a.requests("list")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: p, Generation: gen, Metadata: true}); err != nil {
		t.Fatal(err)
	}
	if got := a.mtime(p); !got.Equal(touched) {
		t.Fatalf("after the notified metadata update: mtime %v, want %v", got, touched)
	}
	if g := a.requests("get") - gets; g != 1 || a.requests("list") != lists || a.requests("read") != 0 {
		t.Fatalf("a metadata update cost %v gets, %v lists, %v reads; want one get", g, a.requests("list")-lists, a.requests("read"))
	}
}
