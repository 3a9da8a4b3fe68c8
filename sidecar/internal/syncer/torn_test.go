package syncer

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A file rewritten while it uploads (issue 22, item 7). The upload streams the file: a file over 8 MiB
// goes up in 8 MiB chunks, so truncating it after the first chunk was sent tears what the rest of the
// upload reads. docs/design.md ("Writes are fenced by generation"): an upload whose stored object differs
// from what was sent is recorded as what the bucket holds and planned again; so is a file that changed
// while it was uploaded.

const bigSize = 20 << 20

// truncateOnChunk truncates the replica's file rel to keep bytes once, when the first upload request of a
// resumable session (one naming its upload_id) goes out: after the first chunk was read from the file.
func truncateOnChunk(t *testing.T, file *string, keep int64, fired *atomic.Bool) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.RawQuery, "upload_id=") && *file != "" &&
				fired.CompareAndSwap(false, true) {
				if err := os.Truncate(*file, keep); err != nil {
					t.Errorf("truncate: %v", err)
				}
			}
			return next.RoundTrip(r)
		})
	}
}

// TestFileTruncatedWhileItUploads: a 20 MiB file rewritten (new content) is truncated to 1 KiB while its
// upload is under way. Whatever the bucket holds after that pass, the base agrees with it and does not call
// the local file in sync; a second replica never keeps a torn copy; and everything converges on the final
// (truncated) content.
func TestFileTruncatedWhileItUploads(t *testing.T) {
	b := newBucket(t)
	var file string
	var fired atomic.Bool
	a := b.replica("a", withTransport(truncateOnChunk(t, &file, 1024, &fired)))
	c := b.replica("b")
	old, nu := strings.Repeat("o", bigSize), strings.Repeat("n", bigSize)
	a.write("big.bin", old)
	a.settle()
	c.settle()
	// The app rewrites the file; the upload starts; the app truncates it after the first chunk went out.
	a.write("big.bin", nu)
	file = filepath.Join(a.dir, "big.bin")
	res, err := a.s.Pass(context.Background(), true)
	t.Logf("torn pass: done=%d failed=%d replan=%v err=%v", res.Done, res.Failed, res.Replan, err)
	if !fired.Load() {
		t.Fatal("setup: the upload was not chunked, nothing was truncated mid-upload")
	}
	obj := b.objects()["big.bin"]
	e, known := a.s.base.Get("big.bin")
	t.Logf("after the torn pass the bucket holds %d bytes (old %v, new %v), base known=%v gen=%d size=%d mtime=%d",
		len(obj), obj == old, obj == nu, known, e.Generation, e.Size, e.ModTime)
	if known {
		if g := b.generation("big.bin"); e.Generation != g || e.Size != int64(len(obj)) {
			t.Errorf("the base (generation %d, %d bytes) disagrees with the bucket (generation %d, %d bytes)",
				e.Generation, e.Size, g, len(obj))
		}
		if st, err := os.Stat(file); err == nil && e.ModTime == st.ModTime().UnixNano() && st.Size() != e.Size {
			t.Errorf("the base calls the truncated local file (%d bytes) in sync with %d bytes", st.Size(), e.Size)
		}
	}
	// The bucket holds the old content or a whole new one, never the torn bytes of an aborted upload.
	if obj != old && obj != nu && obj != nu[:1024] {
		t.Errorf("the aborted upload was published: the bucket holds a torn object of %d bytes", len(obj))
	}
	// A second replica passing now must not end up with a torn file.
	_, _ = c.s.Pass(context.Background(), true)
	if got := c.files()["big.bin"]; got != old && got != nu && got != nu[:1024] {
		t.Errorf("[b] downloaded a torn copy of %d bytes", len(got))
	}
	// Then everything converges on the final content, at its path (not as a conflict copy).
	want := map[string]string{"big.bin": nu[:1024]}
	deadline := time.Now().Add(20 * time.Second)
	for {
		a.settle()
		c.settle()
		if equalMaps(b.objects(), want) && equalMaps(a.files(), want) && equalMaps(c.files(), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not converge on the truncated content: bucket %d bytes, a %d, b %d",
				len(b.objects()["big.bin"]), len(a.files()["big.bin"]), len(c.files()["big.bin"]))
		}
	}
}
