// Package filter decides which relative paths take part in the sync: it rejects object names that would
// land outside the directory, the sidecar's own files, and the user's --exclude globs.
package filter

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// InternalDir is the bucket folder (under the prefix) that filesync keeps for itself (conflict copies).
// It is never synced in either direction.
const InternalDir = ".filesync"

// TempPrefix starts the names of the temporary files downloads are written to. Such files are never synced.
const TempPrefix = ".filesync-tmp-"

// ErrUnsafe marks a name that must never be written locally.
var ErrUnsafe = errors.New("unsafe name")

// Filter holds compiled exclude globs. The zero value excludes nothing but internal names.
type Filter struct {
	globs []string
}

// New validates the globs (slash-separated, relative to the synced directory, `**` matches any number of
// path segments, the rest is path.Match syntax).
func New(globs []string) (*Filter, error) {
	f := &Filter{}
	for _, g := range globs {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		g = strings.TrimPrefix(g, "/")
		for _, seg := range strings.Split(g, "/") {
			if seg == "**" {
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("exclude %q: %w", g, err)
			}
		}
		f.globs = append(f.globs, g)
	}
	return f, nil
}

// Globs returns the exclude patterns in use.
func (f *Filter) Globs() []string { return append([]string(nil), f.globs...) }

// CheckName reports whether rel (a slash-separated path relative to the directory, from an object name or a
// local walk) may be synced. It returns ErrUnsafe for names that could escape the directory or that the local
// filesystem cannot represent faithfully.
func CheckName(rel string) error {
	switch {
	case rel == "":
		return fmt.Errorf("%w: empty name", ErrUnsafe)
	case strings.ContainsRune(rel, 0):
		return fmt.Errorf("%w: NUL byte", ErrUnsafe)
	case strings.ContainsRune(rel, '\\'):
		return fmt.Errorf("%w: backslash", ErrUnsafe)
	case strings.HasPrefix(rel, "/"):
		return fmt.Errorf("%w: absolute path", ErrUnsafe)
	case strings.HasSuffix(rel, "/"):
		return fmt.Errorf("%w: directory placeholder", ErrUnsafe)
	case len(rel) >= 2 && rel[1] == ':':
		return fmt.Errorf("%w: drive letter", ErrUnsafe)
	}
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("%w: %q segment", ErrUnsafe, seg)
		}
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character", ErrUnsafe)
		}
	}
	return nil
}

// Internal reports whether rel belongs to filesync itself (its bucket folder or a download temp file).
func Internal(rel string) bool {
	if rel == InternalDir || strings.HasPrefix(rel, InternalDir+"/") {
		return true
	}
	return strings.HasPrefix(path.Base(rel), TempPrefix)
}

// Excluded reports whether rel matches one of the exclude globs. A glob also excludes everything below a
// directory it matches ("cache" excludes "cache/a.txt").
func (f *Filter) Excluded(rel string) bool {
	if f == nil {
		return false
	}
	for _, g := range f.globs {
		if match(strings.Split(g, "/"), strings.Split(rel, "/"), true) {
			return true
		}
	}
	return false
}

// Skip reports whether rel takes no part in the sync: internal or excluded. Unsafe names are checked
// separately with CheckName because they deserve a warning.
func (f *Filter) Skip(rel string) bool {
	return Internal(rel) || f.Excluded(rel)
}

// match matches pattern segments against name segments; `**` matches zero or more segments. With prefixOK,
// a pattern that matches a leading part of the name (a directory) matches the whole name.
func match(pat, name []string, prefixOK bool) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if match(rest, name[i:], prefixOK) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0 || prefixOK
}
