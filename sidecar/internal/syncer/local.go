package syncer

import (
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Observing the directory: a walk (the whole tree) or a look (the hinted paths), both brought into the
// index's local side. Files modified within the settle time are listed unhashed (holds.fresh); paths that
// cannot be read are held (holds.unreadable) so the plan leaves them alone.

// scanOptions are the options of every scan: a file whose stamp the base or the index knows is not read
// again; one modified within settle is listed unhashed (fresh).
func (s *Syncer) scanOptions(settle time.Duration, now time.Time) localfs.ScanOptions {
	return localfs.ScanOptions{
		Cache: func(rel string, st snapshot.Stamp) (uint32, bool) {
			if e, ok := s.base.Get(rel); ok && e.Knows(st) {
				return e.CRC32C, true
			}
			if f, ok := s.idx.local[rel]; ok && !s.holds.isFresh(rel) && f.Stamp == st {
				return f.CRC32C, true
			}
			return 0, false
		},
		Fresh: func(rel string, st snapshot.Stamp) bool {
			return settle > 0 && now.Sub(s.holds.changedAt(rel, st, now)) < settle
		},
	}
}

// walk scans the whole directory into the index.
func (s *Syncer) walk(settle time.Duration) error {
	now := s.now()
	s.holds.pruneFirstSeen(now)
	res, err := s.dir.Scan(s.filter, s.scanOptions(settle, now))
	if err != nil {
		s.m.Errors.WithLabelValues("scan").Inc()
		return err
	}
	clear(s.holds.fresh)
	for rel := range res.Fresh {
		s.holds.fresh[rel] = s.holds.changedAt(rel, res.Files[rel].Stamp, now).Add(settle)
	}
	s.idx.replaceLocal(res.Files)
	s.holds.unreadable = res.Unreadable
	s.reportScan(res)
	return nil
}

// look brings the index up to date for the hinted local paths (a file, or a directory's tree) and
// returns every path whose local side may have changed.
func (s *Syncer) look(paths map[string]bool, settle time.Duration) (map[string]bool, error) {
	now := s.now()
	s.holds.pruneFirstSeen(now)
	opt := s.scanOptions(settle, now)
	touched := map[string]bool{}
	for p := range paths {
		res, err := s.dir.ScanPath(s.filter, p, opt)
		if err != nil {
			s.m.Errors.WithLabelValues("scan").Inc()
			return nil, err
		}
		s.lookedAt(p, res, settle, now, touched)
	}
	return touched, nil
}

// lookedAt takes one look's result for the path p into the index and the holds, adding every path whose
// local side may have changed to touched.
func (s *Syncer) lookedAt(p string, res localfs.ScanResult, settle time.Duration, now time.Time, touched map[string]bool) {
	// What the index held at and under p and the scan no longer finds is gone.
	for _, old := range append(s.idx.under(p), p) {
		if _, still := res.Files[old]; !still {
			if _, had := s.idx.local[old]; had {
				s.idx.dropLocal(old)
				touched[old] = true
			}
			delete(s.holds.fresh, old)
		}
	}
	for rel, f := range res.Files {
		if res.Fresh[rel] {
			s.holds.fresh[rel] = s.holds.changedAt(rel, f.Stamp, now).Add(settle)
		} else {
			delete(s.holds.fresh, rel)
		}
		s.idx.setLocal(rel, f)
		touched[rel] = true
	}
	for rel := range s.holds.unreadable {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			delete(s.holds.unreadable, rel) // looked at again: readable now, or reported again below
		}
	}
	for rel, err := range res.Unreadable {
		s.holds.unreadable[rel] = err
	}
	s.reportScan(res)
	touched[p] = true
}

// reportScan warns once about the unsafe names and unreadable paths a scan found.
func (s *Syncer) reportScan(res localfs.ScanResult) {
	for _, n := range res.Unsafe {
		if s.holds.firstTime(unsafeLocal, n) {
			s.log.Warn("skipping local file with an unsafe name", "path", n)
		}
	}
	for rel, err := range res.Unreadable {
		if s.holds.firstTime(unreadable, rel) {
			s.m.Errors.WithLabelValues("scan").Inc()
			s.log.Warn("cannot read a local path: leaving it and everything under it alone on both sides", "path", rel, "err", err)
		}
	}
}

// forgetExcluded drops the base entries of paths excluded after they were synced (nothing is done to the
// files themselves: excluded paths are never touched on either side). It walks the whole base, so only
// passes that walk the tree call it.
func (s *Syncer) forgetExcluded() {
	var forget []string
	s.base.Range(func(p string, _ snapshot.Base) {
		if s.filter.Skip(p) {
			forget = append(forget, p)
		}
	})
	for _, p := range forget {
		s.idx.dropBase(p)
	}
}
