package localfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

func open(t testing.TB) (*Dir, string) {
	t.Helper()
	p := t.TempDir()
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, p
}

func entries(t *testing.T, p string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(p, func(x string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			rel, _ := filepath.Rel(p, x)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestWriteAtomicPublishesVerifiedContent(t *testing.T) {
	d, p := open(t)
	data := []byte("hello, world")
	st, err := d.WriteAtomic("a/b/c.txt", bytes.NewReader(data), int64(len(data)), CRC32C(data), time.Time{}, Expect{Absent: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(p, "a/b/c.txt"))
	if string(got) != string(data) || st.Size != int64(len(data)) {
		t.Fatalf("got %q %+v", got, st)
	}
	fi, _ := os.Stat(filepath.Join(p, "a/b/c.txt"))
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644 (readable by the web server)", fi.Mode())
	}
}

func TestWriteAtomicRejectsCorruptionAndLeavesNothing(t *testing.T) {
	d, p := open(t)
	data := []byte("hello")
	_, err := d.WriteAtomic("x.txt", bytes.NewReader(data), 5, CRC32C(data)^1, time.Time{}, Expect{Absent: true})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	_, err = d.WriteAtomic("y.txt", bytes.NewReader(data[:3]), 5, CRC32C(data), time.Time{}, Expect{Absent: true})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short body: err = %v, want ErrCorrupt", err)
	}
	if e := entries(t, p); len(e) != 0 {
		t.Fatalf("left behind: %v", e)
	}
}

func TestWriteAtomicDoesNotClobberAConcurrentWrite(t *testing.T) {
	d, p := open(t)
	f := filepath.Join(p, "x.txt")
	_ = os.WriteFile(f, []byte("old"), 0o644)
	st, _ := d.Stat("x.txt")
	_ = os.WriteFile(f, []byte("the app wrote this meanwhile"), 0o644)
	data := []byte("remote")
	if _, err := d.WriteAtomic("x.txt", bytes.NewReader(data), 6, CRC32C(data), time.Time{}, Expect{Stamp: st}); !errors.Is(err, ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "the app wrote this meanwhile" {
		t.Fatalf("clobbered: %q", b)
	}
	// A file that appeared where none was expected is not clobbered either.
	_ = os.WriteFile(filepath.Join(p, "new.txt"), []byte("app"), 0o644)
	if _, err := d.WriteAtomic("new.txt", bytes.NewReader(data), 6, CRC32C(data), time.Time{}, Expect{Absent: true}); !errors.Is(err, ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
}

func TestWritesStayInsideTheDirectory(t *testing.T) {
	d, p := open(t)
	outside := t.TempDir()
	_ = os.Symlink(outside, filepath.Join(p, "link"))
	data := []byte("x")
	for _, rel := range []string{"../escape", "link/escape"} {
		if _, err := d.WriteAtomic(rel, bytes.NewReader(data), 1, CRC32C(data), time.Time{}, Expect{Absent: true}); err == nil {
			t.Fatalf("write to %s succeeded", rel)
		}
	}
	if e := entries(t, outside); len(e) != 0 {
		t.Fatalf("written outside: %v", e)
	}
}

func TestScanSkipsSymlinksExcludedAndInternal(t *testing.T) {
	d, p := open(t)
	for _, f := range []string{"a.jpg", "cache/x", "dir/b.jpg", TempDir + "/123", ".filesync/other"} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(p, f)), 0o755)
		_ = os.WriteFile(filepath.Join(p, f), []byte(f), 0o644)
	}
	_ = os.Symlink(filepath.Join(p, "a.jpg"), filepath.Join(p, "link.jpg"))
	_ = os.Symlink(t.TempDir(), filepath.Join(p, "linkdir"))
	_ = os.WriteFile(filepath.Join(p, `back\slash`), []byte("x"), 0o644)
	flt, _ := filter.New([]string{"cache/**"})
	res, err := d.Scan(flt, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range res.Files {
		got = append(got, k)
	}
	if len(got) != 2 || res.Files["a.jpg"].CRC32C != CRC32C([]byte("a.jpg")) || res.Files["dir/b.jpg"].Size != 9 {
		t.Fatalf("scan found %v", got)
	}
	if len(res.Unsafe) != 1 || !strings.Contains(res.Unsafe[0], "slash") {
		t.Fatalf("unsafe: %v", res.Unsafe)
	}
}

func TestScanUsesCacheAndLeavesFreshFilesUnhashed(t *testing.T) {
	d, p := open(t)
	_ = os.WriteFile(filepath.Join(p, "old"), []byte("old"), 0o644)
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(filepath.Join(p, "old"), past, past)
	_ = os.WriteFile(filepath.Join(p, "new"), []byte("new"), 0o644)
	res, err := d.Scan(nil, ScanOptions{
		Cache: func(rel string, s snapshot.Stamp) (uint32, bool) { return 42, rel == "old" },
		Fresh: func(_ string, s snapshot.Stamp) bool { return time.Since(time.Unix(0, s.ModTime)) < time.Minute },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files["old"].CRC32C != 42 || !res.Fresh["new"] || res.Hashed != 0 {
		t.Fatalf("files %+v hashed %d", res.Files, res.Hashed)
	}
}

func TestInUse(t *testing.T) {
	d, p := open(t)
	f := filepath.Join(p, "x")
	fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if !d.InUse("x") {
		fh.Close()
		t.Skip("file leases are not available here (fs.leases-enable=0 or unsupported filesystem); settle time alone applies")
	}
	fh.Close()
	if d.InUse("x") {
		t.Fatal("closed file reported in use")
	}
}

// B8: temp files live in filesync's own folder: an app file named like an old temp file is left alone,
// and leftovers of a crash (temp files, staged directories) are removed at the next start whatever their
// age.
func TestTempFilesAreUnmistakable(t *testing.T) {
	p := t.TempDir()
	app := filepath.Join(p, "d", ".filesync-tmp-abc")
	_ = os.MkdirAll(filepath.Dir(app), 0o755)
	_ = os.WriteFile(app, []byte("the app's"), 0o644)
	_ = os.MkdirAll(filepath.Join(p, TempDir), 0o755)
	_ = os.WriteFile(filepath.Join(p, TempDir, "0123456789abcdef"), []byte("half a download"), 0o644)
	_ = os.MkdirAll(filepath.Join(p, StageDir, "0123456789abcdef", "inc"), 0o755)
	_ = os.WriteFile(filepath.Join(p, StageDir, "0123456789abcdef", "inc", "x.php"), []byte("half a tree"), 0o644)
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if e := entries(t, p); len(e) != 1 || e[0] != filepath.Join("d", ".filesync-tmp-abc") {
		t.Fatalf("left %v; want only the app's file", e)
	}
	res, err := d.Scan(nil, ScanOptions{})
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("scan %v %v: the app's file must be synced like any other", res.Files, err)
	}
}

// B7: a reader (tail -f) does not make a file busy; a writer does.
func TestInUseMeansOpenForWriting(t *testing.T) {
	d, p := open(t)
	f := filepath.Join(p, "x")
	_ = os.WriteFile(f, []byte("x"), 0o644)
	r, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d.InUse("x") {
		t.Fatal("a file open only for reading is reported in use")
	}
	w, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !d.InUse("x") {
		t.Skip("file leases are not available here")
	}
}

// B4: nothing is written or removed through a symlinked directory inside the tree.
func TestNeverWritesThroughASymlink(t *testing.T) {
	d, p := open(t)
	_ = os.Mkdir(filepath.Join(p, "real"), 0o755)
	_ = os.Symlink("real", filepath.Join(p, "alias"))
	_ = os.WriteFile(filepath.Join(p, "real", "y"), []byte("y"), 0o644)
	b := []byte("x")
	if _, err := d.WriteAtomic("alias/x.txt", bytes.NewReader(b), 1, CRC32C(b), time.Time{}, Expect{Absent: true}); !errors.Is(err, ErrSymlink) {
		t.Fatalf("write through a symlink: %v, want ErrSymlink", err)
	}
	if _, err := os.Stat(filepath.Join(p, "real", "x.txt")); err == nil {
		t.Fatal("written through the symlink")
	}
	st, _ := d.Stat("real/y")
	if err := d.Remove("alias/y", st); !errors.Is(err, ErrSymlink) {
		t.Fatalf("remove through a symlink: %v, want ErrSymlink", err)
	}
}

// B3: a file takes the place of a directory whose files are gone; not of one that still holds files.
func TestFileReplacesAnEmptyDirectory(t *testing.T) {
	d, p := open(t)
	_ = os.MkdirAll(filepath.Join(p, "e", "sub"), 0o755)
	b := []byte("now a file")
	if _, err := d.WriteAtomic("e", bytes.NewReader(b), int64(len(b)), CRC32C(b), time.Time{}, Expect{Absent: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(p, "e")); string(got) != "now a file" {
		t.Fatalf("e = %q", got)
	}
	_ = os.MkdirAll(filepath.Join(p, "f"), 0o755)
	_ = os.WriteFile(filepath.Join(p, "f", "keep"), []byte("k"), 0o644)
	if _, err := d.WriteAtomic("f", bytes.NewReader(b), int64(len(b)), CRC32C(b), time.Time{}, Expect{Absent: true}); !errors.Is(err, ErrClash) {
		t.Fatalf("over a directory with files: %v, want ErrClash", err)
	}
	// And a directory takes the place of a file only once the file is gone: the file is never clobbered.
	if _, err := d.WriteAtomic("e/inner", bytes.NewReader(b), int64(len(b)), CRC32C(b), time.Time{}, Expect{Absent: true}); !errors.Is(err, ErrClash) {
		t.Fatalf("under a file: %v, want ErrClash", err)
	}
}

// B1: an unreadable file or directory is reported, and the scan goes on.
func TestScanReportsUnreadablePaths(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything; the syncer's TestUnreadablePathsDoNotStopTheSync covers this as another user")
	}
	d, p := open(t)
	_ = os.WriteFile(filepath.Join(p, "ok"), []byte("ok"), 0o644)
	_ = os.WriteFile(filepath.Join(p, "secret"), []byte("s"), 0o000)
	_ = os.Mkdir(filepath.Join(p, "locked"), 0o000)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(p, "locked"), 0o755) })
	res, err := d.Scan(nil, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Unreadable["secret"] == nil || res.Unreadable["locked"] == nil {
		t.Fatalf("files %v unreadable %v", res.Files, res.Unreadable)
	}
}

func TestScanPathLooksAtOnePathOrOneTree(t *testing.T) {
	d, p := open(t)
	for _, f := range []string{"a.jpg", "cache/x", "dir/b.jpg", "dir/sub/c.jpg", "other/d.jpg", ".filesync/other"} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(p, f)), 0o755)
		_ = os.WriteFile(filepath.Join(p, f), []byte(f), 0o644)
	}
	_ = os.Symlink(filepath.Join(p, "other"), filepath.Join(p, "linkdir"))
	_ = os.Symlink(filepath.Join(p, "a.jpg"), filepath.Join(p, "link.jpg"))
	flt, _ := filter.New([]string{"cache/**"})
	for _, c := range []struct {
		rel  string
		want []string
	}{
		{"a.jpg", []string{"a.jpg"}},
		{"dir", []string{"dir/b.jpg", "dir/sub/c.jpg"}},
		{"dir/sub/c.jpg", []string{"dir/sub/c.jpg"}},
		{"gone.jpg", nil},
		{"gone/x.jpg", nil},
		{"cache/x", nil},         // excluded
		{"linkdir", nil},         // a symlinked directory is never entered
		{"linkdir/d.jpg", nil},   // nor read through
		{"link.jpg", nil},        // symlinks are not synced
		{"a.jpg/x", nil},         // under a file
		{".filesync/other", nil}, // filesync's own folder
	} {
		res, err := d.ScanPath(flt, c.rel, ScanOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.rel, err)
		}
		var got []string
		for k := range res.Files {
			got = append(got, k)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(c.want, ",") || len(res.Unreadable) != 0 {
			t.Errorf("ScanPath(%q) = %v (unreadable %v), want %v", c.rel, got, res.Unreadable, c.want)
		}
	}
	if res, _ := d.ScanPath(flt, "dir/b.jpg", ScanOptions{}); res.Files["dir/b.jpg"].CRC32C != CRC32C([]byte("dir/b.jpg")) {
		t.Fatal("not hashed")
	}
}

