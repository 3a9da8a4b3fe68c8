//go:build interop

package interop

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// TestFolderPlaceholders: the zero-byte "folder/" objects that the Cloud Console's "Create folder" and
// `rclone mkdir --gcs-directory-markers` make are folders, not files with unsafe names: a replica restores
// the files beside and under them, warns about none of them, counts none as skipped, and deletes none.
func TestFolderPlaceholders(t *testing.T) {
	t.Parallel()
	e := need(t)
	r := e.newRemote(t)
	ctx := context.Background()
	e.rclone(t, "mkdir", "--gcs-directory-markers", r.rclone()+"/empty")
	for _, name := range []string{"photos/", "photos/2026/"} { // as the Console makes them
		if err := e.gcs.UploadWith(ctx, r.bucket, harness.Attrs{Name: r.object(name)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	files := map[string]file{"photos/2026/a.jpg": {harness.RandomBytes(500), at("2026-01-01T00:00:00Z")}}
	writeTree(t, src, files)
	e.rclone(t, "copy", src, r.rclone())
	placeholders := []string{"empty/", "photos/", "photos/2026/"}
	for _, p := range placeholders {
		if !r.exists(t, p) {
			t.Fatalf("the case needs the placeholder %s", p)
		}
	}

	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	rep := e.start(t, r, "replica", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	if !waitFor(func() bool { return !mtimeOf(dir, "photos/2026/a.jpg").IsZero() && ready(port) }) {
		t.Fatalf("photos/2026/a.jpg not restored, or the replica not ready, within %s", deadline)
	}
	checkTree(t, "filesync's restore", dir, files)
	m, err := scrape(port)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Sum("filesync_skipped_unsafe_total"); n != 0 {
		t.Errorf("filesync_skipped_unsafe_total = %v, want 0: placeholders counted as unsafe names", n)
	}
	if n := m.Sum("filesync_skipped_paths_total"); n != 0 {
		t.Errorf("filesync_skipped_paths_total = %v, want 0: %v", n, m.ByLabel("filesync_skipped_paths_total", "reason"))
	}
	log, err := os.ReadFile(rep.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings(string(log)) {
		for _, p := range placeholders {
			if strings.Contains(w, p) {
				t.Errorf("warned about the placeholder %s: %s", p, w)
				break
			}
		}
	}
	for _, p := range placeholders {
		if !r.exists(t, p) {
			t.Errorf("placeholder %s was deleted", p)
		}
	}
}

// ready reports whether the replica on port answers /readyz 200.
func ready(port int) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrape reads the replica's /metrics.
func scrape(port int) (harness.Metrics, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return harness.Metrics{}, err
	}
	defer resp.Body.Close()
	return harness.ParseMetrics(resp.Body)
}
