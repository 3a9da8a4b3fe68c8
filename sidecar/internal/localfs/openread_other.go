//go:build !unix

package localfs

import (
	"errors"
	"fmt"
	"os"
)

// OpenRead serves nothing where openat(2) with O_NOFOLLOW is not available: it could not open a file
// without following symlinks. filesync targets Linux; this keeps it building elsewhere.
func (d *Dir) OpenRead(rel string) (*os.File, error) {
	return nil, fmt.Errorf("open %s: %w", rel, errors.ErrUnsupported)
}
