package syncer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Names that trip up other sync tools (issue 22, item 7): filesync compares names byte for byte, as Linux
// and GCS do, so names that differ only by Unicode normalization or by case are different files.

// convergeAll settles the replicas until the bucket equals every replica and equals want.
func convergeAll(t *testing.T, b *bucket, want map[string]string, rs ...*replica) {
	t.Helper()
	for range 2 {
		for _, r := range rs {
			r.settle()
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has %d objects, want %d:\n%s", len(got), len(want), describe(got))
	}
	for _, r := range rs {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has %d files, want %d:\n%s", r.name, len(got), len(want), describe(got))
		}
	}
}

// TestNamesDifferingByNormalizationOrCaseStayApart: "café" composed (NFC) and decomposed (NFD), and
// "A.jpg" beside "a.jpg", written on two replicas: four files everywhere, none merged, none lost.
func TestNamesDifferingByNormalizationOrCaseStayApart(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	nfc, nfd := "uploads/caf\u00e9.jpg", "uploads/cafe\u0301.jpg"
	if nfc == nfd {
		t.Fatal("setup: the two spellings are the same bytes")
	}
	a.write(nfc, "composed")
	c.write(nfd, "decomposed")
	a.write("uploads/A.jpg", "upper")
	c.write("uploads/a.jpg", "lower")
	want := map[string]string{nfc: "composed", nfd: "decomposed", "uploads/A.jpg": "upper", "uploads/a.jpg": "lower"}
	convergeAll(t, b, want, a, c)
	// An edit of one spelling reaches the others and leaves its twin alone; so does a delete.
	c.write(nfc, "composed, edited on b")
	want[nfc] = "composed, edited on b"
	a.remove("uploads/a.jpg")
	delete(want, "uploads/a.jpg")
	convergeAll(t, b, want, a, c)
	if n := testutil.ToFloat64(a.m.Conflicts) + testutil.ToFloat64(c.m.Conflicts); n != 0 {
		t.Fatalf("%v conflicts between names that differ", n)
	}
}

// TestNewlineInANameIsLeftAlone: a control character in a name is unsafe (docs/design.md, "Names are
// confined"): a local file so named is neither uploaded nor deleted, an object so named (another client's)
// is neither downloaded nor deleted, and everything else syncs.
func TestNewlineInANameIsLeftAlone(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("uploads/line\nbreak.jpg", "local, unsafe")
	a.write("uploads/fine.jpg", "fine")
	b.put(testPrefix+"/uploads/other\nline.jpg", "remote, unsafe")
	for range 2 {
		a.settle()
		c.settle()
	}
	if got := a.files(); got["uploads/line\nbreak.jpg"] != "local, unsafe" || got["uploads/fine.jpg"] != "fine" || len(got) != 2 {
		t.Fatalf("[a] has\n%s", describe(got))
	}
	if got := c.files(); got["uploads/fine.jpg"] != "fine" || len(got) != 1 {
		t.Fatalf("[b] has\n%s", describe(got))
	}
	want := map[string]string{"uploads/fine.jpg": "fine", "uploads/other\nline.jpg": "remote, unsafe"}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has\n%s", describe(got))
	}
	if n := testutil.ToFloat64(c.m.SkippedUnsafe); n < 1 {
		t.Fatalf("[b] skipped_unsafe = %v, want the object counted", n)
	}
}

// TestThousandsOfFilesInOneDirectory: a flat directory of thousands of files (a WordPress uploads folder
// without year/month) reaches the bucket and a second replica whole. 1,000 by default: fake-gcs-server's
// memory backend finds an object by a linear scan (backend.findObject), so its inserts and reads grow with
// the bucket and the run is quadratic (under -race: 1,000 files 22 s, 2,000 76 s, 10,000 over 160 s;
// filesync's own share of the CPU profile is small). FILESYNC_TEST_FLAT_FILES=10000 runs the full size.
func TestThousandsOfFilesInOneDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of transfers each way")
	}
	b := newBucket(t)
	wide := withOptions(func(o *Options) { o.Transfers = 32 })
	a := b.replica("a", wide)
	n := fileCount()
	dir := filepath.Join(a.dir, "uploads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	old := time.Now().Add(-time.Hour)
	for i := range n {
		name := fmt.Sprintf("img-%05d.jpg", i)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, old, old)
		want["uploads/"+name] = name
	}
	start := time.Now()
	a.settle()
	c := b.replica("b", wide)
	c.settle()
	t.Logf("%d files up and down in %v", n, time.Since(start).Round(time.Millisecond))
	convergeAll(t, b, want, a, c)
}

// TestTwoHundredLevelsDeep: a file 200 directories down, and one beside each of a few levels on the way,
// converge on two replicas; so does removing the deepest.
func TestTwoHundredLevelsDeep(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	want := map[string]string{}
	var segs []string
	for i := range 200 {
		segs = append(segs, fmt.Sprintf("d%d", i%10))
		if i%50 == 49 {
			p := strings.Join(segs, "/") + "/f.txt"
			a.write(p, fmt.Sprint("level ", i+1))
			want[p] = fmt.Sprint("level ", i+1)
		}
	}
	deepest := strings.Join(segs, "/") + "/f.txt"
	if len(deepest) < 400 {
		t.Fatalf("setup: %d bytes deep", len(deepest))
	}
	convergeAll(t, b, want, a, c)
	c.write(deepest, "edited at the bottom, on b")
	want[deepest] = "edited at the bottom, on b"
	convergeAll(t, b, want, a, c)
	a.remove(deepest)
	delete(want, deepest)
	convergeAll(t, b, want, a, c)
}

// fileCount is the size of the flat directory: FILESYNC_TEST_FLAT_FILES, or 1,000.
func fileCount() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("FILESYNC_TEST_FLAT_FILES"), &n); err != nil || n <= 0 {
		return 1000
	}
	return n
}
