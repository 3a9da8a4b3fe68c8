package syncer

import (
	"sort"
	"time"

	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// The lazy cache (--cache-size, docs/design.md "Lazy paths"): the local files at lazy paths may hold at
// most CacheSize bytes. The background fill stops short of it (fillRoom); when the read-through or the
// app takes them over it, the pass's end evicts the least recently read of them (by atime, which the
// kernel keeps with relatime: a file read since it was written counts as more recent than one never
// read) down to cacheLowWater of the budget, so that one more fetch does not evict again at once. An
// evicted file becomes remote-only again: the read-through fetches it when it is asked for.
//
// Only a file in sync is evicted: its base records this very file (stamp) and the bucket still holds
// that generation. A file written or changed here, not yet uploaded, one settling, backing off or open
// for writing, is never evicted. The loop evicts (it owns the index and the base): the file's removal
// (only if it still has that stamp) and its base turning remote-only are one step of the loop, so no
// pass ever sees the absence as a delete.

// cacheLowWater is the share of CacheSize an eviction brings the lazy files down to.
const cacheLowWater = 0.9

// evict evicts lazy files while they exceed CacheSize. The loop's.
func (s *Syncer) evict() {
	if s.opt.CacheSize <= 0 || s.idx.lazyBytes <= s.opt.CacheSize || !s.Ready() {
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
	target := int64(float64(s.opt.CacheSize) * cacheLowWater)
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

// fillRoom reports whether the fill may download size more bytes within CacheSize: the lazy files the
// last pass counted, plus those fetched since (not yet counted), plus this one.
func (s *Syncer) fillRoom(size int64) bool {
	return s.opt.CacheSize <= 0 || s.status.cacheBytes.Load()+s.fill.uncounted.Load()+size <= s.opt.CacheSize
}
