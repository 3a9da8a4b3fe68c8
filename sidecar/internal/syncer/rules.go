package syncer

import (
	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

// The rules of what is synced, each written once (docs/design.md): the listing, the pass, remote hints
// and the read-through's fetch all ask these.

// nameRule says whether an object name is synced. ignore: filesync's own .filesync/, folder placeholders
// (gcsstore.IsPlaceholder: "dir/" names a folder, not a file) and excluded paths, never touched and never
// reported; noExec: an executable name under --no-exec (filter.NoExec), never
// written locally nor uploaded (reported once, counted as reason "exec"); unsafe: a name that is never
// written locally (reported once).
func (s *Syncer) nameRule(name string) (ignore, noExec bool, unsafe error) {
	switch {
	case filter.Internal(name), gcsstore.IsPlaceholder(name):
		return true, false, nil
	case s.filter.NoExec(name): // before Excluded, which holds these too
		return true, true, nil
	case s.filter.Excluded(name):
		return true, false, nil
	}
	return false, false, filter.CheckName(name)
}

// objectRule says why an object is left alone, or noReason: stored gzip-encoded (the client decompresses
// it, so its bytes cannot be checked against its CRC32C), or also a folder of other objects (a local path
// is a file or a directory, not both: the folder wins, whatever the order of listing or writing). folder
// comes from whatever the caller knows of the bucket: the listing's flag, the loop's view, or a lookup.
func objectRule(contentEncoding string, folder bool) reason {
	switch {
	case contentEncoding == "gzip":
		return gzipEncoded
	case folder:
		return folderClash
	}
	return noReason
}

// objectWarnings are the lines said once when an object is left alone for a reason of objectRule.
var objectWarnings = map[reason]string{
	gzipEncoded: "skipping an object stored with Content-Encoding: gzip: the client decompresses it, so its bytes cannot be checked against its CRC32C and filesync never publishes unchecked bytes; store it uncompressed to sync it",
	folderClash: "skipping an object that is also a folder of other objects: a local path is a file or a directory, not both; the folder's objects win",
}

// leftAlone reports whether path is out of the sync for now: unreadable locally (itself or a folder above
// it), or skipped until its object changes. An object objectRule leaves alone is not: the planner decides
// it (plan.Input.Unsyncable), so that a replica drops the local copy of the version it replaced, as a new
// pod has none. The planner calls it: it only reads.
func (s *Syncer) leftAlone(path string) bool {
	return s.holds.isUnreadable(path) || s.holds.isSkipped(path)
}
