package gcsstore

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func crc(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func newStore(t *testing.T, prefix string) *Store {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "bkt"})
	return New(srv.Client(), Remote{Bucket: "bkt", Prefix: prefix})
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
