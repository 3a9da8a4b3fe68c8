// Package localfs is the synced directory: a scan of its regular files, and writes that are confined under
// it (os.Root), atomic (a temp file in filesync's own folder .filesync/tmp, CRC32C check, rename; one syncfs
// before the base records them) and that never go through a symlink.
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
	"strings"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Castagnoli is the CRC32C table GCS uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors callers decide on.
var (
	// ErrChanged: the local file is not what the plan saw any more (the app wrote meanwhile).
	ErrChanged = errors.New("local file changed since it was scanned")
	// ErrCorrupt: downloaded bytes do not match the expected CRC32C or size; nothing was published.
	ErrCorrupt = errors.New("checksum mismatch")
	// ErrSymlink: the path goes through a symbolic link (a parent of it, or, for OpenRead, the file itself);
	// nothing is ever written, removed or served through one.
	ErrSymlink = errors.New("path goes through a symlink")
	// ErrNotRegular: the path is there but is not a regular file (a directory, a FIFO, a device, ...).
	ErrNotRegular = errors.New("not a regular file")
	// ErrClash: the path is a directory holding files, so a file cannot take its place.
	ErrClash = errors.New("a directory with files is in the way")
)

// TempDir is where downloads are written before they are renamed into place: filesync's own folder under
// the directory (filter.InternalDir, never synced or watched), so no app file can be mistaken for a temp
// file, and everything in it at start is a leftover of a crash.
const TempDir = filter.InternalDir + "/tmp"

// StageDir is where a directory new to this replica is assembled before it is renamed into place whole
// (Stage, Publish): filesync's own folder too, and everything in it at start is a leftover of a crash.
const StageDir = filter.InternalDir + "/stage"

// StampOf returns the stamp of a FileInfo.
func StampOf(fi fs.FileInfo) snapshot.Stamp {
	return snapshot.Stamp{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
}

// Dir is the synced directory.
type Dir struct {
	root *os.Root
	path string
}

// Open opens the directory; every later operation is confined under it. Temp files left in TempDir and
// staged directories left in StageDir by an earlier run (a crash mid-download) are removed, whatever their
// age.
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
	d := &Dir{root: r, path: dir}
	if err := d.resetTemp(); err != nil {
		r.Close()
		return nil, err
	}
	return d, nil
}

// resetTemp empties TempDir (creating it if needed) and removes StageDir. It refuses a filter.InternalDir
// that is not a plain directory.
func (d *Dir) resetTemp() error {
	if fi, err := d.root.Lstat(filter.InternalDir); err == nil && !fi.IsDir() {
		return fmt.Errorf("open %s: %s exists and is not a directory (it is reserved for filesync)", d.path, filter.InternalDir)
	}
	for _, dir := range []string{TempDir, StageDir} {
		if err := d.root.RemoveAll(dir); err != nil {
			return fmt.Errorf("open %s: removing leftovers in %s: %w", d.path, dir, err)
		}
	}
	if err := d.root.MkdirAll(TempDir, 0o755); err != nil {
		return fmt.Errorf("open %s: %w", d.path, err)
	}
	return nil
}

