//go:build !linux

package localfs

// renameNoReplace renames from to to unless to exists (a check, then a rename).
func (d *Dir) renameNoReplace(from, to string) error { return d.checkThenRename(from, to) }
