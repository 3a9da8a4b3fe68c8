package localfs

import (
	"errors"
	"fmt"
	"path"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to unless to exists (renameat2 RENAME_NOREPLACE: no window in which an
// empty directory the app just made at to could be replaced). Without kernel or filesystem support it
// falls back to a check, then a rename.
func (d *Dir) renameNoReplace(from, to string) error {
	src, err := d.root.Open(path.Dir(from))
	if err != nil {
		return fmt.Errorf("publish %s: %w", to, err)
	}
	defer src.Close()
	dst, err := d.root.Open(path.Dir(to))
	if err != nil {
		return fmt.Errorf("publish %s: %w", to, err)
	}
	defer dst.Close()
	err = unix.Renameat2(int(src.Fd()), path.Base(from), int(dst.Fd()), path.Base(to), unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY):
		return fmt.Errorf("publish %s: %w (it exists now)", to, ErrChanged)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		return d.checkThenRename(from, to)
	}
	return fmt.Errorf("publish %s: %w", to, err)
}
