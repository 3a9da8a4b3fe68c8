package syncer

import (
	"context"
	"testing"
	"time"
)

// TestForgedNotificationsChangeNothing: notifications are hints, checked against the bucket (docs/design.md,
// "Remote changes"). A DELETE for an object that still exists (its own generation, or a newer one), a
// FINALIZE of a generation that does not exist, a FINALIZE for an object that was never written, and one
// naming a path outside --dir delete, download or resurrect nothing, in any order and any number of times.
// (Other buckets and prefixes never reach the syncer: notify's subscription filter and Decide drop them,
// tested in notify's TestFilterKeepsOtherBucketsAndPrefixesOut and TestDecide.)
func TestForgedNotificationsChangeNothing(t *testing.T) {
	b := newBucket(t)
	quiet := withOptions(func(o *Options) { o.PollInterval = time.Hour; o.RescanInterval = time.Hour })
	a := b.replica("a", quiet)
	a.write("uploads/keep.jpg", "keep")
	a.write("uploads/also.jpg", "also")
	a.settle()
	a.run()
	gen := b.generation("uploads/keep.jpg")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	forged := []RemoteChange{
		{Path: "uploads/keep.jpg", Generation: gen, Deleted: true},        // the live generation "deleted"
		{Path: "uploads/keep.jpg", Generation: gen + 1000, Deleted: true}, // a newer generation "deleted"
		{Path: "uploads/keep.jpg", Generation: gen + 1000},                // a FINALIZE of no such generation
		{Path: "uploads/never-written.jpg", Generation: 42},               // an object that does not exist
		{Path: "uploads/never-written.jpg", Generation: 42, Deleted: true},
		{Path: "../outside.jpg", Generation: 1},  // a path that would leave --dir
		{Path: ".filesync/tmp/x", Generation: 1}, // filesync's own folder
	}
	for round := range 3 { // duplicated, and reversed on the second round
		for i := range forged {
			c := forged[i]
			if round == 1 {
				c = forged[len(forged)-1-i]
			}
			if err := a.s.ApplyRemote(ctx, c); err != nil {
				t.Fatalf("ApplyRemote(%+v): %v", c, err)
			}
		}
	}
	want := map[string]string{"uploads/keep.jpg": "keep", "uploads/also.jpg": "also"}
	if got := a.files(); !equalMaps(got, want) {
		t.Fatalf("after forged notifications the directory has\n%s", describe(got))
	}
	if got := b.objects(); !equalMaps(got, want) {
		t.Fatalf("after forged notifications the bucket has\n%s", describe(got))
	}
	if g := b.generation("uploads/keep.jpg"); g != gen {
		t.Fatalf("keep.jpg was rewritten: generation %d, was %d", g, gen)
	}
	// A real delete afterwards still propagates: the forged ones did not leave the view confused.
	also := b.generation("uploads/also.jpg")
	b.del(testPrefix + "/uploads/also.jpg")
	if err := a.s.ApplyRemote(ctx, RemoteChange{Path: "uploads/also.jpg", Generation: also, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"uploads/keep.jpg": "keep"}
	if got := a.files(); !equalMaps(got, want) {
		t.Fatalf("a real delete after the forged ones: the directory has\n%s", describe(got))
	}
}
