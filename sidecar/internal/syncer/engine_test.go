package syncer

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

func (r *replica) passes(kind string) float64 {
	return testutil.ToFloat64(r.m.Passes.WithLabelValues(kind))
}
func (r *replica) requests(op string) float64 {
	return testutil.ToFloat64(r.m.GCSRequests.WithLabelValues(op))
}

// syncedReplica returns a running, watching replica whose n files are in sync with the bucket.
func syncedReplica(t *testing.T, b *bucket, n int, opts ...replicaOpt) *replica {
	t.Helper()
	a := b.replica("a", opts...)
	for i := range n {
		a.write(fmt.Sprintf("uploads/2026/%02d/f%04d.jpg", i%12+1, i), fmt.Sprint("file ", i))
	}
	a.watch()
	eventually.True(t, 20*time.Second, "in sync", func() bool { return a.s.Ready() && len(b.objects()) == n })
	return a
}

// Issue 10, point 1: after the first pass, a local change costs a targeted pass that looks at that path,
// not a walk of the tree; the whole tree is walked only at start (and every --rescan-interval).
func TestLocalChangeCostsATargetedPassNotAWalk(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 300, withOptions(func(o *Options) { o.PollInterval = time.Hour; o.RescanInterval = time.Hour }))
	walks := a.passes("full")
	if walks != 1 {
		t.Fatalf("%v full passes to get in sync, want 1 (the start)", walks)
	}
	for i := range 5 {
		a.write(fmt.Sprintf("uploads/new-%d.jpg", i), "new")
		eventually.True(t, 10*time.Second, "the upload", func() bool { return len(b.objects()) == 301+i })
	}
	a.write("uploads/2026/01/f0000.jpg", "changed")
	eventually.True(t, 10*time.Second, "the change uploaded", func() bool { return b.objects()["uploads/2026/01/f0000.jpg"] == "changed" })
	if n := a.passes("full"); n != walks {
		t.Fatalf("%v full passes after 6 local changes, want none", n-walks)
	}
	if n := a.passes("targeted"); n < 1 {
		t.Fatal("no targeted pass")
	}
}

// Issue 10, point 2: polling that finds nothing new costs a listing and no pass.
func TestIdlePollCostsNoPass(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 20, withOptions(func(o *Options) { o.PollInterval = 20 * time.Millisecond }))
	time.Sleep(200 * time.Millisecond) // the passes of the start are over
	passes, lists := a.passes("full")+a.passes("targeted"), a.requests("list")
	gets, reads := a.requests("get"), a.requests("read")
	eventually.True(t, 20*time.Second, "5 polls", func() bool { return a.requests("list")-lists >= 5 })
	if n := a.passes("full") + a.passes("targeted") - passes; n != 0 {
		t.Fatalf("%v passes while nothing changed", n)
	}
	if a.requests("get") != gets || a.requests("read") != reads {
		t.Fatal("requests other than listings while idle")
	}
}

// A remote change found by a poll is planned per path: it costs a targeted pass, not a walk.
func TestRemoteChangeCostsATargetedPass(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 50, withOptions(func(o *Options) { o.PollInterval = 20 * time.Millisecond; o.RescanInterval = time.Hour }))
	walks := a.passes("full")
	b.put(testPrefix+"/uploads/from-b.jpg", "b")
	eventually.True(t, 10*time.Second, "the download", func() bool { return a.files()["uploads/from-b.jpg"] == "b" })
	b.put(testPrefix+"/uploads/2026/01/f0000.jpg", "rewritten by b")
	eventually.True(t, 10*time.Second, "the overwrite", func() bool { return a.files()["uploads/2026/01/f0000.jpg"] == "rewritten by b" })
	if n := a.passes("full"); n != walks {
		t.Fatalf("%v full passes for two remote changes, want none", n-walks)
	}
}

// Issue 10, point 3: a local delete seen through a hint is checked by a whole walk before the object is
// deleted (a lost or misread event must never become a remote delete); the delete then propagates.
func TestLocalDeleteIsCheckedByAWalkFirst(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 10, withOptions(func(o *Options) { o.PollInterval = time.Hour; o.RescanInterval = time.Hour }))
	walks := a.passes("full")
	a.remove("uploads/2026/01/f0000.jpg")
	eventually.True(t, 10*time.Second, "the remote delete", func() bool { _, ok := b.objects()["uploads/2026/01/f0000.jpg"]; return !ok })
	// The pass that walked deleted the object; it is counted when it ends, just after the delete.
	eventually.True(t, 10*time.Second, "the walking pass counted", func() bool { return a.passes("full") > walks })
	if n := a.passes("full") - walks; n != 1 {
		t.Fatalf("%v walks before the remote delete, want 1", n)
	}
	if len(b.objects()) != 9 {
		t.Fatalf("bucket holds %d objects, want 9", len(b.objects()))
	}
}

