package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
)

// The directory's own faults (issue 22, item 7): a disk that fills up during a restore, a read-only
// directory, a read-through fetch while another replica uploads. Mounts need root: the tests skip
// without it, and fail instead where FILESYNC_REQUIRE_MOUNT is set (.ci/run sets it).

// mount runs mount(8) with args, skipping (or failing, when required) where this process may not mount.
func mount(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("mount", args...).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("mount %s: %v %s", strings.Join(args, " "), err, out)
	if os.Getenv("FILESYNC_REQUIRE_MOUNT") != "" {
		t.Fatal(msg)
	}
	t.Skip("needs to mount (root): " + msg)
}

// mountTmpfs mounts a tmpfs of size on a new directory, unmounted at the end of the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	mount(t, "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// retryNow makes every path backing off due now.
func (r *replica) retryNow() {
	for p, f := range r.s.holds.failures {
		f.next = time.Time{}
		r.s.holds.failures[p] = f
	}
}

// TestDiskFullDuringRestoreLosesNothing: a fresh pod restores 2 MB into a 1 MiB volume. The downloads that
// do not fit fail and are retried; nothing is deleted in the bucket, no partial file is published, no temp
// file is left behind, and the pod is not ready. Once the volume grows, the restore completes.
func TestDiskFullDuringRestoreLosesNothing(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	b := newBucket(t)
	want := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("uploads/%02d.jpg", i)
		want[name] = strings.Repeat(string(rune('a'+i)), 100<<10)
		b.put(testPrefix+"/"+name, want[name])
	}
	c := b.replica("c", withDir(dir))
	for range 3 {
		_, _ = c.s.Pass(context.Background(), true)
		c.retryNow()
	}
	if c.s.Ready() {
		t.Fatal("ready with a restore that did not fit")
	}
	if why := c.s.NotReadyReason(); !strings.Contains(why, "failed") {
		t.Fatalf("/readyz reason %q does not say that paths fail", why)
	}
	got := c.files()
	if len(got) == 0 || len(got) == len(want) {
		t.Fatalf("%d of %d files restored into 1 MiB: the volume did not fill as planned", len(got), len(want))
	}
	for name, content := range got {
		if content != want[name] {
			t.Errorf("%s published with %d of %d bytes", name, len(content), len(want[name]))
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, ".filesync", "tmp")); len(tmp) != 0 {
		t.Errorf("temp files left behind: %d", len(tmp))
	}
	if objs := b.objects(); len(objs) != len(want) {
		t.Fatalf("the bucket holds %d objects, want %d", len(objs), len(want))
	}

	mount(t, "-o", "remount,size=4m", dir)
	c.retryNow()
	c.settle()
	if got := c.files(); !equalMaps(got, want) || !c.s.Ready() {
		t.Fatalf("after the volume grew: ready=%v, %d of %d files", c.s.Ready(), len(got), len(want))
	}
}

// TestReadOnlyDirectoryLosesNothing: a sidecar (re)started on a read-only directory refuses to start, with
// an error naming the directory and why (the container restarts, the pod is not ready), and touches
// nothing in the bucket meanwhile; started again on a writable directory, it catches up with what changed.
func TestReadOnlyDirectoryLosesNothing(t *testing.T) {
	dir := t.TempDir()
	b := newBucket(t)
	a := b.replica("a", withDir(dir), withStateDir())
	for i := range 4 {
		a.write(fmt.Sprintf("f%d", i), fmt.Sprint(i))
	}
	a.settle()
	mount(t, "--bind", dir, dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	mount(t, "-o", "remount,ro,bind", dir)
	b.put(testPrefix+"/new.jpg", "new")
	b.del(testPrefix + "/f0")
	before := b.objects()
	if d, err := localfs.Open(dir); err == nil {
		d.Close()
		t.Fatal("a read-only directory was opened for syncing")
	} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("the error does not say which directory and why: %v", err)
	}
	if got := b.objects(); !equalMaps(got, before) {
		t.Fatalf("the bucket changed:\n%s", describe(got))
	}

	mount(t, "-o", "remount,rw,bind", dir)
	a.start()
	a.settle()
	want := map[string]string{"f1": "1", "f2": "2", "f3": "3", "new.jpg": "new"}
	if got := a.files(); !equalMaps(got, want) {
		t.Fatalf("after the directory was writable again:\n%s", describe(got))
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket:\n%s", describe(got))
	}
}

// TestFetchWhileTheWriterUploads: a read-through fetch on one replica while another is in the middle of
// uploading the same path (a chunked upload, held after its first chunk) finds nothing rather than part of
// the file, writes nothing, and once the upload is done fetches the whole file.
func TestFetchWhileTheWriterUploads(t *testing.T) {
	b := newBucket(t)
	started, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := b.replica("a", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.RawQuery, "upload_id=") {
				once.Do(func() { close(started) })
				<-proceed
			}
			return next.RoundTrip(r)
		})
	}))
	c := b.replica("c")
	a.settle()
	c.settle()
	content := bytes.Repeat([]byte("0123456789abcdef"), (9<<20)/16) // over one 8 MiB chunk
	a.write("uploads/big.bin", string(content))
	uploaded := make(chan Result)
	go func() { res, _ := a.s.Pass(context.Background(), true); uploaded <- res }()
	<-started
	if _, err := c.s.Fetch(context.Background(), "uploads/big.bin"); !errors.Is(err, gcsstore.ErrNotFound) {
		t.Errorf("fetch during the upload: %v, want not found", err)
	}
	if _, ok := c.files()["uploads/big.bin"]; ok {
		t.Error("the fetch during the upload wrote a file")
	}
	close(proceed)
	if res := <-uploaded; res.Failed > 0 || b.objects()["uploads/big.bin"] != string(content) {
		t.Fatalf("the upload did not finish: %+v", res)
	}
	if _, err := c.s.Fetch(context.Background(), "uploads/big.bin"); err != nil {
		t.Fatal(err)
	}
	if got := c.files()["uploads/big.bin"]; got != string(content) {
		t.Fatalf("fetched %d of %d bytes", len(got), len(content))
	}
}
