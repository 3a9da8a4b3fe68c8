package localfs

import (
	"errors"
	"os"
	"syscall"
)

// InUse reports whether another process holds rel open for writing. It asks the kernel for a read lease,
// which is refused exactly when someone has the file open for writing (see fcntl(2), F_SETLEASE; a write
// lease would also be refused for readers, so a `tail -f` would block the upload forever); the lease is
// dropped at once. This is how a file that the app is still writing is told apart from one that is
// closed: across containers too, since they share the kernel. Where leases are unavailable (disabled, unsupported
// filesystem, a file owned by another user), it answers false and the settle time alone decides.
func (d *Dir) InUse(rel string) bool {
	fh, err := d.root.Open(rel)
	if err != nil {
		return false
	}
	defer fh.Close()
	return d.InUseFile(fh)
}

// InUseFile is InUse for a file already open for reading (OpenRead's): the file itself, not whatever its
// name leads to now.
func (d *Dir) InUseFile(fh *os.File) bool {
	fd := fh.Fd()
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_RDLCK)
	if errno == 0 {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
		return false
	}
	return errors.Is(errno, syscall.EAGAIN) || errors.Is(errno, syscall.EBUSY)
}
