// Package state keeps the base: for every path seen in sync, the object generation, size and CRC32C, plus
// the local file's stamp (so unchanged files are not re-hashed). With a state directory it survives
// container restarts, so a delete made while the sidecar was down still propagates.
//
// On disk the base is a snapshot (filesync-state.json) and a journal (filesync-state.journal) of the
// changes made since: each Save appends only what changed, one JSON line per path, and fsyncs, so the
// bytes written per change do not grow with the number of files. When the journal outgrows the snapshot
// (and 64 KiB), Save compacts: a new snapshot (temp file, fsync, rename), then an empty journal. An
// append-only journal was chosen over an embedded store (bbolt): the base is a map that lives in memory
// anyway, so the disk only needs the log of its changes, and a JSON line is readable with `tail`.
//
// Crash safety: the caller makes the files durable before it saves the entries that record them
// (syncer.saveState). A journal line torn by a crash is the last one; it and anything after it are
// ignored (those entries are re-established by the next pass: same content on both sides is recorded
// again, never deleted). A snapshot or journal that cannot be read, or that was written for another
// remote, discards the whole base: a full restore, and no deletes until in sync.
package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/filesync/filesync/sidecar/internal/pathmap"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// The files inside the state directory.
const (
	fileName    = "filesync-state.json"
	journalName = "filesync-state.journal"
)

// formatVersion 2 adds remote-only entries (snapshot.Base.RemoteOnly: remoteOnlyBit in the CRC32C slot,
// the object's mtime in the mtime slot). Version 1 is read and rewritten as 2 at the next Save; an older
// filesync discards a version 2 state (a full restore, no deletes until in sync) rather than read a
// remote-only entry as a file deleted here.
const formatVersion = 2

// remoteOnlyBit marks a remote-only entry in its CRC32C slot (a CRC32C fits 32 bits).
const remoteOnlyBit = 1 << 32

// readable reports whether a state file of version v can be read.
func readable(v int) bool { return v == 1 || v == formatVersion }

// encode is an entry as the files hold it: [generation, size, crc32c, local mtime ns], with
// remoteOnlyBit and the object's mtime (0: none) for a remote-only entry.
func encode(e snapshot.Base) [4]int64 {
	if e.RemoteOnly {
		var mt int64
		if !e.Object.ModTime.IsZero() {
			mt = e.Object.ModTime.UnixNano()
		}
		return [4]int64{e.Generation, e.Size, int64(e.CRC32C) | remoteOnlyBit, mt}
	}
	return [4]int64{e.Generation, e.Size, int64(e.CRC32C), e.ModTime}
}

// decode is encode's inverse.
func decode(v [4]int64) snapshot.Base {
	e := snapshot.Base{Object: snapshot.Object{Generation: v[0], Size: v[1], CRC32C: uint32(v[2])}, ModTime: v[3]}
	if v[2]&remoteOnlyBit != 0 {
		e.RemoteOnly, e.ModTime = true, 0
		if v[3] != 0 {
			e.Object.ModTime = time.Unix(0, v[3])
		}
	}
	return e
}

// minCompact is the journal size below which Save never compacts.
const minCompact = 64 << 10

type fileFormat struct {
	Version int    `json:"version"`
	Remote  string `json:"remote"`
	// Entries maps path -> [generation, size, crc32c, local mtime ns].
	Entries map[string][4]int64 `json:"entries"`
}

// journalHeader is the journal's first line; every other line is a journalLine.
type journalHeader struct {
	Version int    `json:"version"`
	Remote  string `json:"remote"`
}

// journalLine records one path: E set to [generation, size, crc32c, local mtime ns], or absent for a delete.
type journalLine struct {
	P string    `json:"p"`
	E *[4]int64 `json:"e,omitempty"`
}

// Store is the base of every path. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	entries entries // packed, no pointer: held and remote-only entries apart
	file    string  // the snapshot; "" keeps the state in memory only
	journal string
	remote  string
	// changes: the paths set or deleted since the last Save (what is in entries now is what Save
	// writes). Not kept without a state file: nothing would ever write them.
	changes     map[string]struct{}
	journalSize int64 // bytes in the journal
	snapSize    int64 // bytes in the snapshot
	compact     bool  // the files on disk cannot be appended to (missing, foreign, broken): rewrite them
}

