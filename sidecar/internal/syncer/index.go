package syncer

import (
	"strings"

	"github.com/filesync/filesync/sidecar/internal/state"
	"github.com/filesync/filesync/sidecar/internal/version"
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
	base   *state.Store
	local  map[string]version.File
	remote map[string]version.Object
	listed bool // remote holds a listing (not just this replica's writes)
	// dirs counts the local files under each directory, so that the files of a directory that went away
	// can be found without a search when there are none (a new file costs no search).
	dirs map[string]int
	// remoteDirs counts the objects under each folder, for the clash rule (an object x beside objects x/...).
	remoteDirs                  map[string]int
	missingLocal, missingRemote map[string]struct{}
}

func newIndex(base *state.Store) index {
	ix := index{base: base, local: map[string]version.File{}, remote: map[string]version.Object{}, dirs: map[string]int{}, remoteDirs: map[string]int{}}
	ix.reindexAll()
	return ix
}

// reindex brings the missing sets up to date for one path.
func (ix *index) reindex(path string) {
	_, inBase := ix.base.Get(path)
	_, hasL := ix.local[path]
	_, hasR := ix.remote[path]
	mark(ix.missingLocal, path, inBase && !hasL)
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
	ix.base.Range(func(path string, _ version.Base) {
		if _, ok := ix.local[path]; !ok {
			ix.missingLocal[path] = struct{}{}
		}
		if _, ok := ix.remote[path]; !ok {
			ix.missingRemote[path] = struct{}{}
		}
	})
}

func (ix *index) setLocal(path string, f version.File) {
	if _, had := ix.local[path]; !had {
		ix.countDirs(path, 1)
	}
	ix.local[path] = f
	ix.reindex(path)
}

func (ix *index) dropLocal(path string) {
	if _, had := ix.local[path]; had {
		ix.countDirs(path, -1)
		delete(ix.local, path)
	}
	ix.reindex(path)
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
func (ix *index) replaceLocal(files map[string]version.File) {
	ix.local = files
	ix.dirs = map[string]int{}
	for p := range files {
		ix.countDirs(p, 1)
	}
	ix.reindexAll()
}

func (ix *index) setRemote(path string, r version.Object) {
	if _, had := ix.remote[path]; !had {
		count(ix.remoteDirs, path, 1)
	}
	ix.remote[path] = r
	ix.reindex(path)
}

func (ix *index) dropRemote(path string) {
	if _, had := ix.remote[path]; had {
		count(ix.remoteDirs, path, -1)
		delete(ix.remote, path)
	}
	ix.reindex(path)
}

// replaceRemote takes a listing as the remote side.
func (ix *index) replaceRemote(view map[string]version.Object) {
	ix.remote, ix.listed = view, true
	ix.remoteDirs = map[string]int{}
	for p := range view {
		count(ix.remoteDirs, p, 1)
	}
	ix.reindexAll()
}

func (ix *index) setBase(path string, e version.Base) {
	ix.base.Set(path, e)
	ix.reindex(path)
}

func (ix *index) dropBase(path string) {
	ix.base.Delete(path)
	ix.reindex(path)
}
