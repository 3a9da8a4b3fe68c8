//go:build !linux

package localfs

import "os"

// InUse cannot tell on this platform; the settle time alone decides.
func (d *Dir) InUse(string) bool { return false }

// InUseFile cannot tell either.
func (d *Dir) InUseFile(*os.File) bool { return false }
