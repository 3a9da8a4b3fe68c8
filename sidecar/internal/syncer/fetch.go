package syncer

import (
	"context"
	"errors"
	"fmt"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// ErrNotFetchable: the path may not be fetched (internal, excluded, unsafe, or an object the sync leaves
// alone: stored gzip-encoded, or also a folder of other objects).
var ErrNotFetchable = errors.New("not fetchable")

// Fetch looks path up in the bucket itself (not the listing, which may be a poll old), downloads it with
// the usual temp + CRC32C + rename into the directory, records it in the view like any download, and
// returns the local file's stamp: the read-through's miss path. gcsstore.ErrNotFound if there is no such
// object, or if the path is in the base with that very generation (the app deleted the file here and the
// pass has yet to delete the object: fetching it back would undo the delete), unless that base is
// remote-only (a lazy path never fetched here: its absence is no delete). The rules are the sync's
// (rules.go): an object the loop would leave alone is never written, so a fetch never takes a path that is
// a folder in the bucket (that costs one more request, a listing of one object, for an object found).
// Safe for concurrent use with passes.
//
// It does not write the base: a pass running at the same time may have scanned before the rename and
// snapshot the base after it, and would then read "absent locally, = base generation remotely" as a local
// delete and delete the object. Without a base entry the pass sees "absent, present, no base" (a download,
// refused because the file is there now: re-planned) or "same content on both sides" (record the base), so
// the next pass (the rename's fsnotify event triggers one) records it. Nor does it touch the loop's index:
// the object goes to the loop through the intake (fetched), like every other hint.
func (s *Syncer) Fetch(ctx context.Context, path string) (snapshot.Stamp, error) {
	switch ignore, _, unsafe := s.nameRule(path); {
	case ignore:
		return snapshot.Stamp{}, fmt.Errorf("fetch %s: %w: excluded", path, ErrNotFetchable)
	case unsafe != nil:
		return snapshot.Stamp{}, fmt.Errorf("fetch %s: %w: %w", path, ErrNotFetchable, unsafe)
	}
	if st, err := s.dir.Stat(path); err == nil {
		return st, nil // there already (a pass or another fetch was first)
	}
	s.fill.fetching.Add(1) // the background fill waits while the app's misses are fetched
	defer s.fill.fetching.Add(-1)
	o, err := s.fetchable(ctx, path)
	if err != nil {
		return snapshot.Stamp{}, err
	}
	if b, ok := s.base.Get(path); ok && b.Generation == o.Generation && !b.RemoteOnly {
		if st, err := s.dir.Stat(path); err == nil {
			return st, nil // a pass downloaded it meanwhile (it renames before it records the base)
		}
		return snapshot.Stamp{}, fmt.Errorf("fetch %s: %w: deleted locally, not yet in the bucket", path, gcsstore.ErrNotFound)
	}
	took := s.roomForFetch(ctx, path, o.Size)
	st, err := s.writeFetched(ctx, "fetch", path, o.Object)
	s.releaseRoom(took)
	if errors.Is(err, localfs.ErrChanged) {
		if st, serr := s.dir.Stat(path); serr == nil {
			return st, nil // someone else put it there meanwhile
		}
	}
	if err != nil {
		return snapshot.Stamp{}, err
	}
	s.log.Debug("fetched for a read-through", "path", path, "generation", o.Generation, "bytes", o.Size)
	return st, nil
}

// writeFetched downloads generation o of path into the directory where no file is (temp file, CRC32C,
// rename; localfs.ErrChanged if a file appeared meanwhile: never over it), hands it to the loop
// (handFetched) and counts the download: a fetch's and the background fill's one way in, outside a pass.
// A failed write is wrapped as "VERB PATH: ...". It does not beat the loop's heartbeat: it is not the loop.
func (s *Syncer) writeFetched(ctx context.Context, verb, path string, o snapshot.Object) (snapshot.Stamp, error) {
	rd, err := s.store.Open(ctx, path, o.Generation)
	if err != nil {
		return snapshot.Stamp{}, err
	}
	defer rd.Close()
	st, err := s.dir.WriteAtomic(path, rd, rd.Object.Size, rd.Object.CRC32C, o.ModTime, localfs.Expect{Absent: true})
	if err != nil {
		return snapshot.Stamp{}, fmt.Errorf("%s %s: %w", verb, path, err)
	}
	s.handFetched(path, o)
	s.m.Downloads.Inc()
	s.m.Bytes.WithLabelValues("download").Add(float64(rd.Object.Size))
	return st, nil
}

// fetchable looks the object up and applies objectRule to it: ErrNotFetchable for an object the loop
// leaves alone.
func (s *Syncer) fetchable(ctx context.Context, path string) (gcsstore.Object, error) {
	o, err := s.store.Stat(ctx, path)
	if err != nil {
		return gcsstore.Object{}, err
	}
	folder := false
	if o.ContentEncoding != "gzip" {
		if folder, err = s.store.IsFolder(ctx, path); err != nil {
			return gcsstore.Object{}, err
		}
	}
	if why := objectRule(o.ContentEncoding, folder); why != noReason {
		return gcsstore.Object{}, fmt.Errorf("fetch %s: %w: %s", path, ErrNotFetchable, why.label())
	}
	return o, nil
}
