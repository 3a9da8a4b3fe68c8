// Package plan computes what one sync pass must do. Compute is a pure function: it compares the local
// files, the remote objects and the base (what was last seen in sync) and returns a Plan value, which the
// syncer executes and --dry-run prints. Nothing here does I/O or reads the clock.
package plan

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// The planner compares the sync's three versions (package snapshot): a local file (snapshot.File), an
// object (snapshot.Object) and the base (snapshot.Base).

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
	// RemoteOnly records the object as the base of a lazy path that has no local file (Input.Lazy): no
	// download now (the background fill or the read-through fetches it), and its absence is not a delete.
	// A plan lists these apart, by name (Plan.RemoteOnly), not as Actions.
	RemoteOnly
	// Touch gives the local file, whose content is the object's, the object's mtime (Remote.ModTime) and
	// records the base; no bytes move. The object's mtime is the truth for identical bytes: a new mtime in
	// the bucket (rclone touch, a re-upload of the same bytes) reaches every replica, and a local touch is
	// undone, so every replica and every new pod serve the same ETag and Last-Modified.
	Touch
)

var opNames = map[Op]string{
	Upload: "upload", Download: "download", DeleteRemote: "delete-remote", DeleteLocal: "delete-local",
	RecordBase: "record", ForgetBase: "forget", Conflict: "conflict", Touch: "touch", RemoteOnly: "remote-only",
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
	Local        snapshot.File   // the local file the action was planned from (Upload, Conflict, DeleteLocal, RecordBase)
	Remote       snapshot.Object // the remote object the action was planned from (Download, Conflict, RecordBase)
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
	case Download, RecordBase, Conflict, RemoteOnly:
		fmt.Fprintf(&b, " (generation %d)", a.Remote.Generation)
	case Touch:
		fmt.Fprintf(&b, " (generation %d, mtime %d ns)", a.Remote.Generation, a.Remote.ModTime.UnixNano())
	}
	if a.Reason != "" {
		b.WriteString(": ")
		b.WriteString(a.Reason)
	}
	return b.String()
}

// Input is everything Compute looks at.
type Input struct {
	// The two sides and the base, by path (nil: none). Compute only reads them.
	Local  Side[snapshot.File]
	Remote Side[snapshot.Object]
	Base   Side[snapshot.Base]
	// Now and Settle decide whether a local change is old enough to upload: a file that changed after
	// Now-Settle is left for a later pass (Plan.Unsettled).
	Now    time.Time
	Settle time.Duration
	// ChangedAt, when set, tells when a local file last changed (the syncer's answer for a modification
	// time in the future); otherwise its modification time.
	ChangedAt func(path string, f snapshot.File) time.Time
	// Delete propagates deletions (under the base rules); without it, a file missing on one side is restored.
	Delete bool
	// MaxDeletePercent is the --max-delete guard: the share of the known (base) files that may be deleted.
	// A side missing more than this share at once (or all of them) is wiped: it is restored from the other
	// side and nothing is deleted. Deletes over the window that exceed it are withheld (BlockedDeletes).
	MaxDeletePercent int
	// Window is the delete budget carried from the previous plans (zero: none open yet); WindowLength is
	// how long one window lasts (--max-delete-window).
	Window       DeleteWindow
	WindowLength time.Duration
	// Skip, when set, leaves paths alone (e.g. paths backing off after a failure, unreadable ones). A
	// skipped path never counts as missing.
	Skip func(path string) bool
	// Unsyncable, when set, names the objects the sync cannot write locally (stored gzip-encoded, or also
	// a folder of other objects): nothing is downloaded or uploaded for such a path, and a local file that
	// still matches the base is deleted (with --delete, under the guard) once the object is another
	// generation than the base's: the version it was a copy of was replaced by one no new pod would get
	// either. A local file changed since the base, or never synced, is kept and never uploaded over the
	// object.
	Unsyncable func(path string) bool
	// Known, when not 0, is the number of base entries of the whole tree while Local, Remote and Base hold
	// only some paths: a targeted plan. The subset must include every base entry that either side lacks
	// (the wipe rule and the --max-delete guard count those) or whose object is Unsyncable (its local
	// copy may be deleted), and every path at one of their parent folders that either side holds (a file
	// there took the folder's place: see Compute); the paths left out are then in sync on both sides, and the plan of the subset is exactly the plan of the whole tree
	// restricted to the subset (FuzzTargeted). 0: Base is the whole base.
	Known int
	// Lazy, when set, names the lazy paths (--lazy): not needed locally. A lazy object without a local
	// file is recorded remote-only (snapshot.Base.RemoteOnly, the RemoteOnly action) instead of downloaded.
	// A remote-only base entry without a local file is neither missing locally (the wipe rule does not
	// count it) nor deleted locally (its object is never deleted for it); a remote change updates it
	// without a download, a remote delete forgets it. A local file at a remote-only path that is not the
	// base's content was written by an app that never saw the object: a conflict, never an overwrite.
	Lazy func(path string) bool
	// KnownRemoteOnly is, with Known, how many of the whole base's entries are remote-only (a targeted
	// plan leaves out those that have no local file: they are in sync).
	KnownRemoteOnly int
}

