// Package state keeps the base: for every path seen in sync, the object generation, size and CRC32C, plus
// the local file's stamp (so unchanged files are not re-hashed). With a state directory it survives
// container restarts, so a delete made while the sidecar was down still propagates.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Entry is the base of one path.
type Entry struct {
	Generation int64
	Size       int64
	CRC32C     uint32
	ModTime    int64 // local modification time (unix ns) when the base was recorded
}

// fileName is the state file inside the state directory.
const fileName = "filesync-state.json"

const formatVersion = 1

type fileFormat struct {
	Version int    `json:"version"`
	Remote  string `json:"remote"`
	// Entries maps path -> [generation, size, crc32c, local mtime ns].
	Entries map[string][4]int64 `json:"entries"`
}

// Store is the base of every path. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	entries map[string]Entry
	file    string // "" keeps the state in memory only
	remote  string
	dirty   bool
}

// Open loads the state for remote from dir ("" for memory only). A state file written for another remote
// is ignored (Discarded reports it), so pointing the sidecar elsewhere never reuses a wrong base.
func Open(dir, remote string) (s *Store, discarded bool, err error) {
	s = &Store{entries: map[string]Entry{}, remote: remote}
	if dir == "" {
		return s, false, nil
	}
	s.file = filepath.Join(dir, fileName)
	b, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state %s: %w", s.file, err)
	}
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil || f.Version != formatVersion {
		return s, true, nil // unreadable or foreign: start without a base (safe: no deletes)
	}
	if f.Remote != remote {
		return s, true, nil
	}
	for p, v := range f.Entries {
		s.entries[p] = Entry{Generation: v[0], Size: v[1], CRC32C: uint32(v[2]), ModTime: v[3]}
	}
	return s, false, nil
}

// Get returns the base of path.
func (s *Store) Get(path string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[path]
	return e, ok
}

// Set records the base of path.
func (s *Store) Set(path string, e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[path]; ok && old == e {
		return
	}
	s.entries[path] = e
	s.dirty = true
}

// Delete forgets path.
func (s *Store) Delete(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[path]; ok {
		delete(s.entries, path)
		s.dirty = true
	}
}

// Persistent reports whether the state is kept on disk (a state directory was given).
func (s *Store) Persistent() bool { return s.file != "" }

// Len returns the number of known paths.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Range calls fn for every entry (under the lock: fn must not call back into the store).
func (s *Store) Range(fn func(path string, e Entry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, e := range s.entries {
		fn(p, e)
	}
}

// Save writes the state atomically (temp file, fsync, rename) if it changed since the last save.
func (s *Store) Save() error {
	s.mu.Lock()
	if s.file == "" || !s.dirty {
		s.mu.Unlock()
		return nil
	}
	f := fileFormat{Version: formatVersion, Remote: s.remote, Entries: make(map[string][4]int64, len(s.entries))}
	for p, e := range s.entries {
		f.Entries[p] = [4]int64{e.Generation, e.Size, int64(e.CRC32C), e.ModTime}
	}
	s.dirty = false
	s.mu.Unlock()

	b, err := json.Marshal(f)
	if err == nil {
		err = writeAtomic(s.file, b)
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("save state %s: %w", s.file, err)
	}
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
