package syncer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/watch"
)

// withLazy makes the globs lazy (--lazy).
func withLazy(globs ...string) replicaOpt {
	return func(r *replica) {
		f, err := filter.New(globs)
		if err != nil {
			r.t.Fatal(err)
		}
		r.opt.Lazy = f
	}
}

// lazySite puts 5 code files and n media objects in the bucket, as another replica would have.
func lazySite(b *bucket, n int) map[string]string {
	want := map[string]string{}
	for i := range 5 {
		want[fmt.Sprintf("plugins/p/f%d.php", i)] = fmt.Sprintf("<?php // %d", i)
	}
	for i := range n {
		want[fmt.Sprintf("uploads/2026/%02d/m%03d.jpg", i%12+1, i)] = fmt.Sprintf("jpeg %d", i)
	}
	for name, content := range want {
		b.put(testPrefix+"/"+name, content)
	}
	return want
}

func codeOf(files map[string]string) map[string]string {
	out := map[string]string{}
	for p, c := range files {
		if p[:8] == "plugins/" {
			out[p] = c
		}
	}
	return out
}

// TestLazyRestoreIsReadyBeforeItsMedia (issue 23): a fresh pod with uploads/ lazy is ready once its code
// is local, having read no media object; its missing media is neither a delete nor a wipe, pass after
// pass; the read-through fetches a media file on demand; the background fill then brings every media
// file, and the bucket loses nothing.
func TestLazyRestoreIsReadyBeforeItsMedia(t *testing.T) {
	b := newBucket(t)
	want := lazySite(b, 60)
	a := b.replica("a", withLazy("uploads/"))
	res := a.pass()
	if !a.s.Ready() || res.Failed > 0 {
		t.Fatalf("not ready after the first pass: %+v", res)
	}
	if got := a.files(); !equalMaps(got, codeOf(want)) {
		t.Fatalf("after the restore the directory holds:\n%s\nwant the code only", describe(got))
	}
	if r := a.requests("read"); r != 5 {
		t.Fatalf("the restore read %v objects, want the 5 code files", r)
	}
	for range 3 { // absent is not deleted
		a.pass()
	}
	if got := b.objects(); len(got) != len(want) {
		t.Fatalf("the bucket holds %d objects, want %d", len(got), len(want))
	}
	if testutil.ToFloat64(a.m.Wipes.WithLabelValues("local")) != 0 {
		t.Fatal("remote-only media judged a wipe")
	}
	if line := a.s.LazyStatus(); line == "" || a.s.status.lazyFiles.Load() != 60 {
		t.Fatalf("lazy status %q (%d files), want 60 files", line, a.s.status.lazyFiles.Load())
	}
	// The read-through's miss path: a remote-only file is fetched, not refused as a local delete.
	if _, err := a.s.Fetch(context.Background(), "uploads/2026/01/m000.jpg"); err != nil {
		t.Fatalf("fetch of a remote-only file: %v", err)
	}
	a.run()
	eventually.True(t, 20*time.Second, "the fill brings every media file", func() bool { return equalMaps(a.files(), want) })
	eventually.True(t, 10*time.Second, "no remote-only entry left", func() bool { return a.s.status.lazyFiles.Load() == 0 })
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("the bucket changed:\n%s", describe(got))
	}
}