// Empty reports whether the directory holds nothing but filesync's own folder (a fresh emptyDir).
func (d *Dir) Empty() bool {
	fh, err := d.root.Open(".")
	if err != nil {
		return false
	}
	defer fh.Close()
	names, err := fh.Readdirnames(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	for _, n := range names {
		if n != filter.InternalDir {
			return false
		}
	}
	return true
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// ScanOptions tune a scan.
type ScanOptions struct {
	// Cache returns a CRC32C computed earlier for a file with this stamp, if any; such files are not read.
	Cache func(rel string, s snapshot.Stamp) (uint32, bool)
	// Fresh reports whether a file is still settling (recently modified): it is listed but not hashed.
	Fresh func(rel string, s snapshot.Stamp) bool
}

// ScanResult is what Scan found.
type ScanResult struct {
	Files map[string]snapshot.File
	// Fresh lists the files modified too recently to be worth hashing (ScanOptions.Fresh): they are in
	// Files, without a CRC32C.
	Fresh map[string]bool
	// Unsafe lists local names that cannot be synced safely (e.g. a backslash); they are left alone.
	Unsafe []string
	// Unreadable maps paths that could not be read (a file or a whole directory: permissions, I/O errors,
	// lost+found for a non-root user) to the error. They are neither present nor missing: callers must
	// leave every path at or under them alone.
	Unreadable map[string]error
	// Hashed counts the files that had to be read because the cache did not know their stamp.
	Hashed int
}

// Scan walks the directory and returns its regular files, keyed by slash-separated relative path. Symlinks,
// devices and the like are skipped, and so are paths the filter skips (excluded directories are not
// entered). A file is hashed only when the cache does not know its stamp and it is not fresh. A file or
// directory that cannot be read is reported in Unreadable and the walk goes on: only an unreadable root
// fails the scan.
func (d *Dir) Scan(f *filter.Filter, opt ScanOptions) (ScanResult, error) {
	return d.walk(f, ".", opt)
}

// ScanPath is Scan limited to rel, for a targeted pass: the file rel, or the files under the directory
// rel. It finds nothing if rel is gone, is not a regular file or a directory (a symlink), or lies under an
// excluded directory, a symlinked directory or a file; an unreadable rel is reported in Unreadable.
func (d *Dir) ScanPath(f *filter.Filter, rel string, opt ScanOptions) (ScanResult, error) {
	empty := ScanResult{Files: map[string]snapshot.File{}, Fresh: map[string]bool{}, Unreadable: map[string]error{}}
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && f.SkipDir(rel[:i]) {
			return empty, nil
		}
	}
	if err := d.checkParents(rel, false); err != nil {
		if errors.Is(err, ErrSymlink) || errors.Is(err, ErrClash) {
			return empty, nil
		}
		empty.Unreadable[rel] = err
		return empty, nil
	}
	fi, err := d.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return empty, nil
	case err != nil:
		empty.Unreadable[rel] = err
		return empty, nil
	case !fi.Mode().IsRegular() && !fi.IsDir():
		return empty, nil
	}
	return d.walk(f, rel, opt)
}

// walk is Scan from root (a slash-separated path relative to the directory, "." for all of it).
func (d *Dir) walk(f *filter.Filter, root string, opt ScanOptions) (ScanResult, error) {
	res := ScanResult{Files: map[string]snapshot.File{}, Fresh: map[string]bool{}, Unreadable: map[string]error{}}
	fsys := d.root.FS()
	err := fs.WalkDir(fsys, root, func(rel string, de fs.DirEntry, err error) error {
		isDir := de != nil && de.IsDir()
		switch {
		case rel == ".":
			return err
		case isDir && f.SkipDir(rel):
			return fs.SkipDir
		case !isDir && f.Skip(rel):
			return nil
		case err != nil && errors.Is(err, fs.ErrNotExist):
			return nil // removed while we walked
		case err != nil:
			res.Unreadable[rel] = err
			if isDir {
				return fs.SkipDir
			}
			return nil
		case isDir:
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
				res.Files[rel] = snapshot.File{Stamp: st, CRC32C: crc}
				return nil
			}
		}
		if opt.Fresh != nil && opt.Fresh(rel, st) {
			res.Files[rel] = snapshot.File{Stamp: st}
			res.Fresh[rel] = true
			return nil
		}
		crc, st2, err := d.hash(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			res.Unreadable[rel] = err
			return nil
		}
		res.Hashed++
		res.Files[rel] = snapshot.File{Stamp: st2, CRC32C: crc}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("scan %s: %w", d.path, err)
	}
	return res, nil
}

func (d *Dir) hash(rel string) (uint32, snapshot.Stamp, error) {
	fh, err := d.root.Open(rel)
	if err != nil {
		return 0, snapshot.Stamp{}, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, snapshot.Stamp{}, err
	}
	h := crc32.New(castagnoli)
	buf := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(buf)
	// struct{ io.Reader } hides the file's WriteTo, which would allocate a buffer of its own per file.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{fh}, *buf); err != nil {
		return 0, snapshot.Stamp{}, fmt.Errorf("hash %s: %w", rel, err)
	}
	return h.Sum32(), StampOf(fi), nil
}