// DeleteWindow is the --max-delete budget over time: deletes are counted from Start, for WindowLength,
// against the files known when the window opened. A slow wipe (an object deleted every few seconds, each
// pass seeing a handful) spends the same budget as a fast one.
type DeleteWindow struct {
	Start   time.Time // zero: no window open
	Known   int       // base entries when the window opened
	Deleted int       // deletes carried out in the window so far (the caller adds the ones that succeed)
}

// roll returns the window in force at now: w, or a new one if w expired or was never opened.
func (w DeleteWindow) roll(now time.Time, length time.Duration, known int) DeleteWindow {
	if w.Start.IsZero() || now.Sub(w.Start) >= length || now.Before(w.Start) {
		return DeleteWindow{Start: now, Known: known}
	}
	return w
}

// Allows reports whether n more deletes fit the budget of maxPercent.
func (w DeleteWindow) Allows(n, maxPercent int) bool {
	return (w.Deleted+n)*100 <= maxPercent*w.Known
}

// Wiped reports whether a side that lacks missing of the known files has been wiped: it lacks all of
// them, or more than maxPercent of them at once.
func Wiped(missing, known, maxPercent int) bool {
	return known > 0 && (missing == known || missing*100 > maxPercent*known)
}

// Plan is the outcome of Compute.
type Plan struct {
	Actions []Action
	// RemoteOnly names, in path order, the lazy paths whose object (the one Input.Remote holds) is to be
	// recorded as their base, remote-only: the RemoteOnly op, listed apart from Actions by name only, as
	// it moves nothing and a pass may plan one for every media object of a site (100,000 Actions would
	// take 12 MB; their names 1.6 MB).
	RemoteOnly []string
	// Unsettled lists local paths that changed but were modified too recently to upload, with the time at
	// which they will have been quiet for Settle.
	Unsettled map[string]time.Time
	// BlockedDeletes holds the deletes withheld by the --max-delete guard; empty when it did not trip.
	BlockedDeletes []Action
	// Known is the number of base entries the wipe rule compared against; Paths how many paths were planned.
	Known, Paths int
	// LocalWiped and RemoteWiped tell that a side had lost more than --max-delete of the known files at
	// once (or all of them): its missing files are restored from the other side, nothing is deleted.
	LocalWiped, RemoteWiped bool
	// Window is the delete budget in force for this plan (Deleted not yet counting this plan's deletes).
	Window DeleteWindow
}

// Count returns how many actions of op the plan holds.
func (p Plan) Count(op Op) int {
	if op == RemoteOnly {
		return len(p.RemoteOnly)
	}
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
	for _, path := range p.RemoteOnly {
		fmt.Fprintf(&b, "%-13s %s: lazy, recorded without a download\n", RemoteOnly, path)
	}
	paths := make([]string, 0, len(p.Unsettled))
	for path := range p.Unsettled {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		fmt.Fprintf(&b, "%-13s %s: modified less than the settle time ago\n", "wait", path)
	}
	for _, w := range []struct {
		side  string
		wiped bool
	}{{"local directory", p.LocalWiped}, {"bucket", p.RemoteWiped}} {
		if w.wiped {
			fmt.Fprintf(&b, "WIPED: the %s lacks most of the %d known files; restoring it, deleting nothing\n", w.side, p.Known)
		}
	}
	if len(p.BlockedDeletes) > 0 {
		fmt.Fprintf(&b, "BLOCKED: %d deletes, after %d in the window since %s, exceed --max-delete of the %d files known then; nothing deleted\n",
			len(p.BlockedDeletes), p.Window.Deleted, p.Window.Start.UTC().Format(time.RFC3339), p.Window.Known)
		for _, a := range p.BlockedDeletes {
			fmt.Fprintf(&b, "  blocked %s\n", a)
		}
	}
	return b.String()
}

