package syncer

import (
	"iter"

	"github.com/filesync/filesync/sidecar/internal/pathmap"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// The remote side as the loop holds it. A listing makes a listed (every object it found, packed); the
// index keeps the view, a remoteView: the same objects, held as a difference from the base.

// listed is what a listing found: a pathmap of the objects packed (snapshot.Packed: 32 bytes, no
// pointer), unpacked as they are read. It is a plan.Side.
type listed struct{ m *pathmap.Map[snapshot.Packed] }

// listedBuilder collects a listing's objects as the pages arrive (pathmap.Builder). canon, if set, gives
// for a name the equal string the base holds (state.Store.Key): kept instead, so that a name is held once
// and the string a page decoded is let go at once.
type listedBuilder struct {
	b     pathmap.Builder[snapshot.Packed]
	canon func(string) (string, bool)
}

func (l *listedBuilder) add(path string, o snapshot.Object) {
	if l.canon != nil {
		if k, ok := l.canon(path); ok {
			path = k
		}
	}
	l.b.Add(path, o.Pack())
}

// listed returns the objects added.
func (l *listedBuilder) listed() listed { return listed{l.b.Map()} }

func (l listed) Get(path string) (snapshot.Object, bool) {
	p, ok := l.m.Get(path)
	return p.Object(), ok
}

func (l listed) Len() int { return l.m.Len() }

func (l listed) All() iter.Seq2[string, snapshot.Object] {
	return pathmap.AllAs(l.m, snapshot.Packed.Object)
}

// remoteView is the remote side of the index: the objects of the bucket as last seen (listed, hinted,
// written here). A replica in sync holds in its base the very objects the bucket holds, so the view
// holds only how it differs from the base: the objects the base lacks or records another version or
// mtime of (over), and the base's paths the bucket lacks (gone); every other path of the base is in the
// view with the base's object. A replica that knows 100,000 paths, in sync, holds no second copy of
// them (issue 23: the view was 48 bytes a path beside the base's 64, and twice that live while a new
// listing replaced it).
//
// The view reads the base without its lock (state.Entries): the index is the base's only writer, and
// every write to the base goes through the index, which keeps the view's object as it was across it
// (keep): what the bucket holds does not change when the base does.
//
// Owner: the index (the goroutine running passes). It is a plan.Side.
type remoteView struct {
	base *state.Store
	over *pathmap.Map[snapshot.Packed] // objects that differ from the base's, or that it lacks
	gone map[string]struct{}           // paths of the base the bucket lacks
	n    int                           // paths in the view
}

func newRemoteView(base *state.Store) *remoteView {
	return &remoteView{base: base, over: &pathmap.Map[snapshot.Packed]{}, gone: map[string]struct{}{}}
}

// Get returns the object at path.
func (v *remoteView) Get(path string) (snapshot.Object, bool) {
	if p, ok := v.over.Get(path); ok {
		return p.Object(), true
	}
	if _, ok := v.gone[path]; ok {
		return snapshot.Object{}, false
	}
	b, ok := v.base.Entries().Get(path)
	return b.Object, ok
}

// Len returns the number of objects.
func (v *remoteView) Len() int { return v.n }

// All iterates over the objects: the base's the view shares, then the others.
func (v *remoteView) All() iter.Seq2[string, snapshot.Object] {
	return func(yield func(string, snapshot.Object) bool) {
		for p, b := range v.base.Entries().All() {
			if _, ok := v.gone[p]; ok {
				continue
			}
			if _, ok := v.over.Get(p); ok {
				continue
			}
			if !yield(p, b.Object) {
				return
			}
		}
		for p, o := range pathmap.AllAs(v.over, snapshot.Packed.Object) {
			if !yield(p, o) {
				return
			}
		}
	}
}

// Set records o at path.
func (v *remoteView) Set(path string, o snapshot.Object) {
	if _, had := v.Get(path); !had {
		v.n++
	}
	v.put(path, o)
}

// Delete records that the bucket lacks path.
func (v *remoteView) Delete(path string) {
	if _, had := v.Get(path); had {
		v.n--
		v.absent(path)
	}
}

// inBase reports whether the base records object o at path: the view need not hold it.
func (v *remoteView) inBase(path string, o snapshot.Object) bool {
	b, ok := v.base.Entries().Get(path)
	return ok && sameObject(b.Object, o)
}

// inBasePacked is inBase for an object held packed (a pathmap.Map.DeleteFunc of over or a listing).
func (v *remoteView) inBasePacked(path string, p snapshot.Packed) bool {
	return v.inBase(path, p.Object())
}

// put holds o at path: in over only if the base records another object (or none).
func (v *remoteView) put(path string, o snapshot.Object) {
	delete(v.gone, path)
	if v.inBase(path, o) {
		v.over.Delete(path)
		return
	}
	v.over.Set(path, o.Pack())
}

// absent holds path as not in the bucket: in gone only if the base has it.
func (v *remoteView) absent(path string) {
	v.over.Delete(path)
	if _, ok := v.base.Entries().Get(path); ok {
		v.gone[path] = struct{}{}
	} else {
		delete(v.gone, path)
	}
}

// keep holds at path, after the base's entry for it changed, what the view held before the change (o,
// in: Get's answer then). The index calls it after every write to the base.
func (v *remoteView) keep(path string, o snapshot.Object, in bool) {
	if in {
		v.put(path, o)
	} else {
		v.absent(path)
	}
}

// recorded is keep for paths whose base now records the view's very object (index.setRemoteOnly): the
// view holds nothing of its own for them. A batch as large as an eighth of over (the whole listing
// after a lazy restore records every media object) is dropped from over at once, not a path at a time
// (each pathmap.Map.Delete of a quarter of it would merge its arrays again).
func (v *remoteView) recorded(paths []string) {
	if len(paths) <= max(minWholePlan, v.over.Len()/8) {
		for _, path := range paths {
			o, in := v.Get(path)
			v.keep(path, o, in)
		}
		return
	}
	v.over.DeleteFunc(v.inBasePacked)
}

// handOver gives the base the view's own objects as the remote-only records of paths, if paths are
// all of them and the base can take them as they are (state.Store.AdoptRemoteOnly): the whole listing
// after a lazy restore, whose media objects differ from the base (it has none of them) and are then
// recorded remote-only together. The view holds nothing of its own after; the objects are not copied.
func (v *remoteView) handOver(paths []string) bool {
	if len(paths) <= minWholePlan || len(paths) != v.over.Len() {
		return false
	}
	for _, path := range paths {
		if _, ok := v.over.Get(path); !ok {
			return false
		}
	}
	if !v.base.AdoptRemoteOnly(v.over) {
		return false
	}
	v.over = &pathmap.Map[snapshot.Packed]{}
	return true
}

// replace makes the view hold the objects of a listing, and only them. It takes the listing's arrays
// (l is the view's after), keeping of them what differs from the base.
func (v *remoteView) replace(l listed) {
	gone := map[string]struct{}{}
	for p := range v.base.Entries().All() {
		if _, ok := l.m.Get(p); !ok {
			gone[p] = struct{}{}
		}
	}
	v.n = l.Len()
	l.m.DeleteFunc(v.inBasePacked)
	v.over, v.gone = l.m, gone
}
