package syncer

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/plan"
)

// The scenarios of "nothing is ever lost": each one lost data or misbehaved before the rules in
// docs/design.md ("Safety rules") were adopted.

// deleteAllObjects empties the bucket behind the replicas' backs (an emulator restarted empty, a stray
// `gcloud storage rm -r`, a wrong lifecycle rule).
func (b *bucket) deleteAllObjects() {
	b.t.Helper()
	res, err := b.srv.ListObjectsWithOptionsPaginated(testBucket, fakestorage.ListOptions{Prefix: testPrefix + "/"})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, o := range res.Objects {
		b.del(o.Name)
	}
}

// del deletes an object directly, as another client would.
func (b *bucket) del(name string) {
	b.t.Helper()
	if err := b.srv.Client().Bucket(testBucket).Object(name).Delete(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// D1: an emptied bucket never deletes the replicas' copies; they restore it, and say so once.
func TestEmptiedBucketIsRestoredNotPropagated(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	for i := range 8 {
		a.write(fmt.Sprintf("precious%d.txt", i), fmt.Sprint("precious ", i))
	}
	a.settle()
	c.settle()
	b.deleteAllObjects()
	a.settle()
	c.settle()
	for _, r := range []*replica{a, c} {
		if n := len(r.files()); n != 8 {
			t.Fatalf("[%s] has %d files after the bucket was emptied, want 8", r.name, n)
		}
	}
	if n := len(b.objects()); n != 8 {
		t.Fatalf("bucket has %d objects, want the 8 restored", n)
	}
	if w := testutil.ToFloat64(a.m.Wipes.WithLabelValues("remote")); w != 1 {
		t.Fatalf("wipes{side=remote} = %v, want 1", w)
	}
}

// D2: a slow remote wipe (a few objects before each pass) spends one --max-delete budget: at most half
// of the files go, not nearly all of them.
func TestSlowRemoteWipeIsBudgeted(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	for i := range 40 {
		a.write(fmt.Sprintf("f%02d.jpg", i), fmt.Sprint(i))
	}
	a.settle()
	for i := range 40 {
		b.del(fmt.Sprintf("%s/f%02d.jpg", testPrefix, i))
		if i%4 == 3 {
			a.pass()
		}
	}
	a.settle()
	if n := len(a.files()); n < 20 {
		t.Fatalf("a slow remote wipe left %d of 40 local files; the guard allows 20 deletes", n)
	}
}

// D3: a wiped directory holding one new file (the app wrote it before filesync restarted) is a wipe:
// the known files are restored, none is deleted remotely.
func TestWipedDirectoryWithANewFileIsRestored(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withStateDir())
	for i := range 10 {
		a.write(fmt.Sprintf("f%d.jpg", i), fmt.Sprint(i))
	}
	a.settle()
	if err := os.RemoveAll(a.dir); err != nil {
		t.Fatal(err)
	}
	a.write("index.php", "<?php")
	a.start()
	a.settle()
	if n := len(b.objects()); n != 11 {
		t.Fatalf("bucket has %d objects, want the 10 kept and index.php", n)
	}
	if n := len(a.files()); n != 11 {
		t.Fatalf("directory has %d files, want 11", n)
	}
}

// D4: a conflict on a file the app holds open for writing waits until it is closed: the app's later
// writes are never sent to an unlinked inode.
func TestConflictNeverReplacesAnOpenFile(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("log.txt", "line 0\n")
	a.settle()
	c.settle()
	fh, err := os.OpenFile(filepath.Join(a.dir, "log.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !a.s.dir.InUse("log.txt") {
		fh.Close()
		t.Skip("file leases are not available here")
	}
	_, _ = fh.WriteString("line 1\n")
	c.write("log.txt", "B's edit\n")
	c.settle()
	a.pass() // conflict planned: deferred, the file is open
	_, _ = fh.WriteString("line 10\n")
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	clear(a.s.holds.failures) // the busy wait would be over by now
	a.settle()
	found := false
	for name, content := range b.objects() {
		if strings.Contains(content, "line 10") {
			found = strings.HasPrefix(name, ".filesync/conflicts/log.txt.")
		}
	}
	if !found {
		t.Fatalf("the app's last write is nowhere in the bucket: %v", b.objects())
	}
	if got := a.files()["log.txt"]; got != "B's edit\n" {
		t.Fatalf("log.txt = %q, want the remote version", got)
	}
}

// B1: an unreadable file or directory (chmod 000, lost+found for a non-root sidecar) stays alone and
// everything else syncs in both directions. Root reads everything, so as root the test runs itself again
// as nobody.
func TestUnreadablePathsDoNotStopTheSync(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestUnreadablePathsDoNotStopTheSync")
		return
	}
	b := newBucket(t)
	a := b.replica("a")
	a.write("secret.txt", "secret")
	a.write("lost+found/x", "x")
	a.settle()
	if err := os.Chmod(filepath.Join(a.dir, "secret.txt"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(a.dir, "lost+found"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(a.dir, "lost+found"), 0o755) })
	a.write("unreadable-new.txt", "u")
	if err := os.Chmod(filepath.Join(a.dir, "unreadable-new.txt"), 0); err != nil {
		t.Fatal(err)
	}
	a.write("new-local.txt", "n")
	b.put(testPrefix+"/new-remote.txt", "r")
	a.settle()
	got := b.objects()
	if got["new-local.txt"] != "n" || got["secret.txt"] != "secret" || got["lost+found/x"] != "x" || got["unreadable-new.txt"] != "" {
		t.Fatalf("bucket: %v", got)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "new-remote.txt")); err != nil {
		t.Fatalf("the remote object did not arrive: %v", err)
	}
	if n := testutil.ToFloat64(a.m.SkippedPaths.WithLabelValues("unreadable")); n != 2 {
		t.Fatalf("skipped{unreadable} = %v, want 2", n)
	}
}

