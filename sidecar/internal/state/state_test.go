package state

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, "gs://b/p")
	if err != nil {
		t.Fatal(err)
	}
	s.Set("a/b.jpg", Entry{Generation: 17, Size: 3, CRC32C: 0xdeadbeef, ModTime: 42})
	s.Set("gone", Entry{Generation: 1})
	s.Delete("gone")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("reopen: %v discarded=%v", err, discarded)
	}
	if e, ok := s2.Get("a/b.jpg"); !ok || e != (Entry{17, 3, 0xdeadbeef, 42}) || s2.Len() != 1 {
		t.Fatalf("reopened state: %+v %v len %d", e, ok, s2.Len())
	}
}

func TestForeignOrBrokenStateIsDiscarded(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir, "gs://b/p")
	s.Set("x", Entry{Generation: 1})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, discarded, err := Open(dir, "gs://other/p")
	if err != nil || !discarded || s2.Len() != 0 {
		t.Fatalf("foreign remote: err=%v discarded=%v len=%d", err, discarded, s2.Len())
	}
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s3, discarded, err := Open(dir, "gs://b/p")
	if err != nil || !discarded || s3.Len() != 0 {
		t.Fatalf("broken file: err=%v discarded=%v len=%d", err, discarded, s3.Len())
	}
}

func TestMemoryOnly(t *testing.T) {
	s, _, err := Open("", "gs://b")
	if err != nil {
		t.Fatal(err)
	}
	s.Set("x", Entry{Generation: 1})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
}
