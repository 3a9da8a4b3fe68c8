package gcsstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/googleapi"

	"github.com/filesync/filesync/sidecar/internal/gcsstore/gcstest"
	"github.com/filesync/filesync/sidecar/internal/gsurl"
)

func crc(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func newStore(t *testing.T, prefix string) *Store {
	s, _ := newCountingStore(t, prefix)
	return s
}

// newCountingStore returns a store on an in-process fake-gcs-server and the requests it made, by kind.
func newCountingStore(t *testing.T, prefix string) (*Store, map[string]int) {
	t.Helper()
	srv := newServer(t)
	counts := map[string]int{}
	return New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: prefix}, func(op string) { counts[op]++ }), counts
}

func newServer(t *testing.T) *fakestorage.Server { return gcstest.NewServer(t, "bkt") }

// TestRequestsAreCounted: every request is reported by kind, a listing once per page of 1,000 objects.
func TestRequestsAreCounted(t *testing.T) {
	ctx := context.Background()
	s, counts := newCountingStore(t, "p")
	for i := range 1001 {
		b := []byte{byte(i)}
		if _, err := s.Upload(ctx, fmt.Sprintf("f%04d", i), Content{R: bytes.NewReader(b), Size: 1, CRC32C: crc(b)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	n, gen := 0, int64(0)
	if err := s.List(ctx, 1, func(o Object) {
		n++
		if o.Name == "f0001" {
			gen = o.Generation
		}
	}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, "f0000", 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := s.CheckBucket(ctx); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Open(ctx, "f0001", gen)
	o.Close()
	if err := s.Delete(ctx, "f0001", gen); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{OpInsert: 1001, OpList: 2, OpRead: 2, OpGet: 1, OpDelete: 1}
	if n != 1001 || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("listed %d objects; requests %v, want %v", n, counts, want)
	}
}

// TestListingTellsContentEncoding: a listing says which objects are stored gzip-encoded (the client
// decompresses them on read, so their checksum cannot be checked; the syncer leaves them alone).
func TestListingTellsContentEncoding(t *testing.T) {
	srv := newServer(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("compress me "), 100))
	_ = zw.Close()
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: "p/style.css",
		ContentEncoding: "gzip", ContentType: "text/css"}, Content: gz.Bytes()})
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: "p/plain.css"}, Content: []byte("x")})
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	got := map[string]string{}
	if err := s.List(context.Background(), 1, func(o Object) { got[o.Name] = o.ContentEncoding }); err != nil {
		t.Fatal(err)
	}
	if got["style.css"] != "gzip" || got["plain.css"] != "" {
		t.Fatalf("encodings %v", got)
	}
}

func TestPreconditionsAreEnforced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "p")
	v1, v2 := []byte("one"), []byte("two!")
	o1, err := s.Upload(ctx, "a/b.txt", Content{R: bytes.NewReader(v1), Size: 3, CRC32C: crc(v1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(ctx, "a/b.txt", Content{R: bytes.NewReader(v2), Size: 4, CRC32C: crc(v2)}, 0); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("create-only over an existing object: got %v, want ErrPrecondition", err)
	}
	if _, err := s.Upload(ctx, "a/b.txt", Content{R: bytes.NewReader(v2), Size: 4, CRC32C: crc(v2)}, o1.Generation+999); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale generation: got %v, want ErrPrecondition", err)
	}
	o2, err := s.Upload(ctx, "a/b.txt", Content{R: bytes.NewReader(v2), Size: 4, CRC32C: crc(v2)}, o1.Generation)
	if err != nil {
		t.Fatal(err)
	}
	if o2.Generation == o1.Generation || o2.CRC32C != crc(v2) {
		t.Fatalf("second version: %+v after %+v", o2, o1)
	}
	if err := s.Delete(ctx, "a/b.txt", o1.Generation); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("delete with stale generation: got %v, want ErrPrecondition", err)
	}
	r, err := s.Open(ctx, "a/b.txt", o2.Generation)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "two!" || r.Object.CRC32C != crc(v2) {
		t.Fatalf("read %q %+v", got, r.Object)
	}
	if err := s.Delete(ctx, "a/b.txt", o2.Generation); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "a/b.txt", o2.Generation); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after delete: got %v, want ErrNotFound", err)
	}
}

func TestUploadRejectsWrongCRC(t *testing.T) {
	s := newStore(t, "")
	v := []byte("payload")
	if _, err := s.Upload(context.Background(), "x", Content{R: bytes.NewReader(v), Size: int64(len(v)), CRC32C: crc(v) + 1}, 0); err == nil {
		t.Fatal("upload with a wrong CRC32C must fail")
	}
}

