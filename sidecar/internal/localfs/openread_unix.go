//go:build unix

package localfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// OpenRead opens a regular file of the directory for reading, for serving it, without following any
// symlink: each directory on the way is opened from the one before with O_NOFOLLOW|O_DIRECTORY and the
// file itself with O_NOFOLLOW, so what is served is the file the name names, not one a symlink points to
// (os.Root refuses only symlinks that leave the directory, and a symlink swapped in between a check and
// the open is caught too: no name is looked up twice). A symlink at any segment is ErrSymlink; a path that
// is there but is not a regular file (a directory, a FIFO: opened without blocking) is ErrNotRegular; a
// missing one is fs.ErrNotExist.
func (d *Dir) OpenRead(rel string) (*os.File, error) {
	if err := filter.CheckName(rel); err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	top, err := d.root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	defer top.Close()
	segs := strings.Split(rel, "/")
	at, owned := int(top.Fd()), -1 // owned: an fd opened here, closed once the next one is open
	defer func() {
		if owned >= 0 {
			unix.Close(owned)
		}
	}()
	for i, seg := range segs {
		last := i == len(segs)-1
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			flags |= unix.O_NONBLOCK | unix.O_NOCTTY // a FIFO must not block the open
		} else {
			flags |= unix.O_DIRECTORY
		}
		fd, err := openat(at, seg, flags)
		if err != nil {
			return nil, openError(at, rel, strings.Join(segs[:i+1], "/"), seg, err)
		}
		if owned >= 0 {
			unix.Close(owned)
		}
		at, owned = fd, fd
	}
	var st unix.Stat_t
	if err := unix.Fstat(at, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: rel, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("open %s: %w", rel, ErrNotRegular)
	}
	if err := unix.SetNonblock(at, false); err != nil {
		return nil, &fs.PathError{Op: "fcntl", Path: rel, Err: err}
	}
	owned = -1 // the file's now
	return os.NewFile(uintptr(at), filepath.Join(d.path, filepath.FromSlash(rel))), nil
}

// openat retries openat(2) on EINTR.
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// openError names why seg (the last segment of prefix, in the directory at) could not be opened: a
// symlink there is ErrSymlink whatever errno O_NOFOLLOW gave (ELOOP, or ENOTDIR with O_DIRECTORY); a
// missing segment is fs.ErrNotExist (through the errno).
func openError(at int, rel, prefix, seg string, err error) error {
	var st unix.Stat_t
	if !errors.Is(err, unix.ENOENT) && unix.Fstatat(at, seg, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("open %s: %w (%s)", rel, ErrSymlink, prefix)
	}
	return &fs.PathError{Op: "open", Path: rel, Err: err}
}
