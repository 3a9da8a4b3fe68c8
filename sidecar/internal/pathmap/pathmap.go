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
}

type item[V any] struct {
	key string
	v   V
}

// FromMap returns a Map holding m's entries. canon, if not nil, may give for a path an equal string to
// keep instead (one already held elsewhere, so that the name is stored once).
func FromMap[V any](m map[string]V, canon func(string) (string, bool)) *Map[V] {
	keys := slices.Sorted(maps.Keys(m))
	vals := make([]V, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
		if canon != nil {
			if c, ok := canon(k); ok {
				keys[i] = c
			}
		}
	}
	return &Map[V]{keys: keys, vals: vals}
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
}

// All iterates over the paths and their values: those merged in path order, then the others. Set and
// Delete may be called meanwhile (as with a Go map, a path added then may or may not be seen).
func (m *Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		keys := m.keys
		for i, k := range keys {
			var v V
			if len(m.keys) == len(keys) && &m.keys[0] == &keys[0] { // not merged meanwhile
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
		for _, it := range m.recent {
			if !yield(it.key, it.v) {
				return
			}
		}
	}
}
