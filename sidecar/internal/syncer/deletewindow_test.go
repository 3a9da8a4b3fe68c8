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

// fakeClock is a clock the test moves; the replicas' passes run on the test goroutine, so no lock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// The --max-delete budget across its window's boundary (docs/design.md, "Deletes are budgeted over a
// window"): within one window at most --max-delete percent of the files known when it opened may go;
// after the window a new budget opens, against the files known then.
func TestDeleteBudgetRenewsWhenTheWindowPasses(t *testing.T) {
	const window = time.Minute
	b := newBucket(t)
	clock := &fakeClock{t: time.Now()}
	short := withOptions(func(o *Options) { o.DeleteWindow = window })
	a, c := b.replica("a", short), b.replica("b", short)
	a.s.now, c.s.now = clock.now, clock.now
	name := func(i int) string { return fmt.Sprintf("uploads/f%03d.jpg", i) }
	for i := range 100 {
		a.write(name(i), fmt.Sprint(i))
	}
	a.settle()
	c.settle()
	want := func(from int) map[string]string {
		m := map[string]string{}
		for i := from; i < 100; i++ {
			m[name(i)] = fmt.Sprint(i)
		}
		return m
	}
	check := func(when string, w map[string]string) {
		t.Helper()
		for range 2 {
			a.settle()
			c.settle()
		}
		if got := b.objects(); !equalMaps(got, w) {
			t.Fatalf("%s: bucket holds %d objects, want %d", when, len(got), len(w))
		}
		for _, r := range []*replica{a, c} {
			if got := r.files(); !equalMaps(got, w) {
				t.Fatalf("%s: [%s] holds %d files, want %d", when, r.name, len(got), len(w))
			}
		}
	}
	remove := func(from, to int) {
		for i := from; i < to; i++ {
			a.remove(name(i))
		}
	}

	// Window 1 opens with 100 known files: 49 deletes fit, on every side.
	remove(0, 49)
	check("49 of 100 deleted", want(49))
	// Two more in the same window would make 51 of 100: withheld, on a; nothing moves.
	remove(49, 51)
	if res := a.pass(); len(res.Plan.BlockedDeletes) != 2 {
		t.Fatalf("51 of 100 in one window: want 2 withheld deletes:\n%s", res.Plan)
	}
	if n := len(b.objects()); n != 51 {
		t.Fatalf("withheld deletes went through: bucket holds %d", n)
	}
	// Just before the boundary they are still withheld.
	clock.t = clock.t.Add(window - time.Second)
	if res := a.pass(); len(res.Plan.BlockedDeletes) != 2 {
		t.Fatalf("a second before the window ends: want 2 withheld deletes:\n%s", res.Plan)
	}
	// The window passes: a new budget against the 51 files known now; the two go.
	clock.t = clock.t.Add(2 * time.Second)
	check("after the window", want(51))
	if testutil.ToFloat64(a.m.DeleteBlocked) != 0 {
		t.Fatal("filesync_delete_blocked still 1 after the withheld deletes went")
	}
	// Window 2 (51 known): 2 spent, 23 more is 25 of 51 (49%): allowed.
	remove(51, 74)
	check("25 of 51 in window 2", want(74))
	// One more is 26 of 51: withheld until window 3.
	a.remove(name(74))
	if res := a.pass(); len(res.Plan.BlockedDeletes) != 1 {
		t.Fatalf("26 of 51 in one window: want 1 withheld delete:\n%s", res.Plan)
	}
	clock.t = clock.t.Add(window)
	check("after window 2", want(75))
	// filesync_deletes_total counts by the side where the file was deleted.
	if d := testutil.ToFloat64(a.m.Deletes.WithLabelValues("local")); d != 75 {
		t.Fatalf("a propagated %v local deletes, want 75", d)
	}
	if d := testutil.ToFloat64(c.m.Deletes.WithLabelValues("remote")); d != 75 {
		t.Fatalf("b propagated %v remote deletes, want 75", d)
	}
}

// TestRenamedFolderConverges: `mv uploads/2025 uploads/2025-old` on one replica (a quarter of the tree):
// every replica and the bucket end up with the folder under its new name only, nothing lost.
func TestRenamedFolderConverges(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	want := map[string]string{}
	for i := range 40 {
		p := fmt.Sprintf("uploads/2026/%02d.jpg", i)
		if i < 10 {
			p = fmt.Sprintf("uploads/2025/%02d/%02d.jpg", i%3, i)
		}
		a.write(p, fmt.Sprint("content ", i))
		want[strings.Replace(p, "uploads/2025/", "uploads/2025-old/", 1)] = fmt.Sprint("content ", i)
	}
	a.settle()
	c.settle()
	if err := os.Rename(filepath.Join(a.dir, "uploads/2025"), filepath.Join(a.dir, "uploads/2025-old")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a.settle()
		c.settle()
	}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has\n%swant\n%s", r.name, describe(got), describe(want))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has\n%s", describe(got))
	}
}

// TestRenamedMajorityFolderIsKeptTwice: the same rename of a folder holding most of the tree (30 of 40
// files) looks like a wipe of the directory (more than --max-delete missing at once): the old folder is
// restored from the bucket and the new one uploaded. Nothing is lost; the price is a copy under both names
// on every side, which the app (or an operator) removes in budgeted steps.
func TestRenamedMajorityFolderIsKeptTwice(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	want := map[string]string{}
	for i := range 40 {
		p := fmt.Sprintf("uploads/2026/%02d.jpg", i)
		if i < 30 {
			p = fmt.Sprintf("uploads/2025/%02d.jpg", i)
			want[strings.Replace(p, "2025", "2025-old", 1)] = fmt.Sprint("content ", i)
		}
		a.write(p, fmt.Sprint("content ", i))
		want[p] = fmt.Sprint("content ", i)
	}
	a.settle()
	c.settle()
	if err := os.Rename(filepath.Join(a.dir, "uploads/2025"), filepath.Join(a.dir, "uploads/2025-old")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a.settle()
		c.settle()
	}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has %d files, want %d:\n%s", r.name, len(got), len(want), describe(got))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has %d objects, want %d", len(got), len(want))
	}
	if w := testutil.ToFloat64(a.m.Wipes.WithLabelValues("local")); w != 1 {
		t.Fatalf("wipes{side=local} = %v, want 1", w)
	}
}
