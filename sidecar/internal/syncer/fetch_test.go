package syncer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

// TestFetchFindsAnObjectNewerThanTheListing: an object written after this replica's last listing is looked
// up in the bucket itself, published atomically with its mtime, and handed to the loop; the next pass records
// the base and moves nothing.
func TestFetchFindsAnObjectNewerThanTheListing(t *testing.T) {
	b := newBucket(t)
	r := b.replica("b")
	r.settle()
	b.put(testPrefix+"/uploads/new.jpg", "just uploaded elsewhere")
	st, err := r.s.Fetch(context.Background(), "uploads/new.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.files()["uploads/new.jpg"]; got != "just uploaded elsewhere" {
		t.Fatalf("fetched file holds %q", got)
	}
	if st.Size != int64(len("just uploaded elsewhere")) || st.ModTime != r.mtime("uploads/new.jpg").UnixNano() {
		t.Errorf("stamp %+v does not describe the file", st)
	}
	r.s.intake.mu.Lock()
	_, handed := r.s.intake.pending.fetched["uploads/new.jpg"]
	r.s.intake.mu.Unlock()
	if !handed {
		t.Error("the fetched object was not handed to the loop")
	}
	res := r.pass()
	if _, ok := r.s.base.Get("uploads/new.jpg"); !ok || res.Failed > 0 {
		t.Fatalf("the pass after the fetch did not record the base:\n%s", res.Plan)
	}
	for _, a := range res.Plan.Actions {
		if a.Path == "uploads/new.jpg" && a.Op.String() != "record" {
			t.Errorf("the pass after the fetch plans %v for the fetched file", a.Op)
		}
	}
	if got := b.objects()["uploads/new.jpg"]; got != "just uploaded elsewhere" {
		t.Errorf("bucket holds %q after the pass", got)
	}
	if n := testutil.ToFloat64(r.m.Downloads); n != 1 {
		t.Errorf("filesync_downloads_total = %v, want 1", n)
	}
}

// TestFetchRefuses: no such object is gcsstore.ErrNotFound; excluded, internal and unsafe paths are never
// looked up; a file the app deleted here (in the base with the live generation) is not fetched back.
func TestFetchRefuses(t *testing.T) {
	b := newBucket(t)
	r := b.replica("b", withExcludes("cache/**"))
	r.write("uploads/gone.jpg", "x")
	r.write("uploads/stays1.jpg", "y") // one delete of three known files: under --max-delete
	r.write("uploads/stays2.jpg", "z")
	r.settle()
	b.put(testPrefix+"/cache/page.html", "cached")
	ctx := context.Background()
	before := testutil.ToFloat64(r.m.GCSRequests.WithLabelValues("get"))
	for _, p := range []string{"cache/page.html", ".filesync/tmp/x", "../etc/passwd", "a\\b"} {
		if _, err := r.s.Fetch(ctx, p); !errors.Is(err, ErrNotFetchable) {
			t.Errorf("Fetch(%q) = %v, want ErrNotFetchable", p, err)
		}
	}
	if n := testutil.ToFloat64(r.m.GCSRequests.WithLabelValues("get")); n != before {
		t.Errorf("refused paths cost %v GCS requests", n-before)
	}
	if _, err := r.s.Fetch(ctx, "uploads/missing.jpg"); !errors.Is(err, gcsstore.ErrNotFound) {
		t.Errorf("Fetch(missing) = %v, want ErrNotFound", err)
	}
	r.remove("uploads/gone.jpg")
	if _, err := r.s.Fetch(ctx, "uploads/gone.jpg"); !errors.Is(err, gcsstore.ErrNotFound) {
		t.Errorf("Fetch(deleted locally) = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "uploads", "gone.jpg")); err == nil {
		t.Error("a file the app deleted was fetched back")
	}
	r.settle()
	if _, ok := b.objects()["uploads/gone.jpg"]; ok {
		t.Error("the local delete did not reach the bucket")
	}
}

// TestFetchDuringPasses: fetches racing passes (with -race) never make a pass delete the object, and every
// fetch returns the published file.
func TestFetchDuringPasses(t *testing.T) {
	b := newBucket(t)
	r := b.replica("b")
	r.settle()
	const n = 30
	for i := range n {
		b.put(testPrefix+"/uploads/"+string(rune('a'+i%26))+string(rune('0'+i/26))+".jpg", "content")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := r.s.Pass(ctx, true); err != nil && ctx.Err() == nil {
				t.Errorf("pass: %v", err)
			}
		}
	}()
	for i := range n {
		p := "uploads/" + string(rune('a'+i%26)) + string(rune('0'+i/26)) + ".jpg"
		if _, err := r.s.Fetch(ctx, p); err != nil {
			t.Errorf("Fetch(%s): %v", p, err)
		}
	}
	cancel()
	wg.Wait()
	r.settle()
	if got := len(b.objects()); got != n {
		t.Errorf("bucket holds %d objects after fetches during passes, want %d", got, n)
	}
	if got := len(r.files()); got != n {
		t.Errorf("directory holds %d files, want %d", got, n)
	}
}

// TestFetchNeverTakesAFolder (issue 22, F2): objects uploads/c and uploads/c/d both exist. A fetch of c is
// refused (the folder wins, as in every listing) and writes nothing, so a fetch of c/d still works and both
// replicas converge on c/d, with c left alone on both.
func TestFetchNeverTakesAFolder(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("c")
	a.settle()
	c.settle()
	b.put(testPrefix+"/uploads/c", "a file")
	b.put(testPrefix+"/uploads/c/d", "in the folder")
	if _, err := a.s.Fetch(context.Background(), "uploads/c"); !errors.Is(err, ErrNotFetchable) {
		t.Fatalf("fetch of an object that is also a folder: %v, want ErrNotFetchable", err)
	}
	if fi, err := os.Lstat(filepath.Join(a.dir, "uploads", "c")); err == nil {
		t.Fatalf("the refused fetch wrote uploads/c (%v)", fi.Mode())
	}
	if _, err := a.s.Fetch(context.Background(), "uploads/c/d"); err != nil {
		t.Fatalf("fetch of uploads/c/d: %v", err)
	}
	a.settle()
	c.settle()
	want := map[string]string{"uploads/c/d": "in the folder"}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Errorf("[%s] has\n%s", r.name, describe(got))
		}
	}
}
