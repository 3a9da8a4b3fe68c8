package syncer

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestConcurrentWritesKeepBothVersions: two replicas write the same path; the first upload keeps the path
// everywhere, the other version is preserved under .filesync/conflicts/, nothing is lost.
func TestConcurrentWritesKeepBothVersions(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("same.jpg", "version A")
	c.write("same.jpg", "version B!")
	a.settle() // A uploads first (create-only)
	c.settle() // B finds a different remote with no base: conflict
	a.settle()
	for _, r := range []*replica{a, c} {
		if got := r.files()["same.jpg"]; got != "version A" {
			t.Fatalf("[%s] same.jpg = %q, want the remote version", r.name, got)
		}
	}
	var copies []string
	for name, content := range b.objects() {
		if strings.HasPrefix(name, ".filesync/conflicts/same.jpg.b.") {
			copies = append(copies, name)
			if content != "version B!" {
				t.Fatalf("conflict copy holds %q", content)
			}
		}
	}
	if len(copies) != 1 {
		t.Fatalf("want one conflict copy from b, got %v\n%s", copies, describe(b.objects()))
	}
	if testutil.ToFloat64(c.m.Conflicts) != 1 {
		t.Fatal("conflict metric not incremented")
	}
	// The conflict folder is never synced down.
	for _, r := range []*replica{a, c} {
		for p := range r.files() {
			if strings.HasPrefix(p, ".filesync") {
				t.Fatalf("[%s] synced internal path %s", r.name, p)
			}
		}
	}
}

// TestPreconditionNeverOverwrites: both replicas edit a synced file; the second writer's upload is refused
// (412) instead of overwriting, and its version becomes a conflict copy.
func TestPreconditionNeverOverwrites(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("doc.txt", "v1")
	a.settle()
	c.settle()
	a.write("doc.txt", "v2 from a")
	c.write("doc.txt", "v2 from b, longer")
	// B plans from its last listing (a local change needs no new listing) an upload conditioned on v1's
	// generation, but A gets there first.
	a.settle()
	res, err := c.s.Pass(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replan {
		t.Fatalf("b's upload should have hit a precondition failure:\n%s", res.Plan)
	}
	if got := b.objects()["doc.txt"]; got != "v2 from a" {
		t.Fatalf("bucket doc.txt = %q: overwritten", got)
	}
	c.settle()
	if got := c.files()["doc.txt"]; got != "v2 from a" {
		t.Fatalf("b doc.txt = %q", got)
	}
	found := false
	for name, content := range b.objects() {
		if strings.HasPrefix(name, ".filesync/conflicts/doc.txt.b.") && content == "v2 from b, longer" {
			found = true
		}
	}
	if !found {
		t.Fatalf("b's version was lost:\n%s", describe(b.objects()))
	}
	if testutil.ToFloat64(c.m.Preconditions) < 1 {
		t.Fatal("precondition metric not incremented")
	}
}
