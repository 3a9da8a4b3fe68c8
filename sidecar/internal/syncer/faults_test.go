package syncer

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestFaultyNetworkDeliversEverythingOnce: with 5xx, latency and dropped connections (some after the server
// applied the write) on both replicas, every file still arrives, exactly once: no conflict copies of our
// own retried writes, nothing lost.
func TestFaultyNetworkDeliversEverythingOnce(t *testing.T) {
	b := newBucket(t)
	fa, fc := newFaulty(0.3), newFaulty(0.3)
	a := b.replica("a", withTransport(fa.wrap))
	c := b.replica("b", withTransport(fc.wrap))
	want := map[string]string{}
	for i := range 60 {
		pa, pc := fmt.Sprintf("a/%02d.jpg", i), fmt.Sprintf("b/%02d.jpg", i)
		a.write(pa, strings.Repeat("a", i+1))
		c.write(pc, strings.Repeat("b", i+1))
		want[pa], want[pc] = strings.Repeat("a", i+1), strings.Repeat("b", i+1)
	}
	// Passes under faults; failing paths back off, so keep going until both sides have everything.
	for round := 0; round < 200 && (!equalMaps(a.files(), want) || !equalMaps(c.files(), want)); round++ {
		_, _ = a.s.Pass(t.Context(), true)
		_, _ = c.s.Pass(t.Context(), true)
		b.t.Logf("round %d: a=%d b=%d files", round, len(a.files()), len(c.files()))
		for p := range a.s.holds.failures {
			a.s.holds.failures[p] = failure{n: a.s.holds.failures[p].n}
		}
		for p := range c.s.holds.failures {
			c.s.holds.failures[p] = failure{n: c.s.holds.failures[p].n}
		}
	}
	if fa.injected.Load() == 0 || fc.injected.Load() == 0 {
		t.Fatal("no faults were injected")
	}
	fa.disabled.Store(true)
	fc.disabled.Store(true)
	a.settle()
	c.settle()
	for _, r := range []*replica{a, c} {
		if got := r.files(); !equalMaps(got, want) {
			t.Fatalf("[%s] has %d of %d files", r.name, len(got), len(want))
		}
	}
	if got := b.objects(); !equalMaps(got, want) {
		extra := []string{}
		for k := range got {
			if _, ok := want[k]; !ok {
				extra = append(extra, k)
			}
		}
		t.Fatalf("bucket has %d objects, want %d; unexpected: %v", len(got), len(want), extra)
	}
	t.Logf("faults injected: a=%d b=%d", fa.injected.Load(), fc.injected.Load())
}

// TestFailingPathDoesNotBlockOthers: one object that always fails does not hold up the rest, and backs off.
func TestFailingPathDoesNotBlockOthers(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if objectIn(r, "poison") {
				return nil, fmt.Errorf("injected: permanent failure")
			}
			return next.RoundTrip(r)
		})
	}))
	for i := range 20 {
		a.write(fmt.Sprintf("ok/%02d.jpg", i), "ok")
	}
	a.write("poison.jpg", "never")
	res := a.pass()
	if res.Failed != 1 || res.Done != 20 {
		t.Fatalf("done=%d failed=%d, want 20 and 1", res.Done, res.Failed)
	}
	if res.NextWake.IsZero() {
		t.Fatal("the failing path was not scheduled for a retry")
	}
	// While it backs off, passes skip it rather than hammering the bucket.
	res = a.pass()
	if len(res.Plan.Actions) != 0 {
		t.Fatalf("backing-off path planned again at once:\n%s", res.Plan)
	}
}
