package watch

import (
	"slices"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
)

// backlog holds the directories that could not be watched (yet: not readable by the sidecar's user, or
// the inotify watch limit reached), with when each is to be tried again. It decides and the watcher does:
// time is passed in. Only the watcher's goroutine (New, then Run) touches it, so no mutex is needed.
type backlog struct {
	policy  backoff.Policy
	dirs    map[string]*attempt // relative path → its attempts
	changed bool                // dirs gained or lost a directory since the last summary
}

type attempt struct {
	n    int       // failed attempts so far
	next time.Time // when to try again
}

func newBacklog(p backoff.Policy) *backlog { return &backlog{policy: p, dirs: map[string]*attempt{}} }

// failed records a failed attempt at rel and schedules the next one, backing off (policy.Delay of the
// number of attempts). It reports whether rel was not in the backlog before: its first failure.
func (b *backlog) failed(rel string, now time.Time) bool {
	a, ok := b.dirs[rel]
	if !ok {
		a = &attempt{}
		b.dirs[rel] = a
		b.changed = true
	}
	a.n++
	a.next = now.Add(b.policy.Delay(a.n))
	return !ok
}

// watched takes rel out of the backlog: it returns how many attempts had failed (0: it was not in it).
func (b *backlog) watched(rel string) int {
	a, ok := b.dirs[rel]
	if !ok {
		return 0
	}
	delete(b.dirs, rel)
	b.changed = true
	return a.n
}

// gone takes rel and every directory below it out of the backlog (removed or moved away).
func (b *backlog) gone(rel string) {
	for _, d := range b.at(rel) {
		delete(b.dirs, d)
		b.changed = true
	}
}

// at returns the directories of the backlog at or below rel ("" is the root: all of them), parents
// before their children.
func (b *backlog) at(rel string) []string {
	var out []string
	for d := range b.dirs {
		if rel == "" || d == rel || strings.HasPrefix(d, rel+"/") {
			out = append(out, d)
		}
	}
	slices.Sort(out) // a directory's path is a prefix of its children's: it sorts first
	return out
}

// due returns the directories whose next attempt is due at now, parents before their children.
func (b *backlog) due(now time.Time) []string {
	var out []string
	for d, a := range b.dirs {
		if !a.next.After(now) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// next returns when the earliest attempt is due; false when the backlog is empty.
func (b *backlog) next() (time.Time, bool) {
	var first time.Time
	for _, a := range b.dirs {
		if first.IsZero() || a.next.Before(first) {
			first = a.next
		}
	}
	return first, !first.IsZero()
}

// summary counts the backlog's directories and names the first of them by name ("" when none).
func (b *backlog) summary() Unwatched {
	u := Unwatched{Count: len(b.dirs)}
	for d := range b.dirs {
		if u.First == "" || d < u.First {
			u.First = d
		}
	}
	return u
}
