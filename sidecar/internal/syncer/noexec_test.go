package syncer

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNoExecObjectsAreSkippedAndCounted (issue 22, F4): with --no-exec uploads/**, scripts in the bucket
// under uploads/ are never written locally, whether a listing or a notification brings them; each is
// reported once (filesync_skipped_paths_total{reason="exec"}), however many passes see it; the images
// beside them, and PHP outside the globs, sync as ever.
func TestNoExecObjectsAreSkippedAndCounted(t *testing.T) {
	b := newBucket(t)
	for _, name := range []string{"uploads/a.php", "uploads/x.php.jpg", "uploads/.htaccess", "uploads/ok.jpg", "plugins/p/p.php"} {
		b.put(testPrefix+"/"+name, "<?php system($_GET['c']);")
	}
	r := b.replica("a", withNoExec("uploads/**"))
	r.settle()
	r.settle()
	exec := func() float64 { return testutil.ToFloat64(r.m.SkippedPaths.WithLabelValues("exec")) }
	want := map[string]string{"uploads/ok.jpg": "<?php system($_GET['c']);", "plugins/p/p.php": "<?php system($_GET['c']);"}
	if got := r.files(); !equalMaps(got, want) {
		t.Fatalf("local files:\n%s", describe(got))
	}
	if n := exec(); n != 3 {
		t.Fatalf("skipped{exec} = %v after two passes, want 3 (once each)", n)
	}
	b.put(testPrefix+"/uploads/2026/b.pHp7", "<?php")
	r.run()
	if err := r.s.ApplyRemote(context.Background(), RemoteChange{Path: "uploads/2026/b.pHp7", Generation: b.generation("uploads/2026/b.pHp7")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.files()["uploads/2026/b.pHp7"]; ok {
		t.Fatal("a notified script was written under uploads/")
	}
	if n := exec(); n != 4 {
		t.Fatalf("skipped{exec} = %v after the notification, want 4", n)
	}
}
