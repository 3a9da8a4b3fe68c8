package syncer

import (
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// holds are the reasons the loop leaves a path alone for now, one table per kind: a local file still
// settling, a path backing off after an error or busy (open for writing), an object skipped until its
// generation changes, a local path the scan could not read; and what has been reported once.
//
// Owner: the goroutine running passes, like the index. The planner only reads them (through
// Syncer.leftAlone and quietSince); they change while a pass observes (scan, listing) and commits.
type holds struct {
	m *metrics.Metrics

	fresh      map[string]time.Time // local files scanned unhashed (modified within --settle): when they will be quiet
	unsettled  map[string]time.Time // changed files the last plan found too recent to upload: when they will be quiet
	trees      map[string]*heldTree // directories whose remote changes are held and staged (trees.go)
	treeWait   map[string]time.Time // their held paths: when the directory may be quiet
	firstSeen  map[string]seen      // stamps with an mtime in the future: when each was first seen (settle counts from then)
	failures   map[string]failure   // paths backing off after errors, or waiting for the app to close them
	skipped    map[string]skip      // objects left alone until their generation changes
	unreadable map[string]error     // local paths the scans could not read: neither present nor missing
	warned     map[warning]bool     // what was reported (one WARN line and one count per path and reason)
}

type seen struct {
	stamp snapshot.Stamp
	at    time.Time
}

type failure struct {
	n        int
	next     time.Time
	busy     bool // the app has the file open for writing: deferred, not an error
	outgoing bool // an upload (a local change waiting to leave), for filesync_pending_uploads
	err      error
}

// skip is an object left alone until it changes: the generation it was skipped at, and why. For a write
// the bucket refused (retained), the local file it was planned from too: a new local version is tried.
type skip struct {
	generation int64
	why        reason
	local      *snapshot.Stamp // retained: the local stamp (nil: no local file)
}

// reason says why a path is left alone. Each is reported once per path and counted in
// filesync_skipped_unsafe_total or filesync_skipped_paths_total{reason}.
type reason uint8

const (
	noReason     reason = iota
	unsafeLocal         // a local file with an unsafe name
	unsafeRemote        // an object with an unsafe name
	underSymlink        // an object that would be written through a symlinked local directory
	unreadable          // a local path the scan could not read
	folderClash         // an object that is also a folder of other objects (x beside x/...): the folder wins
	localClash          // an object whose local path is a directory with files, or lies under a file
	gzipEncoded         // an object stored with Content-Encoding: gzip: its bytes cannot be checked
	noExec              // an object with an executable name where --no-exec forbids one
	corrupt             // an object whose bytes never match its checksum
	retained            // a write or delete the bucket refused for good (retention policy, object hold)
)

// label is the filesync_skipped_paths_total label of r; "" for the unsafe names, which have a counter of
// their own.
func (r reason) label() string {
	switch r {
	case unreadable:
		return "unreadable"
	case folderClash, localClash:
		return "clash"
	case gzipEncoded:
		return "content_encoding"
	case corrupt:
		return "corrupt"
	case noExec:
		return "exec"
	}
	return ""
}

type warning struct {
	why  reason
	path string
}

func newHolds(m *metrics.Metrics) holds {
	return holds{
		m: m, fresh: map[string]time.Time{}, unsettled: map[string]time.Time{}, firstSeen: map[string]seen{},
		failures: map[string]failure{}, skipped: map[string]skip{}, unreadable: map[string]error{},
		trees: map[string]*heldTree{}, treeWait: map[string]time.Time{},
		warned: map[warning]bool{},
	}
}

// firstTime counts path as left alone for why, once, and reports whether it is new (warn only then).
func (h *holds) firstTime(why reason, path string) bool {
	w := warning{why, path}
	if h.warned[w] {
		return false
	}
	h.warned[w] = true
	if l := why.label(); l != "" {
		h.m.SkippedPaths.WithLabelValues(l).Inc()
	} else {
		h.m.SkippedUnsafe.Inc()
	}
	return true
}

// skipUntilChanged leaves the object at path alone while its generation is gen.
func (h *holds) skipUntilChanged(path string, gen int64, why reason) {
	h.skipped[path] = skip{generation: gen, why: why}
}

// refuse leaves path alone after the bucket refused its write or delete for good (retained), until the
// object's generation (gen) or the local file (local; nil: none) changes.
func (h *holds) refuse(path string, gen int64, local *snapshot.Stamp) {
	h.skipped[path] = skip{generation: gen, why: retained, local: local}
	delete(h.failures, path)
}

// forgetSkipped drops the skips whose object changed or is gone (generation reports the object's current
// generation), or, for a refused write, whose local file changed (local reports its stamp), so that it is
// tried, and reported, again.
func (h *holds) forgetSkipped(generation func(path string) (int64, bool), local func(path string) (snapshot.Stamp, bool)) {
	for path, sk := range h.skipped {
		gen, ok := generation(path)
		changed := !ok || gen != sk.generation
		if sk.why == retained {
			st, has := local(path)
			changed = changed || has != (sk.local != nil) || (has && st != *sk.local)
		}
		if changed {
			delete(h.skipped, path)
			delete(h.warned, warning{sk.why, path})
		}
	}
}

// isSkipped reports whether path is skipped at its current generation.
func (h *holds) isSkipped(path string) bool {
	_, ok := h.skipped[path]
	return ok
}

// isUnreadable reports whether path, or a folder above it, could not be read.
func (h *holds) isUnreadable(path string) bool {
	if len(h.unreadable) == 0 {
		return false
	}
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			if _, ok := h.unreadable[path[:i]]; ok {
				return true
			}
		}
	}
	return false
}

