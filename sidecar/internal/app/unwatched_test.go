package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/watch"
)

type fixedUnwatched watch.Unwatched

func (f fixedUnwatched) Unwatched() watch.Unwatched { return watch.Unwatched(f) }

// Issue 21: /readyz says which directories the watcher cannot watch (readiness does not wait for them).
func TestReadyzWarningNamesUnwatchedDirectories(t *testing.T) {
	for _, c := range []struct {
		u    watch.Unwatched
		want string
	}{
		{watch.Unwatched{}, ""},
		{watch.Unwatched{Count: 1, First: "themes"}, "warning: 1 directory not watched (themes): the periodic rescan covers it"},
		{watch.Unwatched{Count: 2, First: "plugins"}, "warning: 2 directories not watched (first: plugins): the periodic rescan covers them"},
	} {
		if got := (&probes{w: fixedUnwatched(c.u)}).Warning(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.u, got, c.want)
		}
	}
}

// Issue 21 with real permissions: a directory the sidecar cannot read shows in the gauge and in /readyz's
// body (still 200) until its mode lets the sidecar read it. Root reads every directory, so this runs only
// as another user (make test runs as root; run the package's test binary with setpriv --reuid=33).
func TestUnreadableDirectoryShowsInGaugeAndReadyz(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	srv := newServer(t)
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(plugins, 0o755) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan string, 1)
	env, _, _ := envFor(srv, "--dir", dir, "--remote", "gs://media", "--listen", "127.0.0.1:0", "--settle", "0s")
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	addr := <-listening
	waitReady(t, addr)
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const warning = "ready\nwarning: 1 directory not watched (plugins): the periodic rescan covers it\n"
	if body := get("/readyz"); body != warning {
		t.Fatalf("/readyz body %q, want %q", body, warning)
	}
	if m := get("/metrics"); !containsLine(m, "filesync_watch_unwatched_directories 1") {
		t.Fatalf("/metrics:\n%s", m)
	}
	if err := os.Chmod(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "plugins watched", func() bool {
		return get("/readyz") == "ready\n" && containsLine(get("/metrics"), "filesync_watch_unwatched_directories 0")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func containsLine(text, line string) bool { return slices.Contains(strings.Split(text, "\n"), line) }