// hashBuffers are the read buffers of hash: a scan of 100,000 files would otherwise allocate 32 KiB each.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Stat returns the stamp of a regular file, or fs.ErrNotExist.
func (d *Dir) Stat(rel string) (snapshot.Stamp, error) {
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return snapshot.Stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return snapshot.Stamp{}, fmt.Errorf("%s: not a regular file", rel)
	}
	return StampOf(fi), nil
}

// OpenFile opens a file for upload, checking that it is still the version that was scanned: a file that
// changed or is gone since yields ErrChanged.
func (d *Dir) OpenFile(rel string, want snapshot.Stamp) (*os.File, error) {
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
	Stamp  snapshot.Stamp
}

func (d *Dir) check(rel string, e Expect) error {
	fi, err := d.root.Lstat(rel)
	return checkInfo(rel, fi, err, e)
}

// checkInfo is check for what an Lstat of rel returned.
func checkInfo(rel string, fi fs.FileInfo, err error, e Expect) error {
	var st snapshot.Stamp
	if err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		st = StampOf(fi)
	}
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

// WriteAtomic writes r to rel: into a temp file in TempDir, checked against size and crc32c, then renamed
// over rel, so the app never sees a partial or corrupt file. The existing path must still match e. Parent
// directories are created (0755), never through a symlink (ErrSymlink); a directory at rel that holds no
// files (left behind when its files were deleted) is replaced, one with files is not (ErrClash). The file
// is 0644; its mtime is set to mtime before the rename (unless mtime is zero: the time of the write), so
// every replica gives the same file the same mtime (and its web server the same ETag and Last-Modified).
func (d *Dir) WriteAtomic(rel string, r io.Reader, size int64, crc uint32, mtime time.Time, e Expect) (snapshot.Stamp, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := TempDir + "/" + hex.EncodeToString(rnd[:])
	fh, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrNotExist) { // TempDir removed under us: make it again
		if err = d.root.MkdirAll(TempDir, 0o755); err == nil {
			fh, err = d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	if err != nil {
		return snapshot.Stamp{}, fmt.Errorf("create temp for %s: %w", rel, err)
	}
	published := false
	defer func() {
		if !published {
			_ = fh.Close() // a second Close after the one below is harmless
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
		return snapshot.Stamp{}, fmt.Errorf("write %s: %w", rel, err)
	}
	if n != size || h.Sum32() != crc {
		return snapshot.Stamp{}, fmt.Errorf("write %s: %w (got %d bytes crc32c %08x, want %d bytes %08x)",
			rel, ErrCorrupt, n, h.Sum32(), size, crc)
	}
	// The mtime and the stamp go through the open handle, not the path (each path operation under os.Root
	// walks the path again). The rename below keeps size and mtime: no lookup of rel afterwards.
	if !mtime.IsZero() {
		if err := setMtime(fh, mtime); err != nil {
			return snapshot.Stamp{}, fmt.Errorf("set mtime of %s: %w", rel, err)
		}
	}
	fi, err := fh.Stat()
	if err != nil {
		return snapshot.Stamp{}, fmt.Errorf("stat %s: %w", tmp, err)
	}
	// No fsync per file: Sync (one syncfs) runs before the base that records these files is saved, so a
	// crash can never leave a torn file that the base calls in sync. What the app sees is atomic either way.
	if err := fh.Close(); err != nil {
		return snapshot.Stamp{}, fmt.Errorf("close %s: %w", rel, err)
	}
	if err := d.prepare(rel, e); err != nil {
		return snapshot.Stamp{}, err
	}
	if err := d.root.Rename(tmp, rel); err != nil {
		return snapshot.Stamp{}, fmt.Errorf("rename into %s: %w", rel, err)
	}
	published = true
	return StampOf(fi), nil
}

// prepare readies rel to be replaced: its parents exist and none is a symlink, an empty directory tree in
// its place is removed, and what is there still matches e.
func (d *Dir) prepare(rel string, e Expect) error {
	if err := d.checkParents(rel, true); err != nil {
		return err
	}
	fi, err := d.root.Lstat(rel)
	if err == nil && fi.IsDir() {
		if !e.Absent {
			return fmt.Errorf("%s: %w", rel, ErrChanged)
		}
		return d.removeEmptyTree(rel) // gone now, as e expects
	}
	return checkInfo(rel, fi, err, e)
}

// checkParents fails with ErrSymlink if a parent directory of rel is a symlink, and with ErrClash if one
// is a file. With create, missing parents are made.
func (d *Dir) checkParents(rel string, create bool) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		dir := rel[:i]
		fi, err := d.root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist) && create:
			if err := d.root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("mkdir %s: %w", dir, err)
			}
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: %w (%s)", rel, ErrSymlink, dir)
		case !fi.IsDir():
			return fmt.Errorf("%s: %w (%s is a file)", rel, ErrClash, dir)
		}
	}
	return nil
}