// Issue 10, point 3: a directory wiped while the watcher runs (every file's event arrives) is restored,
// and nothing is deleted from the bucket, exactly as a full pass would decide. (The settle time lets the
// loop coalesce the burst of events, as it does by default.)
func TestWipeSeenThroughHintsRestores(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 30, withOptions(func(o *Options) {
		o.PollInterval, o.RescanInterval, o.Settle = time.Hour, time.Hour, 400*time.Millisecond
	}))
	want := a.files()
	for p := range want {
		a.remove(p)
	}
	eventually.True(t, 10*time.Second, "the restore", func() bool { return equalMaps(a.files(), want) })
	// The pass counts the wipe when it ends, after its downloads: the files may be back a moment before.
	eventually.True(t, 10*time.Second, "the wipe counted", func() bool {
		return testutil.ToFloat64(a.m.Wipes.WithLabelValues("local")) >= 1
	})
	if len(b.objects()) != 30 || testutil.ToFloat64(a.m.Deletes.WithLabelValues("local")) != 0 {
		t.Fatalf("bucket holds %d objects, want all 30", len(b.objects()))
	}
	if n := testutil.ToFloat64(a.m.Wipes.WithLabelValues("local")); n != 1 {
		t.Fatalf("wipes{local} = %v, want 1", n)
	}
}

// Remote hints (the Pub/Sub feed's entry point): each names one path; the view already holding the
// generation means no request at all, otherwise one get; duplicates and stale events cost nothing; an
// overwrite's DELETE never deletes; a DELETE of the current generation does.
func TestApplyRemoteLooksUpOnlyWhatIsNews(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 5, withOptions(func(o *Options) { o.PollInterval = time.Hour; o.RescanInterval = time.Hour }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lists, walks := a.requests("list"), a.passes("full")

	b.put(testPrefix+"/uploads/new.jpg", "v1")
	g1 := b.generation("uploads/new.jpg")
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: "uploads/new.jpg", Generation: g1}); err != nil {
		t.Fatal(err)
	}
	if a.files()["uploads/new.jpg"] != "v1" {
		t.Fatal("ApplyRemote returned before the download")
	}
	if g, r := a.requests("get"), a.requests("read"); g != 1 || r != 1 {
		t.Fatalf("one new object cost %v gets and %v reads, want 1 and 1", g, r)
	}
	// The same event again, and an older one: nothing to look up.
	for _, c := range []RemoteChange{{Path: "uploads/new.jpg", Generation: g1}, {Path: "uploads/new.jpg", Generation: g1 - 1}} {
		if err := a.s.ApplyRemote(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if g := a.requests("get"); g != 1 {
		t.Fatalf("duplicate and stale events cost %v gets", g-1)
	}
	// An overwrite: the DELETE of the old generation (carrying overwrittenByGeneration) may come first.
	b.put(testPrefix+"/uploads/new.jpg", "v2")
	g2 := b.generation("uploads/new.jpg")
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: "uploads/new.jpg", Generation: g1, Deleted: true, OverwrittenBy: g2}); err != nil {
		t.Fatal(err)
	}
	if got := a.files()["uploads/new.jpg"]; got != "v2" {
		t.Fatalf("after the overwrite's DELETE the file holds %q, want v2", got)
	}
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: "uploads/new.jpg", Generation: g2}); err != nil {
		t.Fatal(err)
	}
	// A real delete of the current generation deletes the local copy.
	b.del(testPrefix + "/uploads/new.jpg")
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: "uploads/new.jpg", Generation: g2, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.files()["uploads/new.jpg"]; ok {
		t.Fatal("deleted object still on disk")
	}
	if a.requests("list") != lists || a.passes("full") != walks {
		t.Fatal("remote hints cost a listing or a walk")
	}
}

// described is the object an event's payload would describe for the object at rel: read from the fake,
// not through the replica (which would count a request).
func (b *bucket) described(rel string) *gcsstore.Object {
	b.t.Helper()
	o, err := b.srv.GetObject(testBucket, testPrefix+"/"+rel)
	if err != nil {
		b.t.Fatalf("object %s: %v", rel, err)
	}
	return &gcsstore.Object{Name: rel, Object: snapshot.Object{Generation: o.Generation, Size: int64(len(o.Content)),
		CRC32C: crc32.Checksum(o.Content, crc32.MakeTable(crc32.Castagnoli)), ModTime: time.Unix(1700000000, 0)}}
}

