package syncer

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/watch"
)

// watchReplica runs the replica's loop with its fsnotify watcher, as the sidecar does.
func (r *replica) watch() {
	r.t.Helper()
	f, _ := filter.New(r.excl)
	w, err := watch.New(r.dir, f, r.s.log)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, func(h watch.Hint) { r.s.HintLocal(h) }); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
	r.run()
}

// TestFreshPodRestoresBeforeReady: a new replica (empty dir, no state) reports ready only once everything
// in the bucket is on its disk.
func TestFreshPodRestoresBeforeReady(t *testing.T) {
	b := newBucket(t)
	want := map[string]string{}
	for i := range 200 {
		p := fmt.Sprintf("uploads/2026/%02d/img-%03d.jpg", i%12+1, i)
		want[p] = fmt.Sprintf("image %d", i)
		b.put(testPrefix+"/"+p, want[p])
	}
	r := b.replica("fresh", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return slowMedia(next, 2*time.Millisecond)
	}))
	if r.s.Ready() {
		t.Fatal("ready before the first pass")
	}
	readyAt := make(chan map[string]string, 1)
	go func() {
		for !r.s.Ready() {
			time.Sleep(time.Millisecond)
		}
		readyAt <- r.files() // what the app would find when it starts
	}()
	r.run()
	select {
	case got := <-readyAt:
		if !equalMaps(got, want) {
			t.Fatalf("ready with %d of %d files on disk", len(got), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("never ready")
	}
}

// TestNewDirectoryFilesAreUploaded: files written into a directory created after the watch started
// (even before its own watch is in place) are uploaded without waiting for the periodic rescan.
func TestNewDirectoryFilesAreUploaded(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withOptions(func(o *Options) { o.RescanInterval = time.Hour; o.PollInterval = time.Hour }))
	a.watch()
	eventually.True(t, 5*time.Second, "ready", a.s.Ready)
	for i := range 10 {
		a.write(fmt.Sprintf("uploads/2026/12/%d/deep/f%d.jpg", i, i), fmt.Sprint(i))
	}
	eventually.True(t, 10*time.Second, "10 uploads", func() bool { return len(b.objects()) == 10 })
}

// TestSlowWriteUploadedOnceWhole: a 50 MB file written slowly is uploaded once, after it is closed and has
// been quiet for --settle, never as a partial file.
func TestSlowWriteUploadedOnceWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB slowly")
	}
	b := newBucket(t)
	a := b.replica("a", withOptions(func(o *Options) { o.Settle = 300 * time.Millisecond; o.PollInterval = time.Hour }))
	a.watch()
	eventually.True(t, 5*time.Second, "ready", a.s.Ready)
	chunk := make([]byte, 1<<20)
	fh, err := os.Create(filepath.Join(a.dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i := range 50 {
		_, _ = rand.Read(chunk)
		if _, err := fh.Write(chunk); err != nil {
			t.Fatal(err)
		}
		all = append(all, chunk...)
		if i%5 == 4 {
			time.Sleep(100 * time.Millisecond) // 1 s of writing, pauses shorter than --settle
		}
	}
	// Hold it open past the settle time: an open file is not uploaded even when quiet.
	time.Sleep(700 * time.Millisecond)
	if n := testutil.ToFloat64(a.m.Uploads); n != 0 {
		t.Fatalf("uploaded %v times while still open", n)
	}
	fh.Close()
	eventually.True(t, 60*time.Second, "the upload", func() bool { return testutil.ToFloat64(a.m.Uploads) == 1 })
	if got := b.objects()["big.bin"]; got != string(all) {
		t.Fatalf("bucket holds %d bytes, want the whole %d", len(got), len(all))
	}
	time.Sleep(500 * time.Millisecond)
	if n := testutil.ToFloat64(a.m.Uploads); n != 1 {
		t.Fatalf("uploaded %v times, want once", n)
	}
}

// TestLiveReplicasPropagate: two running sidecars (fsnotify + polling) converge on writes and deletes.
func TestLiveReplicasPropagate(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.watch()
	c.watch()
	eventually.True(t, 5*time.Second, "ready", func() bool { return a.s.Ready() && c.s.Ready() })
	a.write("index.php", "<?php")
	a.write("uploads/x.jpg", "x")
	// Both files must be known on b before it deletes one: deleting the only known file would be a wipe
	// (restored, never propagated; docs/design.md, "Safety rules").
	eventually.True(t, 10*time.Second, "x and index.php on b", func() bool {
		f := c.files()
		return f["uploads/x.jpg"] == "x" && f["index.php"] == "<?php" && c.s.base.Len() == 2
	})
	c.remove("uploads/x.jpg")
	eventually.True(t, 10*time.Second, "delete on a", func() bool { _, ok := a.files()["uploads/x.jpg"]; return !ok })
	if len(b.objects()) != 1 {
		t.Fatalf("bucket still has %v", b.objects())
	}
}
