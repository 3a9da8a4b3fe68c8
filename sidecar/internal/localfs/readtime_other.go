//go:build !linux

package localfs

import "time"

// ReadTime returns the file's modification time where the access time is not read (docs: Linux only).
func (d *Dir) ReadTime(rel string) (time.Time, error) {
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
