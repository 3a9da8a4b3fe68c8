package state

import (
	"iter"

	"github.com/filesync/filesync/sidecar/internal/pathmap"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// entries is the base in memory, in two pathmaps: the paths this replica holds a file of (held: the
// object and the local stamp, snapshot.PackedBase, 40 bytes) and the remote-only ones (lazy paths never
// fetched here, or evicted: the object only, snapshot.Packed, 32 bytes). A path is in one of them at
// most. The remote-only map can take a whole map of objects as it is (adopt): the remote view's copy of
// the objects a listing found, when the base records every one of them remote-only (issue 23: the whole
// listing after a lazy restore would otherwise hold 100,000 objects twice while the base copied them).
//
// Owner: the Store, under its lock (or its writer, through Entries).
type entries struct {
	held       *pathmap.Map[snapshot.PackedBase]
	remoteOnly *pathmap.Map[snapshot.Packed]
}

func newEntries() entries {
	return entries{held: &pathmap.Map[snapshot.PackedBase]{}, remoteOnly: &pathmap.Map[snapshot.Packed]{}}
}

func (e *entries) get(path string) (snapshot.Base, bool) {
	if p, ok := e.held.Get(path); ok {
		return p.Base(), true
	}
	if p, ok := e.remoteOnly.Get(path); ok {
		return snapshot.Base{Object: p.Object(), RemoteOnly: true}, true
	}
	return snapshot.Base{}, false
}

func (e *entries) key(path string) (string, bool) {
	if k, ok := e.held.Key(path); ok {
		return k, true
	}
	return e.remoteOnly.Key(path)
}

func (e *entries) set(path string, b snapshot.Base) {
	if b.RemoteOnly {
		e.held.Delete(path)
		e.remoteOnly.Set(path, b.Object.Pack())
		return
	}
	e.remoteOnly.Delete(path)
	e.held.Set(path, b.Pack())
}

// setRemoteOnly records paths (ascending, each once) remote-only at object(i), in one merge of the
// remote-only map (pathmap.Map.SetSorted). object may read the entries (the remote view reads its
// objects through the base): every object is taken before a held entry goes.
func (e *entries) setRemoteOnly(paths []string, object func(i int) snapshot.Object) {
	e.remoteOnly.SetSorted(paths, func(i int) snapshot.Packed { return object(i).Pack() })
	for _, path := range paths {
		e.held.Delete(path)
	}
}

// adopt makes m the remote-only map, if there is none yet and no path of m is held: m's objects are
// then the remote-only bases of its paths, and m is the base's (its giver must let go of it).
func (e *entries) adopt(m *pathmap.Map[snapshot.Packed]) bool {
	if e.remoteOnly.Len() > 0 {
		return false
	}
	for p := range m.All() {
		if _, ok := e.held.Get(p); ok {
			return false
		}
	}
	e.remoteOnly = m
	return true
}

func (e *entries) delete(path string) {
	e.held.Delete(path)
	e.remoteOnly.Delete(path)
}

func (e *entries) len() int { return e.held.Len() + e.remoteOnly.Len() }

// all iterates over every entry: the held ones, then the remote-only ones.
func (e *entries) all() iter.Seq2[string, snapshot.Base] {
	return func(yield func(string, snapshot.Base) bool) {
		for p, b := range pathmap.AllAs(e.held, snapshot.PackedBase.Base) {
			if !yield(p, b) {
				return
			}
		}
		for p, o := range e.remoteOnly.All() {
			if !yield(p, snapshot.Base{Object: o.Object(), RemoteOnly: true}) {
				return
			}
		}
	}
}
