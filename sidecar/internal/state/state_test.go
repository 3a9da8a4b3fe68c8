package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/pathmap"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

func TestSaveAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, "gs://b/p")
	if err != nil {
		t.Fatal(err)
	}
	s.Set("a/b.jpg", snapshot.Base{Object: snapshot.Object{Generation: 17, Size: 3, CRC32C: 0xdeadbeef}, ModTime: 42})
	s.Set("gone", snapshot.Base{Object: snapshot.Object{Generation: 1}})
	s.Delete("gone")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("reopen: %v discarded=%v", err, discarded)
	}
	if e, ok := s2.Get("a/b.jpg"); !ok || e != (snapshot.Base{Object: snapshot.Object{Generation: 17, Size: 3, CRC32C: 0xdeadbeef}, ModTime: 42}) || s2.Len() != 1 {
		t.Fatalf("reopened state: %+v %v len %d", e, ok, s2.Len())
	}
}

func TestForeignOrBrokenStateIsDiscarded(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir, "gs://b/p")
	s.Set("x", snapshot.Base{Object: snapshot.Object{Generation: 1}})
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
	s.Set("x", snapshot.Base{Object: snapshot.Object{Generation: 1}})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Each save appends only what changed: the bytes written per change do not grow with the number of files.
func TestSaveAppendsOnlyTheChanges(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir, "gs://b/p")
	for i := range 5000 {
		s.Set(fmt.Sprintf("uploads/2026/12/photo-%05d.jpg", i), snapshot.Base{Object: snapshot.Object{Generation: int64(i + 1), Size: 1000, CRC32C: 7}, ModTime: 9})
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	snap := fileSize(t, filepath.Join(dir, fileName))
	j0 := fileSize(t, filepath.Join(dir, journalName))
	s.Set("uploads/2026/12/new.jpg", snapshot.Base{Object: snapshot.Object{Generation: 99999, Size: 1, CRC32C: 1}, ModTime: 1})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if grew := fileSize(t, filepath.Join(dir, journalName)) - j0; grew <= 0 || grew > 200 {
		t.Fatalf("one change appended %d bytes to the journal", grew)
	}
	if fileSize(t, filepath.Join(dir, fileName)) != snap {
		t.Fatal("one change rewrote the snapshot")
	}
	s.Delete("uploads/2026/12/photo-00000.jpg")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded || s2.Len() != 5000 {
		t.Fatalf("reopen: %v discarded=%v len=%d", err, discarded, s2.Len())
	}
	if e, ok := s2.Get("uploads/2026/12/new.jpg"); !ok || e.Generation != 99999 {
		t.Fatalf("journalled entry lost: %+v", e)
	}
	if _, ok := s2.Get("uploads/2026/12/photo-00000.jpg"); ok {
		t.Fatal("journalled delete lost")
	}
}

// The journal is compacted into a new snapshot once it outgrows it; nothing is lost on the way.
func TestJournalIsCompacted(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir, "gs://b/p")
	for i := range 3000 {
		s.Set(fmt.Sprintf("f%d", i%10), snapshot.Base{Object: snapshot.Object{Generation: int64(i + 1)}})
		if err := s.Save(); err != nil {
			t.Fatal(err)
		}
	}
	if j := fileSize(t, filepath.Join(dir, journalName)); j > minCompact+200 {
		t.Fatalf("journal %d bytes: never compacted", j)
	}
	s2, _, _ := Open(dir, "gs://b/p")
	if e, _ := s2.Get("f9"); s2.Len() != 10 || e.Generation != 3000 {
		t.Fatalf("after compaction: len %d, f9 %+v", s2.Len(), e)
	}
}

