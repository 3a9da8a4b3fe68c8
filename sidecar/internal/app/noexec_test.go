package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestNoExecKeepsCodeOutOfUploads: with --no-exec uploads/**, a script in the bucket under uploads/ is
// never downloaded and one written locally there never uploaded, in any spelling; the images beside them,
// and the plugins' PHP (outside the globs), sync as ever.
func TestNoExecKeepsCodeOutOfUploads(t *testing.T) {
	srv := newServer(t)
	for _, name := range []string{"uploads/a.php", "uploads/b.PHP", "uploads/c.pHp7", "uploads/d.php.jpg", "uploads/.htaccess",
		"uploads/.user.ini", "uploads/e.phar", "uploads/f.phtml", "uploads/ok.jpg", "plugins/p/p.php"} {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "p/" + name},
			Content: []byte("<?php system($_GET['c']);")})
	}
	dir := t.TempDir()
	for _, name := range []string{"uploads/2026/shell.php", "uploads/2026/x.php.", "uploads/2026/local.jpg", "plugins/q/q.php"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--once", "--settle", "0s", "--no-exec", "uploads/**")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--once: %v\n%s", err, stderr)
	}
	var local []string
	_ = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			local = append(local, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(local)
	want := []string{"plugins/p/p.php", "plugins/q/q.php", "uploads/2026/local.jpg", "uploads/2026/shell.php", "uploads/2026/x.php.", "uploads/ok.jpg"}
	if !slices.Equal(local, want) {
		t.Errorf("local files %v, want %v", local, want)
	}
	res, err := srv.ListObjectsWithOptionsPaginated("media", fakestorage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var remote []string
	for _, o := range res.Objects {
		remote = append(remote, o.Name)
	}
	for _, name := range []string{"p/uploads/2026/shell.php", "p/uploads/2026/x.php."} {
		if slices.Contains(remote, name) {
			t.Errorf("%s was uploaded", name)
		}
	}
	for _, name := range []string{"p/uploads/2026/local.jpg", "p/plugins/q/q.php"} {
		if !slices.Contains(remote, name) {
			t.Errorf("%s was not uploaded", name)
		}
	}
}