// TestRemoteOnlyFollowsTheBucket (issue 23, point 4): a remote change to a remote-only path updates its
// base without a download; a remote delete forgets it; a restart with --state-dir keeps the remote-only
// entries (no listing-time downloads, no deletes), and without one they are rebuilt from the listing.
func TestRemoteOnlyFollowsTheBucket(t *testing.T) {
	b := newBucket(t)
	want := lazySite(b, 10)
	a := b.replica("a", withLazy("uploads/"), withStateDir())
	a.pass()
	reads := a.requests("read")
	b.put(testPrefix+"/uploads/2026/01/m000.jpg", "jpeg 0, edited")
	b.del(testPrefix + "/uploads/2026/02/m001.jpg")
	a.pass()
	if r := a.requests("read"); r != reads {
		t.Fatalf("remote changes to remote-only paths cost %v reads, want none", r-reads)
	}
	e, ok := a.s.base.Get("uploads/2026/01/m000.jpg")
	if !ok || !e.RemoteOnly || e.Generation != b.generation("uploads/2026/01/m000.jpg") {
		t.Fatalf("base of the changed remote-only path: %+v %v", e, ok)
	}
	if _, ok := a.s.base.Get("uploads/2026/02/m001.jpg"); ok {
		t.Fatal("a remote delete left the remote-only entry behind")
	}
	// A restart over the same state: the entries stay remote-only, nothing is read or deleted.
	a.start()
	a.pass()
	if r := a.requests("read"); r != 0 || a.s.status.lazyFiles.Load() != 9 {
		t.Fatalf("after a restart: %v reads, %d remote-only, want 0 and 9", r, a.s.status.lazyFiles.Load())
	}
	delete(want, "uploads/2026/02/m001.jpg")
	want["uploads/2026/01/m000.jpg"] = "jpeg 0, edited"
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("the bucket changed:\n%s", describe(got))
	}
	// Without the state: rebuilt from the listing, as remote-only again (the restore leaves uploads/ out;
	// the pass after it lists the whole bucket).
	fresh := b.replica("b", withLazy("uploads/"))
	fresh.pass()
	fresh.pass()
	if fresh.s.status.lazyFiles.Load() != 9 || !equalMaps(fresh.files(), codeOf(want)) {
		t.Fatalf("a pod without state: %d remote-only, files:\n%s", fresh.s.status.lazyFiles.Load(), describe(fresh.files()))
	}
}

// TestLazyFileDeletedByTheAppIsDeleted: once a lazy file is local, it is an ordinary file: the app
// deleting it deletes the object (under the guard), as without --lazy.
func TestLazyFileDeletedByTheAppIsDeleted(t *testing.T) {
	b := newBucket(t)
	lazySite(b, 10)
	a := b.replica("a", withLazy("uploads/"), withOptions(func(o *Options) { o.MaxDelete = 50 }))
	a.pass()
	if _, err := a.s.Fetch(context.Background(), "uploads/2026/01/m000.jpg"); err != nil {
		t.Fatal(err)
	}
	a.settle()
	if e, _ := a.s.base.Get("uploads/2026/01/m000.jpg"); e.RemoteOnly {
		t.Fatal("a fetched file is still remote-only after a pass")
	}
	a.remove("uploads/2026/01/m000.jpg")
	a.settle()
	if _, ok := b.objects()["uploads/2026/01/m000.jpg"]; ok {
		t.Fatal("the app's delete of a fetched lazy file did not reach the bucket")
	}
	if n := len(b.objects()); n != 14 {
		t.Fatalf("the bucket holds %d objects, want 14", n)
	}
}

// TestFillIsNewestFirst: the background fill downloads the lazy objects newest first (by the mtime they
// carry), one at a time with --transfers 4.
func TestFillIsNewestFirst(t *testing.T) {
	b := newBucket(t)
	var mu sync.Mutex
	var order []string
	a := b.replica("a", withLazy("uploads/"), withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Query().Get("alt") == "media" {
				name, _ := url.PathUnescape(r.URL.EscapedPath()[strings.LastIndex(r.URL.EscapedPath(), "/")+1:])
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
			}
			return next.RoundTrip(r)
		})
	}))
	const n = 12
	for i := range n { // m00 the oldest ... m11 the newest, written in a shuffled order
		k := (i * 5) % n
		w := b.srv.Client().Bucket(testBucket).Object(fmt.Sprintf("%s/uploads/m%02d.jpg", testPrefix, k)).NewWriter(context.Background())
		w.Metadata = map[string]string{"goog-reserved-file-mtime": strconv.Itoa(1700000000 + k*60)}
		if _, err := fmt.Fprintf(w, "jpeg %d", k); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a.pass()
	if len(order) != 0 {
		t.Fatalf("the restore read lazy objects: %v", order)
	}
	a.run()
	eventually.True(t, 20*time.Second, "every lazy file filled", func() bool { return len(a.files()) == n })
	mu.Lock()
	defer mu.Unlock()
	for i, name := range order {
		if want := fmt.Sprintf("%s/uploads/m%02d.jpg", testPrefix, n-1-i); name != want {
			t.Fatalf("filled in the order %v, want newest first", order)
		}
	}
	for i := range n {
		fi, err := os.Stat(filepath.Join(a.dir, fmt.Sprintf("uploads/m%02d.jpg", i)))
		if err != nil || fi.ModTime().Unix() != int64(1700000000+i*60) {
			t.Fatalf("m%02d: %v, want the object's mtime", i, err)
		}
	}
}

