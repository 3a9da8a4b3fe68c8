package syncer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// TestKilledMidBurstLosesAndResurrectsNothing: two replicas (with --state-dir) take a burst of 500 changes
// (new files, edits, deletes), and each pass of either may be cut off at a random moment, after which
// the replica starts afresh over the same directory and state (a container killed and restarted). At the
// end the bucket equals both directories and holds exactly what the app last wrote: nothing lost, nothing
// deleted brought back.
func TestKilledMidBurstLosesAndResurrectsNothing(t *testing.T) {
	b := newBucket(t)
	rnd := rand.New(rand.NewPCG(7, 22))
	// The delete budget is not under test here (a window opened while the tree was small would withhold
	// the burst's deletes): --max-delete 100.
	budget := withOptions(func(o *Options) { o.MaxDelete = 100 })
	rs := []*replica{b.replica("a", withStateDir(), budget), b.replica("b", withStateDir(), budget)}
	want := map[string]string{}
	kills := 0
	pass := func(r *replica) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if kills < 20 && rnd.IntN(3) == 0 {
			kills++
			time.AfterFunc(time.Duration(rnd.IntN(20))*time.Millisecond, cancel)
			_, _ = r.s.Pass(ctx, true)
			r.start() // killed: a new process over the same directory and state
			return
		}
		_, _ = r.s.Pass(ctx, true)
	}
	for i := range 500 {
		r := rs[i%2]
		p := fmt.Sprintf("uploads/%s/%03d.jpg", r.name, rnd.IntN(60))
		switch _, exists := r.files()[p]; {
		case exists && rnd.IntN(4) == 0:
			r.remove(p)
			delete(want, p)
		default:
			v := fmt.Sprintf("%s change %d", r.name, i)
			r.write(p, v)
			want[p] = v
		}
		if i%10 == 9 {
			pass(rs[0])
			pass(rs[1])
		}
	}
	t.Logf("%d kills", kills)
	for range 3 {
		for _, r := range rs {
			r.settle()
		}
	}
	// A kill between an upload and the save of the base that records it leaves the base a generation
	// behind: the next edit of that path is then "changed on both sides", and the local version is kept as
	// a conflict copy (docs/design.md). Such copies lose nothing; the paths themselves must hold the last
	// write.
	got := map[string]string{}
	for k, v := range b.objects() {
		if strings.HasPrefix(k, filter.InternalDir+"/conflicts/") {
			t.Logf("conflict copy %s = %q", k, v)
			continue
		}
		got[k] = v
	}
	if !equalMaps(got, want) {
		t.Errorf("bucket has %d objects, want %d", len(got), len(want))
		for k, v := range got {
			if want[k] != v {
				t.Errorf("  bucket %s = %q, want %q", k, v, want[k])
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("  bucket lacks %s", k)
			}
		}
	}
	for _, r := range rs {
		if f := r.files(); !equalMaps(f, got) {
			t.Errorf("[%s] has %d files, the bucket %d", r.name, len(f), len(got))
		}
	}
}