// runAsNobody runs one test of this binary again as uid/gid 65534 and fails if it fails.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("FILESYNC_TEST_AS_NOBODY") != "" {
		t.Fatal("still root after dropping privileges")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "filesync-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o777)
	bin := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FILESYNC_TEST_AS_NOBODY=1", "TMPDIR="+dir, "HOME="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

// B2: /readyz stays 503 while downloads of the restore fail, says why, and turns 200 once they succeed.
func TestReadyWaitsForFailedDownloads(t *testing.T) {
	b := newBucket(t)
	for i := range 5 {
		b.put(fmt.Sprintf("%s/f%d.jpg", testPrefix, i), "data")
	}
	var failing atomic.Bool
	failing.Store(true)
	c := b.replica("b", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if failing.Load() && isMedia(r) && objectIn(r, "f3.jpg") {
				return nil, fmt.Errorf("no space left on device")
			}
			return next.RoundTrip(r)
		})
	}))
	for range 3 { // the failing path backs off, so the later passes leave it alone: still not ready
		_, _ = c.s.Pass(context.Background(), true)
	}
	if c.s.Ready() {
		t.Fatal("ready with a failed download")
	}
	if why := c.s.NotReadyReason(); !strings.Contains(why, "f3.jpg") || !strings.Contains(why, "1 paths failed") {
		t.Fatalf("reason %q", why)
	}
	failing.Store(false)
	c.settle()
	if !c.s.Ready() {
		t.Fatal("not ready after the download succeeded")
	}
}

// B3: a directory replaced by a file (and the reverse) converges on every replica, and objects x/y and
// x/y/z both in the bucket are settled the same way every time: the folder wins, nothing is retried.
func TestDirectoryAndFileSwapConverge(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	for i := range 8 {
		a.write(fmt.Sprintf("other%d", i), "o")
	}
	a.write("e/f", "inner")
	a.write("g", "a file")
	a.settle()
	c.settle()
	if err := os.RemoveAll(filepath.Join(a.dir, "e")); err != nil {
		t.Fatal(err)
	}
	a.write("e", "now a file")
	a.remove("g")
	a.write("g/inner", "now a directory")
	a.settle()
	c.settle()
	if got := c.files(); got["e"] != "now a file" || got["g/inner"] != "now a directory" || got["e/f"] != "" {
		t.Fatalf("b has\n%s", describe(got))
	}

	b.put(testPrefix+"/x/y", "file")
	b.put(testPrefix+"/x/y/z", "deeper")
	d := b.replica("d")
	d.settle()
	res := d.pass()
	if got := d.files(); got["x/y/z"] != "deeper" || !res.Clean() || len(res.Plan.Actions) != 0 {
		t.Fatalf("d has\n%s\nlast pass %+v", describe(got), res)
	}
	if n := testutil.ToFloat64(d.m.SkippedPaths.WithLabelValues("clash")); n != 1 {
		t.Fatalf("skipped{clash} = %v, want 1", n)
	}
}

