package watch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/filter"
)

// unreadable makes directories unwatchable the way a directory the sidecar's user (33) cannot read is:
// inotify_add_watch fails with EACCES. The tests run as root, which reads every directory whatever its
// mode, so the watcher is given refuse (refusing) until the test allows the directory.
type unreadable struct {
	root string
	mu   sync.Mutex
	dirs map[string]bool // relative paths refused
}

func newUnreadable(root string, rels ...string) *unreadable {
	u := &unreadable{root: root, dirs: map[string]bool{}}
	for _, r := range rels {
		u.dirs[r] = true
	}
	return u
}

func (u *unreadable) refuse(dir string) error {
	rel, _ := filepath.Rel(u.root, dir)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dirs[filepath.ToSlash(rel)] {
		return syscall.EACCES // what fsnotify returns for it
	}
	return nil
}

func (u *unreadable) allow(rel string) { u.mu.Lock(); delete(u.dirs, rel); u.mu.Unlock() }

// counts records what ReportUnwatched reports.
type counts struct {
	mu  sync.Mutex
	got []int
}

func (c *counts) report(n int) { c.mu.Lock(); c.got = append(c.got, n); c.mu.Unlock() }
func (c *counts) last() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return -1
	}
	return c.got[len(c.got)-1]
}

// startWith is start with options; it returns the watcher too.
func startWith(t *testing.T, root string, opts ...Option) (*Watcher, *recorder) {
	t.Helper()
	f, err := filter.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(root, f, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	done := make(chan struct{})
	go func() { w.Run(ctx, r.notify); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, r
}

// since returns what was hinted after the first n hints.
func (r *recorder) since(n int) []Hint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hints[n:])
}

func (r *recorder) len() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.hints) }

// Issue 21: WordPress's entrypoint creates plugins/ and themes/ before the sidecar's user can read them,
// then hands them over (chown, chmod). The watcher could not watch them and never tried again, so nothing
// under them was synced until the 5-minute rescan. Now the mode change (an event of the parent's for the
// directory) has it tried again at once: once watched it is hinted as a new directory (so the files
// written into it meanwhile are scanned), and the files written afterwards are hinted one by one. The
// backoff is an hour here: only the event can have done it.
func TestUnreadableDirectoryIsWatchedWhenItIsHandedOver(t *testing.T) {
	root := t.TempDir()
	u := newUnreadable(root, "plugins", "themes")
	var c counts
	w, r := startWith(t, root, refusing(u.refuse), retrying(backoff.Policy{Initial: time.Hour, Max: time.Hour}),
		ReportUnwatched(c.report))
	mkdirs(t, root, "plugins", "themes")
	eventually.True(t, 5*time.Second, "both directories reported unwatched", func() bool {
		return w.Unwatched() == Unwatched{Count: 2, First: "plugins"} && c.last() == 2
	})
	if err := os.WriteFile(filepath.Join(root, "plugins/meanwhile.php"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	u.allow("plugins")
	handedOver := r.len()
	if err := os.Chmod(filepath.Join(root, "plugins"), 0o755); err != nil { // the entrypoint's chown/chmod
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint for plugins once it can be read", func() bool {
		return slices.Contains(r.since(handedOver), Hint{Path: "plugins", NewDir: true})
	})
	hintedOnWrite(t, r, root, "plugins/afterwards.php")
	if got := w.Unwatched(); got != (Unwatched{Count: 1, First: "themes"}) || c.last() != 1 {
		t.Fatalf("unwatched: %+v (reported %d), want themes alone", got, c.last())
	}
	if err := os.WriteFile(filepath.Join(root, "themes/style.css"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	hintedOnWrite(t, r, root, "marker") // every event before the marker's has been handled
	if slices.Contains(r.since(0), Hint{Path: "themes/style.css"}) {
		t.Fatal("themes is watched though it cannot be read")
	}
}

// A directory that becomes readable without an event the watcher sees (a parent's ACL, events lost) is
// tried again with backoff until it is watched; the directories below it are watched too.
func TestUnreadableDirectoryIsRetriedUntilWatched(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "themes/twentytwentysix/assets")
	u := newUnreadable(root, "themes")
	var c counts
	w, r := startWith(t, root, refusing(u.refuse), retrying(backoff.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}),
		ReportUnwatched(c.report))
	if got := w.Unwatched(); got != (Unwatched{Count: 1, First: "themes"}) {
		t.Fatalf("unwatched at start: %+v", got)
	}
	time.Sleep(200 * time.Millisecond) // several attempts fail
	u.allow("themes")
	eventually.True(t, 5*time.Second, "a new-directory hint for themes", func() bool {
		return r.has(func(h Hint) bool { return h == Hint{Path: "themes", NewDir: true} })
	})
	hintedOnWrite(t, r, root, "themes/twentytwentysix/assets/style.css")
	if got := w.Unwatched(); got != (Unwatched{}) || c.last() != 0 {
		t.Fatalf("unwatched once watched: %+v (reported %d)", got, c.last())
	}
}

// A search permission given to a parent makes the directories below it reachable: a mode change of any
// directory has the unwatched directories at and below it tried again.
func TestParentsModeChangeRetriesTheDirectoriesBelowIt(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "wp-content/plugins/akismet")
	u := newUnreadable(root, "wp-content/plugins")
	w, r := startWith(t, root, refusing(u.refuse), retrying(backoff.Policy{Initial: time.Hour, Max: time.Hour}))
	if got := w.Unwatched(); got != (Unwatched{Count: 1, First: "wp-content/plugins"}) {
		t.Fatalf("unwatched at start: %+v", got)
	}
	u.allow("wp-content/plugins")
	if err := os.Chmod(filepath.Join(root, "wp-content"), 0o711); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint for wp-content/plugins", func() bool {
		return r.has(func(h Hint) bool { return h == Hint{Path: "wp-content/plugins", NewDir: true} })
	})
	hintedOnWrite(t, r, root, "wp-content/plugins/akismet/akismet.php")
}

// A directory that goes before it could be watched leaves the count.
func TestUnwatchedDirectoryRemovedIsForgotten(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "cache-a", "cache-b")
	u := newUnreadable(root, "cache-a", "cache-b")
	w, _ := startWith(t, root, refusing(u.refuse), retrying(backoff.Policy{Initial: time.Hour, Max: time.Hour}))
	if err := os.Remove(filepath.Join(root, "cache-a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "cache-b"), filepath.Join(t.TempDir(), "elsewhere")); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "no unwatched directory", func() bool { return w.Unwatched() == Unwatched{} })
}
