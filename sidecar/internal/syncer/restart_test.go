package syncer

import (
	"testing"
)

// TestRestartResumesWithBase: with --state-dir, a container restart keeps the base, so a file deleted while
// the sidecar was down is deleted remotely (without state it would be restored).
func TestRestartResumesWithBase(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withStateDir())
	a.write("keep.jpg", "k")
	a.write("delete-while-down.jpg", "d")
	a.settle()
	// The container stops; meanwhile the app deletes a file; the container starts again.
	a.remove("delete-while-down.jpg")
	a.start()
	a.settle()
	if _, ok := b.objects()["delete-while-down.jpg"]; ok {
		t.Fatal("the delete made during the restart did not propagate")
	}
	if _, ok := a.files()["delete-while-down.jpg"]; ok {
		t.Fatal("the deleted file came back")
	}
}

// TestRestartWithoutStateRestores: without --state-dir there is no base after a restart, and the same
// situation restores the file: the safe choice when nothing is known.
func TestRestartWithoutStateRestores(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	a.write("keep.jpg", "k")
	a.write("x.jpg", "x")
	a.settle()
	a.remove("x.jpg")
	a.start()
	a.settle()
	if a.files()["x.jpg"] != "x" {
		t.Fatal("without state the file should have been restored")
	}
}
