//go:build !linux

package localfs

// InUse cannot tell on this platform; the settle time alone decides.
func (d *Dir) InUse(string) bool { return false }
