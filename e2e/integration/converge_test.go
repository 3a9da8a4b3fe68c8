//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// TestTwoContainersConverge: two filesync containers that share nothing but the bucket. A file the app
// writes into one container's directory is uploaded and appears, byte for byte, in the other's; a file
// large enough for a resumable upload (it goes through fake-gcs-server's -external-url) does too; a
// delete in the bucket then removes the file from both directories.
func TestTwoContainersConverge(t *testing.T) {
	s := newStack(t)
	a := s.startReplica(t, "replica-a", replicaOptions{})
	b := s.startReplica(t, "replica-b", replicaOptions{})

	photo := harness.RandomBytes(300 << 10)
	video := harness.RandomBytes(17 << 20) // above the Go client's 16 MiB chunk: a resumable upload
	note := []byte("written on replica-b\n")
	a.writeFile(t, "uploads/2026/11/photo.jpg", photo)
	a.writeFile(t, "uploads/2026/11/video.mp4", video)
	b.writeFile(t, "uploads/2026/11/note.txt", note)

	cases := []struct {
		on   *replica
		rel  string
		want []byte
	}{
		{b, "uploads/2026/11/photo.jpg", photo},
		{b, "uploads/2026/11/video.mp4", video},
		{a, "uploads/2026/11/note.txt", note},
	}
	for _, tc := range cases {
		eventually(t, 60*time.Second, fmt.Sprintf("%s appears on %s", tc.rel, tc.on.name), func(ctx context.Context) error {
			got, err := tc.on.readFile(ctx, tc.rel)
			if err != nil {
				return err
			}
			if !bytes.Equal(got.data, tc.want) {
				return fmt.Errorf("%s on %s: %d bytes, want the %d written", tc.rel, tc.on.name, len(got.data), len(tc.want))
			}
			return nil
		})
	}

	// The bucket holds each file once, under the prefix, with the same content.
	objs, err := s.listObjects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if !slices.Contains(objs, objectName(tc.rel)) {
			t.Errorf("bucket has no %s; objects: %v", objectName(tc.rel), objs)
			continue
		}
		got, err := s.readObject(t.Context(), objectName(tc.rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("object %s: %d bytes, want %d", objectName(tc.rel), len(got), len(tc.want))
		}
	}

	// Both replicas now hold the same three files and nothing else (no temp files left behind).
	for _, r := range []*replica{a, b} {
		tree, err := r.readTree(t.Context(), syncDir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name := range tree {
			names = append(names, name)
		}
		slices.Sort(names)
		want := []string{"uploads/2026/11/note.txt", "uploads/2026/11/photo.jpg", "uploads/2026/11/video.mp4"}
		if !slices.Equal(names, want) {
			t.Errorf("%s holds %v, want %v", r.name, names, want)
		}
	}

	// A delete in the bucket (another replica's, or an operator's) removes the file on both, and only it.
	if err := s.api.Delete(t.Context(), bucket, objectName("uploads/2026/11/note.txt")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{a, b} {
		eventually(t, 60*time.Second, "note.txt deleted on "+r.name, func(ctx context.Context) error {
			tree, err := r.readTree(ctx, syncDir)
			if err != nil {
				return err
			}
			if _, ok := tree["uploads/2026/11/note.txt"]; ok {
				return fmt.Errorf("note.txt is still on %s", r.name)
			}
			if _, ok := tree["uploads/2026/11/photo.jpg"]; !ok {
				return fmt.Errorf("photo.jpg vanished from %s", r.name)
			}
			return nil
		})
	}
}
