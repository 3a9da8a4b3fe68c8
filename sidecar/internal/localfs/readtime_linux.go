package localfs

import (
	"syscall"
	"time"
)

// ReadTime returns when rel was last read as the kernel keeps it (its atime: with relatime, the default,
// updated on the first read after a write and then at most daily), never through a symlink.
func (d *Dir) ReadTime(rel string) (time.Time, error) {
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return time.Time{}, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Sec, st.Atim.Nsec), nil
	}
	return fi.ModTime(), nil
}
