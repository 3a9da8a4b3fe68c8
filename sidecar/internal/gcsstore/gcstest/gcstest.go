// Package gcstest starts the in-process fake-gcs-server the sidecar's tests run the real storage client
// against (no listener: its own HTTP client reaches it).
package gcstest

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// NewServer returns an in-process fake-gcs-server holding the empty bucket, stopped when the test ends.
func NewServer(t testing.TB, bucket string) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	return srv
}