// diskBytes sums the sizes of the regular files under the replica's uploads/ and filesync's temp folder
// (a download in flight).
func (r *replica) diskBytes() int64 {
	var n int64
	for _, sub := range []string{"uploads", filepath.Join(filter.InternalDir, "tmp")} {
		_ = filepath.WalkDir(filepath.Join(r.dir, sub), func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// TestCacheSizeBoundsTheLazyFiles (issue 23, point 3): with --cache-size 20 kB and 60 kB of lazy media,
// the fill (two workers) stops at the budget without going over it (disk use, sampled every 5 ms, never
// exceeds it plus the downloads in flight, and nothing is evicted: no fill over the budget undone); every
// media file still reads back byte-identical through the read-through's fetch, 4 at a time, which waits
// for the loop to evict the least recently read ones, so that disk use stays within the budget plus the
// fetches in flight meanwhile; a file written here is uploaded before it can be evicted; the bucket loses
// nothing.
func TestCacheSizeBoundsTheLazyFiles(t *testing.T) {
	b := newBucket(t)
	const n, size, budget, fetchers = 60, 1000, 20000, 4
	want := map[string]string{}
	for i := range n {
		want[fmt.Sprintf("uploads/m%02d.jpg", i)] = fmt.Sprintf("%-*d", size, i)
	}
	for name, content := range want {
		b.put(testPrefix+"/"+name, content)
	}
	a := b.replica("a", withLazy("uploads/"), withOptions(func(o *Options) { o.CacheSize, o.Transfers = budget, 8 }))
	a.pass()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), a.diskBytes()))
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	a.run()
	eventually.True(t, 20*time.Second, "the fill stops at the budget", func() bool {
		return a.s.status.cacheBytes.Load() >= budget-size && a.s.status.lazyFiles.Load() == int64(n)-a.s.status.cacheBytes.Load()/size
	})
	time.Sleep(300 * time.Millisecond) // the fill stays stopped
	if p := peak.Load(); p > budget+int64(a.s.fillTransfers())*size {
		t.Fatalf("disk use peaked at %d bytes during the fill, over the budget %d plus the downloads in flight", p, budget)
	}
	if e := testutil.ToFloat64(a.m.LazyEvictions); e != 0 || a.s.status.cacheBytes.Load() > budget {
		t.Fatalf("the fill went over the budget: %d bytes cached, %v evictions", a.s.status.cacheBytes.Load(), e)
	}
	peak.Store(0)
	names := make(chan string)
	var wg sync.WaitGroup
	for range fetchers { // every file through the read-through's fetch
		wg.Go(func() {
			for name := range names {
				if _, err := a.s.Fetch(context.Background(), name); err != nil {
					t.Errorf("fetch %s: %v", name, err)
					continue
				}
				got, err := os.ReadFile(filepath.Join(a.dir, name))
				if err != nil || string(got) != want[name] {
					t.Errorf("%s read back as %q, %v", name, got, err)
				}
			}
		})
	}
	for name := range want {
		names <- name
	}
	close(names)
	wg.Wait()
	close(stop)
	<-sampled
	if p := peak.Load(); p > budget+fetchers*size {
		t.Fatalf("disk use peaked at %d bytes during the reads, over the budget %d plus the %d fetches in flight", p, budget, fetchers)
	}
	eventually.True(t, 10*time.Second, "back within the budget", func() bool {
		return a.s.status.cacheBytes.Load() <= budget && a.diskBytes() <= budget
	})
	if testutil.ToFloat64(a.m.LazyEvictions) == 0 {
		t.Fatal("nothing was evicted")
	}
	a.write("uploads/new.jpg", strings.Repeat("n", 2*budget)) // larger than the whole budget
	a.s.HintLocal(watch.Hint{Path: "uploads/new.jpg"})
	eventually.True(t, 10*time.Second, "the new file uploaded", func() bool { return len(b.objects()["uploads/new.jpg"]) == 2*budget })
	want["uploads/new.jpg"] = strings.Repeat("n", 2*budget)
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("the bucket changed:\n%s", describe(got))
	}
	if testutil.ToFloat64(a.m.Deletes.WithLabelValues("local")) != 0 {
		t.Fatal("an eviction was taken for a local delete")
	}
}

