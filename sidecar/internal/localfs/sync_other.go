//go:build !linux

package localfs

import (
	"fmt"
	"os"
	"time"
)

// Sync is weaker where syncfs(2) is not available: it flushes the directory itself, not the files in it.
// filesync targets Linux; this keeps it building elsewhere for development.
func (d *Dir) Sync() error {
	fh, err := d.root.Open(".")
	if err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	defer fh.Close()
	return fh.Sync()
}

// setMtime sets the file's access and modification times to t (by name: no futimens here).
func setMtime(fh *os.File, t time.Time) error { return os.Chtimes(fh.Name(), t, t) }
