package localfs

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sync flushes the filesystem holding the directory to stable storage (syncfs(2)): one call covers every
// file written since, instead of an fsync per file.
func (d *Dir) Sync() error {
	fh, err := d.root.Open(".")
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", d.path, err)
	}
	defer fh.Close()
	if err := unix.Syncfs(int(fh.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", d.path, err)
	}
	return nil
}

// setMtime sets the open file's access and modification times to t: futimens(3), which is utimensat(2)
// with the descriptor and a NULL path (Linux 2.6.22 on; a "" path would need AT_EMPTY_PATH, which older
// kernels refuse).
func setMtime(fh *os.File, t time.Time) error {
	rc, err := fh.SyscallConn()
	if err != nil {
		return err
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