// Open loads the state for remote from dir ("" for memory only). A state written for another remote, or
// one that cannot be read, is ignored (Discarded reports it), so pointing the sidecar elsewhere never
// reuses a wrong base. A state file of the earlier format (a snapshot without a journal) is read as the
// snapshot: the journal starts with the next Save.
func Open(dir, remote string) (s *Store, discarded bool, err error) {
	s = &Store{entries: newEntries(), changes: map[string]struct{}{}, remote: remote}
	if dir == "" {
		return s, false, nil
	}
	s.file, s.journal = filepath.Join(dir, fileName), filepath.Join(dir, journalName)
	b, err := os.ReadFile(s.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.compact = true
	case err != nil:
		return nil, false, fmt.Errorf("read state %s: %w", s.file, err)
	default:
		var f fileFormat
		if err := json.Unmarshal(b, &f); err != nil || !readable(f.Version) || f.Remote != remote {
			s.compact = true
			return s, true, nil // unreadable or foreign: start without a base (safe: no deletes)
		}
		for p, v := range f.Entries {
			s.entries.set(p, decode(v))
		}
		s.snapSize = int64(len(b))
		s.compact = s.compact || f.Version != formatVersion
	}
	ok, err := s.replay()
	if err != nil {
		return nil, false, err
	}
	if !ok {
		s.entries, s.compact = newEntries(), true
		return s, true, nil
	}
	return s, false, nil
}

// replay applies the journal to the entries. It reports false for a journal that is foreign or broken
// before its last line.
func (s *Store) replay() (bool, error) {
	b, err := os.ReadFile(s.journal)
	if errors.Is(err, fs.ErrNotExist) {
		s.compact = true
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state %s: %w", s.journal, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var h journalHeader
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &h) != nil || !readable(h.Version) || h.Remote != s.remote {
		return false, nil
	}
	s.compact = s.compact || h.Version != formatVersion // never append version 2 lines to a version 1 journal
	good := int64(len(sc.Bytes()) + 1)
	for sc.Scan() {
		var l journalLine
		line := sc.Bytes()
		complete := good+int64(len(line)) < int64(len(b)) // followed by a newline
		if err := json.Unmarshal(line, &l); err != nil || l.P == "" {
			if !complete {
				break // torn by a crash mid-append: not durable, ignored
			}
			return false, nil
		}
		if !complete {
			break
		}
		if l.E == nil {
			s.entries.delete(l.P)
		} else {
			s.entries.set(l.P, decode(*l.E))
		}
		good += int64(len(line)) + 1
	}
	s.journalSize = good
	if good != int64(len(b)) {
		s.compact = true // a torn tail: rewrite rather than append after it
	}
	return true, nil
}

// Get returns the base of path.
func (s *Store) Get(path string) (snapshot.Base, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries.get(path)
}

// Set records the base of path.
func (s *Store) Set(path string, e snapshot.Base) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries.get(path); ok && old.Pack() == e.Pack() { // packed: the same mtime instant in any zone is no change
		return
	}
	s.entries.set(path, e)
	s.changed(path)
}

// SetRemoteOnly records paths, given in ascending order (each once), remote-only at object(i), as Set
// would one at a time. A large batch (the remote-only records of a listing of 100,000 lazy objects) is
// merged into the entries at once (pathmap.Map.SetSorted).
func (s *Store) SetRemoteOnly(paths []string, object func(i int) snapshot.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, path := range paths {
		if old, ok := s.entries.get(path); !ok || old.Pack() != (snapshot.Base{Object: object(i), RemoteOnly: true}).Pack() {
			s.changed(path)
		}
	}
	s.entries.setRemoteOnly(paths, object)
}

// AdoptRemoteOnly records every path of m remote-only at m's object, taking m itself as the store's
// (the caller lets go of it), and reports whether it could: only while the store records no remote-only
// path and none of m's. It is for the whole listing after a lazy restore, whose media the remote view
// holds in m: the base takes them without a copy.
func (s *Store) AdoptRemoteOnly(m *pathmap.Map[snapshot.Packed]) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.entries.adopt(m) {
		return false
	}
	for p := range m.All() {
		s.changed(p)
	}
	return true
}

