package gcsstore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/filesync/filesync/sidecar/internal/gsurl"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// TestResourceIsWhatStatSays: the objects resource fake-gcs-server serves for an object (the JSON of
// objects.get, which is also a JSON_API_V1 notification's payload) reads as the Object Stat returns, for
// each way an object may carry its mtime.
func TestResourceIsWhatStatSays(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	for name, meta := range map[string]map[string]string{
		"gsutil.txt":  {MtimeKey: "1700000000"},
		"rclone.txt":  {RcloneMtimeKey: "2023-11-14T22:13:20.123456789Z", "owner": "ops"},
		"both.txt":    {MtimeKey: "1700000000", RcloneMtimeKey: "2023-11-14T22:13:20.5Z"},
		"before.txt":  {MtimeKey: "-86400"},
		"neither.txt": nil,
	} {
		w := srv.Client().Bucket("bkt").Object("p/" + name).NewWriter(ctx)
		w.Metadata, w.ContentEncoding = meta, "identity"
		if _, err := io.WriteString(w, "content of "+name); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want, err := s.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.HTTPClient().Get(srv.URL() + "/storage/v1/b/bkt/o/" + url.PathEscape("p/"+name))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", name, resp.StatusCode, body)
		}
		r, err := ParseResource(name, body)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, body)
		}
		if r.Bucket != "bkt" || r.Name != "p/"+name || r.Object.Name != name || !r.Object.Is(want.Object) ||
			!r.Object.ModTime.Equal(want.ModTime) || r.Object.ContentEncoding != want.ContentEncoding {
			t.Fatalf("%s: the resource reads as %+v, Stat says %+v\n%s", name, r, want, body)
		}
	}
}

// TestResourceAsGCSWritesIt: GCS writes the resource's 64-bit numbers as strings (fake-gcs-server the
// generation as a number: TestResourceIsWhatStatSays); a payload that lacks what the sync needs, or
// holds it unreadably, is an error, never an Object with zero values.
func TestResourceAsGCSWritesIt(t *testing.T) {
	// From the shape of a GCS OBJECT_FINALIZE payload: numbers as strings, crc32c in base64.
	gcs := `{"kind":"storage#object","id":"bkt/p/a.jpg/1700000000123456","name":"p/a.jpg","bucket":"bkt",
		"generation":"1700000000123456","metageneration":"1","contentType":"image/jpeg",
		"timeCreated":"2023-11-14T22:13:20.100Z","updated":"2023-11-14T22:13:20.100Z","size":"5",
		"md5Hash":"XUFAKrxLKna5cZ2REBfFkg==","crc32c":"mnG7TA==","metadata":{"goog-reserved-file-mtime":"1600000000"}}`
	r, err := ParseResource("a.jpg", []byte(gcs))
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot.Object{Generation: 1700000000123456, Size: 5, CRC32C: 0x9a71bb4c, ModTime: time.Unix(1600000000, 0)}
	if r.Bucket != "bkt" || r.Name != "p/a.jpg" || !r.Object.Is(want) || !r.Object.ModTime.Equal(want.ModTime) {
		t.Fatalf("read %+v, want %+v", r, want)
	}
	noMtime := strings.Replace(gcs, `"metadata":{"goog-reserved-file-mtime":"1600000000"}`, `"metadata":{}`, 1)
	if r, err := ParseResource("a.jpg", []byte(noMtime)); err != nil || !r.Object.ModTime.Equal(time.Date(2023, 11, 14, 22, 13, 20, 1e8, time.UTC)) {
		t.Fatalf("without mtime metadata: %+v, %v; want the update time", r, err)
	}
	for name, bad := range map[string]string{
		"no generation": strings.Replace(gcs, `"generation":"1700000000123456",`, "", 1),
		"generation 0":  strings.Replace(gcs, `"generation":"1700000000123456"`, `"generation":"0"`, 1),
		"no size":       strings.Replace(gcs, `"size":"5",`, "", 1),
		"bad size":      strings.Replace(gcs, `"size":"5"`, `"size":"five"`, 1),
		"no crc32c":     strings.Replace(gcs, `"crc32c":"mnG7TA==",`, "", 1),
		"bad crc32c":    strings.Replace(gcs, `"crc32c":"mnG7TA=="`, `"crc32c":"mnG7"`, 1),
		"bad updated":   strings.Replace(gcs, `"updated":"2023-11-14T22:13:20.100Z"`, `"updated":"yesterday"`, 1),
		"no bucket":     strings.Replace(gcs, `"bucket":"bkt",`, "", 1),
		"not JSON":      `{}` + "garbage",
		"empty":         ``,
	} {
		if r, err := ParseResource("a.jpg", []byte(bad)); err == nil {
			t.Errorf("%s: read as %+v, want an error", name, r)
		}
	}
}

