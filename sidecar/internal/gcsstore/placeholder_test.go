package gcsstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/filesync/filesync/sidecar/internal/gsurl"
)

func TestFolderPlaceholdersAreNotObjects(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	for _, name := range []string{"p/", "p/a", "p/a/", "p/b", "p/b/c/", "p/d/", "p/d/e", "p/f/"} {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt", Name: name}, Content: []byte{}})
	}
	for i := range 1100 { // a second page: the split listing
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "bkt",
			Name: fmt.Sprintf("p/z/%04d", i)}, Content: []byte{}})
	}
	s := New(srv.Client(), gsurl.Location{Bucket: "bkt", Prefix: "p"}, nil)
	for _, parallel := range []int{1, 8} {
		got := map[string]bool{}
		if err := s.List(ctx, parallel, func(o Object) {
			if !strings.HasPrefix(o.Name, "z/") {
				got[o.Name] = o.Folder
			}
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"a": false, "b": false, "d/e": false}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("parallel %d: listed %v, want %v", parallel, got, want)
		}
	}
	for rel, want := range map[string]bool{"a": false, "b": false, "d": true, "f": false, "z": true} {
		if got, err := s.IsFolder(ctx, rel); err != nil || got != want {
			t.Errorf("IsFolder(%s) = %v, %v; want %v", rel, got, err, want)
		}
	}
}