// A line torn by a crash mid-append is ignored (its entries were not durable); a journal broken before
// its end, or written for another remote, discards the base.
func TestTornJournal(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir, "gs://b/p")
	s.Set("a", snapshot.Base{Object: snapshot.Object{Generation: 1}})
	_ = s.Save()
	s.Set("b", snapshot.Base{Object: snapshot.Object{Generation: 2}})
	_ = s.Save()
	j := filepath.Join(dir, journalName)
	f, _ := os.OpenFile(j, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(`{"p":"c","e":[3,0,`)
	f.Close()
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded || s2.Len() != 2 {
		t.Fatalf("torn tail: %v discarded=%v len=%d", err, discarded, s2.Len())
	}
	s2.Set("d", snapshot.Base{Object: snapshot.Object{Generation: 4}})
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	if s3, _, _ := Open(dir, "gs://b/p"); s3.Len() != 3 {
		t.Fatalf("after a save over a torn tail: len %d, want 3", s3.Len())
	}
	b, _ := os.ReadFile(j)
	_ = os.WriteFile(j, append([]byte("garbage\n"), b...), 0o644)
	if s4, discarded, _ := Open(dir, "gs://b/p"); !discarded || s4.Len() != 0 {
		t.Fatalf("broken journal: discarded=%v len=%d", discarded, s4.Len())
	}
}

// The state file of the earlier format (a JSON snapshot, no journal) is read on first start.
func TestMigratesTheJSONStateFile(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":1,"remote":"gs://b/p","entries":{"a.jpg":[17,3,3735928559,42]}}`
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	s, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("open: %v discarded=%v", err, discarded)
	}
	if e, ok := s.Get("a.jpg"); !ok || e != (snapshot.Base{Object: snapshot.Object{Generation: 17, Size: 3, CRC32C: 0xdeadbeef}, ModTime: 42}) {
		t.Fatalf("migrated entry %+v", e)
	}
	s.Set("b.jpg", snapshot.Base{Object: snapshot.Object{Generation: 1}})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if s2, _, _ := Open(dir, "gs://b/p"); s2.Len() != 2 {
		t.Fatalf("len %d", s2.Len())
	}
}