// TestListSkipping: a split listing leaves the skipped folders out (only what the first page held of
// them is given), lists every other folder whole, and gives an object beside a skipped folder as a
// folder.
func TestListSkipping(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	put := func(name string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: "p/" + name}, Content: []byte(name)})
	}
	for i := range 1200 {
		put(fmt.Sprintf("media/m%04d.jpg", i))
	}
	for i := range 30 {
		put(fmt.Sprintf("plugins/p/f%02d.php", i))
		put(fmt.Sprintf("themes/t/f%02d.php", i))
	}
	put("media.bak") // sorts after media/... : beside no folder
	put("themes")    // an object beside the folder themes/
	got := map[string]bool{}
	folders := map[string]bool{}
	err := s.ListSkipping(ctx, 8, func(folder string) bool { return folder == "media" || folder == "themes" }, func(o Object) {
		if got[o.Name] {
			t.Errorf("%s given twice", o.Name)
		}
		got[o.Name], folders[o.Name] = true, o.Folder
	})
	if err != nil {
		t.Fatal(err)
	}
	media := 0
	for name := range got {
		if strings.HasPrefix(name, "media/") {
			media++
		}
	}
	for i := range 30 {
		if !got[fmt.Sprintf("plugins/p/f%02d.php", i)] {
			t.Fatalf("plugins/p/f%02d.php not listed", i)
		}
	}
	if media != 0 || !got["media.bak"] || folders["media.bak"] {
		t.Fatalf("%d of the 1200 media objects given, want none; media.bak given %v, folder %v", media, got["media.bak"], folders["media.bak"])
	}
	if !got["themes"] || !folders["themes"] {
		t.Fatalf("the object beside the skipped folder themes/: given %v, folder %v; want a folder", got["themes"], folders["themes"])
	}
	// Without skip, everything.
	all := 0
	if err := s.ListSkipping(ctx, 8, nil, func(Object) { all++ }); err != nil || all != 1262 {
		t.Fatalf("listed %d objects without skipping, want 1262: %v", all, err)
	}
}

// TestListSkippingListsTheRestWhole: where a split listing leaves a folder out, it expands no further
// and lists the folders left whole: a lazy restore's eager part (a site's code) takes a few requests,
// not one per plugin; and it starts with the top level, not with a page of the whole bucket. 1,000 code
// files in 40 plugin folders beside 500 media objects: the top level and plugins/ whole (one page), against
// 3 with a first page and 43 with each plugin listed apart.
func TestListSkippingListsTheRestWhole(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	var mu sync.Mutex
	lists := 0
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, func(op string) {
		mu.Lock()
		defer mu.Unlock()
		if op == OpList {
			lists++
		}
	})
	put := func(name string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: "p/" + name}, Content: []byte("x")})
	}
	for i := range 1000 {
		put(fmt.Sprintf("plugins/p%02d/f%04d.php", i%40, i))
	}
	for i := range 500 {
		put(fmt.Sprintf("uploads/2026/%02d/m%04d.jpg", i%12+1, i))
	}
	code := 0
	err := s.ListSkipping(ctx, 8, func(folder string) bool { return folder == "uploads" }, func(o Object) {
		if strings.HasPrefix(o.Name, "plugins/") {
			code++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 1000 || lists > 2 {
		t.Fatalf("listed %d of the 1000 code files with %d list requests, want all with at most 2", code, lists)
	}
}