// removeEmptyTree removes dir if it holds nothing but empty directories; otherwise ErrClash.
func (d *Dir) removeEmptyTree(dir string) error {
	files := 0
	_ = fs.WalkDir(d.root.FS(), dir, func(_ string, de fs.DirEntry, err error) error {
		if err != nil || !de.IsDir() {
			files++
		}
		return nil
	})
	if files > 0 {
		return fmt.Errorf("%s: %w", dir, ErrClash)
	}
	if err := d.root.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove empty directory %s: %w", dir, err)
	}
	return nil
}

// writeBuffer sizes the write buffer to the file (one write syscall for most files), between 4 KiB and
// 256 KiB: a restore runs 64 of these at once, so a larger floor or cap is memory held for nothing (with
// 32 KiB to 1 MiB, the buffers were 7 MB of a 100,000-file restore's 51 MB live heap).
func writeBuffer(size int64) int {
	return int(min(max(size, 4<<10), 256<<10))
}

// SetModTime sets rel's mtime to mtime if the file still has the stamp want, and returns its new stamp
// (ErrChanged if it changed meanwhile). After an upload it makes the local mtime the one stored with the
// object, should the bucket give back another than the file's (the object keeps it to the nanosecond), so
// the writer serves the same ETag and Last-Modified as the replicas that download it.
func (d *Dir) SetModTime(rel string, want snapshot.Stamp, mtime time.Time) (snapshot.Stamp, error) {
	if err := d.checkParents(rel, false); err != nil {
		return snapshot.Stamp{}, err
	}
	if err := d.check(rel, Expect{Stamp: want}); err != nil {
		return snapshot.Stamp{}, err
	}
	if err := d.root.Chtimes(rel, mtime, mtime); err != nil {
		return snapshot.Stamp{}, fmt.Errorf("set mtime of %s: %w", rel, err)
	}
	return d.Stat(rel)
}

// Remove deletes rel if it still has the stamp the plan saw, never through a symlink.
func (d *Dir) Remove(rel string, want snapshot.Stamp) error {
	if err := d.checkParents(rel, false); err != nil {
		return err
	}
	if err := d.check(rel, Expect{Stamp: want}); err != nil {
		return err
	}
	if err := d.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", rel, err)
	}
	return nil
}

// RemoveEmptyParents removes the directories above rel that are empty now, nearest first, up to (not
// including) the root, and stops at the first that is not: one holding anything (the app's files, its
// new directories), one keep names, or one that is not a directory any more. Each is removed only if
// empty at that instant (the kernel's rmdir refuses a non-empty one), so a file the app writes meanwhile
// is never lost: the app at worst finds its directory gone and makes it again. It returns the directories
// removed.
func (d *Dir) RemoveEmptyParents(rel string, keep func(dir string) bool) []string {
	var removed []string
	for i := strings.LastIndexByte(rel, '/'); i > 0; i = strings.LastIndexByte(rel[:i], '/') {
		dir := rel[:i]
		if keep != nil && keep(dir) {
			break
		}
		fi, err := d.root.Lstat(dir)
		if err != nil || !fi.IsDir() {
			break
		}
		if err := d.root.Remove(dir); err != nil { // not empty (ENOTEMPTY), or gone
			break
		}
		removed = append(removed, dir)
	}
	return removed
}

// CRC32C returns the Castagnoli CRC of b (handy for tests and callers that hold bytes).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