// Compute returns the plan that brings local and remote together. Its rules (docs/design.md, "Sync
// semantics" and "Safety rules"):
//   - same content on both sides: record the base, nothing moves;
//   - a side that changed since the base wins over one that did not;
//   - a path gone on one side is deleted on the other only if the other still matches the base (and
//     --delete); otherwise the surviving version is restored: nothing is lost;
//   - both sides changed, or they differ with no base: conflict, the remote keeps the path;
//   - while a side is wiped (it lacks all known files, or more than --max-delete of them at once) nothing
//     is deleted on either side: its missing files are restored from the other side, and a path the other
//     side lacks waits until it is restored;
//   - a base path that a side lacks but holds a file in place of one of its parent folders was deleted
//     there to make room for that file (a path cannot be a file and a folder at once), not lost: it does
//     not count for the wipe rule; its object goes only with the upload of that file, or once the bucket
//     holds it; and the guard charges a folder replaced by a file one delete less;
//   - deletes beyond --max-delete of the files known at the start of the delete window are withheld;
//   - uploads are preconditioned on the base generation (0 for new paths), deletes likewise.
func Compute(in Input) Plan {
	in = in.withSides()
	known, remoteOnly := in.Base.Len(), 0
	if in.Known > 0 {
		known, remoteOnly = in.Known, in.KnownRemoteOnly
	} else {
		for _, b := range in.Base.All() {
			if b.RemoteOnly {
				remoteOnly++
			}
		}
	}
	p := Plan{Unsettled: map[string]time.Time{}, Known: known, Window: in.Window}
	skip := func(path string) bool { return in.Skip != nil && in.Skip(path) }

	// The local side is judged on the files it should hold: not the remote-only ones.
	missingLocal, missingRemote := 0, 0
	for path, b := range in.Base.All() {
		if skip(path) {
			continue
		}
		if _, ok := in.Local.Get(path); !ok && !b.RemoteOnly && !under(in.Local, path) {
			missingLocal++
		}
		if _, ok := in.Remote.Get(path); !ok && !under(in.Remote, path) {
			missingRemote++
		}
	}
	p.LocalWiped = Wiped(missingLocal, known-remoteOnly, in.MaxDeletePercent)
	p.RemoteWiped = Wiped(missingRemote, known, in.MaxDeletePercent)

	sorted := union(in.Local, in.Remote, in.Base)
	p.Paths = len(sorted)

	var deletes []Action
	// gets is the transfer planned for each path so far: a folder's name sorts before the paths under it,
	// so a file that took a folder's place is decided before them. replacing holds the files that took a
	// folder's place on the side whose copies of the folder's files this plan deletes, where that side holds
	// the file or gets it now: the guard charges each such replacement one delete less.
	gets := map[string]Op{}
	replacing := map[string]bool{}
	for _, path := range sorted {
		if skip(path) {
			continue
		}
		l, hasL := in.Local.Get(path)
		r, hasR := in.Remote.Get(path)
		b, hasB := in.Base.Get(path)
		var a Action
		var ok bool
		if hasR && in.Unsyncable != nil && in.Unsyncable(path) {
			a, ok = unsyncable(in, path, l, hasL, r, b, hasB, p.LocalWiped || p.RemoteWiped)
		} else {
			a, ok = decide(in, path, l, hasL, r, hasR, b, hasB, p.LocalWiped, p.RemoteWiped)
		}
		if !ok {
			continue
		}
		if needsSettled(a.Op) && in.Settle > 0 {
			changed := time.Unix(0, l.ModTime)
			if in.ChangedAt != nil {
				changed = in.ChangedAt(path, l)
			}
			quietAt := changed.Add(in.Settle)
			if quietAt.After(in.Now) {
				p.Unsettled[path] = quietAt
				continue
			}
		}
		switch a.Op {
		case DeleteRemote:
			if file, ok := fileAbove(in.Local, path); ok {
				// The object goes in the pass that uploads the file that took its folder's place, or once the
				// bucket holds that file; not while the file waits (settling, backing off), which would show the
				// other replicas a bucket without either for as long: to them, a wipe.
				_, inBucket := in.Remote.Get(file)
				if !inBucket && gets[file] != Upload {
					continue
				}
				replacing[file] = true
				a.Reason = "deleted locally: the file " + file + " took its folder's place"
			}
			deletes = append(deletes, a)
			continue
		case DeleteLocal:
			if file, ok := fileAbove(in.Remote, path); ok {
				if _, local := in.Local.Get(file); local || gets[file] == Download {
					replacing[file] = true
				}
				a.Reason = "deleted remotely: the object " + file + " took its folder's place"
			}
			deletes = append(deletes, a)
			continue
		case Upload, Download, Conflict:
			gets[path] = a.Op
		case RemoteOnly:
			p.RemoteOnly = append(p.RemoteOnly, path)
			continue
		}
		p.Actions = append(p.Actions, a)
	}

	if len(deletes) > 0 {
		p.Window = in.Window.roll(in.Now, in.WindowLength, known)
		// A folder replaced by a file is one file replacing another plus the deletes of the rest.
		if !p.Window.Allows(len(deletes)-len(replacing), in.MaxDeletePercent) {
			p.BlockedDeletes = deletes
			return p
		}
		p.Actions = append(p.Actions, deletes...)
		sort.SliceStable(p.Actions, func(i, j int) bool { return p.Actions[i].Path < p.Actions[j].Path })
	}
	return p
}