// changed notes path for the next Save. Call with s.mu held.
func (s *Store) changed(path string) {
	if s.file != "" {
		s.changes[path] = struct{}{}
	}
}

// Delete forgets path.
func (s *Store) Delete(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries.get(path); ok {
		s.entries.delete(path)
		s.changed(path)
	}
}

// Entries returns the base itself, not a copy, for a reader that must not copy 100,000 entries (the
// planner of a full pass). Only the goroutine that writes the store may call it, and it must neither
// modify it nor call Set or Delete while it uses it; other goroutines use Get.
func (s *Store) Entries() Entries { return Entries{&s.entries} }

// Entries is the base as a reader without the lock sees it (Store.Entries): each entry unpacked as it
// is read. It is a plan.Side.
type Entries struct {
	e *entries
}

// Get returns path's base.
func (e Entries) Get(path string) (snapshot.Base, bool) { return e.e.get(path) }

// Len returns the number of known paths.
func (e Entries) Len() int { return e.e.len() }

// All iterates over the paths and their bases (pathmap.Map.All: the held ones, then the remote-only).
func (e Entries) All() iter.Seq2[string, snapshot.Base] { return e.e.all() }

// Key returns the string the base holds for path, if it holds path: a caller that keeps path too (the
// remote view) keeps this one, so that a name is stored once.
func (s *Store) Key(path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries.key(path)
}

// Persistent reports whether the state is kept on disk (a state directory was given).
func (s *Store) Persistent() bool { return s.file != "" }

// Len returns the number of known paths.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries.len()
}

// Range calls fn for every entry (under the lock: fn must not call back into the store).
func (s *Store) Range(fn func(path string, e snapshot.Base)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, e := range s.entries.all() {
		fn(p, e)
	}
}

// Save makes the changes since the last Save durable: appended to the journal (one fsync), or, when the
// journal has outgrown the snapshot or the files need rewriting, as a new snapshot and an empty journal.
func (s *Store) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == "" || (len(s.changes) == 0 && !s.compact) {
		return nil
	}
	var err error
	if s.compact || s.journalSize > max(minCompact, s.snapSize) {
		err = s.writeSnapshot()
	} else {
		err = s.appendJournal()
	}
	if err != nil {
		return err // the changes stay pending: the next Save tries again
	}
	clear(s.changes)
	return nil
}

// appendJournal appends the pending changes, sorted by path, and fsyncs. Call with s.mu held.
func (s *Store) appendJournal() error {
	paths := make([]string, 0, len(s.changes))
	for p := range s.changes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, p := range paths {
		l := journalLine{P: p}
		if e, ok := s.entries.get(p); ok {
			v := encode(e)
			l.E = &v
		}
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("save state %s: %w", s.journal, err)
		}
	}
	f, err := os.OpenFile(s.journal, os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write(buf.Bytes())
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.compact = true // a partial append may be on disk: rewrite everything next time
		return fmt.Errorf("save state %s: %w", s.journal, err)
	}
	s.journalSize += int64(buf.Len())
	return nil
}

// writeSnapshot writes every entry as a new snapshot, then starts an empty journal. Replaying an old
// journal over the new snapshot (a crash between the two renames) changes nothing: the snapshot already
// holds the result of every line in it. Call with s.mu held.
func (s *Store) writeSnapshot() error {
	f := fileFormat{Version: formatVersion, Remote: s.remote, Entries: make(map[string][4]int64, s.entries.len())}
	for p, e := range s.entries.all() {
		f.Entries[p] = encode(e)
	}
	b, err := json.Marshal(f)
	if err == nil {
		err = writeAtomic(s.file, b)
	}
	if err != nil {
		return fmt.Errorf("save state %s: %w", s.file, err)
	}
	h, _ := json.Marshal(journalHeader{Version: formatVersion, Remote: s.remote})
	h = append(h, '\n')
	if err := writeAtomic(s.journal, h); err != nil {
		s.compact = true
		return fmt.Errorf("save state %s: %w", s.journal, err)
	}
	s.snapSize, s.journalSize, s.compact = int64(len(b)), int64(len(h)), false
	return nil
}

func writeAtomic(file string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
