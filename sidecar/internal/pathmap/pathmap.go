// Package pathmap holds a map from paths to values compactly, for the sets that grow with the site (the
// base, the remote view): a million paths must fit a sidecar (issue 23).
//
// A Go map of a million string keys spends 16 bytes of key header and the value on each of about two
// million slots (it doubles as it grows, and keeps its groups at most 7/8 full): 176 MiB for a 64-byte
// value. Map keeps its entries instead as two sorted arrays, keys and values, searched by binary search,
// with a Go map beside them for the paths added since they were last merged (at most an eighth of them,
// merged in when it outgrows that): 16 bytes and the value per path, plus the names. Lookups cost a
// binary search (about 20 comparisons at a million paths) instead of a hash.
//
// A Map is not safe for concurrent use with a writer: its owner guards it (state.Store holds its lock).
// Readers may run concurrently with each other: nothing but Set and Delete changes it.
package pathmap

import (
	"iter"
	"maps"
	"slices"
	"sort"
)

// minRecent is the number of added paths kept beside the arrays before they are merged, whatever the
// size: merging costs a copy of the arrays, so it is done once per an eighth of their length at least.
const minRecent = 1024

// Map maps paths to values. The zero Map is empty and ready to use.
type Map[V any] struct {
	keys []string // sorted
	vals []V      // vals[i] is keys[i]'s
	gone []bool   // gone[i]: keys[i] was deleted since the last merge (nil: none was)
	dead int      // how many of keys are gone
	// recent holds the paths added since the last merge (never one of keys that is not gone), each with
	// the string it was added with (Key).
	recent map[string]item[V]
	merges int // how many times the arrays were replaced (All notices it)
}

type item[V any] struct {
	key string
	v   V
}

// FromMap returns a Map holding m's entries.
func FromMap[V any](m map[string]V) *Map[V] {
	var b Builder[V]
	b.Grow(len(m))
	for k, v := range m {
		b.Add(k, v)
	}
	return b.Map()
}

// Builder collects entries in any order (a listing's pages as they arrive) and makes a Map of them at
// once, sorting them where they lie: building a Map of n paths costs its two arrays, not a Go map of the
// n paths beside them. The zero Builder is empty and ready to use.
type Builder[V any] struct {
	keys []string
	vals []V
}

// Grow makes room for n more entries.
func (b *Builder[V]) Grow(n int) {
	b.keys, b.vals = slices.Grow(b.keys, n), slices.Grow(b.vals, n)
}

// Add adds path's value. Add a path once: of a path added twice, either value may be kept.
func (b *Builder[V]) Add(path string, v V) {
	b.keys, b.vals = append(b.keys, path), append(b.vals, v)
}

// Map returns a Map of the entries added, taking over b's arrays (b is empty after).
func (b *Builder[V]) Map() *Map[V] {
	sort.Sort(byKey[V]{b.keys, b.vals})
	keys, vals := b.keys[:0], b.vals[:0]
	for i, k := range b.keys {
		if len(keys) > 0 && keys[len(keys)-1] == k { // the same path again: one entry
			continue
		}
		keys, vals = append(keys, k), append(vals, b.vals[i])
	}
	clear(b.keys[len(keys):]) // let go of what the slots past the end refer to
	clear(b.vals[len(vals):])
	*b = Builder[V]{}
	return &Map[V]{keys: keys, vals: vals}
}

// byKey sorts a Builder's two arrays by key.
type byKey[V any] struct {
	keys []string
	vals []V
}

func (s byKey[V]) Len() int           { return len(s.keys) }
func (s byKey[V]) Less(i, j int) bool { return s.keys[i] < s.keys[j] }
func (s byKey[V]) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.vals[i], s.vals[j] = s.vals[j], s.vals[i]
}

// find returns the index of path in the arrays, if it is there and not gone.
func (m *Map[V]) find(path string) (int, bool) {
	i, ok := slices.BinarySearch(m.keys, path)
	if !ok || (m.gone != nil && m.gone[i]) {
		return i, false
	}
	return i, true
}

// Get returns path's value.
func (m *Map[V]) Get(path string) (V, bool) {
	if it, ok := m.recent[path]; ok {
		return it.v, true
	}
	if i, ok := m.find(path); ok {
		return m.vals[i], true
	}
	var zero V
	return zero, false
}

// Key returns the string m holds for path, if it holds path.
func (m *Map[V]) Key(path string) (string, bool) {
	if it, ok := m.recent[path]; ok {
		return it.key, true
	}
	if i, ok := m.find(path); ok {
		return m.keys[i], true
	}
	return "", false
}

// Len returns the number of paths.
func (m *Map[V]) Len() int { return len(m.keys) - m.dead + len(m.recent) }

// Set sets path's value.
func (m *Map[V]) Set(path string, v V) {
	if i, found := slices.BinarySearch(m.keys, path); found {
		m.vals[i] = v
		if m.gone != nil && m.gone[i] {
			m.gone[i] = false
			m.dead--
		}
		return
	}
	if m.recent == nil {
		m.recent = map[string]item[V]{}
	}
	if it, ok := m.recent[path]; ok {
		path = it.key
	}
	m.recent[path] = item[V]{path, v}
	if len(m.recent) > max(minRecent, len(m.keys)/8) {
		m.merge()
	}
}