func needsSettled(op Op) bool { return op == Upload || op == Conflict }

// fileAbove returns the nearest parent folder of path that side holds as a file (a local file, or an
// object): a file took the folder's place there. A path cannot be a file and a folder at once, so a base
// path under it that the side lacks was deleted to make room for the file: evidence, not a loss.
func fileAbove[V any](side Side[V], path string) (string, bool) {
	for i := strings.LastIndexByte(path, '/'); i > 0; i = strings.LastIndexByte(path[:i], '/') {
		if _, ok := side.Get(path[:i]); ok {
			return path[:i], true
		}
	}
	return "", false
}

// under reports whether a file on side took the place of one of path's parent folders.
func under[V any](side Side[V], path string) bool {
	_, ok := fileAbove(side, path)
	return ok
}

// mtimeDiffers reports whether the object r carries an mtime (not the zero time) whose whole second is not
// local file l's. Whole seconds: rclone stores nanoseconds, gcloud storage and gsutil whole seconds, so a
// finer comparison would have each tool's copy of the same bytes undo the other's stamp on every replica;
// what a web server serves (Last-Modified, nginx's ETag) is in whole seconds too. Before 1970 counts as
// any other time (Unix rounds down).
func mtimeDiffers(l snapshot.File, r snapshot.Object) bool {
	return !r.ModTime.IsZero() && time.Unix(0, l.ModTime).Unix() != r.ModTime.Unix()
}