// TestUploadSendsExactlyItsSize: a source that ends before the planned size (a file truncated while it
// uploads) aborts the upload, small (one request) or chunked: nothing is stored; one that has more is
// read no further than the size.
func TestUploadSendsExactlyItsSize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "")
	for _, size := range []int{100, 9 << 20} {
		v := bytes.Repeat([]byte("x"), size)
		short := io.LimitReader(bytes.NewReader(v), int64(size/2))
		if _, err := s.Upload(ctx, "short", Content{R: short, Size: int64(size), CRC32C: crc(v)}, 0); !errors.Is(err, ErrShortSource) {
			t.Fatalf("%d bytes, source cut at half: %v, want ErrShortSource", size, err)
		}
		if _, err := s.Stat(ctx, "short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%d bytes: the aborted upload was stored (%v)", size, err)
		}
	}
	v := []byte("payload")
	o, err := s.Upload(ctx, "long", Content{R: io.MultiReader(bytes.NewReader(v), strings.NewReader("more")), Size: int64(len(v)), CRC32C: crc(v)}, 0)
	if err != nil || o.Size != int64(len(v)) {
		t.Fatalf("a longer source: %+v, %v", o, err)
	}
}

func TestListIsRelativeToPrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "wp-content")
	for _, n := range []string{"uploads/1.jpg", "uploads/2026/11/2.jpg"} {
		if _, err := s.Upload(ctx, n, Content{R: bytes.NewReader(nil), Size: 0, CRC32C: crc(nil)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	if err := s.List(ctx, 1, func(o Object) { got[o.Name] = true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["uploads/1.jpg"] || !got["uploads/2026/11/2.jpg"] {
		t.Fatalf("listed %v", got)
	}
}

// TestStatReadsTheBucketNotTheListing: Stat is one get and tells the current generation, or ErrNotFound.
func TestStatReadsTheBucketNotTheListing(t *testing.T) {
	ctx := context.Background()
	s, counts := newCountingStore(t, "p")
	b := []byte("v1")
	o1, err := s.Upload(ctx, "a.jpg", Content{R: bytes.NewReader(b), Size: 2, CRC32C: crc(b)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b2 := []byte("v22")
	o2, err := s.Upload(ctx, "a.jpg", Content{R: bytes.NewReader(b2), Size: 3, CRC32C: crc(b2)}, o1.Generation)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Stat(ctx, "a.jpg")
	if err != nil || got.Generation != o2.Generation || got.Size != 3 || got.CRC32C != crc(b2) || got.Name != "a.jpg" {
		t.Fatalf("Stat = %+v, %v; want generation %d", got, err, o2.Generation)
	}
	if _, err := s.Stat(ctx, "missing.jpg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat(missing) = %v, want ErrNotFound", err)
	}
	if counts[OpGet] != 3 { // the overwrite's, and the two Stats
		t.Fatalf("requests %v, want 3 gets", counts)
	}
}

// TestModTimeRoundTrip: an upload stores the file's mtime as goog-reserved-file-mtime (unix seconds, as
// gsutil, gcloud and rclone write it) and rclone's mtime (nanoseconds); the listing, Stat and the upload's
// result give it back to the nanosecond. An object another tool wrote without either gets its updated
// time, the same on every read.
func TestModTimeRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	mtime := time.Date(2024, 2, 29, 12, 34, 56, 789_000_000, time.UTC)
	v := []byte("photo")
	o, err := s.Upload(ctx, "a.jpg", Content{R: bytes.NewReader(v), Size: int64(len(v)), CRC32C: crc(v), ModTime: mtime}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !o.ModTime.Equal(mtime) {
		t.Errorf("upload returned ModTime %v, want %v", o.ModTime, mtime)
	}
	raw, err := srv.GetObject("bkt", "p/a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Metadata[MtimeKey]; got != fmt.Sprint(mtime.Unix()) {
		t.Errorf("stored %s = %q, want %d (whole seconds)", MtimeKey, got, mtime.Unix())
	}
	// Written by another tool: no mtime metadata; one with a value that is no number.
	w := srv.Client().Bucket("bkt").Object("p/other.jpg").NewWriter(ctx)
	_, _ = w.Write([]byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = srv.Client().Bucket("bkt").Object("p/bad.jpg").NewWriter(ctx)
	w.Metadata = map[string]string{MtimeKey: "yesterday", RcloneMtimeKey: "today"}
	_, _ = w.Write([]byte("y"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	listed := map[string]time.Time{}
	if err := s.List(ctx, 1, func(o Object) { listed[o.Name] = o.ModTime }); err != nil {
		t.Fatal(err)
	}
	if !listed["a.jpg"].Equal(mtime) {
		t.Errorf("listing: a.jpg ModTime %v, want %v", listed["a.jpg"], mtime)
	}
	for _, name := range []string{"other.jpg", "bad.jpg"} {
		st, err := s.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.ModTime.IsZero() || !st.ModTime.Equal(listed[name]) {
			t.Errorf("%s: Stat ModTime %v, listing %v: want the same updated time", name, st.ModTime, listed[name])
		}
		if d := time.Since(st.ModTime); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: ModTime %v is not its updated time (now)", name, st.ModTime)
		}
	}
	if st, err := s.Stat(ctx, "a.jpg"); err != nil || !st.ModTime.Equal(mtime) || st.Generation != o.Generation {
		t.Errorf("Stat(a.jpg) = %+v, %v; want ModTime %v generation %d", st, err, mtime, o.Generation)
	}
	if _, err := s.Stat(ctx, "missing.jpg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
}

// TestParallelListingGivesEveryObjectOnce: a listing of more than one page split into folders gives the
// same objects as the sequential listing, each once, with the same Folder flags (objects beside a folder
// of the same name, at a level that is expanded and inside a folder listed whole), and nothing outside the
// prefix; it does so with more, smaller requests.
func TestParallelListingGivesEveryObjectOnce(t *testing.T) {
	srv := newServer(t)
	put := func(name string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: name}, Content: []byte(name)})
	}
	for y := 2020; y < 2023; y++ {
		for m := 1; m <= 12; m++ {
			for i := range 40 {
				put(fmt.Sprintf("p/uploads/%d/%02d/f%03d.jpg", y, m, i))
			}
		}
	}
	for _, name := range []string{"p/readme", "p/uploads/index.php", "p/uploads/2020/index.php",
		"p/uploads/2021", "p/a", "p/a/b", "p/a-b", "p/deep/x/y/z/w", "p/deep/x/y/z/w/v", "p/uploads/2022/",
		"other/zzz", "px/foo", "p"} {
		put(name)
	}
	folders := map[string]bool{"uploads/2021": true, "a": true, "deep/x/y/z/w": true}

	list := func(parallel int) (map[string]bool, int) {
		counts := map[string]int{}
		var mu sync.Mutex
		s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, func(op string) { mu.Lock(); counts[op]++; mu.Unlock() })
		got := map[string]bool{}
		if err := s.List(context.Background(), parallel, func(o Object) {
			if _, dup := got[o.Name]; dup {
				t.Errorf("parallel %d: %s given twice", parallel, o.Name)
			}
			got[o.Name] = o.Folder
		}); err != nil {
			t.Fatal(err)
		}
		return got, counts[OpList]
	}
	seq, seqPages := list(1)
	par, parRequests := list(8)
	if len(seq) != 3*12*40+9 { // the placeholder uploads/2022/ is not given
		t.Fatalf("sequential listing gave %d objects, want %d", len(seq), 3*12*40+9)
	}
	for name, folder := range seq {
		if folder != folders[name] {
			t.Errorf("sequential: %s Folder=%v", name, folder)
		}
	}
	if fmt.Sprint(par) != fmt.Sprint(seq) {
		for name := range seq {
			if f, ok := par[name]; !ok || f != seq[name] {
				t.Errorf("parallel: %s: given %v, Folder %v (sequential %v)", name, ok, f, seq[name])
			}
		}
		for name := range par {
			if _, ok := seq[name]; !ok {
				t.Errorf("parallel gave %s, which the sequential listing did not", name)
			}
		}
	}
	if seqPages != 2 || parRequests <= seqPages {
		t.Errorf("requests: sequential %d (want 2 pages), parallel %d (want more, smaller ones)", seqPages, parRequests)
	}
	t.Logf("sequential: %d pages; parallel: %d requests", seqPages, parRequests)
}

// TestParallelListingOfOnePageIsOneRequest: a bucket that fits in a page costs one request either way.
func TestParallelListingOfOnePageIsOneRequest(t *testing.T) {
	s, counts := newCountingStore(t, "p")
	for i := range 20 {
		if _, err := s.Upload(context.Background(), fmt.Sprintf("d%d/f", i), Content{R: bytes.NewReader(nil), Size: 0, CRC32C: 0}, 0); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := s.List(context.Background(), 8, func(Object) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 20 || counts[OpList] != 1 {
		t.Fatalf("listed %d objects with %d requests, want 20 with 1", n, counts[OpList])
	}
}

// TestParallelListingFolderAcrossTheFirstPage: the first page ends with an object x whose x/... lie past
// it; the split listing tells, and x is given once, as a folder.
func TestParallelListingFolderAcrossTheFirstPage(t *testing.T) {
	srv := newServer(t)
	put := func(name string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: name}, Content: []byte("x")})
	}
	for i := range 999 {
		put(fmt.Sprintf("p/a%03d", i))
	}
	put("p/b") // the 1,000th name: the last of the first page
	put("p/b/c")
	put("p/d")
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	got := map[string]int{}
	folder := map[string]bool{}
	if err := s.List(context.Background(), 4, func(o Object) { got[o.Name]++; folder[o.Name] = o.Folder }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1002 || got["b"] != 1 || got["b/c"] != 1 || got["d"] != 1 || got["a000"] != 1 {
		t.Fatalf("given %d names; b %d, b/c %d, d %d, a000 %d times", len(got), got["b"], got["b/c"], got["d"], got["a000"])
	}
	for name, n := range got {
		if n != 1 {
			t.Errorf("%s given %d times", name, n)
		}
	}
	if !folder["b"] || folder["d"] || folder["a998"] {
		t.Fatalf("Folder: b %v, d %v, a998 %v", folder["b"], folder["d"], folder["a998"])
	}
}

// TestMapErrDecides: the HTTP answers the syncer decides on become sentinels: 412, 404, 429 (rate) and a
// 403 that names a retention policy or a hold; a 403 for a missing permission stays a plain error.
func TestMapErrDecides(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *googleapi.Error
		want error
	}{
		{"precondition", &googleapi.Error{Code: 412}, ErrPrecondition},
		{"not found", &googleapi.Error{Code: 404}, ErrNotFound},
		{"rate", &googleapi.Error{Code: 429, Message: "The object exceeded the rate limit for object mutation operations (create, update, and delete)."}, ErrRateLimited},
		{"retention policy", &googleapi.Error{Code: 403,
			Message: "Object 'media/wp/a.jpg' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until 2027-01-01T00:00:00Z"}, ErrRetained},
		{"event-based hold", &googleapi.Error{Code: 403,
			Message: "Object 'media/wp/a.jpg' is under active Event-Based hold and cannot be deleted, overwritten or archived until hold is removed."}, ErrRetained},
		{"temporary hold, in the error list", &googleapi.Error{Code: 403,
			Errors: []googleapi.ErrorItem{{Reason: "forbidden", Message: "Object is under active Temporary hold"}}}, ErrRetained},
		{"permission", &googleapi.Error{Code: 403, Message: "sa@p.iam.gserviceaccount.com does not have storage.objects.delete access"}, nil},
		{"server", &googleapi.Error{Code: 503}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mapErr(fmt.Errorf("wrapped: %w", tc.err))
			for _, s := range []error{ErrPrecondition, ErrNotFound, ErrRateLimited, ErrRetained} {
				if errors.Is(got, s) != errors.Is(tc.want, s) {
					t.Fatalf("mapErr(%v) = %v: errors.Is %v = %v", tc.err, got, s, errors.Is(got, s))
				}
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("the original error is lost: %v", got)
			}
		})
	}
}

// TestRateLimitIsNotRetriedBySDK: a 429 reaches the caller at once (ErrRateLimited), one request, so the
// syncer can wait the second GCS asks for; a 503 is still retried by the SDK.
func TestRateLimitIsNotRetriedBySDK(t *testing.T) {
	if shouldRetry(&googleapi.Error{Code: 429}) {
		t.Fatal("the SDK retries 429")
	}
	if !shouldRetry(&googleapi.Error{Code: 503}) {
		t.Fatal("the SDK no longer retries 503")
	}
}

// TestListPrefixIsAStringPrefix: ListPrefix lists names starting with a string (not a folder), relative to
// the store's prefix, and nothing outside it.
func TestListPrefixIsAStringPrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "p")
	for _, name := range []string{".filesync/conflicts/a.jpg.x.1", ".filesync/conflicts/a.jpg.bak.y.2",
		".filesync/conflicts/b.jpg.x.3", "a.jpg"} {
		b := []byte(name)
		if _, err := s.Upload(ctx, name, Content{R: bytes.NewReader(b), Size: int64(len(b)), CRC32C: crc(b)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListPrefix(ctx, ".filesync/conflicts/a.jpg.")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range got {
		names = append(names, o.Name)
		if o.Generation == 0 || o.Size == 0 {
			t.Errorf("%s: no generation or size: %+v", o.Name, o)
		}
	}
	if want := ".filesync/conflicts/a.jpg.bak.y.2 .filesync/conflicts/a.jpg.x.1"; strings.Join(names, " ") != want {
		t.Fatalf("ListPrefix = %v, want %s", names, want)
	}
}