// manyMedia puts 5 code files and n media objects (4 bytes each) in the bucket, straight into the server
// (faster than uploads, for the listings of more than one page).
func manyMedia(b *bucket, n int) {
	for i := range 5 {
		b.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket,
			Name: fmt.Sprintf("%s/plugins/p/f%d.php", testPrefix, i)}, Content: []byte("<?php")})
	}
	for i := range n {
		b.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket,
			Name: fmt.Sprintf("%s/uploads/m%04d.jpg", testPrefix, i)}, Content: []byte("jpeg")})
	}
}

// TestReadyWaitsOnTheEagerListingOnly (issue 23, point 1): with uploads/ lazy, the restore's listing
// leaves the uploads/ folder out (but what its first page held), so ready waits on listing the code only;
// the pass after it lists the whole bucket and records every media object remote-only, and nothing is
// read or deleted for them meanwhile.
func TestReadyWaitsOnTheEagerListingOnly(t *testing.T) {
	b := newBucket(t)
	const media = 1500
	manyMedia(b, media)
	a := b.replica("a", withLazy("uploads/"))
	a.pass()
	if !a.s.Ready() || len(a.files()) != 5 || a.requests("read") != 5 {
		t.Fatalf("after the restore: ready %v, %d files, %v reads; want ready with the 5 code files", a.s.Ready(), len(a.files()), a.requests("read"))
	}
	if !a.s.lazyUnlisted || a.s.idx.remote.Len() >= 5+media {
		t.Fatalf("the restore listed %d objects (partial %v): uploads/ should have been left out", a.s.idx.remote.Len(), a.s.lazyUnlisted)
	}
	if n := a.s.status.lazyFiles.Load(); n != 0 {
		t.Fatalf("%d lazy files recorded from a partial listing, want none", n)
	}
	lists := a.requests("list")
	if _, err := a.s.Flush(context.Background()); err != nil || a.requests("list") != lists { // SIGTERM now: no listing
		t.Fatalf("a flush before the whole listing: %v, %v list requests", err, a.requests("list")-lists)
	}
	res := a.pass() // lists the whole bucket
	if a.s.lazyUnlisted || a.s.status.lazyFiles.Load() != media || res.Plan.Count(plan.RemoteOnly) != media {
		t.Fatalf("the pass after ready: partial %v, %d remote-only, plan:\n%d actions", a.s.lazyUnlisted, a.s.status.lazyFiles.Load(), len(res.Plan.Actions))
	}
	if a.requests("read") != 5 || len(b.objects()) != 5+media {
		t.Fatalf("%v reads, %d objects: media read or deleted", a.requests("read"), len(b.objects()))
	}
}

// TestLazyObjectsOfTheRestoresFirstPageAreRecorded: the restore's listing gives its first page before it
// leaves the lazy folders out, so the view it leaves holds the media objects of that page, skipped while
// the view is partial. The loop's pass that lists the whole bucket after ready must record them
// remote-only too (and the fill start on them), not leave them until the next full rescan.
func TestLazyObjectsOfTheRestoresFirstPageAreRecorded(t *testing.T) {
	b := newBucket(t)
	const media = 1500 // the first page (1,000 objects) holds 995 of them
	manyMedia(b, media)
	a := b.replica("a", withLazy("uploads/"), withOptions(func(o *Options) {
		o.RescanInterval, o.CacheSize = time.Hour, 1 // a 1-byte cache: the fill takes none, they stay remote-only
	}))
	a.run()
	eventually.True(t, 20*time.Second, "every media object recorded remote-only", func() bool {
		return a.s.status.lazyFiles.Load() == media
	})
	if len(b.objects()) != 5+media {
		t.Fatalf("the bucket holds %d objects, want %d", len(b.objects()), 5+media)
	}
}