// A new generation the event describes itself (a FINALIZE's payload: RemoteChange.Object) costs one read
// and no get. A description gone stale before the download (the object overwritten meanwhile, no
// versioning) is not trusted beyond the read that fails: the pass plans again from a listing, and the file
// ends as the bucket holds it.
func TestApplyRemoteTakesTheDescribedObject(t *testing.T) {
	b := newBucket(t)
	a := syncedReplica(t, b, 2, withOptions(func(o *Options) { o.PollInterval = time.Hour; o.RescanInterval = time.Hour }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gets, reads := a.requests("get"), a.requests("read")

	b.put(testPrefix+"/plugin/a.php", "<?php // a")
	c := RemoteChange{Path: "plugin/a.php", Generation: b.generation("plugin/a.php"), Object: b.described("plugin/a.php")}
	if err := a.s.ApplyRemote(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := a.files()["plugin/a.php"]; got != "<?php // a" {
		t.Fatalf("plugin/a.php holds %q", got)
	}
	if g, r := a.requests("get")-gets, a.requests("read")-reads; g != 0 || r != 1 {
		t.Fatalf("a described new object cost %v gets and %v reads, want 0 and 1", g, r)
	}
	if fi, err := os.Stat(filepath.Join(a.dir, "plugin/a.php")); err != nil || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("plugin/a.php: %v; want the described mtime", err)
	}

	b.put(testPrefix+"/plugin/b.php", "<?php // b1")
	stale := RemoteChange{Path: "plugin/b.php", Generation: b.generation("plugin/b.php"), Object: b.described("plugin/b.php")}
	b.put(testPrefix+"/plugin/b.php", "<?php // b2") // overwritten before the event is applied
	lists := a.requests("list")
	if err := a.s.ApplyRemote(ctx, stale); err != nil {
		t.Logf("the stale description: %v", err) // told not applied, or applied by the replan: both fine
	}
	eventually.True(t, 10*time.Second, "plugin/b.php as the bucket holds it", func() bool {
		return a.files()["plugin/b.php"] == "<?php // b2"
	})
	if a.requests("list") == lists {
		t.Fatal("a stale description was followed without a listing")
	}
}

// BenchmarkPlanOneChange: the loop's own work for one changed file (look at it, plan it) against the size
// of the tree, targeted vs a full pass's walk and plan. The targeted cost must not grow with the tree.
func BenchmarkPlanOneChange(b *testing.B) {
	for _, n := range []int{2000, 20000, 100000} {
		bk := newBucket(&testing.T{})
		r := bk.replica("bench")
		s := r.s
		files := map[string]snapshot.File{}
		for i := range n {
			p := fmt.Sprintf("uploads/%04d/%02d/f%06d.jpg", 2000+i/1200, i/100%12+1, i)
			st := snapshot.Stamp{Size: 100, ModTime: int64(i)}
			files[p] = snapshot.File{Stamp: st, CRC32C: uint32(i)}
			s.base.Set(p, snapshot.Base{Object: snapshot.Object{Generation: int64(i + 1), Size: 100, CRC32C: uint32(i)}, ModTime: int64(i)})
		}
		s.idx.replaceLocal(files)
		view := map[string]snapshot.Object{}
		for p := range files {
			e, _ := s.base.Get(p)
			view[p] = e.Object
		}
		s.idx.replaceRemote(viewOf(view, s.base.Key), map[string]struct{}{})
		r.write("uploads/new.jpg", "a new upload")
		b.Run(fmt.Sprintf("targeted/files=%d", n), func(b *testing.B) {
			for b.Loop() {
				touched, err := s.look(map[string]bool{"uploads/new.jpg": false}, 0)
				if err != nil {
					b.Fatal(err)
				}
				if p := s.compute(touched, 0); len(p.Actions) != 1 {
					b.Fatalf("plan:\n%s", p)
				}
			}
		})
		// The peer: planning the whole tree, as every pass did before (without even its walk).
		b.Run(fmt.Sprintf("whole/files=%d", n), func(b *testing.B) {
			for b.Loop() {
				if p := s.compute(nil, 0); len(p.Actions) != 1 {
					b.Fatalf("plan:\n%s", p)
				}
			}
		})
	}
}
