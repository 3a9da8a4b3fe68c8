// Package conflict names conflict copies and reads their names back: the local version that lost a
// conflict is kept in the bucket as PREFIX/.filesync/conflicts/<path>.<pod>.<unix-time> (docs/design.md,
// "Sync semantics"). Nothing here does I/O.
package conflict

import (
	"strconv"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
)

// Dir is the folder, relative to the remote's prefix, holding every conflict copy.
const Dir = filter.InternalDir + "/conflicts/"

// Copy is what a conflict copy's name says: the path it was the local version of, the replica that
// preserved it and when.
type Copy struct {
	Path string
	Pod  string
	Time time.Time
}

// Name returns the object name (relative to the prefix) of the copy of path preserved by pod at t. A dot
// in the pod name (Kubernetes allows them; a hostname may have them) becomes a dash and an empty one is
// "unknown", so that the last two dot-separated fields of every name are the replica and the time, and
// the path is the rest, whatever dots it holds (Parse).
func Name(path, pod string, t time.Time) string {
	return Prefix(path) + podField(pod) + "." + strconv.FormatInt(t.Unix(), 10)
}

// Prefix is the start of the names of path's copies. Other paths' copies can share it (those of
// "a.jpg.bak" start with the prefix of "a.jpg"): Parse the names and compare the paths.
func Prefix(path string) string { return Dir + path + "." }

func podField(pod string) string {
	pod = strings.NewReplacer(".", "-", "/", "-").Replace(pod)
	if pod == "" {
		return "unknown"
	}
	return pod
}

// Parse reads a name written by Name (relative to the prefix), from the right: the time (decimal unix
// seconds), then the replica (no dots), and the path is what is left. ok is false for anything else.
func Parse(name string) (c Copy, ok bool) {
	rest, found := strings.CutPrefix(name, Dir)
	if !found {
		return Copy{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return Copy{}, false
	}
	sec, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || sec < 0 || strings.ContainsAny(rest[i+1:], "+-") {
		return Copy{}, false
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '.')
	if j <= 0 || j == len(rest)-1 {
		return Copy{}, false
	}
	return Copy{Path: rest[:j], Pod: rest[j+1:], Time: time.Unix(sec, 0).UTC()}, true
}