func decide(in Input, path string, l snapshot.File, hasL bool, r snapshot.Object, hasR bool, b snapshot.Base, hasB bool, localWiped, remoteWiped bool) (Action, bool) {
	// A remote-only base records an object this replica never had: a local file that differs from it
	// was written without seeing it, so it counts as changed on both sides (a conflict, not an overwrite).
	localChanged := hasB && !b.Agrees(l)
	remoteChanged := hasB && (r.Generation != b.Generation || b.RemoteOnly)
	a := Action{Path: path, Local: l, Remote: r}
	if !hasL && hasR {
		if op, why, ok := lazyAbsent(in, path, r, b, hasB, localWiped); ok {
			if op == 0 {
				return a, false
			}
			a.Op, a.Reason = op, why
			return a, true
		}
	}
	switch {
	case !hasL && !hasR:
		if !hasB {
			return a, false
		}
		a.Op, a.Reason = ForgetBase, "gone on both sides"

	case hasL && hasR:
		if l.Same(r) {
			if mtimeDiffers(l, r) {
				a.Op, a.Reason = Touch, "same content, another mtime: the object's"
				return a, true
			}
			if hasB && b.Is(r) && !b.RemoteOnly {
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
		case remoteWiped:
			a.Op, a.IfGeneration, a.Reason = Upload, 0, "the bucket lost most known files: restoring, not deleting"
		case !in.Delete:
			a.Op, a.IfGeneration, a.Reason = Upload, 0, "deleted remotely; --delete=false restores it"
		case localWiped:
			return a, false // a wiped side deletes nothing: decided once the directory is restored
		default:
			a.Op, a.Reason = DeleteLocal, "deleted remotely"
		}

	case !hasL && hasR:
		switch {
		case !hasB:
			a.Op, a.Reason = Download, "new remotely"
		case remoteChanged:
			a.Op, a.Reason = Download, "deleted locally but changed remotely: kept"
		case localWiped:
			a.Op, a.Reason = Download, "the local directory lost most known files: restoring, not deleting"
		case !in.Delete:
			a.Op, a.Reason = Download, "deleted locally; --delete=false restores it"
		case remoteWiped:
			return a, false // a wiped side deletes nothing: decided once the bucket is restored
		default:
			a.Op, a.IfGeneration, a.Reason = DeleteRemote, b.Generation, "deleted locally"
		}
	}
	return a, true
}

// lazyAbsent decides an object without a local file where laziness decides (ok): a lazy path that is
// new, remote-only, or lost with a wiped directory is recorded remote-only (op 0: it already is, as the
// bucket has it), and a remote-only path that is not lazy any more is downloaded. Otherwise (a lazy file
// that was local and is gone while the directory is not wiped: the app deleted it) the usual rules apply.
func lazyAbsent(in Input, path string, r snapshot.Object, b snapshot.Base, hasB, localWiped bool) (Op, string, bool) {
	lazy := in.Lazy != nil && in.Lazy(path)
	switch {
	case hasB && b.RemoteOnly && !lazy:
		return Download, "remote-only, and not lazy any more", true
	case hasB && b.RemoteOnly && b.Is(r) && b.Object.ModTime.Equal(r.ModTime):
		return 0, "", true
	case hasB && b.RemoteOnly:
		return RemoteOnly, "changed remotely: lazy, not downloaded", true
	case lazy && !hasB:
		return RemoteOnly, "new remotely: lazy, not downloaded", true
	case lazy && localWiped:
		return RemoteOnly, "the local directory lost most known files: lazy, not restored now", true
	}
	return 0, "", false
}

// unsyncable decides a path whose object the sync cannot write locally (Input.Unsyncable). A fresh pod
// gets no file there, so a running replica must not keep one either: the local copy of the version the
// object replaced goes, if it still matches the base (a change made here since is kept, and never
// uploaded over the object); a file whose object is still the base's generation stays (this replica may
// have written it: a file uploaded in the place of a folder, which wins in the bucket). wiped: a side is wiped, and a wiped side deletes nothing.
func unsyncable(in Input, path string, l snapshot.File, hasL bool, r snapshot.Object, b snapshot.Base, hasB, wiped bool) (Action, bool) {
	a := Action{Path: path, Local: l, Remote: r}
	if !hasL || !hasB || !b.Agrees(l) || r.Generation == b.Generation || !in.Delete || wiped {
		return a, false // the object this file was synced with is still the live one, or nothing to delete
	}
	a.Op, a.Reason = DeleteLocal, "replaced remotely by an object that is not synced: no pod has it"
	return a, true
}

// Side is one side's entries, or the base's, by path: a Map for a few paths, a pathmap.Map for a whole
// site. Compute only reads it.
type Side[V any] interface {
	Get(path string) (V, bool)
	Len() int
	All() iter.Seq2[string, V]
}

// Map is a Side held in a Go map.
type Map[V any] map[string]V

// Get returns path's entry.
func (m Map[V]) Get(path string) (V, bool) { v, ok := m[path]; return v, ok }

// Len returns the number of paths.
func (m Map[V]) Len() int { return len(m) }

// All iterates over the paths and their entries.
func (m Map[V]) All() iter.Seq2[string, V] { return maps.All(m) }

// withSides returns in with an empty Map for each side that is nil.
func (in Input) withSides() Input {
	if in.Local == nil {
		in.Local = Map[snapshot.File]{}
	}
	if in.Remote == nil {
		in.Remote = Map[snapshot.Object]{}
	}
	if in.Base == nil {
		in.Base = Map[snapshot.Base]{}
	}
	return in
}

// union returns every path of the base and the sides, sorted, each once: the base's paths, then the
// sides' paths it lacks (a whole site's paths are mostly in all three; no set of them is built).
func union(local Side[snapshot.File], remote Side[snapshot.Object], base Side[snapshot.Base]) []string {
	paths := make([]string, 0, base.Len()+max(local.Len(), remote.Len())/8)
	for p := range base.All() {
		paths = append(paths, p)
	}
	for p := range remote.All() {
		if _, ok := base.Get(p); !ok {
			paths = append(paths, p)
		}
	}
	for p := range local.All() {
		_, inBase := base.Get(p)
		_, inRemote := remote.Get(p)
		if !inBase && !inRemote {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	return paths
}
