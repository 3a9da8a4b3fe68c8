// Package plan computes what one sync pass must do. Compute is a pure function: it compares the local
// files, the remote objects and the base (what was last seen in sync) and returns a Plan value, which the
// syncer executes and --dry-run prints. Nothing here does I/O or reads the clock.
package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Local is a regular file in the synced directory.
type Local struct {
	Size    int64
	CRC32C  uint32
	ModTime time.Time
}

// Remote is an object in the bucket, under the prefix.
type Remote struct {
	Generation int64
	Size       int64
	CRC32C     uint32
}

// Base is what a path looked like the last time both sides were known to agree.
type Base struct {
	Generation int64
	Size       int64
	CRC32C     uint32
}

// Op is the kind of an action.
type Op int

// The operations a plan may contain.
const (
	// Upload writes the local file to the bucket with IfGeneration as precondition (0: create only).
	Upload Op = iota + 1
	// Download replaces (or creates) the local file with the remote object.
	Download
	// DeleteRemote deletes the object if its generation is still IfGeneration.
	DeleteRemote
	// DeleteLocal removes the local file, which still matches the base.
	DeleteLocal
	// RecordBase records that both sides hold the same content; nothing moves.
	RecordBase
	// ForgetBase drops the base of a path that is gone on both sides.
	ForgetBase
	// Conflict keeps the remote version at the path and preserves the local one as a conflict copy.
	Conflict
)

var opNames = map[Op]string{
	Upload: "upload", Download: "download", DeleteRemote: "delete-remote", DeleteLocal: "delete-local",
	RecordBase: "record", ForgetBase: "forget", Conflict: "conflict",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Action is one step of a plan.
type Action struct {
	Op   Op
	Path string
	// IfGeneration is the precondition for Upload and DeleteRemote (ifGenerationMatch); 0 means "must not exist".
	IfGeneration int64
	Local        Local  // the local file the action was planned from (Upload, Conflict, DeleteLocal, RecordBase)
	Remote       Remote // the remote object the action was planned from (Download, Conflict, RecordBase)
	Reason       string
}

func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-13s %s", a.Op, a.Path)
	switch a.Op {
	case Upload:
		if a.IfGeneration == 0 {
			b.WriteString(" (create-only)")
		} else {
			fmt.Fprintf(&b, " (if generation %d)", a.IfGeneration)
		}
	case DeleteRemote:
		fmt.Fprintf(&b, " (if generation %d)", a.IfGeneration)
	case Download, RecordBase, Conflict:
		fmt.Fprintf(&b, " (generation %d)", a.Remote.Generation)
	}
	if a.Reason != "" {
		b.WriteString(": ")
		b.WriteString(a.Reason)
	}
	return b.String()
}

// Input is everything Compute looks at.
type Input struct {
	Local  map[string]Local
	Remote map[string]Remote
	Base   map[string]Base
	// Now and Settle decide whether a local change is old enough to upload: a file modified after Now-Settle
	// is left for a later pass (Plan.Unsettled).
	Now    time.Time
	Settle time.Duration
	// Delete propagates deletions (under the base rules); without it, a file missing on one side is restored.
	Delete bool
	// MaxDeletePercent: a plan that deletes more than this share of the known (base) files deletes nothing.
	MaxDeletePercent int
	// Skip, when set, leaves paths alone (e.g. paths backing off after a failure).
	Skip func(path string) bool
}

// MinGuardedDeletes is the number of deletes at or under which the --max-delete guard never trips, so that
// removing a handful of files from a small tree is not mistaken for a mass delete. An empty directory never
// deletes anything, whatever its size (see Compute).
const MinGuardedDeletes = 10

// Plan is the outcome of Compute.
type Plan struct {
	Actions []Action
	// Unsettled lists local paths that changed but were modified too recently to upload, with the time at
	// which they will have been quiet for Settle.
	Unsettled map[string]time.Time
	// BlockedDeletes holds the deletes withheld by the --max-delete guard; empty when it did not trip.
	BlockedDeletes []Action
	// Known is the number of base entries the guard compared against.
	Known int
	// LocalEmpty is true when the directory was empty while the base was not: deletes became restores.
	LocalEmpty bool
}

// Count returns how many actions of op the plan holds.
func (p Plan) Count(op Op) int {
	n := 0
	for _, a := range p.Actions {
		if a.Op == op {
			n++
		}
	}
	return n
}

