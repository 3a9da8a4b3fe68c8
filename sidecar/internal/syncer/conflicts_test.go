package syncer

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// conflictCopies returns the contents of the conflict copies of path in the bucket, by object name.
func (b *bucket) conflictCopies(path string) map[string]string {
	out := map[string]string{}
	for name, content := range b.objects() {
		rest, ok := strings.CutPrefix(name, ".filesync/conflicts/"+path+".")
		if ok && strings.Count(rest, ".") == 1 {
			out[name] = content
		}
	}
	return out
}

// TestSameLosingBytesAreStoredOnce: three replicas lose a conflict with the same bytes (the same plugin
// file, say); the bucket keeps one copy of them, and a fourth replica's different bytes get their own.
// Each replica still counts its conflict.
func TestSameLosingBytesAreStoredOnce(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	losers := []*replica{b.replica("b"), b.replica("c"), b.replica("d")}
	other := b.replica("e")
	a.write("same.jpg", "the winner")
	for _, r := range losers {
		r.write("same.jpg", "the same losing bytes")
	}
	other.write("same.jpg", "other losing bytes")
	a.settle()
	for _, r := range append(losers, other) {
		r.settle()
		if got := r.files()["same.jpg"]; got != "the winner" {
			t.Fatalf("[%s] same.jpg = %q, want the remote version", r.name, got)
		}
		if n := testutil.ToFloat64(r.m.Conflicts); n != 1 {
			t.Errorf("[%s] filesync_conflicts_total = %v, want 1", r.name, n)
		}
	}
	var contents []string
	for _, c := range b.conflictCopies("same.jpg") {
		contents = append(contents, c)
	}
	sort.Strings(contents)
	if want := []string{"other losing bytes", "the same losing bytes"}; fmt.Sprint(contents) != fmt.Sprint(want) {
		t.Fatalf("conflict copies hold %q, want %q once each\n%s", contents, want, describe(b.objects()))
	}
}

// TestConflictCopiesAreCappedPerPath: with --max-conflicts 2, a path that loses four conflicts keeps its
// two newest copies; the two oldest are deleted and counted; another path's copies sharing the name
// prefix (same.jpg.bak) are not touched.
func TestConflictCopiesAreCappedPerPath(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	c := b.replica("c", withOptions(func(o *Options) { o.MaxConflicts = 2 }))
	var offset atomic.Int64 // each round's copies a minute apart, so their names and order differ
	c.s.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	b.put(testPrefix+"/.filesync/conflicts/same.jpg.bak.z.1", "another path's old copy")
	for i := range 4 {
		offset.Add(int64(time.Minute))
		a.write("same.jpg", fmt.Sprintf("winner %d", i))
		c.write("same.jpg", fmt.Sprintf("loser version %d", i))
		a.settle()
		c.settle()
		a.settle()
	}
	var kept []string
	for _, content := range b.conflictCopies("same.jpg") {
		kept = append(kept, content)
	}
	sort.Strings(kept)
	if want := []string{"loser version 2", "loser version 3"}; fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Fatalf("kept copies %q, want the newest two %q\n%s", kept, want, describe(b.objects()))
	}
	if n := testutil.ToFloat64(c.m.ConflictsDropped); n != 2 {
		t.Errorf("filesync_conflicts_dropped_total = %v, want 2", n)
	}
	if n := testutil.ToFloat64(c.m.Conflicts); n != 4 {
		t.Errorf("filesync_conflicts_total = %v, want 4", n)
	}
	if len(b.conflictCopies("same.jpg.bak")) != 1 {
		t.Fatalf("same.jpg.bak's copy was touched\n%s", describe(b.objects()))
	}
}