// Delete removes path.
func (m *Map[V]) Delete(path string) {
	if _, ok := m.recent[path]; ok {
		delete(m.recent, path)
		return
	}
	i, ok := m.find(path)
	if !ok {
		return
	}
	if m.gone == nil {
		m.gone = make([]bool, len(m.keys))
	}
	m.gone[i] = true
	var zero V
	m.vals[i] = zero // let go of what the value refers to
	if m.dead++; m.dead > max(minRecent, len(m.keys)/4) {
		m.merge()
	}
}

// SetSorted sets the value of each of paths, given in ascending order (each once), to value(i), as Set
// would one at a time. A batch larger than the recent paths may hold (a listing that records 100,000 lazy
// objects) is merged into the arrays at once: one copy of them, of their final size, where Set would
// have grown them an eighth at a time, the old copy and a Go map of the recent paths beside the new one
// at each step (issue 23). Paths not in ascending order are set one at a time.
func (m *Map[V]) SetSorted(paths []string, value func(i int) V) {
	if len(paths) <= max(minRecent, len(m.keys)/8) || !strictlySorted(paths) {
		for i, p := range paths {
			m.Set(p, value(i))
		}
		return
	}
	if len(m.recent) > 0 || m.dead > 0 {
		m.merge()
	}
	n := len(m.keys) // the size after: the arrays' paths and the new ones
	for i, j := 0, 0; j < len(paths); {
		switch {
		case i < len(m.keys) && m.keys[i] < paths[j]:
			i++
		case i < len(m.keys) && m.keys[i] == paths[j]:
			i, j = i+1, j+1
		default:
			n, j = n+1, j+1
		}
	}
	keys, vals := make([]string, 0, n), make([]V, 0, n)
	i, j := 0, 0
	for i < len(m.keys) || j < len(paths) {
		switch {
		case j == len(paths) || (i < len(m.keys) && m.keys[i] < paths[j]):
			keys, vals = append(keys, m.keys[i]), append(vals, m.vals[i])
			i++
		case i < len(m.keys) && m.keys[i] == paths[j]: // the string held already is kept
			keys, vals = append(keys, m.keys[i]), append(vals, value(j))
			i, j = i+1, j+1
		default:
			keys, vals = append(keys, paths[j]), append(vals, value(j))
			j++
		}
	}
	m.keys, m.vals = keys, vals
	m.merges++
}

// DeleteFunc deletes every path for which del returns true, in place. The paths kept are then held in
// arrays of their size, the larger ones let go, unless those have room for an eighth more at most: a
// listing kept as its difference from the base keeps few of its paths, and a listing's arrays, grown
// as the pages arrived, have a quarter more room at worst.
func (m *Map[V]) DeleteFunc(del func(string, V) bool) {
	if len(m.recent) > 0 || m.dead > 0 {
		m.merge()
	}
	keys, vals := m.keys[:0], m.vals[:0]
	for i, k := range m.keys {
		if !del(k, m.vals[i]) {
			keys, vals = append(keys, k), append(vals, m.vals[i])
		}
	}
	clear(m.keys[len(keys):]) // let go of what the slots past the end refer to
	clear(m.vals[len(vals):])
	if cap(keys)-len(keys) > len(keys)/8 {
		keys, vals = append(make([]string, 0, len(keys)), keys...), append(make([]V, 0, len(vals)), vals...)
	}
	m.keys, m.vals = keys, vals
	m.merges++
}

func strictlySorted(paths []string) bool {
	for i := 1; i < len(paths); i++ {
		if paths[i-1] >= paths[i] {
			return false
		}
	}
	return true
}

// merge makes the arrays hold every path: the recent ones in, the gone ones out.
func (m *Map[V]) merge() {
	added := slices.Sorted(maps.Keys(m.recent))
	n := m.Len()
	keys, vals := make([]string, 0, n), make([]V, 0, n)
	i, j := 0, 0
	for i < len(m.keys) || j < len(added) {
		if j == len(added) || (i < len(m.keys) && m.keys[i] < added[j]) {
			if m.gone == nil || !m.gone[i] {
				keys, vals = append(keys, m.keys[i]), append(vals, m.vals[i])
			}
			i++
			continue
		}
		it := m.recent[added[j]]
		keys, vals = append(keys, it.key), append(vals, it.v)
		j++
	}
	m.keys, m.vals, m.gone, m.dead, m.recent = keys, vals, nil, 0, nil
	m.merges++
}

// All iterates over the paths and their values: those merged in path order, then the others. Set and
// Delete may be called meanwhile (as with a Go map, a path added then may or may not be seen; every
// other path is seen once, unless deleted before it is reached).
func (m *Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		keys, recent, merges := m.keys, m.recent, m.merges // a merge meanwhile replaces them
		for i, k := range keys {
			var v V
			if m.merges == merges {
				if m.gone != nil && m.gone[i] {
					continue
				}
				v = m.vals[i]
			} else {
				var ok bool
				if v, ok = m.Get(k); !ok {
					continue
				}
			}
			if !yield(k, v) {
				return
			}
		}
		for _, it := range recent {
			v := it.v
			if m.merges != merges { // merged meanwhile: it may have changed or gone
				var ok bool
				if v, ok = m.Get(it.key); !ok {
					continue
				}
			}
			if !yield(it.key, v) {
				return
			}
		}
	}
}

// AllAs iterates over m as All does, each value given through conv (for a Map that holds its values in
// a packed form).
func AllAs[V, W any](m *Map[V], conv func(V) W) iter.Seq2[string, W] {
	return func(yield func(string, W) bool) {
		for k, v := range m.All() {
			if !yield(k, conv(v)) {
				return
			}
		}
	}
}
