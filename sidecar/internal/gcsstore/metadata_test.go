package gcsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

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

func TestReuploadKeepsWhatTheOperatorSet(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	counts := map[string]int{}
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, func(op string) { counts[op]++ })
	put := func(name, body string, mtime time.Time, gen int64) Object {
		t.Helper()
		o, err := s.Upload(ctx, name, Content{R: strings.NewReader(body), Size: int64(len(body)), CRC32C: crc([]byte(body)), ModTime: mtime}, gen)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	set := func(name string, u storage.ObjectAttrsToUpdate) {
		t.Helper()
		if _, err := srv.Client().Bucket("bkt").Object("p/"+name).Update(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2 := time.Unix(1_700_000_000, 0), time.Unix(1_700_000_100, 5)
	custom := put("report.pdf", "v1", t1, 0)
	set("report.pdf", storage.ObjectAttrsToUpdate{CacheControl: "public, max-age=86400",
		ContentDisposition: `attachment; filename="report.pdf"`, ContentLanguage: "de", ContentType: "application/x-report",
		Metadata: map[string]string{"owner": "ops", MtimeKey: "1", "mtime": "1970-01-01T00:00:01Z"}})
	sniffed := put("style.css", "v1", t1, 0)
	set("style.css", storage.ObjectAttrsToUpdate{ContentType: "text/plain; charset=utf-8", CacheControl: "no-cache"})
	plain := put("plain.png", "v1", t1, 0)
	before := counts[OpGet]
	put("report.pdf", "v2, changed", t2, custom.Generation)
	put("style.css", "v2, changed", t2, sniffed.Generation)
	put("plain.png", "v2, changed", t2, plain.Generation)
	if got := counts[OpGet] - before; got != 3 {
		t.Errorf("%d objects.get for 3 re-uploads, want 3", got)
	}
	a, err := srv.Client().Bucket("bkt").Object("p/report.pdf").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.CacheControl != "public, max-age=86400" || a.ContentDisposition != `attachment; filename="report.pdf"` ||
		a.ContentLanguage != "de" || a.ContentType != "application/x-report" {
		t.Errorf("report.pdf lost what the operator set: Cache-Control %q, Content-Disposition %q, Content-Language %q, Content-Type %q",
			a.CacheControl, a.ContentDisposition, a.ContentLanguage, a.ContentType)
	}
	want := map[string]string{"owner": "ops", MtimeKey: "1700000100", "mtime": "2023-11-14T22:15:00.000000005Z"}
	if fmt.Sprint(a.Metadata) != fmt.Sprint(want) {
		t.Errorf("report.pdf metadata %v, want %v", a.Metadata, want)
	}
	a, err = srv.Client().Bucket("bkt").Object("p/style.css").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentType != "text/css" || a.CacheControl != "no-cache" {
		t.Errorf("style.css: Content-Type %q (want text/css: a sniffed type is not kept), Cache-Control %q", a.ContentType, a.CacheControl)
	}
	a, err = srv.Client().Bucket("bkt").Object("p/plain.png").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentType != "image/png" || a.CacheControl != "" || len(a.Metadata) != 2 {
		t.Errorf("plain.png: Content-Type %q, Cache-Control %q, metadata %v", a.ContentType, a.CacheControl, a.Metadata)
	}
}

// TestReuploadIsFencedByMetageneration: what an operator changes on the object between the upload's get
// and its write is not overwritten: the write carries the metageneration it read as ifMetagenerationMatch
// (GCS answers 412 and the path is re-planned; fake-gcs-server v1.56.1 ignores the parameter, so the test
// checks the request). An upload over a generation that is not live any more stops after the get, with
// no write.
func TestReuploadIsFencedByMetageneration(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	var mu sync.Mutex
	var inserts []url.Values
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/upload/") {
			mu.Lock()
			inserts = append(inserts, r.URL.Query())
			mu.Unlock()
		}
		return srv.HTTPClient().Transport.RoundTrip(r)
	})
	client, err := NewClient(ctx, option.WithHTTPClient(&http.Client{Transport: rt}), option.WithEndpoint("http://fake.gcs/storage/v1/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s := New(client, gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	up := func(body string, gen int64) (Object, error) {
		return s.Upload(ctx, "a.css", Content{R: strings.NewReader(body), Size: int64(len(body)), CRC32C: crc([]byte(body)),
			ModTime: time.Unix(1_700_000_000, 0)}, gen)
	}
	o1, err := up("v1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Bucket("bkt").Object("p/a.css").Update(ctx, storage.ObjectAttrsToUpdate{CacheControl: "no-store"}); err != nil {
		t.Fatal(err)
	}
	a, err := client.Bucket("bkt").Object("p/a.css").Attrs(ctx) // the metageneration the server tells
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up("v2", o1.Generation); err != nil {
		t.Fatal(err)
	}
	if len(inserts) != 2 || inserts[1].Get("ifGenerationMatch") != fmt.Sprint(o1.Generation) ||
		inserts[1].Get("ifMetagenerationMatch") != fmt.Sprint(a.Metageneration) {
		t.Fatalf("inserts %v: want the second with ifGenerationMatch=%d ifMetagenerationMatch=%d", inserts, o1.Generation, a.Metageneration)
	}
	if _, err := up("v3", o1.Generation); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("upload over a replaced generation: %v, want ErrPrecondition", err)
	}
	if len(inserts) != 2 {
		t.Errorf("an upload over a generation that is not live was sent: %v", inserts[2:])
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
