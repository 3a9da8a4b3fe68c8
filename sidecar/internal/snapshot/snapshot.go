// Package snapshot is the sync's vocabulary: what was seen of a path on each side, one type for each
// thing compared, shared by every package that handles one: the version of an object in the bucket (Object: what a listing, a get, a read or a
// write tells), the version of a local file (Stamp, cheap to read; File, with its content's CRC32C), and
// the base (Base: the object version both sides held when they last agreed, with the local stamp seen
// then). gcsstore returns Objects, localfs Stamps and Files, state stores Bases, and plan compares all
// three; nothing converts between look-alikes. Nothing here does I/O.
package snapshot

import "time"

// Object is one generation of an object.
type Object struct {
	Generation int64
	Size       int64
	CRC32C     uint32
	// ModTime is the file mtime the object carries (gcsstore says where it comes from): what a download
	// gives the file. The zero time means not known (a media read does not tell it, the state file does
	// not keep it); 1970-01-01 and earlier times are times like any other. It is not part of the version:
	// compare Objects with Is.
	ModTime time.Time
}

// Is reports whether o and p are the same version: generation, size and CRC32C (not ModTime, which a
// media read does not tell).
func (o Object) Is(p Object) bool {
	return o.Generation == p.Generation && o.Size == p.Size && o.CRC32C == p.CRC32C
}

// Stamp identifies a version of a local file cheaply (no hashing): size and modification time.
type Stamp struct {
	Size    int64
	ModTime int64 // unix nanoseconds
}

// File is a version of a local file: its stamp and the CRC32C of its content.
type File struct {
	Stamp
	CRC32C uint32
}

// Same reports whether f holds the content of object o.
func (f File) Same(o Object) bool { return f.Size == o.Size && f.CRC32C == o.CRC32C }

// Base is what a path looked like when both sides last agreed: the object version, and the local file's
// modification time then (0: unknown, hash the file again), so that an unchanged file is never re-read.
type Base struct {
	Object
	ModTime int64 // unix nanoseconds
	// RemoteOnly: a lazy path (--lazy) whose object is known but was never fetched here, or was evicted.
	// Its local absence is neither a delete nor a loss; ModTime is 0.
	RemoteOnly bool
}

// Knows reports whether the base recorded the local file with stamp st: its CRC32C is the base's.
func (b Base) Knows(st Stamp) bool {
	return b.ModTime != 0 && b.Size == st.Size && b.ModTime == st.ModTime
}

// Agrees reports whether local file content f matches the base.
func (b Base) Agrees(f File) bool { return f.Size == b.Size && f.CRC32C == b.CRC32C }