// TestWriteAtomicSetsModTime: the published file has the given mtime (set before the rename, so the app
// never sees another), and the returned stamp says so; SetModTime changes only the version it was told.
func TestWriteAtomicSetsModTime(t *testing.T) {
	d, dir := open(t)
	data := []byte("hello")
	mtime := time.Unix(1_700_000_000, 0)
	st, err := d.WriteAtomic("m/a.txt", bytes.NewReader(data), int64(len(data)), CRC32C(data), mtime, Expect{Absent: true})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "m", "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) || st.ModTime != mtime.UnixNano() {
		t.Fatalf("mtime %v, stamp %d; want %v", fi.ModTime(), st.ModTime, mtime)
	}
	later := time.Unix(1_800_000_000, 0)
	if _, err := d.SetModTime("m/a.txt", snapshot.Stamp{Size: 5, ModTime: 1}, later); !errors.Is(err, ErrChanged) {
		t.Fatalf("SetModTime with a stale stamp = %v, want ErrChanged", err)
	}
	st2, err := d.SetModTime("m/a.txt", st, later)
	if err != nil || st2.ModTime != later.UnixNano() {
		t.Fatalf("SetModTime = %+v, %v; want mtime %v", st2, err, later)
	}
}

// OpenRead serves the file a name names and nothing a symlink leads to, even inside the directory: a
// symlink to a file, to a directory, at a middle segment, to a file outside; directories and FIFOs are
// not regular files (the FIFO without blocking the open); a missing path is fs.ErrNotExist.
func TestOpenReadFollowsNoSymlink(t *testing.T) {
	d, p := open(t)
	outside := t.TempDir()
	_ = os.WriteFile(filepath.Join(outside, "o"), []byte("outside"), 0o644)
	_ = os.MkdirAll(filepath.Join(p, "private", "deep"), 0o755)
	_ = os.MkdirAll(filepath.Join(p, "uploads", "2026"), 0o755)
	_ = os.WriteFile(filepath.Join(p, "private", "deep", "p.jpg"), []byte("private"), 0o644)
	_ = os.WriteFile(filepath.Join(p, "uploads", "2026", "a.jpg"), []byte("a"), 0o644)
	for link, target := range map[string]string{"uploads/f.jpg": "2026/a.jpg", "uploads/d": "../private",
		"uploads/m": "..", "uploads/out": filepath.Join(outside, "o")} {
		if err := os.Symlink(target, filepath.Join(p, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(p, "uploads", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := d.OpenRead("uploads/2026/a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(fh); string(b) != "a" {
		t.Errorf("read %q", b)
	}
	fh.Close()
	for rel, want := range map[string]error{
		"uploads/f.jpg": ErrSymlink, "uploads/d/deep/p.jpg": ErrSymlink, "uploads/m/private/deep/p.jpg": ErrSymlink,
		"uploads/out": ErrSymlink, "uploads/d/missing.jpg": ErrSymlink, "uploads/2026": ErrNotRegular,
		"uploads/fifo": ErrNotRegular, "uploads/none.jpg": fs.ErrNotExist, "none/a.jpg": fs.ErrNotExist,
		"../x": filter.ErrUnsafe,
	} {
		fh, err := d.OpenRead(rel)
		if !errors.Is(err, want) {
			t.Errorf("OpenRead(%s): %v, want %v", rel, err, want)
		}
		if fh != nil {
			fh.Close()
		}
	}
}

// A staged directory is published in one rename only where nothing is: an existing directory, even an
// empty one the app just made, is never replaced nor merged into; a symlinked parent is refused.
func TestPublishNeverReplacesADirectory(t *testing.T) {
	d, p := open(t)
	stage, err := d.Stage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAtomic(stage+"/inc/a.php", strings.NewReader("a"), 1, CRC32C([]byte("a")), time.Time{}, Expect{Absent: true}); err != nil {
		t.Fatal(err)
	}
	if top, ok := d.TopMissingDir("plugins/p/inc/a.php"); !ok || top != "plugins" {
		t.Fatalf("top missing folder %q %v; want plugins", top, ok)
	}
	_ = os.MkdirAll(filepath.Join(p, "plugins", "p"), 0o755)
	if top, ok := d.TopMissingDir("plugins/p/inc/a.php"); !ok || top != "plugins/p/inc" {
		t.Fatalf("top missing folder %q %v; want plugins/p/inc", top, ok)
	}
	if top, ok := d.TopMissingDir("plugins/p/a.php"); ok {
		t.Fatalf("top missing folder %q; want none", top)
	}
	if err := d.Publish(stage, "plugins/p"); !errors.Is(err, ErrChanged) {
		t.Fatalf("publish over an empty directory: %v; want ErrChanged", err)
	}
	if e := entries(t, filepath.Join(p, "plugins")); len(e) != 0 {
		t.Fatalf("plugins holds %v; want nothing", e)
	}
	_ = os.Symlink(filepath.Join(p, "plugins"), filepath.Join(p, "linked"))
	if err := d.Publish(stage, "linked/q"); !errors.Is(err, ErrSymlink) {
		t.Fatalf("publish through a symlink: %v; want ErrSymlink", err)
	}
	if err := d.Publish(stage, "plugins/q"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "plugins", "q", "inc", "a.php")); err != nil || string(b) != "a" {
		t.Fatalf("published file %q %v", b, err)
	}
	if e, _ := os.ReadDir(filepath.Join(p, StageDir)); len(e) != 0 {
		t.Fatalf("stage holds %d entries after the publish", len(e))
	}
	stage2, _ := d.Stage()
	if err := d.Discard(stage2); err != nil {
		t.Fatal(err)
	}
	if err := d.Discard("plugins/q"); err == nil {
		t.Fatal("Discard removed a directory outside the stage")
	}
}
