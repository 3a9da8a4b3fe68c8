package pathmap

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// check fails unless m holds exactly want.
func check(t *testing.T, m *Map[int], want map[string]int) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len %d, want %d", m.Len(), len(want))
	}
	got := map[string]int{}
	for k, v := range m.All() {
		if _, dup := got[k]; dup {
			t.Fatalf("All yields %q twice", k)
		}
		got[k] = v
	}
	if !maps.Equal(got, want) {
		t.Fatalf("All yields %d entries unlike the %d wanted", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := m.Get(k); !ok || g != v {
			t.Fatalf("Get(%q) = %d, %v; want %d", k, g, ok, v)
		}
	}
}

// TestLikeAGoMap runs random sets and deletes on a Map and a Go map (enough of them to merge many times,
// both ways) and compares them after each batch.
func TestLikeAGoMap(t *testing.T) {
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 1))
		m, want, touched := &Map[int]{}, map[string]int{}, map[string]bool{}
		for batch := range 40 {
			for range 500 {
				k := fmt.Sprintf("uploads/%d/f%05d", r.IntN(7), r.IntN(3000))
				touched[k] = true
				switch {
				case r.IntN(3) == 0 && batch%10 > 6: // some batches mostly delete
					m.Delete(k)
					delete(want, k)
				case r.IntN(4) == 0:
					m.Delete(k)
					delete(want, k)
				default:
					v := r.Int() | 1 // never 0: 0 means absent in want
					m.Set(k, v)
					want[k] = v
				}
			}
			check(t, m, want)
			for k := range touched {
				if _, ok := m.Get(k); ok != (want[k] != 0) {
					t.Fatalf("Get(%q) reports %v, want %v", k, ok, !ok)
				}
				if _, ok := m.Key(k); ok != (want[k] != 0) {
					t.Fatalf("Key(%q) reports %v, want %v", k, ok, !ok)
				}
			}
			if _, ok := m.Get("not/there"); ok {
				t.Fatal("Get of a path never set is true")
			}
		}
	}
}

func TestFromMapAndKey(t *testing.T) {
	src := map[string]int{"b": 2, "a": 1, "c/d": 3}
	m := FromMap(src)
	check(t, m, src)
	if k, ok := m.Key("c/" + string([]byte("d"))); !ok || k != "c/d" {
		t.Fatalf("Key = %q, %v", k, ok)
	}
	m.Set("e", 5)
	if k, ok := m.Key("e"); !ok || k != "e" {
		t.Fatalf("Key of a recent path = %q, %v", k, ok)
	}
	if _, ok := m.Key("zz"); ok {
		t.Fatal("Key of an absent path is true")
	}
}

// TestDeleteWhileIterating: as with a Go map, a path deleted before All reaches it is not yielded.
func TestDeleteWhileIterating(t *testing.T) {
	m, want := &Map[int]{}, map[string]int{}
	for i := range 5000 {
		k := fmt.Sprintf("p%05d", i)
		m.Set(k, i)
		want[k] = i
	}
	seen := 0
	for k := range m.All() {
		seen++
		if seen == 1 {
			for i := range 5000 { // deletes all the others, merging meanwhile
				if o := fmt.Sprintf("p%05d", i); o != k {
					m.Delete(o)
				}
			}
		}
	}
	if seen != 1 {
		t.Fatalf("yielded %d paths after the others were deleted, want 1", seen)
	}
}

// TestBuilder: a Map built from entries added in any order holds them, once each, with the strings they
// were added with, and takes Set and Delete like any other.
func TestBuilder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var b Builder[int]
	want := map[string]int{}
	for i := range 20_000 {
		k := fmt.Sprintf("uploads/%d/f%05d", i%7, r.IntN(30_000))
		if v, ok := want[k]; ok {
			b.Add(k, v) // a path listed twice: the same object
			continue
		}
		want[k] = i + 1
		b.Add(k, i+1)
	}
	m := b.Map()
	if len(b.keys) != 0 || len(b.vals) != 0 {
		t.Fatalf("the Builder still holds %d entries after Map", len(b.keys))
	}
	check(t, m, want)
	for k, v := range want {
		if v%3 == 0 {
			m.Delete(k)
			delete(want, k)
		}
	}
	m.Set("a/new", 1)
	want["a/new"] = 1
	check(t, m, want)
}

