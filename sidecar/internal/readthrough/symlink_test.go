package readthrough

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// symlinked lays out a directory a compromised app could leave behind, with --exclude '*.log' as well:
// secrets outside the include globs, and symlinks under uploads/ to them: to a file, to a directory, at a
// middle segment, to an excluded file, and to a file that is itself served.
func symlinked(t *testing.T, s *site) {
	t.Helper()
	s.write("secret-config.php", "define('DB_PASSWORD', 'hunter2');", mtime)
	s.write("wp-config.php", "define('DB_PASSWORD', 'hunter2');", mtime)
	s.write("private/p.txt", "private hunter2", mtime)
	s.write("private/deep/p.jpg", "private hunter2", mtime)
	s.write("uploads/debug.log", "excluded hunter2", mtime)
	s.write("uploads/real.jpg", "real bytes", mtime)
	for link, target := range map[string]string{
		"uploads/link.jpg":  "../secret-config.php", // a file symlink
		"uploads/cfg.jpg":   "../wp-config.php",
		"uploads/pdir":      "../private", // a directory symlink: uploads/pdir/p.txt
		"uploads/mid":       "..",         // a middle segment: uploads/mid/private/deep/p.jpg
		"uploads/log.jpg":   "debug.log",  // to an excluded file
		"uploads/alias.jpg": "real.jpg",   // to a file that is served under its own name
	} {
		if err := os.Symlink(target, filepath.Join(s.root, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
}

// symlinkPaths are the requests that reach a file through a symlink.
var symlinkPaths = []string{"/uploads/link.jpg", "/uploads/cfg.jpg", "/uploads/pdir/p.txt", "/uploads/mid/private/deep/p.jpg",
	"/uploads/mid/private/p.txt", "/uploads/log.jpg", "/uploads/alias.jpg"}

// TestReadThroughFollowsNoSymlink: with --read-through-include uploads/** and --exclude *.log, no request
// reaches a file through a symlink under --dir (os.Root only refuses the ones leaving it): a symlink to a
// file, to a directory, at a middle segment, to an excluded file or to a served one is 404, and the bucket
// is not asked either (a download could not be put there).
func TestReadThroughFollowsNoSymlink(t *testing.T) {
	s := newSite(t, Options{})
	s.h.opt.Exclude = globs(t, "*.log")
	symlinked(t, s)
	for _, p := range symlinkPaths {
		r := s.get(p)
		if r.StatusCode != http.StatusNotFound || strings.Contains(r.text, "hunter2") || strings.Contains(r.text, "real bytes") {
			t.Errorf("GET %s through a symlink: %d %q, want 404", p, r.StatusCode, r.text)
		}
	}
	wantStatus(t, s.get("/uploads/real.jpg"), http.StatusOK)
	if n := s.bucket.calls.Load(); n != 0 {
		t.Errorf("paths through symlinks were looked up in the bucket %d times", n)
	}
}

// TestPeerListenerFollowsNoSymlink: the same through the peer listener, on the pod IP: with the secret,
// uploads/cfg.jpg -> ../wp-config.php is not the database password, nor any other path through a
// symlink.
func TestPeerListenerFollowsNoSymlink(t *testing.T) {
	s := newSite(t, Options{})
	s.h.opt.Exclude = globs(t, "*.log")
	symlinked(t, s)
	peer := s.h.PeerHandler("s3cret")
	for _, p := range symlinkPaths {
		r := do(peer, http.MethodGet, p, "Authorization", "Bearer s3cret")
		if r.StatusCode != http.StatusNotFound || strings.Contains(r.text, "hunter2") || strings.Contains(r.text, "real bytes") {
			t.Errorf("peer GET %s through a symlink: %d %q, want 404", p, r.StatusCode, r.text)
		}
	}
	wantStatus(t, do(peer, http.MethodGet, "/uploads/real.jpg", "Authorization", "Bearer s3cret"), http.StatusOK)
}
