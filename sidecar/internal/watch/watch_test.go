package watch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/filter"
)

type recorder struct {
	mu    sync.Mutex
	hints []Hint
}

func (r *recorder) notify(h Hint) { r.mu.Lock(); r.hints = append(r.hints, h); r.mu.Unlock() }
func (r *recorder) has(pred func(Hint) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.hints {
		if pred(h) {
			return true
		}
	}
	return false
}

func start(t *testing.T, root string, excludes ...string) *recorder {
	t.Helper()
	f, err := filter.New(excludes)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(root, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	done := make(chan struct{})
	go func() { w.Run(ctx, r.notify); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestHintsForFilesInNewDirectories(t *testing.T) {
	root := t.TempDir()
	r := start(t, root, "cache/**")
	if err := os.MkdirAll(filepath.Join(root, "2026", "11"), 0o755); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint naming it", func() bool { return r.has(func(h Hint) bool { return h.NewDir && h.Path == "2026" }) })
	// The nested directory is watched now: a file written in it is reported.
	eventually.True(t, 5*time.Second, "nested dir watched", func() bool {
		_ = os.WriteFile(filepath.Join(root, "2026", "11", "a.jpg"), []byte("x"), 0o644)
		return r.has(func(h Hint) bool { return h.Path == "2026/11/a.jpg" })
	})
}

func TestExcludedPathsAreSilent(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cache", ".filesync/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, root, "cache/**")
	_ = os.WriteFile(filepath.Join(root, "cache", "x"), []byte("x"), 0o644)
	_ = os.WriteFile(filepath.Join(root, ".filesync", "tmp", "abc"), []byte("x"), 0o644)
	_ = os.WriteFile(filepath.Join(root, "visible"), []byte("x"), 0o644)
	eventually.True(t, 5*time.Second, "visible file", func() bool { return r.has(func(h Hint) bool { return h.Path == "visible" }) })
	if r.has(func(h Hint) bool { return h.Path == "cache/x" || strings.HasPrefix(h.Path, ".filesync") }) {
		t.Fatalf("excluded or internal path reported: %+v", r.hints)
	}
}

// TestNoGoroutineLeak: stopping the watcher releases its goroutines (model: rclone TestMarchNoGoroutineLeak),
// also while a directory it cannot watch is being tried again.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 6 {
		root := t.TempDir()
		mkdirs(t, root, "plugins")
		var opts []Option
		var tries atomic.Int32
		if i%2 == 1 {
			u := newUnreadable(root, "plugins")
			opts = append(opts, refusing(func(dir string) error { tries.Add(1); return u.refuse(dir) }),
				retrying(backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}))
		}
		f, _ := filter.New(nil)
		w, err := New(root, f, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if want := i % 2; w.Unwatched().Count != want {
			t.Fatalf("unwatched: %+v, want %d", w.Unwatched(), want)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx, func(Hint) {}); close(done) }()
		if i%2 == 1 {
			eventually.True(t, 5*time.Second, "a few attempts at plugins", func() bool { return tries.Load() > 5 })
		}
		cancel()
		<-done
	}
	eventually.True(t, 5*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// overflowing starts a watcher on root whose inotify queue holds 8 events (the limit is read when the
// instance is created, so the sysctl is restored at once) and whose consumer is held until release is
// called: what is written meanwhile overflows the queue.
func overflowing(t *testing.T, root string) (r *recorder, release func()) {
	t.Helper()
	const sysctl = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(sysctl)
	if err != nil {
		t.Skipf("no %s: %v", sysctl, err)
	}
	if err := os.WriteFile(sysctl, []byte("8"), 0o644); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("root cannot lower %s: %v", sysctl, err)
		}
		t.Skipf("needs root to lower %s: %v", sysctl, err)
	}
	f, _ := filter.New(nil)
	w, err := New(root, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = os.WriteFile(sysctl, old, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	r = &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx, func(h Hint) { <-gate; r.notify(h) })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r, func() { close(gate) }
}

// TestOverflowAsksForRescan: when the kernel's event queue overflows (events were lost), the watcher asks
// for a full rescan.
func TestOverflowAsksForRescan(t *testing.T) {
	root := t.TempDir()
	r, release := overflowing(t, root)
	for i := range 100 {
		_ = os.WriteFile(filepath.Join(root, fmt.Sprintf("f%03d", i)), []byte("x"), 0o644)
	}
	release()
	eventually.True(t, 5*time.Second, "a rescan hint after the overflow", func() bool { return r.has(func(h Hint) bool { return h.Overflow }) })
}

// TestDirectoryCreatedDuringAnOverflowIsWatched: a directory whose Create event was lost in an overflow is
// watched all the same (the watcher walks the tree again before it asks for the rescan), so a file written
// in it afterwards is hinted.
func TestDirectoryCreatedDuringAnOverflowIsWatched(t *testing.T) {
	root := t.TempDir()
	r, release := overflowing(t, root)
	for i := range 100 {
		_ = os.WriteFile(filepath.Join(root, fmt.Sprintf("f%03d", i)), []byte("x"), 0o644)
	}
	mkdirs(t, root, "uploads/2026/11")
	release()
	eventually.True(t, 5*time.Second, "a rescan hint after the overflow", func() bool { return r.has(func(h Hint) bool { return h.Overflow }) })
	if r.has(func(h Hint) bool { return h.Path == "uploads" }) {
		t.Skip("the directory's Create event was not lost")
	}
	hintedOnWrite(t, r, root, "uploads/2026/11/a.jpg")
}

// B1/B10: a directory the sidecar cannot read (lost+found at a volume's root, for a non-root sidecar) does
// not stop the watcher from starting; a new directory is not reported as an overflow.
func TestUnreadableDirectoryIsLeftOut(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	root := t.TempDir()
	lf := filepath.Join(root, "lost+found")
	if err := os.Mkdir(lf, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(lf, 0o755) })
	start(t, root)
}

// Issue 21 with real permissions, no seam: a directory created unreadable (mode 0) is watched once its
// mode lets the sidecar read it. Root reads every directory, so this runs only as another user (make
// test runs as root; run the package's test binary with setpriv --reuid=33 to see it).
func TestUnreadableDirectoryIsWatchedOnceReadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	root := t.TempDir()
	w, r := startWith(t, root, retrying(backoff.Policy{Initial: time.Hour, Max: time.Hour}))
	plugins := filepath.Join(root, "plugins")
	if err := os.Mkdir(plugins, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(plugins, 0o755) })
	eventually.True(t, 5*time.Second, "plugins unwatched", func() bool { return w.Unwatched() == Unwatched{1, "plugins"} })
	n := r.len()
	if err := os.Chmod(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "a new-directory hint for plugins once readable", func() bool {
		return slices.Contains(r.since(n), Hint{Path: "plugins", NewDir: true})
	})
	hintedOnWrite(t, r, root, "plugins/hello.php")
	if got := w.Unwatched(); got != (Unwatched{}) {
		t.Fatalf("unwatched: %+v", got)
	}
}
