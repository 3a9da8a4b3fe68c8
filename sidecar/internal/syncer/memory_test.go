package syncer

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// knownSite builds the base and the index of a replica that knows code eager files (local and in the
// bucket) and media lazy objects it never fetched (remote-only), as a listing and the passes after it
// leave them: every name a string of its own, as a listing page decodes it, the base's names those of the
// listing that planned them. It returns the index (keep it alive while measuring).
func knownSite(code, media int) *index {
	st, _, err := state.Open("", "gs://b/site")
	if err != nil {
		panic(err)
	}
	ix := newIndex(st)
	view := make(map[string]snapshot.Object, code+media)
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	name := func(i int) string {
		if i < code {
			return fmt.Sprintf("plugins/plugin-%03d/includes/class-file-%05d.php", i%100, i)
		}
		m := i - code
		return fmt.Sprintf("uploads/%d/%02d/photo-%07d-1024x768.jpg", 2015+m%10, m%12+1, m)
	}
	for i := range code + media {
		view[name(i)] = snapshot.Object{Generation: 1_700_000_000_000_000 + int64(i), Size: 2048 + int64(i%4096),
			CRC32C: uint32(i * 2654435761), ModTime: t0.Add(time.Duration(i) * time.Second)}
	}
	ix.replaceRemote(viewOf(view, ix.base.Key), map[string]struct{}{})
	// The restore's pass records what it planned, by the names of the listing it planned from.
	for p, r := range ix.remote.All() {
		if strings.HasPrefix(p, "plugins/") {
			f := snapshot.File{Stamp: snapshot.Stamp{Size: r.Size, ModTime: r.ModTime.UnixNano()}, CRC32C: r.CRC32C}
			ix.setLocal(p, f)
			ix.setBase(p, snapshot.Base{Object: r, ModTime: f.ModTime})
			continue
		}
		ix.setBase(p, snapshot.Base{Object: r, RemoteOnly: true})
	}
	// A later listing decodes every name again: the view keeps the base's strings.
	again := make(map[string]snapshot.Object, len(view))
	for p, r := range view {
		again[strings.Clone(p)] = r
	}
	clear(view)
	ix.replaceRemote(viewOf(again, ix.base.Key), map[string]struct{}{})
	return &ix
}

// viewOf returns the objects in m as a listing of them makes it (fetchListing): each name canon's string
// where it gives one.
func viewOf(m map[string]snapshot.Object, canon func(string) (string, bool)) listed {
	l := listedBuilder{canon: canon}
	for p, o := range m {
		l.add(p, o)
	}
	return l.listed()
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkKnownPaths measures what the base and the index hold for a replica with 2,000 code files and
// the given number of lazy media objects it never fetched: MiB of live heap (issue 23: at most 256 MiB
// at 1,000,000 known paths). `go test -run '^$' -bench KnownPaths -benchtime 1x ./internal/syncer`.
func BenchmarkKnownPaths(b *testing.B) {
	for _, media := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("media=%d", media), func(b *testing.B) {
			var held float64
			for range b.N {
				before := heapInUse()
				ix := knownSite(2000, media)
				after := heapInUse()
				held = float64(after-before) / (1 << 20)
				runtime.KeepAlive(ix)
			}
			b.ReportMetric(held, "MiB")
			b.ReportMetric(held*(1<<20)/float64(2000+media), "B/path")
		})
	}
}

// BenchmarkFullPlan times a full pass's plan over the index of knownSite (nothing to do: every path in
// sync), planned from the compact sides the index holds and, as the peer, from Go maps of the same
// entries (what the sides were before). `go test -run '^$' -bench FullPlan ./internal/syncer`.
func BenchmarkFullPlan(b *testing.B) {
	ix := knownSite(2000, 100_000)
	lazy := func(p string) bool { return strings.HasPrefix(p, "uploads/") }
	compact := plan.Input{Lazy: lazy, Local: plan.Map[snapshot.File](ix.local), Remote: ix.remote, Base: ix.base.Entries()}
	maps := plan.Input{Lazy: lazy, Local: plan.Map[snapshot.File](ix.local), Remote: plan.Map[snapshot.Object]{}, Base: plan.Map[snapshot.Base]{}}
	for p, r := range ix.remote.All() {
		maps.Remote.(plan.Map[snapshot.Object])[p] = r
	}
	for p, e := range ix.base.Entries().All() {
		maps.Base.(plan.Map[snapshot.Base])[p] = e
	}
	for _, c := range []struct {
		name string
		in   plan.Input
	}{{"sides=pathmap", compact}, {"sides=gomap", maps}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				if p := plan.Compute(c.in); len(p.Actions) != 0 || p.Paths != 102_000 {
					b.Fatalf("%d actions over %d paths, want 0 over 102,000", len(p.Actions), p.Paths)
				}
			}
		})
	}
}
