package syncer

import (
	"strings"
	"testing"
)

// What filesync reads from and writes to objects besides their bytes (issue 24): the Content-Type of the
// path, the mtime other tools write, mtimes at or before 1970, and the Cloud Console's folder placeholders.

// putMeta writes an object directly, with custom metadata, as another tool would.
// TestConflictCopyHasTheContentTypeOfItsPath: a conflict copy's name ends in the writer's pod and a unix
// time, yet it is stored with the Content-Type of the path it preserves.
func TestConflictCopyHasTheContentTypeOfItsPath(t *testing.T) {
	b := newBucket(t)
	a, c := b.replica("a"), b.replica("b")
	a.write("theme/style.css", "body { color: red }")
	c.write("theme/style.css", "body { color: blue }")
	a.settle()
	c.settle()
	n := 0
	for name := range b.objects() {
		if !strings.HasPrefix(name, ".filesync/conflicts/theme/style.css.b.") {
			continue
		}
		n++
		o, err := b.srv.GetObject(testBucket, testPrefix+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if o.ContentType != "text/css" {
			t.Errorf("conflict copy %s stored as %q, want text/css", name, o.ContentType)
		}
	}
	if n != 1 {
		t.Fatalf("%d conflict copies, want 1:\n%s", n, describe(b.objects()))
	}
}

// TestRcloneMtimeIsRead: an object carrying only rclone's mtime key (RFC 3339, nanoseconds: what rclone
// before v1.56 wrote) restores with that mtime to the nanosecond; with both keys, agreeing to the second,
// rclone's finer one is taken; when they disagree, goog-reserved-file-mtime wins.
// TestMtimesAtAndBefore1970RoundTrip: a file dated before 1970 (negative unix seconds) or exactly at the
// epoch keeps its mtime on every replica and after a restore, instead of taking the upload time.
// TestFolderPlaceholdersAreIgnored: zero-byte objects named "dir/" (the Cloud Console's "Create folder")
// are not files: never warned about nor counted as unsafe, never downloaded (no empty directory either),
// never deleted, and a placeholder "a/" does not make an object or a file "a" a folder.
