package syncer

import (
	"fmt"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/plan"
)

// TestDeletePropagatesBothWays: a delete on one replica removes the object and the file on the others.
func TestDeletePropagatesBothWays(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("keep.jpg", "k")
	for i := range 8 { // deletes are budgeted by --max-delete: two of ten known files may go
		a.write(fmt.Sprintf("other%d.jpg", i), "o")
	}
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
	for i := range 8 {
		want[fmt.Sprintf("other%d.jpg", i)] = "o"
	}
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

// TestMaxDeleteStopsMassDelete: deletes beyond --max-delete of the files known when the window opened are
// withheld, however they are spread over passes: nothing more is deleted, one error is logged per new set
// of withheld deletes (not one per pass), and a metric is set.
func TestMaxDeleteStopsMassDelete(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	for i := range 30 {
		a.write(fmt.Sprintf("f%02d.jpg", i), fmt.Sprint(i))
	}
	a.settle()
	for i := range 10 { // 10 of 30: within 50%
		a.remove(fmt.Sprintf("f%02d.jpg", i))
	}
	if res := a.pass(); res.Plan.Count(plan.DeleteRemote) != 10 {
		t.Fatalf("want 10 deletes:\n%s", res.Plan)
	}
	for i := 10; i < 20; i++ { // 10 more: 20 of the 30 known when the window opened
		a.remove(fmt.Sprintf("f%02d.jpg", i))
	}
	for range 5 {
		if res := a.pass(); len(res.Plan.BlockedDeletes) != 10 {
			t.Fatalf("want 10 blocked deletes:\n%s", res.Plan)
		}
	}
	if n := len(b.objects()); n != 20 {
		t.Fatalf("bucket has %d objects, want 20 kept", n)
	}
	if testutil.ToFloat64(a.m.DeleteBlocked) != 1 || testutil.ToFloat64(a.m.DeleteGuard) != 1 {
		t.Fatalf("guard metrics: blocked %v, trips %v; want 1 and 1 (one trip for one new set, over 5 passes)",
			testutil.ToFloat64(a.m.DeleteBlocked), testutil.ToFloat64(a.m.DeleteGuard))
	}
}
