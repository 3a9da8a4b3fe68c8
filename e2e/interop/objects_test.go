//go:build interop

package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// contentTypes are the types gcloud storage gives the extensions a website serves from a bucket.
var contentTypes = map[string]string{
	"style.css":    "text/css",
	"app.js":       "text/javascript",
	"data.json":    "application/json",
	"logo.svg":     "image/svg+xml",
	"font.woff2":   "font/woff2",
	"photo.jpg":    "image/jpeg",
	"report.pdf":   "application/pdf",
	"page.html":    "text/html",
	"notes.txt":    "text/plain",
	"clip.webp":    "image/webp",
	"archive.json": "application/json",
}

// TestContentType: filesync stores a file's Content-Type by its extension, as gcloud does (a bucket
// served through a CDN or a load balancer answers with it). gcloud's own upload of the same files is
// checked as the reference.
func TestContentType(t *testing.T) {
	t.Parallel()
	e := need(t)
	files := map[string]file{}
	for name := range contentTypes {
		files[name] = file{[]byte("content of " + name + "\n"), at("2021-01-01T00:00:00Z")}
	}
	for _, c := range []struct {
		name   string
		upload func(t *testing.T, r remote, dir string)
	}{
		{"gcloud→bucket (reference)", func(t *testing.T, r remote, dir string) {
			e.gcloud(t, "storage", "rsync", "--recursive", dir, r.gs())
		}},
		{"filesync→bucket", func(t *testing.T, r remote, dir string) { e.once(t, r, dir, "") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.newRemote(t)
			dir := t.TempDir()
			writeTree(t, dir, files)
			c.upload(t, r, dir)
			for name, want := range contentTypes {
				if got := r.attrs(t, name).ContentType; got != want {
					t.Errorf("%s: Content-Type %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestOperatorMetadataSurvivesReupload: Cache-Control and custom metadata an operator set on an object
// (at upload with gcloud, or later with `gcloud storage objects update`) are still there after filesync
// uploads a changed version of the file.
func TestOperatorMetadataSurvivesReupload(t *testing.T) {
	t.Parallel()
	e := need(t)
	const cacheControl = "public, max-age=86400"
	for _, c := range []struct {
		name string
		set  func(t *testing.T, r remote, dir string)
	}{
		{"set by gcloud storage cp, then filesync re-uploads", func(t *testing.T, r remote, dir string) {
			src := t.TempDir()
			writeTree(t, src, map[string]file{"style.css": {[]byte("body{color:red}\n"), at("2022-02-02T02:02:02Z")}})
			e.gcloud(t, "storage", "cp", "--preserve-posix", "--cache-control="+cacheControl,
				"--custom-metadata=owner=web-team", src+"/style.css", r.gs()+"/style.css")
		}},
		{"set by gcloud storage objects update on filesync's object, then filesync re-uploads", func(t *testing.T, r remote, dir string) {
			src := t.TempDir()
			writeTree(t, src, map[string]file{"style.css": {[]byte("body{color:red}\n"), at("2022-02-02T02:02:02Z")}})
			e.once(t, r, src, "")
			e.gcloud(t, "storage", "objects", "update", r.gs()+"/style.css", "--cache-control="+cacheControl,
				"--update-custom-metadata=owner=web-team")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.newRemote(t)
			dir, state := t.TempDir(), t.TempDir()
			c.set(t, r, dir)
			e.once(t, r, dir, state) // the replica restores the file and records the base
			before := r.attrs(t, "style.css")
			writeTree(t, dir, map[string]file{"style.css": {[]byte("body{color:blue}\n"), at("2023-03-03T03:03:03Z")}})
			e.once(t, r, dir, state) // and uploads the change over that generation
			a := r.attrs(t, "style.css")
			if a.Generation == before.Generation {
				t.Fatalf("the changed file was not uploaded (generation %d)", a.Generation)
			}
			if b, err := e.gcs.Read(context.Background(), r.bucket, r.object("style.css")); err != nil || string(b) != "body{color:blue}\n" {
				t.Fatalf("object holds %q (%v), want the changed file", b, err)
			}
			if a.CacheControl != cacheControl {
				t.Errorf("Cache-Control %q after the re-upload, want %q (before: %q)", a.CacheControl, cacheControl, before.CacheControl)
			}
			if a.Metadata["owner"] != "web-team" {
				t.Errorf("custom metadata %v after the re-upload, want owner=web-team kept (before: %v)", a.Metadata, before.Metadata)
			}
		})
	}
}

// TestRcloneMtimeOnlyObjects: objects carrying only rclone's own "mtime" key (RFC 3339, what rclone wrote
// before it also wrote goog-reserved-file-mtime) are restored with that mtime.
func TestRcloneMtimeOnlyObjects(t *testing.T) {
	t.Parallel()
	e := need(t)
	r := e.newRemote(t)
	files := map[string]file{
		"old-rclone.jpg": {harness.RandomBytes(1000), at("2019-03-04T05:06:07Z")},
		"nanos.txt":      {[]byte("fractional seconds\n"), at("2018-08-08T08:08:08Z")},
	}
	stored := map[string]string{"old-rclone.jpg": "2019-03-04T05:06:07Z", "nanos.txt": "2018-08-08T08:08:08.123456789Z"}
	for name, f := range files {
		a := harness.Attrs{Name: r.object(name), Metadata: map[string]string{"mtime": stored[name]}}
		if err := e.gcs.UploadWith(context.Background(), r.bucket, a, f.data); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	e.once(t, r, dir, "")
	checkTree(t, "filesync's restore", dir, files)
}

// TestGzipEncodedObjects: an object gcloud stored gzip-compressed (`gcloud storage cp --gzip-local-all`:
// Content-Encoding gzip) is not synced (the client decompresses it on read, so its bytes cannot be checked
// against the CRC32C: docs/design.md, "Per-path problems"): a new replica writes no file for it and warns
// once, and nobody uploads over it; and when such an object overwrites a file the replicas hold, the stale
// copy leaves every running replica, as a new one has none.
func TestGzipEncodedObjects(t *testing.T) {
	t.Parallel()
	e := need(t)
	gz := func(t *testing.T, r remote, data []byte) harness.Attrs {
		t.Helper()
		src := t.TempDir()
		writeTree(t, src, map[string]file{"app.js": {data, at("2022-06-06T06:06:06Z")}})
		e.gcloud(t, "storage", "cp", "--gzip-local-all", "--preserve-posix", src+"/app.js", r.gs()+"/app.js")
		a := r.attrs(t, "app.js")
		if a.ContentEncoding != "gzip" {
			t.Fatalf("gcloud stored Content-Encoding %q, want gzip (the case needs it)", a.ContentEncoding)
		}
		return a
	}
	js := func() []byte { return []byte(fmt.Sprintf("console.log(%q);\n", harness.RandomHex(2000))) }
	t.Run("gcloud cp -Z → a new replica", func(t *testing.T) {
		r := e.newRemote(t)
		before := gz(t, r, js())
		src := t.TempDir()
		plain := map[string]file{"plain.css": {[]byte("body{}\n"), at("2022-06-06T06:06:06Z")}}
		writeTree(t, src, plain)
		e.rclone(t, "copy", src, r.rclone())
		dir, state := t.TempDir(), t.TempDir()
		log := e.once(t, r, dir, state)
		checkTree(t, "filesync's restore", dir, plain)
		named := 0
		for _, w := range warnings(log) {
			if strings.Contains(w, "app.js") {
				named++
			}
		}
		if named != 1 {
			t.Errorf("%d warnings name app.js, want 1:\n%s", named, strings.Join(warnings(log), "\n"))
		}
		e.once(t, r, dir, state) // a restarted replica with its base: still nothing to upload
		if a := r.attrs(t, "app.js"); a.Generation != before.Generation {
			t.Errorf("the gzip-encoded object was overwritten: generation %d → %d", before.Generation, a.Generation)
		}
	})
	t.Run("gcloud cp -Z over a synced file → every running replica", func(t *testing.T) {
		r := e.newRemote(t)
		src := t.TempDir()
		// Four other files, so that one file going is no mass delete (--max-delete, 50%).
		writeTree(t, src, map[string]file{"app.js": {js(), at("2021-01-01T00:00:00Z")},
			"a.css": {[]byte("a{}\n"), at("2021-01-01T00:00:00Z")}, "b.css": {[]byte("b{}\n"), at("2021-01-01T00:00:00Z")},
			"c.css": {[]byte("c{}\n"), at("2021-01-01T00:00:00Z")}, "d.css": {[]byte("d{}\n"), at("2021-01-01T00:00:00Z")}})
		e.rclone(t, "copy", src, r.rclone())
		dirs := []string{t.TempDir(), t.TempDir()}
		for i, d := range dirs {
			e.start(t, r, fmt.Sprintf("replica-%d", i), d)
		}
		held := func(want bool) func() bool {
			return func() bool {
				for _, d := range dirs {
					if mtimeOf(d, "app.js").IsZero() == want {
						return false
					}
				}
				return true
			}
		}
		if !waitFor(held(true)) {
			t.Fatalf("app.js not restored on both replicas within %s", deadline)
		}
		after := gz(t, r, js())
		if !waitFor(held(false)) {
			for i, d := range dirs {
				if !mtimeOf(d, "app.js").IsZero() {
					t.Errorf("replica-%d still holds the overwritten app.js %s after the gzip-encoded object replaced it", i, deadline)
				}
			}
		}
		if a := r.attrs(t, "app.js"); a.Generation != after.Generation || a.ContentEncoding != "gzip" {
			t.Errorf("the gzip-encoded object was overwritten: generation %d → %d, Content-Encoding %q", after.Generation, a.Generation, a.ContentEncoding)
		}
	})
}
