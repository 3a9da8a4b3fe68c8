// Package localfs is the synced directory: a scan of its regular files, and writes that are confined under
// it (os.Root), atomic (temp file in the same directory, CRC32C check, fsync, rename) and that never follow
// symlinks out of it.
package localfs

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// Castagnoli is the CRC32C table GCS uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors callers decide on.
var (
	// ErrChanged: the local file is not what the plan saw any more (the app wrote meanwhile).
	ErrChanged = errors.New("local file changed since it was scanned")
	// ErrCorrupt: downloaded bytes do not match the expected CRC32C or size; nothing was published.
	ErrCorrupt = errors.New("checksum mismatch")
)

// Stamp identifies a version of a local file cheaply (no hashing): size and modification time.
type Stamp struct {
	Size    int64
	ModTime int64 // unix nanoseconds
}

// StampOf returns the stamp of a FileInfo.
func StampOf(fi fs.FileInfo) Stamp { return Stamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()} }

// File is a regular file found by Scan.
type File struct {
	Stamp
	CRC32C uint32
	// Fresh: modified too recently to be worth hashing (see ScanOptions.Fresh); CRC32C is not set.
	Fresh bool
}

// Dir is the synced directory.
type Dir struct {
	root *os.Root
	path string
}

// Open opens the directory; every later operation is confined under it.
func Open(dir string) (*Dir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open %s: not a directory", dir)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &Dir{root: r, path: dir}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// ScanOptions tune a scan.
type ScanOptions struct {
	// Cache returns a CRC32C computed earlier for a file with this stamp, if any; such files are not read.
	Cache func(rel string, s Stamp) (uint32, bool)
	// Fresh reports whether a file is still settling (recently modified): it is listed but not hashed.
	Fresh func(s Stamp) bool
}

// ScanResult is what Scan found.
type ScanResult struct {
	Files map[string]File
	// Unsafe lists local names that cannot be synced safely (e.g. a backslash); they are left alone.
	Unsafe []string
	// Hashed counts the files that had to be read because the cache did not know their stamp.
	Hashed int
}

// Scan walks the directory and returns its regular files, keyed by slash-separated relative path. Symlinks,
// devices and the like are skipped, and so are paths the filter skips (excluded directories are not
// entered). A file is hashed only when the cache does not know its stamp and it is not fresh.
func (d *Dir) Scan(f *filter.Filter, opt ScanOptions) (ScanResult, error) {
	res := ScanResult{Files: map[string]File{}}
	fsys := d.root.FS()
	err := fs.WalkDir(fsys, ".", func(rel string, de fs.DirEntry, err error) error {
		if err != nil {
			if rel != "." && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if rel == "." {
			return nil
		}
		if f.Skip(rel) {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if de.IsDir() {
			return nil
		}
		if !de.Type().IsRegular() {
			return nil // symlinks, sockets, devices: never followed, never synced
		}
		if err := filter.CheckName(rel); err != nil {
			res.Unsafe = append(res.Unsafe, rel)
			return nil
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st := StampOf(fi)
		if opt.Cache != nil {
			if crc, ok := opt.Cache(rel, st); ok {
				res.Files[rel] = File{Stamp: st, CRC32C: crc}
				return nil
			}
		}
		if opt.Fresh != nil && opt.Fresh(st) {
			res.Files[rel] = File{Stamp: st, Fresh: true}
			return nil
		}
		crc, st2, err := d.hash(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Hashed++
		res.Files[rel] = File{Stamp: st2, CRC32C: crc}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("scan %s: %w", d.path, err)
	}
	return res, nil
}

func (d *Dir) hash(rel string) (uint32, Stamp, error) {
	fh, err := d.root.Open(rel)
	if err != nil {
		return 0, Stamp{}, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, Stamp{}, err
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, fh); err != nil {
		return 0, Stamp{}, fmt.Errorf("hash %s: %w", rel, err)
	}
	return h.Sum32(), StampOf(fi), nil
}

// Stat returns the stamp of a regular file, or fs.ErrNotExist.
func (d *Dir) Stat(rel string) (Stamp, error) {
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return Stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return Stamp{}, fmt.Errorf("%s: not a regular file", rel)
	}
	return StampOf(fi), nil
}

// OpenFile opens a file for upload, checking that it is still the version that was scanned: a file that
// changed or is gone since yields ErrChanged.
func (d *Dir) OpenFile(rel string, want Stamp) (*os.File, error) {
	fh, err := d.root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (gone)", rel, ErrChanged)
	}
	if err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", rel)
	}
	if err == nil && StampOf(fi) != want {
		err = fmt.Errorf("%s: %w", rel, ErrChanged)
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fh, nil
}

// Expect describes what the local path must hold just before a write or delete replaces it: Absent, or a
// file with Stamp. It keeps a download or delete from clobbering a write the app made after the scan.
type Expect struct {
	Absent bool
	Stamp  Stamp
}

func (d *Dir) check(rel string, e Expect) error {
	st, err := d.Stat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if e.Absent {
			return nil
		}
		return fmt.Errorf("%s: %w (gone)", rel, ErrChanged)
	case err != nil:
		return err
	case e.Absent || st != e.Stamp:
		return fmt.Errorf("%s: %w", rel, ErrChanged)
	}
	return nil
}

// WriteAtomic writes r to rel: into a hidden temp file in the same directory, checked against size and
// crc32c, fsynced, then renamed over rel, so the app never sees a partial or corrupt file. The existing
// path must still match e. Parent directories are created (0755); the file is 0644 and gets modTime when
// it is non-zero.
func (d *Dir) WriteAtomic(rel string, r io.Reader, size int64, crc uint32, e Expect) (Stamp, error) {
	dir := path.Dir(rel)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, filter.TempPrefix+hex.EncodeToString(rnd[:]))
	// Optimistic: the directory usually exists; create it only when the first attempt says it does not.
	// (Path operations under os.Root walk the path one component at a time: each one saved counts.)
	fh, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrNotExist) && dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return Stamp{}, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		fh, err = d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("create temp for %s: %w", rel, err)
	}
	published := false
	defer func() {
		if !published {
			fh.Close()
			_ = d.root.Remove(tmp)
		}
	}()
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(fh, h), writeBuffer(size))
	n, err := io.Copy(bw, r)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("write %s: %w", rel, err)
	}
	if n != size || h.Sum32() != crc {
		return Stamp{}, fmt.Errorf("write %s: %w (got %d bytes crc32c %08x, want %d bytes %08x)",
			rel, ErrCorrupt, n, h.Sum32(), size, crc)
	}
	// No fsync per file: Sync (one syncfs) runs before the base that records these files is saved, so a
	// crash can never leave a torn file that the base calls in sync. What the app sees is atomic either way.
	fi, err := fh.Stat() // the rename below keeps size and mtime: no second lookup by path
	if err != nil {
		return Stamp{}, fmt.Errorf("stat %s: %w", tmp, err)
	}
	if err := fh.Close(); err != nil {
		return Stamp{}, fmt.Errorf("close %s: %w", rel, err)
	}
	if err := d.check(rel, e); err != nil {
		return Stamp{}, err
	}
	if err := d.root.Rename(tmp, rel); err != nil {
		return Stamp{}, fmt.Errorf("rename into %s: %w", rel, err)
	}
	published = true
	return StampOf(fi), nil
}

// writeBuffer sizes the write buffer to the file (fewer write syscalls), between 32 KiB and 1 MiB.
func writeBuffer(size int64) int {
	return int(min(max(size, 32<<10), 1<<20))
}

// Remove deletes rel if it still has the stamp the plan saw.
func (d *Dir) Remove(rel string, want Stamp) error {
	if err := d.check(rel, Expect{Stamp: want}); err != nil {
		return err
	}
	if err := d.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", rel, err)
	}
	return nil
}

// RemoveStaleTemps removes download temp files left by a crash. It returns how many it removed.
func (d *Dir) RemoveStaleTemps(olderThan time.Duration, now time.Time) (int, error) {
	n := 0
	err := fs.WalkDir(d.root.FS(), ".", func(rel string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if de.Type().IsRegular() && strings.HasPrefix(path.Base(rel), filter.TempPrefix) {
			if fi, err := de.Info(); err == nil && now.Sub(fi.ModTime()) > olderThan {
				if d.root.Remove(rel) == nil {
					n++
				}
			}
		}
		return nil
	})
	return n, err
}

// CRC32C returns the Castagnoli CRC of b (handy for tests and callers that hold bytes).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
