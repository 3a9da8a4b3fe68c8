package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// ErrNotFetchable: the path may not be fetched (internal, excluded, unsafe, stored gzip-encoded).
var ErrNotFetchable = errors.New("not fetchable")

// Fetch looks path up in the bucket itself (not the listing, which may be a poll old), downloads it with
// the usual temp + CRC32C + rename into the directory, records it in the view like any download, and
// returns the local file's stamp: the read-through's miss path. gcsstore.ErrNotFound if there is no such
// object, or if the path is in the base with that very generation (the app deleted the file here and the
// pass has yet to delete the object: fetching it back would undo the delete). Safe for concurrent use with
// passes.
//
// It does not write the base: a pass running at the same time may have scanned before the rename and
// snapshot the base after it, and would then read "absent locally, = base generation remotely" as a local
// delete and delete the object. Without a base entry the pass sees "absent, present, no base" (a download,
// refused because the file is there now: re-planned) or "same content on both sides" (record the base), so
// the next pass (the rename's fsnotify event triggers one) records it.
func (s *Syncer) Fetch(ctx context.Context, path string) (localfs.Stamp, error) {
	if filter.Internal(path) || s.filter.Excluded(path) {
		return localfs.Stamp{}, fmt.Errorf("fetch %s: %w: excluded", path, ErrNotFetchable)
	}
	if err := filter.CheckName(path); err != nil {
		return localfs.Stamp{}, fmt.Errorf("fetch %s: %w: %w", path, ErrNotFetchable, err)
	}
	if st, err := s.dir.Stat(path); err == nil {
		return st, nil // there already (a pass or another fetch was first)
	}
	o, err := s.store.Stat(ctx, path)
	if err != nil {
		return localfs.Stamp{}, err
	}
	if o.ContentEncoding == "gzip" {
		return localfs.Stamp{}, fmt.Errorf("fetch %s: %w: stored with Content-Encoding: gzip", path, ErrNotFetchable)
	}
	if b, ok := s.base.Get(path); ok && b.Generation == o.Generation {
		if st, err := s.dir.Stat(path); err == nil {
			return st, nil // a pass downloaded it meanwhile (it renames before it records the base)
		}
		return localfs.Stamp{}, fmt.Errorf("fetch %s: %w: deleted locally, not yet in the bucket", path, gcsstore.ErrNotFound)
	}
	r := plan.Remote{Generation: o.Generation, Size: o.Size, CRC32C: o.CRC32C, ModTime: o.ModTime}
	rd, err := s.store.Open(ctx, path, o.Generation)
	if err != nil {
		return localfs.Stamp{}, err
	}
	defer rd.Close()
	st, err := s.dir.WriteAtomic(path, rd, rd.Object.Size, rd.Object.CRC32C, unixTime(r.ModTime), localfs.Expect{Absent: true})
	if errors.Is(err, localfs.ErrChanged) {
		if st, serr := s.dir.Stat(path); serr == nil {
			return st, nil // someone else put it there meanwhile
		}
	}
	if err != nil {
		return localfs.Stamp{}, fmt.Errorf("fetch %s: %w", path, err)
	}
	s.written.Store(true)
	s.addToView(path, r)
	s.m.Downloads.Inc()
	s.m.Bytes.WithLabelValues("download").Add(float64(o.Size))
	s.log.Debug("fetched for a read-through", "path", path, "generation", o.Generation, "bytes", o.Size)
	return st, nil
}

// addToView puts a fetched object in the view. A pass may be reading the map it got from its listing (the
// same map as s.view) without the lock, so the view is replaced by a copy, never written in place.
func (s *Syncer) addToView(path string, r plan.Remote) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := maps.Clone(s.view)
	v[path] = r
	s.view = v
}

// unixTime is a time from unix seconds; 0 (unknown) is the zero time.
func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