// B4: an object under a symlinked directory is skipped like an unsafe name: never written through it,
// never uploaded under the link's target, never deleted.
func TestNothingIsWrittenThroughASymlink(t *testing.T) {
	b := newBucket(t)
	c := b.replica("b")
	if err := os.Mkdir(filepath.Join(c.dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(c.dir, "alias")); err != nil {
		t.Fatal(err)
	}
	b.put(testPrefix+"/alias/x.txt", "through the link")
	c.settle()
	if _, err := os.Stat(filepath.Join(c.dir, "real", "x.txt")); err == nil {
		t.Fatal("written through the symlink")
	}
	got := b.objects()
	if _, ok := got["real/x.txt"]; ok || got["alias/x.txt"] != "through the link" {
		t.Fatalf("bucket: %v", got)
	}
	if n := testutil.ToFloat64(c.m.SkippedUnsafe); n != 1 {
		t.Fatalf("skipped_unsafe = %v, want 1", n)
	}
}

// B5 and B6: --once uploads a file with an mtime in the future, and files written just before it runs,
// and returns nil: settling files are waited for.
func TestOnceConvergesOnFreshAndFutureFiles(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withOptions(func(o *Options) { o.Settle = 300 * time.Millisecond }))
	for i := range 11 {
		p := filepath.Join(a.dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(a.dir, "f00"), future, future)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.s.Once(ctx); err != nil {
		t.Fatalf("--once: %v", err)
	}
	if n := len(b.objects()); n != 11 {
		t.Fatalf("bucket has %d objects, want 11", n)
	}
}

// B7: a reader holding a file open (tail -f) does not block its upload; a writer does, and the held-back
// upload counts as pending.
func TestOnlyWritersHoldBackUploads(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	a.write("read.log", "r")
	a.write("write.log", "w")
	r, err := os.Open(filepath.Join(a.dir, "read.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(filepath.Join(a.dir, "write.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !a.s.dir.InUse("write.log") {
		t.Skip("file leases are not available here")
	}
	a.pass()
	got := b.objects()
	if got["read.log"] != "r" {
		t.Fatalf("a file open for reading was not uploaded: %v", got)
	}
	if _, ok := got["write.log"]; ok {
		t.Fatal("a file open for writing was uploaded")
	}
	if p := testutil.ToFloat64(a.m.PendingUploads); p != 1 {
		t.Fatalf("pending_uploads = %v, want 1", p)
	}
}

// B9: an object stored gzip-encoded (the client would decompress it, so it can never match its checksum)
// is skipped once with a reason, not retried forever, and does not keep the replica from being ready.
func TestGzipEncodedObjectIsSkipped(t *testing.T) {
	b := newBucket(t)
	b.srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: testBucket,
		Name: testPrefix + "/style.css", ContentEncoding: "gzip"}, Content: []byte("\x1f\x8b not really")})
	b.put(testPrefix+"/plain.css", "p")
	c := b.replica("b")
	c.settle()
	if res := c.pass(); !res.Clean() || len(res.Plan.Actions) != 0 {
		t.Fatalf("not clean: %+v", res)
	}
	if got := c.files(); got["plain.css"] != "p" || got["style.css"] != "" || !c.s.Ready() {
		t.Fatalf("files %v ready %v", got, c.s.Ready())
	}
	if n := testutil.ToFloat64(c.m.SkippedPaths.WithLabelValues("content_encoding")); n != 1 {
		t.Fatalf("skipped{content_encoding} = %v, want 1", n)
	}
}

// Issue 10's spin: while the guard withholds deletes, polling finds nothing new, so it costs no pass.
func TestPollAfterGuardTripFindsNoChange(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	for i := range 10 {
		a.write(fmt.Sprintf("f%d", i), "x")
	}
	a.settle()
	a.s.guard.window = plan.DeleteWindow{Start: time.Now(), Known: 10, Deleted: 5} // the budget is spent
	b.del(testPrefix + "/f0")                                                      // deleted remotely: the local delete is withheld, the base keeps f0
	if res := a.pass(); len(res.Plan.BlockedDeletes) != 1 {
		t.Fatalf("want the delete withheld:\n%s", res.Plan)
	}
	for range 3 {
		changed, err := a.s.list(context.Background(), false)
		if err != nil || changed {
			t.Fatalf("list changed = %v, %v; want no change", changed, err)
		}
	}
}
