package watch

import (
	"slices"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
)

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// TestBacklogBacksOffTo30s: a directory that keeps failing is tried again after 0.5 s, then 1 s, 2 s, …
// up to every 30 s (each delay jittered between half and all of it), never given up.
func TestBacklogBacksOffTo30s(t *testing.T) {
	b := newBacklog(backoff.Default)
	now := t0
	for n := 1; n <= 12; n++ {
		if first := b.failed("plugins", now); first != (n == 1) {
			t.Fatalf("attempt %d: first = %v", n, first)
		}
		next, ok := b.next()
		want := min(500*time.Millisecond<<(n-1), 30*time.Second)
		if d := next.Sub(now); !ok || d < want/2 || d > want {
			t.Fatalf("attempt %d: next try in %v, want in [%v, %v]", n, d, want/2, want)
		}
		if due := b.due(next.Add(-time.Nanosecond)); len(due) != 0 {
			t.Fatalf("attempt %d: due before its time: %v", n, due)
		}
		if due := b.due(next); !slices.Equal(due, []string{"plugins"}) {
			t.Fatalf("attempt %d: due at its time: %v", n, due)
		}
		now = next
	}
	if n := b.watched("plugins"); n != 12 {
		t.Fatalf("watched after %d failed attempts, want 12", n)
	}
	if _, ok := b.next(); ok || b.summary() != (Unwatched{}) {
		t.Fatal("backlog not empty once watched")
	}
}

func TestBacklog(t *testing.T) {
	policy := backoff.Policy{Initial: time.Second, Max: time.Second} // every delay in [0.5 s, 1 s]
	for _, c := range []struct {
		name   string
		failed []string // in order, all at t0
		do     func(*backlog)
		at     string
		wantAt []string
		want   Unwatched
	}{
		{name: "empty", want: Unwatched{}},
		{name: "first by name, parents first", failed: []string{"themes", "plugins/b", "plugins", "plugins-old"},
			at: "", wantAt: []string{"plugins", "plugins-old", "plugins/b", "themes"}, want: Unwatched{4, "plugins"}},
		{name: "at a directory: itself and below, not a sibling with its name as a prefix",
			failed: []string{"plugins", "plugins/b", "plugins-old"}, at: "plugins",
			wantAt: []string{"plugins", "plugins/b"}, want: Unwatched{3, "plugins"}},
		{name: "at a file: nothing", failed: []string{"plugins"}, at: "plugins.php", want: Unwatched{1, "plugins"}},
		{name: "gone takes the directories below", failed: []string{"a", "a/b", "a/b/c", "ab"},
			do: func(b *backlog) { b.gone("a") }, at: "", wantAt: []string{"ab"}, want: Unwatched{1, "ab"}},
		{name: "watched takes only itself", failed: []string{"a", "a/b"},
			do: func(b *backlog) { b.watched("a") }, at: "", wantAt: []string{"a/b"}, want: Unwatched{1, "a/b"}},
		{name: "a failure again is not another directory", failed: []string{"a", "a", "a"},
			at: "", wantAt: []string{"a"}, want: Unwatched{1, "a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBacklog(policy)
			for _, d := range c.failed {
				b.failed(d, t0)
			}
			if c.do != nil {
				c.do(b)
			}
			if got := b.at(c.at); !slices.Equal(got, c.wantAt) {
				t.Errorf("at(%q) = %v, want %v", c.at, got, c.wantAt)
			}
			if got := b.summary(); got != c.want {
				t.Errorf("summary = %+v, want %+v", got, c.want)
			}
			if got := b.due(t0.Add(time.Second)); !slices.Equal(got, b.at("")) {
				t.Errorf("due after the longest delay = %v, want all of %v", got, b.at(""))
			}
		})
	}
}
