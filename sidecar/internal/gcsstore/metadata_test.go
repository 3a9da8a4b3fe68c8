package gcsstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/gsurl"
)

// TestUploadsStoreTheContentTypeOfTheExtension: an upload stores the Content-Type gcloud storage and gsutil
// store for the file's extension (case-insensitive), never one sniffed from the bytes (text for CSS and
// JavaScript, octet-stream for fonts), and application/octet-stream for an unknown one; checked on what
// fake-gcs-server stored.
func TestUploadsStoreTheContentTypeOfTheExtension(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	want := map[string]string{
		"a.css": "text/css", "a.js": "text/javascript", "a.mjs": "text/javascript", "a.json": "application/json",
		"a.map": "application/json", "a.svg": "image/svg+xml", "a.woff": "font/woff", "a.woff2": "font/woff2",
		"a.ttf": "font/ttf", "a.otf": "font/otf", "a.eot": "application/vnd.ms-fontobject",
		"a.png": "image/png", "a.jpg": "image/jpeg", "a.jpeg": "image/jpeg", "a.gif": "image/gif",
		"a.webp": "image/webp", "a.avif": "image/avif", "a.ico": "image/vnd.microsoft.icon", "a.bmp": "image/bmp",
		"a.tif": "image/tiff", "a.tiff": "image/tiff", "a.heic": "image/heic",
		"a.mp4": "video/mp4", "a.m4v": "video/mp4", "a.webm": "video/webm", "a.ogv": "video/ogg",
		"a.mov": "video/quicktime", "a.mp3": "audio/mpeg", "a.m4a": "audio/mp4", "a.ogg": "audio/ogg",
		"a.wav": "audio/x-wav", "a.flac": "audio/flac",
		"a.pdf": "application/pdf", "a.zip": "application/zip", "a.txt": "text/plain", "a.xml": "application/xml",
		"a.html": "text/html", "a.htm": "text/html", "a.csv": "text/csv", "a.vtt": "text/vtt",
		"a.doc": "application/msword", "a.xls": "application/vnd.ms-excel", "a.ppt": "application/vnd.ms-powerpoint",
		"a.docx":    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"a.xlsx":    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"a.pptx":    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
		"a.odt":     "application/vnd.oasis.opendocument.text",
		"UPPER.CSS": "text/css", "Mixed.Woff2": "font/woff2", "dir.css/noext": "application/octet-stream",
		"a.unknownext": "application/octet-stream", "a.css.1700000000": "application/octet-stream",
	}
	body := []byte("body { color: red }\n") // sniffed as text/plain
	for name := range want {
		if _, err := s.Upload(ctx, name, Content{R: bytes.NewReader(body), Size: int64(len(body)), CRC32C: crc(body)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for name, ct := range want {
		o, err := srv.GetObject("bkt", "p/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if o.ContentType != ct {
			t.Errorf("%s: stored Content-Type %q, want %q", name, o.ContentType, ct)
		}
	}
}

// TestFolderPlaceholdersAreNotObjects: the Cloud Console's folder placeholders (zero-byte objects named
// "dir/") are neither listed nor make a folder: an object "a" beside a placeholder "a/" (or "a/b/") is a
// file, in a listing (sequential and split) and for IsFolder.
// TestUploadWritesRcloneMtime: besides goog-reserved-file-mtime (unix seconds) an upload writes rclone's
// mtime key (RFC 3339, nanoseconds, UTC), so rclone sees the file's exact mtime; both read back, to the
// nanosecond, before 1970 too.
// TestReuploadKeepsWhatTheOperatorSet: overwriting a known generation (a changed file) carries over the
// previous generation's Cache-Control, Content-Disposition, Content-Language, custom metadata and a
// Content-Type set by hand; the mtime keys are written afresh. A Content-Type that is the table's value
// or a sniffed default is not kept (the table's value for the name is stored). Each such upload costs one
// objects.get.

func TestUploadWritesRcloneMtime(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	for name, mtime := range map[string]time.Time{
		"a.jpg":   time.Date(2024, 2, 29, 12, 34, 56, 789_000_001, time.FixedZone("x", 3600)),
		"old.jpg": time.Date(1969, 12, 31, 23, 59, 59, 250_000_000, time.UTC),
	} {
		v := []byte(name)
		if _, err := s.Upload(ctx, name, Content{R: bytes.NewReader(v), Size: int64(len(v)), CRC32C: crc(v), ModTime: mtime}, 0); err != nil {
			t.Fatal(err)
		}
		raw, err := srv.GetObject("bkt", "p/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := raw.Metadata["mtime"], mtime.UTC().Format(time.RFC3339Nano); got != want {
			t.Errorf("%s: stored mtime %q, want %q", name, got, want)
		}
		if got, want := raw.Metadata[MtimeKey], fmt.Sprint(mtime.Unix()); got != want {
			t.Errorf("%s: stored %s %q, want %q", name, MtimeKey, got, want)
		}
	}
}
