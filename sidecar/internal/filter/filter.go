// Package filter decides which relative paths take part in the sync: it rejects object names that would
// land outside the directory, the sidecar's own files, the user's --exclude globs, and executable names
// (Executable) under the --no-exec globs.
package filter

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// InternalDir is the folder that filesync keeps for itself, in the bucket under the prefix (conflict
// copies) and in the directory (download temp files, localfs.TempDir). It is never synced or watched.
const InternalDir = ".filesync"

// maxSegment is the longest path segment (bytes) local filesystems take (NAME_MAX).
const maxSegment = 255

// ErrUnsafe marks a name that must never be written locally.
var ErrUnsafe = errors.New("unsafe name")

// Filter holds compiled exclude globs, and the --no-exec globs under which executable names are left out
// too. The zero value excludes nothing but internal names.
type Filter struct {
	globs  []glob
	noExec []glob
}

type glob struct {
	segs    []string
	dirOnly bool // the pattern ended in "/": it matches directories (and so everything below them) only
}

// New validates the globs. They read as in .gitignore: slash-separated, relative to the synced directory;
// a pattern without a slash (other than a trailing one) matches at any depth ("*.log", "cache"), one with
// a slash is anchored at the top ("uploads/*/private", "/debug.log"); a trailing slash matches directories
// only ("tmp/"); `**` matches any number of segments; the rest is path.Match syntax. A pattern that
// matches a directory excludes everything below it.
func New(globs []string) (*Filter, error) {
	g, err := compile(globs)
	if err != nil {
		return nil, err
	}
	return &Filter{globs: g}, nil
}

// WithNoExec returns a copy of f that also leaves out every executable name (Executable) matched by one of
// globs (--no-exec, read as New reads its globs: "uploads/**", "uploads"): Excluded, Skip and so every
// caller leave such a file alone on both sides, and NoExec tells it apart from an excluded one.
func (f *Filter) WithNoExec(globs []string) (*Filter, error) {
	g, err := compile(globs)
	if err != nil {
		return nil, err
	}
	c := &Filter{noExec: g}
	if f != nil {
		c.globs = f.globs
	}
	return c, nil
}

// compile parses .gitignore-style globs (New).
func compile(globs []string) ([]glob, error) {
	var out []glob
	for _, g := range globs {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		orig := g
		dirOnly := strings.HasSuffix(g, "/")
		g = strings.TrimRight(g, "/")
		anchored := strings.Contains(g, "/")
		g = strings.TrimPrefix(g, "/")
		if g == "" {
			return nil, fmt.Errorf("glob %q: matches nothing (or everything); name a path", orig)
		}
		segs := strings.Split(g, "/")
		for _, seg := range segs {
			if seg == "" {
				return nil, fmt.Errorf("glob %q: empty path segment", orig)
			}
			if seg == "**" {
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("glob %q: %w", orig, err)
			}
		}
		if !anchored {
			segs = append([]string{"**"}, segs...)
		}
		out = append(out, glob{segs: segs, dirOnly: dirOnly})
	}
	return out, nil
}

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
	case !utf8.ValidString(rel):
		return fmt.Errorf("%w: not valid UTF-8 (GCS object names must be)", ErrUnsafe)
	}
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case "", ".", "..":
			return fmt.Errorf("%w: %q segment", ErrUnsafe, seg)
		}
		if len(seg) > maxSegment {
			return fmt.Errorf("%w: a path segment of %d bytes (local filesystems take %d)", ErrUnsafe, len(seg), maxSegment)
		}
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character", ErrUnsafe)
		}
	}
	return nil
}

// Internal reports whether rel belongs to filesync itself (its folder, in the bucket or the directory).
func Internal(rel string) bool {
	return rel == InternalDir || strings.HasPrefix(rel, InternalDir+"/")
}

// Excluded reports whether the file (or object) rel matches one of the exclude globs, itself or through a
// directory above it ("cache" excludes "cache/a.txt"), or is an executable name under a --no-exec glob
// (NoExec).
func (f *Filter) Excluded(rel string) bool { return f.excluded(rel, false) }

// NoExec reports whether the file (or object) rel is left out because it is an executable name
// (Executable: x.php, x.php.jpg, .htaccess, ...) under one of the --no-exec globs: never downloaded, never
// uploaded, never deleted. Excluded reports these too; a caller that counts them apart asks NoExec first.
func (f *Filter) NoExec(rel string) bool {
	return f != nil && len(f.noExec) > 0 && Executable(rel) && matchAny(f.noExec, rel, false)
}

func (f *Filter) excluded(rel string, isDir bool) bool {
	if f == nil {
		return false
	}
	return matchAny(f.globs, rel, isDir) || !isDir && f.NoExec(rel)
}

// matchAny reports whether one of globs matches rel, itself or through a directory above it.
func matchAny(globs []glob, rel string, isDir bool) bool {
	return shortestMatch(globs, strings.Split(rel, "/"), isDir) > 0
}

// shortestMatch returns the fewest leading segments of name that one of globs matches (0: none): every
// directory above name, then name itself (for a directory-only glob, only if name is a directory).
func shortestMatch(globs []glob, name []string, isDir bool) int {
	for n := 1; n <= len(name); n++ {
		for _, g := range globs {
			if n == len(name) && g.dirOnly && !isDir {
				continue
			}
			if match(g.segs, name[:n]) {
				return n
			}
		}
	}
	return 0
}

// Skip reports whether the file rel takes no part in the sync: internal or excluded. Unsafe names are
// checked separately with CheckName because they deserve a warning.
func (f *Filter) Skip(rel string) bool {
	return Internal(rel) || f.excluded(rel, false)
}

// SkipDir is Skip for a directory: walks do not enter it.
func (f *Filter) SkipDir(rel string) bool {
	return Internal(rel) || f.excluded(rel, true)
}

// match matches pattern segments against all of name's segments; `**` matches zero or more segments.
func match(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if match(rest, name[i:]) {
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
	return len(name) == 0
}

// Root returns the top-most directory above rel (never rel itself) that one of the globs matches, and
// whether there is one: for --tree, the directory rel's changes are applied together with ("plugins/*/"
// gives "plugins/akismet" for "plugins/akismet/inc/a.php").
func (f *Filter) Root(rel string) (string, bool) {
	if f == nil {
		return "", false
	}
	parent := strings.Split(rel, "/")
	parent = parent[:len(parent)-1] // a directory, matched with the segments above it
	if n := shortestMatch(f.globs, parent, true); n > 0 {
		return strings.Join(parent[:n], "/"), true
	}
	return "", false
}