// TestRemoteOnlyEntriesSurvive (issue 23): a remote-only entry (a lazy path never fetched) is kept, with
// the object's mtime, through the snapshot and the journal; a version 1 state is read and rewritten as
// version 2 at once, so no version 1 file ever holds a remote-only entry an older filesync would read as
// a file deleted here.
func TestRemoteOnlyEntriesSurvive(t *testing.T) {
	dir := t.TempDir()
	v1 := `{"version":1,"remote":"gs://b/p","entries":{"a.jpg":[17,3,3735928559,42]}}`
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, journalName), []byte(`{"version":1,"remote":"gs://b/p"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("open: %v discarded=%v", err, discarded)
	}
	lazy := snapshot.Base{Object: snapshot.Object{Generation: 9, Size: 5, CRC32C: 0xffffffff, ModTime: time.Unix(1600000000, 5)}, RemoteOnly: true}
	s.Set("uploads/m.jpg", lazy)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{fileName, journalName} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), `{"version":2,`) {
			t.Fatalf("%s after a save: %.60s, want version 2", f, b)
		}
	}
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("reopen: %v discarded=%v", err, discarded)
	}
	if e, ok := s2.Get("uploads/m.jpg"); !ok || !e.RemoteOnly || !e.Is(lazy.Object) || !e.Object.ModTime.Equal(lazy.Object.ModTime) || e.ModTime != 0 {
		t.Fatalf("remote-only entry reopened as %+v", e)
	}
	if e, _ := s2.Get("a.jpg"); e.RemoteOnly || e.CRC32C != 0xdeadbeef || e.ModTime != 42 {
		t.Fatalf("version 1 entry reopened as %+v", e)
	}
	// Through the journal too: another remote-only entry, appended.
	s2.Set("uploads/n.jpg", snapshot.Base{Object: snapshot.Object{Generation: 3, Size: 1, CRC32C: 7}, RemoteOnly: true})
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	s3, _, _ := Open(dir, "gs://b/p")
	if e, ok := s3.Get("uploads/n.jpg"); !ok || !e.RemoteOnly || e.CRC32C != 7 || !e.Object.ModTime.IsZero() {
		t.Fatalf("journalled remote-only entry reopened as %+v", e)
	}
}

// TestRemoteOnlyBatchIsSaved: a batch of remote-only bases set at once (large enough to be merged into
// the entries in one go, over a held entry of the same path) and a map of them adopted whole are in the
// store and in what Save writes, like the same bases set one at a time; a base set again unchanged is no
// change to save; a map is not adopted over remote-only entries or a held path.
func TestRemoteOnlyBatchIsSaved(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, "gs://b/p")
	if err != nil {
		t.Fatal(err)
	}
	s.Set("code/a.php", snapshot.Base{Object: snapshot.Object{Generation: 1, Size: 1}, ModTime: 5})
	s.Set("uploads/m00007.jpg", snapshot.Base{Object: snapshot.Object{Generation: 1, Size: 1}, ModTime: 5}) // held: turns remote-only
	object := func(i int) snapshot.Object {
		return snapshot.Object{Generation: int64(i + 1), Size: 9, CRC32C: uint32(i), ModTime: time.Unix(int64(i), 7)}
	}
	var paths []string
	adopted := &pathmap.Map[snapshot.Packed]{}
	for i := range 3000 {
		paths = append(paths, fmt.Sprintf("uploads/m%05d.jpg", i))
		adopted.Set(fmt.Sprintf("later/m%05d.jpg", i), object(i).Pack())
	}
	s.SetRemoteOnly(paths, object)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s.SetRemoteOnly(paths, object)
	if len(s.changes) != 0 {
		t.Fatalf("%d changes after setting the same bases again", len(s.changes))
	}
	if s.AdoptRemoteOnly(adopted) {
		t.Fatal("a map was adopted while the store records remote-only paths")
	}
	s2, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded {
		t.Fatalf("reopen: %v discarded=%v", err, discarded)
	}
	if s2.Len() != 3001 {
		t.Fatalf("reopened with %d entries, want 3001", s2.Len())
	}
	for i, p := range paths {
		want := snapshot.Base{Object: object(i), RemoteOnly: true}
		if e, ok := s2.Get(p); !ok || e.Pack() != want.Pack() || !e.Object.ModTime.Equal(want.Object.ModTime) {
			t.Fatalf("%s reopened as %+v %v, want %+v", p, e, ok, want)
		}
	}

	// Adopted whole: a store with no remote-only entry, none of the map's paths held.
	dir = t.TempDir()
	s3, _, _ := Open(dir, "gs://b/p")
	s3.Set("code/a.php", snapshot.Base{Object: snapshot.Object{Generation: 1, Size: 1}, ModTime: 5})
	clash := &pathmap.Map[snapshot.Packed]{}
	clash.Set("code/a.php", object(1).Pack())
	if s3.AdoptRemoteOnly(clash) {
		t.Fatal("a map holding a held path was adopted")
	}
	if !s3.AdoptRemoteOnly(adopted) {
		t.Fatal("the map was not adopted")
	}
	if err := s3.Save(); err != nil {
		t.Fatal(err)
	}
	s4, discarded, err := Open(dir, "gs://b/p")
	if err != nil || discarded || s4.Len() != 3001 {
		t.Fatalf("reopen: %v discarded=%v, %d entries", err, discarded, s4.Len())
	}
	for i := range 3000 {
		p := fmt.Sprintf("later/m%05d.jpg", i)
		if e, ok := s4.Get(p); !ok || !e.RemoteOnly || !e.Is(object(i)) || !e.Object.ModTime.Equal(object(i).ModTime) {
			t.Fatalf("%s reopened as %+v %v", p, e, ok)
		}
	}
	if e, _ := s4.Get("code/a.php"); e.RemoteOnly || e.ModTime != 5 {
		t.Fatalf("the held entry reopened as %+v", e)
	}
}
