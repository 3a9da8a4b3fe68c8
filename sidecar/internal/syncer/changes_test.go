package syncer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// changeLog records what a replica reports through Options.OnChange.
type changeLog struct {
	mu  sync.Mutex
	got []Change
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, c)
}

// take returns what was reported since the last take, as "upload a.jpg@GEN" / "delete a.jpg@GEN".
func (l *changeLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.got {
		op := "upload"
		if c.Deleted {
			op = "delete"
		}
		if c.Time.IsZero() {
			op += "(no time)"
		}
		out = append(out, fmt.Sprintf("%s %s@%d", op, c.Path, c.Generation))
	}
	l.got = nil
	return strings.Join(out, ",")
}

func withChangeLog(l *changeLog) replicaOpt {
	return withOptions(func(o *Options) { o.OnChange = l.add })
}

// TestOnlyTheWriterReportsChanges (docs/design.md, "Change hooks"): the replica that uploads or deletes an
// object in the bucket reports it, with the generation stored or deleted; the replicas that download the
// object or delete their copy report nothing, so a CDN purge is sent once, not once per replica.
func TestOnlyTheWriterReportsChanges(t *testing.T) {
	b := newBucket(t)
	var la, lb changeLog
	a, c := b.replica("a", withChangeLog(&la)), b.replica("b", withChangeLog(&lb))
	for i := range 4 { // deletes are budgeted by --max-delete: known files that stay
		a.write(fmt.Sprintf("keep%d.jpg", i), "k")
	}
	a.settle()
	la.take()
	a.write("uploads/a.jpg", "v1")
	a.settle()
	g1 := b.generation("uploads/a.jpg")
	if got, want := la.take(), fmt.Sprintf("upload uploads/a.jpg@%d", g1); got != want {
		t.Fatalf("a reported %q after uploading, want %q", got, want)
	}
	c.settle()
	if got := lb.take(); got != "" {
		t.Fatalf("b reported %q after downloading", got)
	}

	a.write("uploads/a.jpg", "version 2") // an overwrite: the CDN's copy is stale now
	a.settle()
	g2 := b.generation("uploads/a.jpg")
	if got, want := la.take(), fmt.Sprintf("upload uploads/a.jpg@%d", g2); got != want || g2 == g1 {
		t.Fatalf("a reported %q after overwriting, want %q", got, want)
	}
	c.settle()

	c.remove("uploads/a.jpg") // deleted on b this time: b writes the bucket, b reports
	c.settle()
	if got, want := lb.take(), fmt.Sprintf("delete uploads/a.jpg@%d", g2); got != want {
		t.Fatalf("b reported %q after deleting, want %q", got, want)
	}
	a.settle()
	if _, ok := a.files()["uploads/a.jpg"]; ok {
		t.Fatal("the delete did not reach a")
	}
	if got := la.take(); got != "" {
		t.Fatalf("a reported %q after deleting its copy", got)
	}
}

// TestFlushReportsItsUploads: the uploads and deletes of the shutdown flush are reported like any other.
func TestFlushReportsItsUploads(t *testing.T) {
	b := newBucket(t)
	var l changeLog
	a := b.replica("a", withChangeLog(&l), withOptions(func(o *Options) { o.Settle = 1 << 40 }))
	a.write("late.jpg", "written just before SIGTERM")
	a.pass() // settling: nothing uploaded yet
	if got := l.take(); got != "" {
		t.Fatalf("reported %q before the upload", got)
	}
	if left, err := a.s.Flush(context.Background()); err != nil || len(left) != 0 {
		t.Fatalf("flush: %v, left %v", err, left)
	}
	if got, want := l.take(), fmt.Sprintf("upload late.jpg@%d", b.generation("late.jpg")); got != want {
		t.Fatalf("reported %q, want %q", got, want)
	}
}
