package localfs

import (
	"errors"
	"syscall"
)

// InUse reports whether another process holds rel open. It asks the kernel for a write lease, which is
// granted only when nobody else has the file open (see fcntl(2), F_SETLEASE); the lease is dropped at once.
// This is how a file that the app is still writing is told apart from one that is closed: across
// containers too, since they share the kernel. Where leases are unavailable (disabled, unsupported
// filesystem, a file owned by another user), it answers false and the settle time alone decides.
func (d *Dir) InUse(rel string) bool {
	fh, err := d.root.Open(rel)
	if err != nil {
		return false
	}
	defer fh.Close()
	fd := fh.Fd()
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_WRLCK)
	if errno == 0 {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
		return false
	}
	return errors.Is(errno, syscall.EAGAIN) || errors.Is(errno, syscall.EBUSY)
}
