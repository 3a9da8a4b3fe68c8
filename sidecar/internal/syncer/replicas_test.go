package syncer

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTwoReplicasConverge: files written on either replica end up on both, and in the bucket.
func TestTwoReplicasConverge(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("uploads/2026/11/a.jpg", "from a")
	c.write("uploads/2026/11/b.jpg", "from b")
	c.write("themes/x/style.css", "body{}")
	for range 2 {
		a.settle()
		c.settle()
	}
	want := map[string]string{"uploads/2026/11/a.jpg": "from a", "uploads/2026/11/b.jpg": "from b", "themes/x/style.css": "body{}"}
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has\n%swant\n%s", r.name, describe(got), describe(want))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("bucket has\n%s", describe(got))
	}
}

// TestThreeReplicasConverge: N replicas, not two: each writes, all see everything, both ways.
func TestThreeReplicasConverge(t *testing.T) {
	b := newBucket(t)
	rs := []*replica{b.replica("a"), b.replica("b"), b.replica("c")}
	want := map[string]string{}
	for i, r := range rs {
		for j := range 5 {
			p := fmt.Sprintf("uploads/%s/%d.jpg", r.name, j)
			r.write(p, fmt.Sprintf("%s-%d-%d", r.name, i, j))
			want[p] = fmt.Sprintf("%s-%d-%d", r.name, i, j)
		}
	}
	// converge settles every replica twice (what one uploads, the others download), then checks them.
	converge := func(when string) {
		t.Helper()
		for range 2 {
			for _, r := range rs {
				r.settle()
			}
		}
		for _, r := range rs {
			if got := r.files(); !equalMaps(got, want) {
				t.Fatalf("[%s] %s has\n%s", r.name, when, describe(got))
			}
		}
	}
	converge("after the writes")
	// An edit on one replica reaches the other two.
	rs[1].write("uploads/a/0.jpg", "edited on b")
	want["uploads/a/0.jpg"] = "edited on b"
	converge("after the edit")
}

// TestDownloadNeverBouncesBack: what a replica downloaded is not uploaded again, and what it uploaded is not
// downloaded again: generations stay put and the counters do not move once in sync.
func TestDownloadNeverBouncesBack(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("x.jpg", "one")
	a.settle()
	c.settle()
	gen := b.generation("x.jpg")
	if got := testutil.ToFloat64(c.m.Downloads); got != 1 {
		t.Fatalf("b downloads = %v, want 1", got)
	}
	for range 5 {
		a.pass()
		c.pass()
	}
	if g := b.generation("x.jpg"); g != gen {
		t.Fatalf("generation moved from %d to %d with nothing changed", gen, g)
	}
	if up := testutil.ToFloat64(c.m.Uploads); up != 0 {
		t.Fatalf("b uploaded %v times what it downloaded", up)
	}
	if up, down := testutil.ToFloat64(a.m.Uploads), testutil.ToFloat64(a.m.Downloads); up != 1 || down != 0 {
		t.Fatalf("a: uploads=%v downloads=%v, want 1 and 0", up, down)
	}
}
