//go:build interop

package interop

import (
	"context"
	"fmt"
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
	checkTree(t, dir, files)
}

// TestGzipEncodedObjects: an object gcloud stored gzip-compressed (`gcloud storage cp -Z`: Content-Encoding
// gzip) is restored as the file that was compressed, with its mtime, and is not uploaded back.
func TestGzipEncodedObjects(t *testing.T) {
	t.Parallel()
	e := need(t)
	r := e.newRemote(t)
	src := t.TempDir()
	files := map[string]file{"app.js": {[]byte(fmt.Sprintf("console.log(%q);\n", harness.RandomHex(2000))), at("2022-06-06T06:06:06Z")}}
	writeTree(t, src, files)
	e.gcloud(t, "storage", "cp", "--gzip-local-all", "--preserve-posix", src+"/app.js", r.gs()+"/app.js")
	before := r.attrs(t, "app.js")
	if before.ContentEncoding != "gzip" {
		t.Fatalf("gcloud stored Content-Encoding %q, want gzip (the case needs it)", before.ContentEncoding)
	}
	dir, state := t.TempDir(), t.TempDir()
	e.once(t, r, dir, state)
	checkTree(t, dir, files)
	e.once(t, r, dir, state)
	if a := r.attrs(t, "app.js"); a.Generation != before.Generation || a.ContentEncoding != "gzip" {
		t.Errorf("the object was rewritten: generation %d → %d, Content-Encoding %q", before.Generation, a.Generation, a.ContentEncoding)
	}
}
