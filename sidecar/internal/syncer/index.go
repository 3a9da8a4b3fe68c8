package syncer

import (
	"strings"

	"github.com/filesync/filesync/sidecar/internal/plan"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// index is the loop's picture of both sides between passes: the local files as last scanned (kept
// current by fsnotify hints and this replica's own writes), the remote objects as last listed (kept
// current by polls, remote hints and this replica's own writes), and, for each side, the base entries it
// lacks. A targeted pass plans the paths that changed plus those missing ones (the wipe rule and the
// --max-delete guard count them: plan.Input.Known), so the missing sets are kept up to date with every
// change rather than counted over the whole base on each pass.
//
// Owner: the goroutine running passes (Run, Once, Pass, Flush). Nothing else reads or writes it, and it
// is the only writer of the base (state.Store) while a pass runs.
type index struct {
	base  *state.Store
	local map[string]snapshot.File
	// remote is the view: as large as the bucket (a lazy site's media included), so held as its
	// difference from the base (remoteView), its names the base's own strings where the base has the path.
	remote *remoteView
	walked bool // local holds a whole walk (not just hinted paths)
	listed bool // remote holds a listing (not just this replica's writes)
	// due: objects whose listing or hint changed since the last pass planned them (the next pass plans
	// them); allDue: so many did (more than wholePlan: the whole listing after a lazy restore makes every
	// media object due) that the next pass plans the whole tree, and due is not kept.
	due    map[string]bool
	allDue bool
	// encoded: objects of the view stored gzip-encoded (objectRule).
	encoded map[string]struct{}
	// dirs counts the local files under each directory, so that the files of a directory that went away
	// can be found without a search when there are none (a new file costs no search).
	dirs map[string]int
	// remoteDirs counts the objects under each folder, for the clash rule (an object x beside objects x/...).
	remoteDirs                  map[string]int
	missingLocal, missingRemote map[string]struct{}
	// remoteOnly counts the base's remote-only entries (lazy paths never fetched here), with their bytes.
	// A remote-only entry without a local file is not missing locally: it is in sync.
	remoteOnly, remoteOnlyBytes int64
	// isLazy names the lazy paths (--lazy; nil: none); lazyBytes sums the sizes of the local files at lazy
	// paths (what --cache-size bounds).
	isLazy    func(path string) bool
	lazyBytes int64
}

// markDue marks path due for the next pass.
func (ix *index) markDue(path string) {
	if ix.allDue {
		return
	}
	ix.due[path] = true
	if len(ix.due) > ix.wholePlan() {
		ix.markAllDue()
	}
}

// markAllDue has the next pass plan the whole tree.
func (ix *index) markAllDue() { ix.allDue, ix.due = true, map[string]bool{} }

// wholePlan is the number of paths past which a pass plans the whole tree from the index (no copies)
// rather than a subset copied from it: a quarter of the base, or minWholePlan for a small one.
func (ix *index) wholePlan() int { return max(minWholePlan, ix.base.Len()/4) }

// minWholePlan is the number of paths below which a targeted pass plans only its paths, whatever the size
// of the base.
const minWholePlan = 1024

func newIndex(base *state.Store) index {
	ix := index{base: base, local: map[string]snapshot.File{}, remote: newRemoteView(base), dirs: map[string]int{},
		remoteDirs: map[string]int{}, due: map[string]bool{}, encoded: map[string]struct{}{}}
	ix.reindexAll()
	return ix
}

// reindex brings the missing sets up to date for one path.
func (ix *index) reindex(path string) {
	b, inBase := ix.base.Get(path)
	_, hasL := ix.local[path]
	_, hasR := ix.remote.Get(path)
	mark(ix.missingLocal, path, inBase && !hasL && !b.RemoteOnly)
	mark(ix.missingRemote, path, inBase && !hasR)
}

func mark(set map[string]struct{}, path string, in bool) {
	if in {
		set[path] = struct{}{}
	} else {
		delete(set, path)
	}
}

// reindexAll recomputes the missing sets over the whole base (after a walk or a listing replaced a side).
func (ix *index) reindexAll() {
	ix.missingLocal, ix.missingRemote = map[string]struct{}{}, map[string]struct{}{}
	ix.remoteOnly, ix.remoteOnlyBytes = 0, 0
	ix.base.Range(func(path string, b snapshot.Base) {
		if b.RemoteOnly {
			ix.remoteOnly++
			ix.remoteOnlyBytes += b.Size
		}
		if _, ok := ix.local[path]; !ok && !b.RemoteOnly {
			ix.missingLocal[path] = struct{}{}
		}
		if _, ok := ix.remote.Get(path); !ok {
			ix.missingRemote[path] = struct{}{}
		}
	})
}

func (ix *index) setLocal(path string, f snapshot.File) {
	old, had := ix.local[path]
	if !had {
		ix.countDirs(path, 1)
	}
	ix.countLazy(path, f.Size-old.Size)
	ix.local[path] = f
	ix.reindex(path)
}

func (ix *index) dropLocal(path string) {
	if old, had := ix.local[path]; had {
		ix.countDirs(path, -1)
		ix.countLazy(path, -old.Size)
		delete(ix.local, path)
	}
	ix.reindex(path)
}

// countLazy adds d bytes to lazyBytes if path is lazy.
func (ix *index) countLazy(path string, d int64) {
	if ix.isLazy != nil && d != 0 && ix.isLazy(path) {
		ix.lazyBytes += d
	}
}

// under returns the known local files below the directory dir.
func (ix *index) under(dir string) []string {
	if ix.dirs[dir] == 0 {
		return nil
	}
	var out []string
	for p := range ix.local {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

func (ix *index) countDirs(path string, d int) { count(ix.dirs, path, d) }

// count adds d to the count of every folder above path.
func count(dirs map[string]int, path string, d int) {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			dir := path[:i]
			if dirs[dir] += d; dirs[dir] <= 0 {
				delete(dirs, dir)
			}
		}
	}
}

// replaceLocal takes a whole walk's files as the local side.
func (ix *index) replaceLocal(files map[string]snapshot.File) {
	ix.local, ix.walked = files, true
	ix.dirs, ix.lazyBytes = map[string]int{}, 0
	for p, f := range files {
		ix.countDirs(p, 1)
		ix.countLazy(p, f.Size)
	}
	ix.reindexAll()
}

func (ix *index) setRemote(path string, r snapshot.Object) {
	if _, had := ix.remote.Get(path); !had {
		count(ix.remoteDirs, path, 1)
		if k, ok := ix.base.Key(path); ok {
			path = k
		}
	}
	ix.remote.Set(path, r)
	ix.reindex(path)
}

func (ix *index) dropRemote(path string) {
	if _, had := ix.remote.Get(path); had {
		count(ix.remoteDirs, path, -1)
		ix.remote.Delete(path)
	}
	delete(ix.encoded, path)
	ix.reindex(path)
}

// setEncoded records whether the object at path is stored gzip-encoded.
func (ix *index) setEncoded(path string, gzip bool) { mark(ix.encoded, path, gzip) }

// objectRule is the one rule for objects left alone (objectRule), as the view has the object at path
// (noReason where the view has none).
func (ix *index) objectRule(path string) reason {
	if _, ok := ix.remote.Get(path); !ok {
		return noReason
	}
	enc := ""
	if _, ok := ix.encoded[path]; ok {
		enc = "gzip"
	}
	return objectRule(enc, ix.remoteDirs[path] > 0)
}

// unsyncableBase returns the base entries whose object objectRule leaves alone (gzip-encoded, or a
// folder of other objects too): a targeted plan covers them, as their local copies may go.
func (ix *index) unsyncableBase() map[string]struct{} {
	out := map[string]struct{}{}
	add := func(path string) {
		if _, ok := ix.base.Get(path); ok {
			out[path] = struct{}{}
		}
	}
	for path := range ix.encoded {
		add(path)
	}
	for dir := range ix.folderObjects() {
		add(dir)
	}
	return out
}

// replaceRemote takes a listing as the remote side, with the names of its gzip-encoded objects. The view
// takes l's arrays (remoteView.replace): l holds only what differs from the base after.
func (ix *index) replaceRemote(l listed, encoded map[string]struct{}) {
	ix.remoteDirs = map[string]int{}
	for p := range l.All() {
		count(ix.remoteDirs, p, 1)
	}
	ix.remote.replace(l)
	ix.listed, ix.encoded = true, encoded
	ix.reindexAll()
}

// setBase records e as path's base. Every write to the base goes through setBase, setRemoteOnly or
// dropBase, which keep the view's object at path as it was (remoteView.keep).
func (ix *index) setBase(path string, e snapshot.Base) {
	r, inView := ix.remote.Get(path)
	ix.countRemoteOnly(path, -1)
	ix.base.Set(path, e)
	ix.remote.keep(path, r, inView)
	ix.countRemoteOnly(path, 1)
	ix.reindex(path)
}

// setRemoteOnly records each of paths (in ascending order, each once: plan.Plan.RemoteOnly) remote-only
// at the view's object, as setBase would one at a time; the base takes them in one go
// (state.Store.SetRemoteOnly), or takes the view's own objects when they are all of them
// (remoteView.handOver: the whole listing after a lazy restore), which it reports.
func (ix *index) setRemoteOnly(paths []string) (handedOver bool) {
	for _, path := range paths {
		ix.countRemoteOnly(path, -1)
	}
	handedOver = ix.remote.handOver(paths)
	if !handedOver {
		ix.base.SetRemoteOnly(paths, func(i int) snapshot.Object {
			r, _ := ix.remote.Get(paths[i])
			return r
		})
		ix.remote.recorded(paths)
	}
	for _, path := range paths {
		ix.countRemoteOnly(path, 1)
		ix.reindex(path)
	}
	return handedOver
}

func (ix *index) dropBase(path string) {
	r, inView := ix.remote.Get(path)
	ix.countRemoteOnly(path, -1)
	ix.base.Delete(path)
	ix.remote.keep(path, r, inView)
	ix.reindex(path)
}

// countRemoteOnly adds d times path's base entry to the remote-only counts, if it is one.
func (ix *index) countRemoteOnly(path string, d int64) {
	if b, ok := ix.base.Get(path); ok && b.RemoteOnly {
		ix.remoteOnly += d
		ix.remoteOnlyBytes += d * b.Size
	}
}

// subset is a targeted plan's input: what the index holds of some paths.
type subset struct {
	local  plan.Map[snapshot.File]
	remote plan.Map[snapshot.Object]
	base   plan.Map[snapshot.Base]
}

// copyInto adds what the index holds of path to sub.
func (ix *index) copyInto(sub subset, path string) {
	if f, ok := ix.local[path]; ok {
		sub.local[path] = f
	}
	if r, ok := ix.remote.Get(path); ok {
		sub.remote[path] = r
	}
	if e, ok := ix.base.Get(path); ok {
		sub.base[path] = e
	}
}

// has reports whether either side holds path.
func (ix *index) has(path string) bool {
	_, l := ix.local[path]
	_, r := ix.remote.Get(path)
	return l || r
}

// folderObjects returns the objects of the view that are also folders of other objects.
func (ix *index) folderObjects() map[string]bool {
	out := map[string]bool{}
	for dir := range ix.remoteDirs {
		if _, ok := ix.remote.Get(dir); ok {
			out[dir] = true
		}
	}
	return out
}