// String renders the plan, one action a line, for --dry-run and logs.
func (p Plan) String() string {
	var b strings.Builder
	for _, a := range p.Actions {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	paths := make([]string, 0, len(p.Unsettled))
	for path := range p.Unsettled {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		fmt.Fprintf(&b, "%-13s %s: modified less than the settle time ago\n", "wait", path)
	}
	if len(p.BlockedDeletes) > 0 {
		fmt.Fprintf(&b, "BLOCKED: %d deletes of %d known files exceed --max-delete; nothing deleted\n",
			len(p.BlockedDeletes), p.Known)
		for _, a := range p.BlockedDeletes {
			fmt.Fprintf(&b, "  blocked %s\n", a)
		}
	}
	return b.String()
}

// Compute returns the plan that brings local and remote together. Its rules (DESIGN.md, "Sync semantics"):
//   - same content on both sides: record the base, nothing moves;
//   - a side that changed since the base wins over one that did not;
//   - a path gone on one side is deleted on the other only if the other still matches the base (and
//     --delete); otherwise the surviving version is restored: nothing is lost;
//   - both sides changed, or they differ with no base: conflict, the remote keeps the path;
//   - an empty directory with a non-empty base deletes nothing: every would-be remote delete is a restore;
//   - uploads are preconditioned on the base generation (0 for new paths), deletes likewise.
func Compute(in Input) Plan {
	p := Plan{Unsettled: map[string]time.Time{}, Known: len(in.Base)}
	p.LocalEmpty = len(in.Local) == 0 && len(in.Base) > 0

	paths := make(map[string]struct{}, len(in.Local)+len(in.Remote)+len(in.Base))
	for k := range in.Local {
		paths[k] = struct{}{}
	}
	for k := range in.Remote {
		paths[k] = struct{}{}
	}
	for k := range in.Base {
		paths[k] = struct{}{}
	}
	sorted := make([]string, 0, len(paths))
	for k := range paths {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)

	var deletes []Action
	for _, path := range sorted {
		if in.Skip != nil && in.Skip(path) {
			continue
		}
		l, hasL := in.Local[path]
		r, hasR := in.Remote[path]
		b, hasB := in.Base[path]
		a, ok := decide(in, path, l, hasL, r, hasR, b, hasB, p.LocalEmpty)
		if !ok {
			continue
		}
		if needsSettled(a.Op) && in.Settle > 0 {
			quietAt := l.ModTime.Add(in.Settle)
			if quietAt.After(in.Now) {
				p.Unsettled[path] = quietAt
				continue
			}
		}
		if a.Op == DeleteRemote || a.Op == DeleteLocal {
			deletes = append(deletes, a)
			continue
		}
		p.Actions = append(p.Actions, a)
	}

	if tripsGuard(len(deletes), len(in.Base), in.MaxDeletePercent) {
		p.BlockedDeletes = deletes
	} else {
		p.Actions = append(p.Actions, deletes...)
		sort.SliceStable(p.Actions, func(i, j int) bool { return p.Actions[i].Path < p.Actions[j].Path })
	}
	return p
}

func tripsGuard(deletes, known, maxPercent int) bool {
	if deletes <= MinGuardedDeletes {
		return false
	}
	return deletes*100 > maxPercent*known
}

func needsSettled(op Op) bool { return op == Upload || op == Conflict }

func same(l Local, r Remote) bool { return l.Size == r.Size && l.CRC32C == r.CRC32C }

func decide(in Input, path string, l Local, hasL bool, r Remote, hasR bool, b Base, hasB bool, localEmpty bool) (Action, bool) {
	localChanged := hasB && (l.Size != b.Size || l.CRC32C != b.CRC32C)
	remoteChanged := hasB && r.Generation != b.Generation
	a := Action{Path: path, Local: l, Remote: r}
	switch {
	case !hasL && !hasR:
		if !hasB {
			return a, false
		}
		a.Op, a.Reason = ForgetBase, "gone on both sides"

	case hasL && hasR:
		if same(l, r) {
			if hasB && b.Generation == r.Generation && b.Size == r.Size && b.CRC32C == r.CRC32C {
				return a, false // in sync
			}
			a.Op, a.Reason = RecordBase, "same content on both sides"
			return a, true
		}
		switch {
		case !hasB:
			a.Op, a.Reason = Conflict, "differs on both sides with no common base"
		case localChanged && !remoteChanged:
			a.Op, a.IfGeneration, a.Reason = Upload, b.Generation, "changed locally"
		case !localChanged && remoteChanged:
			a.Op, a.Reason = Download, "changed remotely"
		case localChanged && remoteChanged:
			a.Op, a.Reason = Conflict, "changed on both sides"
		default:
			// Local matches the base and the remote generation is the base's, yet the contents differ: the base
			// is wrong. The bucket is the source of truth.
			a.Op, a.Reason = Download, "local and remote disagree with the base"
		}

	case hasL && !hasR:
		switch {
		case !hasB:
			a.Op, a.IfGeneration, a.Reason = Upload, 0, "new locally"
		case localChanged:
			a.Op, a.IfGeneration, a.Reason = Upload, 0, "deleted remotely but changed locally: kept"
		case !in.Delete:
			a.Op, a.IfGeneration, a.Reason = Upload, 0, "deleted remotely; --delete=false restores it"
		default:
			a.Op, a.Reason = DeleteLocal, "deleted remotely"
		}

	case !hasL && hasR:
		switch {
		case !hasB:
			a.Op, a.Reason = Download, "new remotely"
		case remoteChanged:
			a.Op, a.Reason = Download, "deleted locally but changed remotely: kept"
		case localEmpty:
			a.Op, a.Reason = Download, "local directory is empty: restoring, not deleting"
		case !in.Delete:
			a.Op, a.Reason = Download, "deleted locally; --delete=false restores it"
		default:
			a.Op, a.IfGeneration, a.Reason = DeleteRemote, b.Generation, "deleted locally"
		}
	}
	return a, true
}
