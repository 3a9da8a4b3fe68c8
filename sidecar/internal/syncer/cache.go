package syncer

import (
	"context"
	"sort"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// The lazy cache (--cache-size, docs/design.md "Lazy paths"): the local files at lazy paths may hold at
// most CacheSize bytes. Every lazy download takes room in it before it starts (reserveRoom): the
// background fill stops short of it; a read-through fetch that finds it full asks the loop to evict and
// waits for the room (at most fetchRoomWait: the app is served in any case). The pass's end evicts the
// least recently read lazy files (by atime, which the kernel keeps with relatime: a file read since it
// was written counts as more recent than one never read) while they exceed the budget less the room the
// waiting fetches need, down to cacheLowWater of the budget, so that one more fetch does not evict again
// at once. So disk use stays within the budget plus the downloads in flight, unless the app writes more
// (its files are never evicted before they are uploaded). An evicted file becomes remote-only again: the
// read-through fetches it when it is asked for.
//
// Only a file in sync is evicted: its base records this very file (stamp) and the bucket still holds
// that generation. A file written or changed here, not yet uploaded, one settling, backing off or open
// for writing, is never evicted. The loop evicts (it owns the index and the base): the file's removal
// (only if it still has that stamp) and its base turning remote-only are one step of the loop, so no
// pass ever sees the absence as a delete.

// cacheLowWater is the share of CacheSize an eviction brings the lazy files down to.
const cacheLowWater = 0.9

// evict evicts lazy files while they exceed CacheSize, less the room the read-through fetches waiting
// for it need. (The downloads in flight took their room when they started: a finished one is counted
// before it gives its reservation back, so counting reservations here would evict for it twice.) The
// loop's.
func (s *Syncer) evict() {
	need := s.fill.wanted.Load()
	if s.opt.CacheSize <= 0 || s.idx.lazyBytes+need <= s.opt.CacheSize || !s.Ready() {
		return
	}
	type candidate struct {
		path string
		f    snapshot.File
		read time.Time
	}
	var cands []candidate
	now := s.now()
	for path, f := range s.idx.local {
		if !s.lazy(path) {
			continue
		}
		b, ok := s.base.Get(path)
		r, inBucket := s.idx.remote.Get(path)
		if !ok || b.RemoteOnly || !b.Knows(f.Stamp) || !inBucket || r.Generation != b.Generation ||
			s.holds.isFresh(path) || s.holds.backingOff(path, now) || s.leftAlone(path) {
			continue
		}
		read, err := s.dir.ReadTime(path)
		if err != nil {
			continue
		}
		cands = append(cands, candidate{path: path, f: f, read: read})
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].read.Equal(cands[j].read) {
			return cands[i].read.Before(cands[j].read)
		}
		return cands[i].path < cands[j].path
	})
	target := min(int64(float64(s.opt.CacheSize)*cacheLowWater), s.opt.CacheSize-need)
	evicted, freed := 0, int64(0)
	for _, c := range cands {
		if s.idx.lazyBytes <= target {
			break
		}
		if s.dir.InUse(c.path) {
			continue
		}
		if err := s.dir.Remove(c.path, c.f.Stamp); err != nil {
			s.log.Debug("not evicted: changed or in use", "path", c.path, "err", err)
			continue
		}
		r, _ := s.idx.remote.Get(c.path)
		s.idx.dropLocal(c.path)
		s.idx.setBase(c.path, snapshot.Base{Object: r, RemoteOnly: true})
		evicted++
		freed += c.f.Size
	}
	if evicted > 0 {
		s.m.LazyEvictions.Add(float64(evicted))
		s.log.Info("evicted lazy files over --cache-size: the read-through fetches them again when asked",
			"files", evicted, "bytes", freed, "cache_bytes", s.idx.lazyBytes, "cache_size", s.opt.CacheSize)
	} else if len(cands) == 0 {
		s.log.Debug("over --cache-size with no lazy file in sync to evict", "cache_bytes", s.idx.lazyBytes)
	}
}

// reserveRoom takes room for a lazy download of size bytes, if CacheSize has it: the lazy files the last
// pass counted, plus those fetched since (not yet counted), plus the downloads in flight, plus this one.
// A download that took room gives it back when it ends (releaseRoom): by then handFetched counts it.
func (s *Syncer) reserveRoom(size int64) bool {
	s.fill.room.Lock()
	defer s.fill.room.Unlock()
	if s.opt.CacheSize > 0 && s.status.cacheBytes.Load()+s.fill.uncounted.Load()+s.fill.reserved+size > s.opt.CacheSize {
		return false
	}
	s.fill.reserved += size
	return true
}

// releaseRoom gives back the room a download took.
func (s *Syncer) releaseRoom(size int64) {
	s.fill.room.Lock()
	s.fill.reserved -= size
	s.fill.room.Unlock()
}

// fetchRoomWait is how long a read-through fetch waits for the loop to evict room for it in a full cache
// before it downloads anyway: the app's request is served in any case.
const fetchRoomWait = 2 * time.Second

// roomForFetch takes room for a read-through fetch of size bytes at a lazy path: when the cache is full,
// it asks the loop to evict (a pass, whose end evicts for the bytes wanted too) and waits for the room,
// at most fetchRoomWait. It returns what to give back (releaseRoom) when the fetch ends (0: it took none).
func (s *Syncer) roomForFetch(ctx context.Context, path string, size int64) int64 {
	if s.opt.CacheSize <= 0 || !s.lazy(path) {
		return 0
	}
	if s.reserveRoom(size) {
		return size
	}
	if size > s.opt.CacheSize {
		return 0 // never fits: served all the same, and evicted by the next pass
	}
	s.fill.wanted.Add(size)
	defer s.fill.wanted.Add(-size)
	deadline := time.Now().Add(fetchRoomWait)
	for time.Now().Before(deadline) {
		s.intake.add(func(*intake) {}) // a pass: its end evicts
		if !backoff.Sleep(ctx, 10*time.Millisecond) {
			return 0
		}
		if s.reserveRoom(size) {
			return size
		}
	}
	s.log.Debug("no room evicted in time for a read-through fetch: fetched over --cache-size", "path", path, "bytes", size)
	return 0
}
