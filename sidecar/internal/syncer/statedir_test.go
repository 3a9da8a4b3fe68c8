package syncer

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The --state-dir damaged while the container was down (issue 22, item 7: the faults not yet tried).
// docs/design.md, "Durable base": a journal line torn by a crash is ignored; a snapshot or journal that
// cannot be read is ignored whole, and the pass starts without a base (a full restore, no deletes until in
// sync). Without a base a restart restores what was deleted meanwhile and turns a local edit into a
// conflict copy (Command line, --state-dir). So a damaged state may resurrect, but must never lose.

// downWhileChanged brings a replica with a state dir and a peer into sync, then, with a "down", makes the
// changes of a restart window: a file deleted remotely (by the peer), one deleted locally, one edited
// locally. It returns the contents every side must keep whatever becomes of the state.
func downWhileChanged(t *testing.T, b *bucket) (a, c *replica, kept map[string]string) {
	t.Helper()
	a, c = b.replica("a", withStateDir()), b.replica("b")
	kept = map[string]string{}
	for i := range 10 {
		p := fmt.Sprintf("uploads/keep%d.jpg", i)
		a.write(p, fmt.Sprint("keep ", i))
		kept[p] = fmt.Sprint("keep ", i)
	}
	a.write("uploads/remote-deleted.jpg", "rd")
	a.write("uploads/local-deleted.jpg", "ld")
	a.write("uploads/edited.jpg", "before")
	a.settle()
	c.settle()
	// A later change, appended to the journal after the snapshot.
	a.write("uploads/last.jpg", "last")
	kept["uploads/last.jpg"] = "last"
	a.settle()
	c.settle()
	// The container stops. Meanwhile another replica deletes a file, the app deletes and edits others.
	c.remove("uploads/remote-deleted.jpg")
	c.settle()
	if _, ok := b.objects()["uploads/remote-deleted.jpg"]; ok {
		t.Fatal("setup: the peer's delete did not reach the bucket")
	}
	a.remove("uploads/local-deleted.jpg")
	a.write("uploads/edited.jpg", "edited while down")
	return a, c, kept
}

// stateFiles lists the files of a state dir (the snapshot and the journal, at least).
func stateFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	if len(out) < 2 {
		t.Fatalf("state dir holds %v, want a snapshot and a journal", out)
	}
	return out
}

// converged settles both replicas twice and checks that the bucket (without .filesync/) equals both
// directories, and returns it.
func converged(t *testing.T, b *bucket, rs ...*replica) map[string]string {
	t.Helper()
	for range 2 {
		for _, r := range rs {
			r.settle()
		}
	}
	objs := map[string]string{}
	for k, v := range b.objects() {
		if !strings.HasPrefix(k, ".filesync/") {
			objs[k] = v
		}
	}
	for _, r := range rs {
		if got := r.files(); !equalMaps(got, objs) {
			t.Fatalf("[%s] has\n%sbucket has\n%s", r.name, describe(got), describe(objs))
		}
	}
	return objs
}

// TestGarbledStateDirRestoresAndLosesNothing: the state files truncated to nothing, or overwritten with
// random bytes, before a restart. The base is discarded whole, so the restart is a fresh pod's: every
// file of either side is kept (what was deleted on one side meanwhile is restored from the other, as
// documented), the local edit survives as a conflict copy, and nothing else moves.
func TestGarbledStateDirRestoresAndLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		garble func(t *testing.T, file string)
	}{
		{"truncated to zero", func(t *testing.T, file string) {
			if err := os.Truncate(file, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"random bytes", func(t *testing.T, file string) {
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			junk := make([]byte, max(st.Size(), 64))
			_, _ = rand.Read(junk)
			if err := os.WriteFile(file, junk, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(t)
			a, c, kept := downWhileChanged(t, b)
			for _, f := range stateFiles(t, a.state) {
				tc.garble(t, f)
			}
			a.start()
			objs := converged(t, b, a, c)
			for p, v := range kept {
				if objs[p] != v {
					t.Errorf("%s = %q after the restart, want %q", p, objs[p], v)
				}
			}
			// Documented for a restart without a base: both deletes are undone (restored from the other side).
			if objs["uploads/remote-deleted.jpg"] != "rd" || objs["uploads/local-deleted.jpg"] != "ld" {
				t.Errorf("without a base the deletes made meanwhile should be restored, got\n%s", describe(objs))
			}
			// The local edit made meanwhile is a conflict: the bucket's version keeps the path, the edit is kept
			// as a conflict copy.
			if objs["uploads/edited.jpg"] != "before" {
				t.Errorf("edited.jpg = %q, want the bucket's version to keep the path", objs["uploads/edited.jpg"])
			}
			var copies []string
			for k, v := range b.objects() {
				if strings.HasPrefix(k, ".filesync/conflicts/uploads/edited.jpg.a.") && v == "edited while down" {
					copies = append(copies, k)
				}
			}
			if len(copies) != 1 {
				t.Errorf("the edit made while down has %d conflict copies, want 1: %v", len(copies), copies)
			}
			if n := len(objs); n != len(kept)+3 {
				t.Errorf("bucket holds %d synced objects, want %d:\n%s", n, len(kept)+3, describe(objs))
			}
		})
	}
}

// TestTornJournalKeepsTheRestOfTheBase: the journal's last line cut short (a crash mid-append, or a disk
// that lost the tail). Only that line is ignored: the rest of the base survives, so the deletes made
// while down still propagate (nothing resurrected), and the path of the torn line is recorded again (its
// content is the same on both sides) without a conflict copy.
func TestTornJournalKeepsTheRestOfTheBase(t *testing.T) {
	b := newBucket(t)
	a, c, kept := downWhileChanged(t, b)
	journal := filepath.Join(a.state, "filesync-state.journal")
	j, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), "uploads/last.jpg") {
		t.Fatalf("setup: the journal does not hold the last change:\n%s", j)
	}
	if err := os.Truncate(journal, int64(len(j)-5)); err != nil {
		t.Fatal(err)
	}
	a.start()
	objs := converged(t, b, a, c)
	want := map[string]string{"uploads/edited.jpg": "edited while down"}
	for p, v := range kept {
		want[p] = v
	}
	if !equalMaps(objs, want) {
		t.Fatalf("after the restart over a torn journal the bucket holds\n%swant\n%s", describe(objs), describe(want))
	}
	for k := range b.objects() {
		if strings.HasPrefix(k, ".filesync/") {
			t.Errorf("unexpected %s (the base of the untorn lines was lost?)", k)
		}
	}
}
