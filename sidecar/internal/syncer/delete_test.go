package syncer

import (
	"fmt"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDeletePropagatesBothWays: a delete on one replica removes the object and the file on the others.
func TestDeletePropagatesBothWays(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("keep.jpg", "k")
	a.write("gone-from-a.jpg", "1")
	a.write("gone-from-b.jpg", "2")
	a.settle()
	c.settle()
	a.remove("gone-from-a.jpg")
	c.remove("gone-from-b.jpg")
	a.settle()
	c.settle()
	a.settle()
	want := map[string]string{"keep.jpg": "k"}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has\n%s", r.name, describe(got))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has\n%s", describe(got))
	}
	if d := testutil.ToFloat64(a.m.Deletes.WithLabelValues("remote")); d != 1 {
		t.Fatalf("a: deletes{side=remote} = %v, want 1", d)
	}
}

// TestEmptyDirectoryNeverDeletesRemote: a wiped directory (even with a base) restores instead of deleting,
// and a fresh pod (no base) never deletes anything.
func TestEmptyDirectoryNeverDeletesRemote(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withStateDir())
	for i := range 20 {
		a.write(fmt.Sprintf("f%02d.jpg", i), fmt.Sprint(i))
	}
	a.settle()
	// Wipe the directory under a running sidecar (an emptyDir re-created, a bad mount, rm -rf).
	entries, _ := os.ReadDir(a.dir)
	for _, e := range entries {
		os.RemoveAll(a.dir + "/" + e.Name())
	}
	a.settle()
	if n := len(b.objects()); n != 20 {
		t.Fatalf("bucket has %d objects after a wipe, want 20", n)
	}
	if n := len(a.files()); n != 20 {
		t.Fatalf("wiped directory has %d files after the pass, want 20 restored", n)
	}
	// A fresh pod with an empty directory and no state deletes nothing either.
	fresh := b.replica("fresh")
	fresh.settle()
	if n := len(b.objects()); n != 20 || len(fresh.files()) != 20 {
		t.Fatalf("fresh pod: bucket %d, local %d; want 20 and 20", n, len(fresh.files()))
	}
}

// TestMaxDeleteStopsMassDelete: a pass that would delete more than --max-delete of the known files deletes
// nothing, logs an error and sets a metric.
func TestMaxDeleteStopsMassDelete(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	for i := range 30 {
		a.write(fmt.Sprintf("f%02d.jpg", i), fmt.Sprint(i))
	}
	a.settle()
	for i := range 20 { // 20 of 30 = 67% > 50%
		a.remove(fmt.Sprintf("f%02d.jpg", i))
	}
	res := a.pass()
	if len(res.Plan.BlockedDeletes) != 20 {
		t.Fatalf("want 20 blocked deletes:\n%s", res.Plan)
	}
	if n := len(b.objects()); n != 30 {
		t.Fatalf("bucket has %d objects, want all 30 kept", n)
	}
	if testutil.ToFloat64(a.m.DeleteBlocked) != 1 || testutil.ToFloat64(a.m.DeleteGuard) != 1 {
		t.Fatal("the guard metric is not set")
	}
}