func (h *holds) isFresh(path string) bool {
	_, ok := h.fresh[path]
	return ok
}

// changedAt is when the file last changed, for the settle time: its mtime, unless that lies in the future
// (a wrong clock, `touch -d`), in which case it is when this stamp was first seen, recorded now if it is
// new; otherwise such a file would settle only when the clock catches up. Scans call it.
func (h *holds) changedAt(path string, st snapshot.Stamp, now time.Time) time.Time {
	if t, ok := h.quietSince(path, st, now); ok {
		return t
	}
	h.firstSeen[path] = seen{stamp: st, at: now}
	return now
}

// quietSince is changedAt without recording: the planner reads it. ok is false for a future stamp not
// seen before (then it changed, as far as anyone knows, now).
func (h *holds) quietSince(path string, st snapshot.Stamp, now time.Time) (time.Time, bool) {
	if mt := time.Unix(0, st.ModTime); !mt.After(now) {
		return mt, true
	}
	if f, ok := h.firstSeen[path]; ok && f.stamp == st {
		return f.at, true
	}
	return now, false
}

// pruneFirstSeen forgets future stamps whose time has come.
func (h *holds) pruneFirstSeen(now time.Time) {
	for path, f := range h.firstSeen {
		if !time.Unix(0, f.stamp.ModTime).After(now) {
			delete(h.firstSeen, path)
		}
	}
}

// replan records a plan's unsettled paths: the ones it planned (all, for a plan of the whole tree: nil)
// are replaced.
func (h *holds) replan(planned map[string]bool, unsettled map[string]time.Time) {
	if planned == nil {
		clear(h.unsettled)
	}
	for path := range planned {
		delete(h.unsettled, path)
	}
	for path, at := range unsettled {
		h.unsettled[path] = at
	}
}

// fail backs path off by policy (one more attempt than last time) and returns the wait.
func (h *holds) fail(path string, f failure, policy backoff.Policy, now time.Time) time.Duration {
	f.n = h.failures[path].n + 1
	d := policy.Delay(f.n)
	f.next = now.Add(d)
	h.failures[path] = f
	return d
}

// together gives the paths among paths that back off the latest of their waits, so that they are due
// together and a later pass plans them as one again (a new directory's files: trees.go).
func (h *holds) together(paths []string) {
	var last time.Time
	for _, p := range paths {
		if f, ok := h.failures[p]; ok && f.next.After(last) {
			last = f.next
		}
	}
	for _, p := range paths {
		if f, ok := h.failures[p]; ok {
			f.next = last
			h.failures[p] = f
		}
	}
}

func (h *holds) backingOff(path string, now time.Time) bool {
	f, ok := h.failures[path]
	return ok && now.Before(f.next)
}

// due returns the paths waiting for a time that has come: settled, or done backing off.
func (h *holds) due(now time.Time) map[string]bool {
	due := map[string]bool{}
	for _, waits := range []map[string]time.Time{h.fresh, h.unsettled, h.treeWait} {
		for path, at := range waits {
			if !at.After(now) {
				due[path] = true
			}
		}
	}
	for path, f := range h.failures {
		if !f.next.After(now) {
			due[path] = true
		}
	}
	return due
}

// nextWake is when the next path waiting for a time is due (zero: none is waiting).
func (h *holds) nextWake() time.Time {
	var t time.Time
	for _, waits := range []map[string]time.Time{h.fresh, h.unsettled, h.treeWait} {
		for _, at := range waits {
			t = earliest(t, at)
		}
	}
	for _, f := range h.failures {
		t = earliest(t, f.next)
	}
	return t
}

// pending counts the local changes not yet uploaded: settling, open for writing, or backing off.
func (h *holds) pending() int {
	n := len(h.fresh) + len(h.unsettled)
	for _, f := range h.failures {
		if f.outgoing {
			n++
		}
	}
	return n
}

// failing summarises the paths backing off after an error (not the busy ones), for /readyz.
func (h *holds) failing() *failingPaths {
	f := &failingPaths{}
	for path, fl := range h.failures {
		if !fl.busy {
			f.n++
			if f.first == "" || path < f.first {
				f.first, f.err = path, fl.err
			}
		}
	}
	return f
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
