package syncer

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// F5 (issue 22): a folder replaced by a file of its name (`rm -r e; echo x > e`) converges on every
// replica, however small the tree. Before, deleting the last known files counted as a wipe, so nothing was
// deleted: the bucket kept e/f beside the new object e (a clash the listing skips: the folder won), the
// writer kept its file e, the other replica kept e/f, and both were ready, for ever.
func TestFolderReplacedByAFileConverges(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree []string // the synced tree; the folder e is then replaced by a file e
		want map[string]string
	}{
		{"the only file", []string{"e/f"}, map[string]string{"e": "x"}},
		{"the only folder, two files", []string{"e/f", "e/g"}, map[string]string{"e": "x"}},
		{"a nested only file", []string{"e/d/f"}, map[string]string{"e": "x"}},
		{"one of two files", []string{"e/f", "g"}, map[string]string{"e": "x", "g": "g"}},
		{"two of three files", []string{"e/f", "e/g", "h"}, map[string]string{"e": "x", "h": "h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(t)
			a, c := b.replica("a"), b.replica("b")
			for _, p := range tc.tree {
				a.write(p, filepath.Base(p))
			}
			a.settle()
			c.settle()
			if got := c.files(); len(got) != len(tc.tree) {
				t.Fatalf("b before: has\n%s", describe(got))
			}

			if err := os.RemoveAll(filepath.Join(a.dir, "e")); err != nil {
				t.Fatal(err)
			}
			a.write("e", "x")
			for range 2 {
				a.settle()
				c.settle()
			}
			for _, r := range []*replica{a, c} {
				if got := r.files(); !equalMaps(got, tc.want) {
					t.Errorf("[%s] has\n%swant\n%s", r.name, describe(got), describe(tc.want))
				}
				if !r.s.Ready() {
					t.Errorf("[%s] not ready", r.name)
				}
			}
			if got := b.objects(); !equalMaps(got, tc.want) {
				t.Errorf("bucket has\n%swant\n%s", describe(got), describe(tc.want))
			}
		})
	}
}

// The same in the bucket: another client writes an object e and deletes e/f. The replicas delete their e/f
// (the object e took its folder's place: not a wiped bucket) and download e in its place.
func TestObjectReplacingAFolderConverges(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("e/f", "f")
	a.settle()
	c.settle()

	b.put(testPrefix+"/e", "x")
	b.del(testPrefix + "/e/f")
	for range 2 {
		a.settle()
		c.settle()
	}
	want := map[string]string{"e": "x"}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Errorf("[%s] has\n%swant\n%s", r.name, describe(got), describe(want))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Errorf("bucket has\n%swant\n%s", describe(got), describe(want))
	}
}

// A replica upgraded in the state F5 left behind (the bucket holding its file e beside the folder's e/f,
// the other replica e/f) finishes the replacement: the bucket already holds the file, so e/f goes.
func TestLeftOverReplacementFinishes(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("e/f", "f")
	a.settle()
	c.settle()
	if err := os.RemoveAll(filepath.Join(a.dir, "e")); err != nil {
		t.Fatal(err)
	}
	a.write("e", "x")
	b.put(testPrefix+"/e", "x") // what a uploaded before (create-only), beside e/f
	for range 2 {
		a.settle()
		c.settle()
	}
	want := map[string]string{"e": "x"}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Errorf("[%s] has\n%swant\n%s", r.name, describe(got), describe(want))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Errorf("bucket has\n%swant\n%s", describe(got), describe(want))
	}
}

// A folder holding most of the tree replaced by a file is still a mass delete: the file replaces one of
// the folder's files, the other deletes (2 of the 3 known files) are withheld by --max-delete, loudly.
// Nothing is deleted anywhere, and the file is in the bucket (beside the folder, which wins, until the
// deletes are allowed).
func TestLargeFolderReplacedByAFileTripsTheGuard(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	for _, p := range []string{"e/f", "e/g", "e/h"} {
		a.write(p, filepath.Base(p))
	}
	a.settle()
	c.settle()
	if err := os.RemoveAll(filepath.Join(a.dir, "e")); err != nil {
		t.Fatal(err)
	}
	a.write("e", "x")
	res := a.pass()
	if len(res.Plan.BlockedDeletes) != 3 || res.Plan.LocalWiped {
		t.Fatalf("want 3 withheld deletes, no wipe:\n%s", res.Plan)
	}
	a.settle()
	c.settle()
	want := map[string]string{"e": "x", "e/f": "f", "e/g": "g", "e/h": "h"}
	if got := b.objects(); !equalMaps(got, want) {
		t.Errorf("bucket has\n%swant\n%s", describe(got), describe(want))
	}
	if got := c.files(); len(got) != 3 || got["e/f"] != "f" {
		t.Errorf("[b] has\n%s", describe(got))
	}
	if testutil.ToFloat64(a.m.DeleteBlocked) != 1 || testutil.ToFloat64(a.m.DeleteGuard) != 1 {
		t.Errorf("guard metrics: blocked %v, trips %v; want 1 and 1",
			testutil.ToFloat64(a.m.DeleteBlocked), testutil.ToFloat64(a.m.DeleteGuard))
	}
}

// TestReplacingFileIsUploadedBeforeTheFolderGoes: the writer uploads the file e before it deletes the
// folder's objects e/..., so a replica listing in between never sees a bucket that holds neither (it
// would take the folder's files for wiped and upload them again).
func TestReplacingFileIsUploadedBeforeTheFolderGoes(t *testing.T) {
	b := newBucket(t)
	var mu sync.Mutex
	var order []string
	a := b.replica("a", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Method == http.MethodDelete:
				order = append(order, "delete "+path.Base(r.URL.Path))
			case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/upload/"):
				order = append(order, "upload "+path.Base(r.URL.Query().Get("name")))
			}
			return resp, err
		})
	}))
	a.write("e/f", "f")
	a.write("g", "g")
	a.settle()
	mu.Lock()
	order = nil
	mu.Unlock()
	if err := os.RemoveAll(filepath.Join(a.dir, "e")); err != nil {
		t.Fatal(err)
	}
	a.write("e", "x")
	a.settle()
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "upload e" || order[1] != "delete f" {
		t.Fatalf("requests %q, want the upload of e before the delete of e/f", order)
	}
}