// TestSetSorted: a sorted batch, large (merged into the arrays at once) or small (set one at a time), or
// not sorted, leaves the Map as Set one at a time would, over arrays with deleted and recent paths; the
// string held for a path already there is kept, and a large batch leaves the arrays exactly full.
func TestSetSorted(t *testing.T) {
	for _, size := range []int{10, 2000, 30_000} {
		r := rand.New(rand.NewPCG(uint64(size), 3))
		m, want := &Map[int]{}, map[string]int{}
		for i := range 20_000 {
			k := fmt.Sprintf("uploads/%d/f%05d", i%7, r.IntN(30_000))
			m.Set(k, i+1)
			want[k] = i + 1
		}
		held := map[string]string{}
		for k := range want {
			if r.IntN(5) == 0 {
				m.Delete(k)
				delete(want, k)
			} else if len(held) < 50 {
				held[k], _ = m.Key(k)
			}
		}
		m.Set("uploads/0/recent", 7) // a recent path the batch may set again
		want["uploads/0/recent"] = 7
		batch := map[string]bool{"uploads/0/recent": true}
		for k := range held {
			batch[k] = true
		}
		for len(batch) < size {
			batch[fmt.Sprintf("uploads/%d/f%05d", r.IntN(8), r.IntN(40_000))] = true
		}
		paths := slices.Sorted(maps.Keys(batch))
		m.SetSorted(paths, func(i int) int { return -(i + 1) })
		for i, p := range paths {
			want[p] = -(i + 1)
		}
		check(t, m, want)
		for p, h := range held {
			if k, _ := m.Key(p); unsafe.StringData(k) != unsafe.StringData(h) {
				t.Fatalf("size %d: Key(%q) is not the string held before the batch", size, p)
			}
		}
		if size == 30_000 && (len(m.recent) != 0 || cap(m.keys) != len(m.keys) || cap(m.vals) != len(m.vals)) {
			t.Fatalf("after a large batch: %d recent paths, arrays %d of %d", len(m.recent), len(m.keys), cap(m.keys))
		}
	}
	m, want := &Map[int]{}, map[string]int{}
	var paths []string
	for i := range 5000 { // not sorted: set one at a time
		paths = append(paths, fmt.Sprintf("p%05d", (i*7919)%5000))
		want[paths[i]] = i
	}
	m.SetSorted(paths, func(i int) int { return i })
	check(t, m, want)
}

// TestAllSeesEveryPathOnceThroughAMerge: paths deleted while All runs make the Map merge (its recent
// paths into new arrays); every path not deleted is still yielded once, the recent ones included.
func TestAllSeesEveryPathOnceThroughAMerge(t *testing.T) {
	var b Builder[int]
	for i := range 5000 {
		b.Add(fmt.Sprintf("p%05d", i), i)
	}
	m := b.Map()
	want := map[string]int{}
	for i := range 5000 {
		want[fmt.Sprintf("p%05d", i)] = i
	}
	for i := range 500 { // recent: not merged yet
		k := fmt.Sprintf("r%05d", i)
		m.Set(k, i)
		want[k] = i
	}
	seen := map[string]int{}
	for k, v := range m.All() {
		if len(seen) == 0 {
			for i := 1000; i < 3000; i++ { // more than a quarter: merged
				k := fmt.Sprintf("p%05d", i)
				m.Delete(k)
				delete(want, k)
			}
			m.Set("r00007", -7) // a recent path changed after the merge
			want["r00007"] = -7
		}
		if _, dup := seen[k]; dup {
			t.Fatalf("%s yielded twice", k)
		}
		seen[k] = v
	}
	if m.merges == 0 {
		t.Fatal("no merge while iterating: the test does not test it")
	}
	if !maps.Equal(seen, want) {
		t.Fatalf("yielded %d paths, want %d", len(seen), len(want))
	}
}

// TestDeleteFunc: the paths del names are gone, the others kept (recent and deleted ones merged first),
// and a Map left with few paths holds them in arrays of their size.
func TestDeleteFunc(t *testing.T) {
	var b Builder[int]
	want := map[string]int{}
	for i := range 4000 {
		k := fmt.Sprintf("p%05d", i)
		b.Add(k, i)
		want[k] = i
	}
	m := b.Map()
	m.Set("recent", 1)
	want["recent"] = 1
	m.Delete("p00002")
	delete(want, "p00002")
	m.DeleteFunc(func(k string, v int) bool { return k != "recent" && v%10 != 0 })
	for k, v := range want {
		if k != "recent" && v%10 != 0 {
			delete(want, k)
		}
	}
	check(t, m, want)
	if cap(m.keys) != len(m.keys) || cap(m.vals) != len(m.vals) {
		t.Fatalf("%d paths kept in arrays of %d", len(m.keys), cap(m.keys))
	}
}
