package gcsstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
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
	return New(srv.Client(), Remote{Bucket: "bkt", Prefix: prefix}, func(op string) { counts[op]++ }), counts
}

func newServer(t *testing.T) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "bkt"})
	return srv
}

// TestRequestsAreCounted: every request is reported by kind, a listing once per page of 1,000 objects.
func TestRequestsAreCounted(t *testing.T) {
	ctx := context.Background()
	s, counts := newCountingStore(t, "p")
	for i := range 1001 {
		b := []byte{byte(i)}
		if _, err := s.Upload(ctx, fmt.Sprintf("f%04d", i), bytes.NewReader(b), 1, crc(b), 0); err != nil {
			t.Fatal(err)
		}
	}
	n, gen := 0, int64(0)
	if err := s.List(ctx, func(o Object) {
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
	s := New(srv.Client(), Remote{Bucket: "bkt", Prefix: "p"}, nil)
	got := map[string]string{}
	if err := s.List(context.Background(), func(o Object) { got[o.Name] = o.ContentEncoding }); err != nil {
		t.Fatal(err)
	}
	if got["style.css"] != "gzip" || got["plain.css"] != "" {
		t.Fatalf("encodings %v", got)
	}
}

func TestParseRemote(t *testing.T) {
	for in, want := range map[string]string{
		"gs://bkt":              "gs://bkt",
		"gs://bkt/":             "gs://bkt",
		"gs://my-bkt/a/b/":      "gs://my-bkt/a/b",
		"gs://b.k_t/wp-content": "gs://b.k_t/wp-content",
	} {
		r, err := ParseRemote(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRemote(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "bkt/x", "s3://bkt", "gs://", "gs://BK", "gs://-bkt", "gs://bkt/a/../b", "gs://bkt/a//b"} {
		if _, err := ParseRemote(bad); err == nil {
			t.Errorf("ParseRemote(%q): want error", bad)
		}
	}
}

func TestPreconditionsAreEnforced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "p")
	v1, v2 := []byte("one"), []byte("two!")
	o1, err := s.Upload(ctx, "a/b.txt", bytes.NewReader(v1), 3, crc(v1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(ctx, "a/b.txt", bytes.NewReader(v2), 4, crc(v2), 0); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("create-only over an existing object: got %v, want ErrPrecondition", err)
	}
	if _, err := s.Upload(ctx, "a/b.txt", bytes.NewReader(v2), 4, crc(v2), o1.Generation+999); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale generation: got %v, want ErrPrecondition", err)
	}
	o2, err := s.Upload(ctx, "a/b.txt", bytes.NewReader(v2), 4, crc(v2), o1.Generation)
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
	if _, err := s.Upload(context.Background(), "x", bytes.NewReader(v), int64(len(v)), crc(v)+1, 0); err == nil {
		t.Fatal("upload with a wrong CRC32C must fail")
	}
}

func TestListIsRelativeToPrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "wp-content")
	for _, n := range []string{"uploads/1.jpg", "uploads/2026/11/2.jpg"} {
		if _, err := s.Upload(ctx, n, bytes.NewReader(nil), 0, crc(nil), 0); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	if err := s.List(ctx, func(o Object) { got[o.Name] = true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["uploads/1.jpg"] || !got["uploads/2026/11/2.jpg"] {
		t.Fatalf("listed %v", got)
	}
}

// TestStatTellsTheLiveObject: Stat returns what a listing would say of one object, in one get; a missing
// object is ErrNotFound.
func TestStatTellsTheLiveObject(t *testing.T) {
	ctx := context.Background()
	s, counts := newCountingStore(t, "p")
	b := []byte("hello")
	up, err := s.Upload(ctx, "a/b.txt", bytes.NewReader(b), int64(len(b)), crc(b), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Stat(ctx, "a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "a/b.txt" || got.Generation != up.Generation || got.Size != 5 || got.CRC32C != crc(b) {
		t.Fatalf("stat %+v, uploaded %+v", got, up)
	}
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat of a missing object: %v, want ErrNotFound", err)
	}
	if counts[OpGet] != 2 || counts[OpList] != 0 {
		t.Fatalf("requests %v, want 2 gets and no list", counts)
	}
}
