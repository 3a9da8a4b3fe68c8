package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/pathmap"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func loc(size int64, crc uint32) snapshot.File { return locAt(size, crc, t0.Add(-time.Hour)) }
func locAt(size int64, crc uint32, mtime time.Time) snapshot.File {
	return snapshot.File{Stamp: snapshot.Stamp{Size: size, ModTime: mtime.UnixNano()}, CRC32C: crc}
}
func rem(gen, size int64, crc uint32) snapshot.Object {
	return snapshot.Object{Generation: gen, Size: size, CRC32C: crc}
}
func remAt(gen, size int64, crc uint32, mtime time.Time) snapshot.Object {
	o := rem(gen, size, crc)
	o.ModTime = mtime
	return o
}
func base(gen, size int64, crc uint32) snapshot.Base {
	return snapshot.Base{Object: rem(gen, size, crc)}
}

// TestCompute walks the three-way table of docs/design.md ("Sync semantics") row by row, plus the rules that make it safe.
func TestCompute(t *testing.T) {
	type side struct {
		l *snapshot.File
		r *snapshot.Object
		b *snapshot.Base
	}
	L := func(l snapshot.File) *snapshot.File { return &l }
	R := func(r snapshot.Object) *snapshot.Object { return &r }
	B := func(b snapshot.Base) *snapshot.Base { return &b }
	for _, tc := range []struct {
		name   string
		s      side
		delete bool
		want   string // "" = nothing to do
	}{
		{"new local: create-only upload", side{l: L(loc(3, 1))}, true, "upload a (create-only)"},
		{"new remote: download", side{r: R(rem(7, 3, 1))}, true, "download a (generation 7)"},
		{"same content, no base: record", side{l: L(loc(3, 1)), r: R(rem(7, 3, 1))}, true, "record a (generation 7)"},
		{"same content, stale base: record", side{L(loc(3, 1)), R(rem(9, 3, 1)), B(base(7, 3, 2))}, true, "record a (generation 9)"},
		{"in sync: nothing", side{L(loc(3, 1)), R(rem(7, 3, 1)), B(base(7, 3, 1))}, true, ""},
		{"changed locally: upload if base generation", side{L(loc(4, 2)), R(rem(7, 3, 1)), B(base(7, 3, 1))}, true, "upload a (if generation 7)"},
		{"changed remotely: download", side{L(loc(3, 1)), R(rem(8, 4, 2)), B(base(7, 3, 1))}, true, "download a (generation 8)"},
		{"deleted locally: delete remote if base generation", side{r: R(rem(7, 3, 1)), b: B(base(7, 3, 1))}, true, "delete-remote a (if generation 7)"},
		{"deleted locally, --delete=false: restore", side{r: R(rem(7, 3, 1)), b: B(base(7, 3, 1))}, false, "download a (generation 7)"},
		{"deleted locally but changed remotely: download", side{r: R(rem(8, 3, 1)), b: B(base(7, 3, 1))}, true, "download a (generation 8)"},
		{"deleted remotely: delete local", side{l: L(loc(3, 1)), b: B(base(7, 3, 1))}, true, "delete-local a"},
		{"deleted remotely, --delete=false: re-upload", side{l: L(loc(3, 1)), b: B(base(7, 3, 1))}, false, "upload a (create-only)"},
		{"deleted remotely but changed locally: re-create", side{l: L(loc(4, 2)), b: B(base(7, 3, 1))}, true, "upload a (create-only)"},
		{"changed on both sides: conflict", side{L(loc(4, 2)), R(rem(8, 5, 3)), B(base(7, 3, 1))}, true, "conflict a (generation 8)"},
		{"differs with no base: conflict", side{l: L(loc(4, 2)), r: R(rem(8, 5, 3))}, true, "conflict a (generation 8)"},
		{"gone on both sides: forget base", side{b: B(base(7, 3, 1))}, true, "forget a"},
		{"base disagrees with both: download", side{L(loc(3, 1)), R(rem(7, 4, 9)), B(base(7, 3, 1))}, true, "download a (generation 7)"},
		// The object's mtime is the truth for identical bytes (P1).
		{"in sync, the object's mtime: nothing", side{L(locAt(3, 1, t0)), R(remAt(7, 3, 1, t0)), B(base(7, 3, 1))}, true, ""},
		{"same bytes, new mtime in the bucket (rclone touch): touch", side{L(loc(3, 1)), R(remAt(7, 3, 1, t0)), B(base(7, 3, 1))}, true,
			fmt.Sprintf("touch a (generation 7, mtime %d ns)", t0.UnixNano())},
		{"same bytes re-uploaded with a new mtime: touch", side{L(loc(3, 1)), R(remAt(8, 3, 1, t0)), B(base(7, 3, 1))}, true,
			fmt.Sprintf("touch a (generation 8, mtime %d ns)", t0.UnixNano())},
		{"same bytes re-uploaded, the same mtime: record", side{L(locAt(3, 1, t0)), R(remAt(8, 3, 1, t0)), B(base(7, 3, 1))}, true, "record a (generation 8)"},
		{"same bytes, no base, another mtime: touch", side{l: L(loc(3, 1)), r: R(remAt(7, 3, 1, t0))}, true,
			fmt.Sprintf("touch a (generation 7, mtime %d ns)", t0.UnixNano())},
		{"touched locally, same bytes: the object's mtime back", side{L(locAt(3, 1, t0.Add(time.Minute))), R(remAt(7, 3, 1, t0)), B(base(7, 3, 1))}, true,
			fmt.Sprintf("touch a (generation 7, mtime %d ns)", t0.UnixNano())},
		// Compared in whole seconds (rclone stores nanoseconds, gcloud and gsutil whole seconds); a touch
		// sets the object's exact time.
		{"the same second, sub-second local mtime: nothing", side{L(locAt(3, 1, t0.Add(time.Millisecond))), R(remAt(7, 3, 1, t0)), B(base(7, 3, 1))}, true, ""},
		{"the same second, sub-second object mtime: nothing", side{L(locAt(3, 1, t0)), R(remAt(7, 3, 1, t0.Add(999*time.Millisecond))), B(base(7, 3, 1))}, true, ""},
		{"another second, object to the nanosecond: touch to its exact time", side{L(locAt(3, 1, t0.Add(999*time.Millisecond))), R(remAt(7, 3, 1, t0.Add(time.Second+7))), B(base(7, 3, 1))}, true,
			fmt.Sprintf("touch a (generation 7, mtime %d ns)", t0.Add(time.Second+7).UnixNano())},
		{"before 1970, another second: touch", side{L(locAt(3, 1, time.Unix(-1, 0))), R(remAt(7, 3, 1, time.Unix(-2, 500))), B(base(7, 3, 1))}, true,
			"touch a (generation 7, mtime -1999999500 ns)"},
		{"before 1970, the same second: nothing", side{L(locAt(3, 1, time.Unix(-2, 900))), R(remAt(7, 3, 1, time.Unix(-2, 500))), B(base(7, 3, 1))}, true, ""},
		{"changed content, new mtime: upload, not touch", side{L(loc(4, 2)), R(remAt(7, 3, 1, t0)), B(base(7, 3, 1))}, true, "upload a (if generation 7)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
				Now: t0, Settle: time.Second, Delete: tc.delete, MaxDeletePercent: 50}
			if tc.s.l != nil {
				in.local()["a"] = *tc.s.l
			}
			if tc.s.r != nil {
				in.remote()["a"] = *tc.s.r
			}
			if tc.s.b != nil {
				in.base()["a"] = *tc.s.b
			}
			// Keep "a" from being the only local file, so the empty-directory rule stays out of these cases.
			in.local()["zz"], in.remote()["zz"], in.base()["zz"] = loc(1, 5), rem(1, 1, 5), base(1, 1, 5)
			p := Compute(in)
			got := ""
			if len(p.Actions) > 0 {
				got = p.Actions[0].String()
				got = got[:strings.IndexAny(got+":", ":")]
				got = strings.Join(strings.Fields(got), " ")
			}
			if len(p.Actions) > 1 {
				t.Fatalf("want at most one action, got:\n%s", p)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q\n%s", got, tc.want, p)
			}
		})
	}
}

func TestEmptyDirectoryNeverDeletesRemote(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 100}
	for i := range 5 {
		p := fmt.Sprintf("f%d", i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), base(1, 1, 1)
	}
	p := Compute(in)
	if !p.LocalWiped {
		t.Fatal("want LocalWiped")
	}
	if p.Count(Download) != 5 || p.Count(DeleteRemote) != 0 {
		t.Fatalf("want 5 restores and no delete:\n%s", p)
	}
}

// Deletes beyond --max-delete of the files known when the window opened are withheld, all of them.
func TestMaxDeleteBlocksMassDelete(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour,
		Window: DeleteWindow{Start: t0.Add(-time.Minute), Known: 40, Deleted: 15}}
	for i := range 40 {
		p := fmt.Sprintf("f%02d", i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), base(1, 1, 1)
		if i >= 6 { // 6 more of 40 deleted locally: 15+6 = 21 of 40 in the window, 52% > 50%
			in.local()[p] = loc(1, 1)
		}
	}
	p := Compute(in)
	if p.Count(DeleteRemote) != 0 || len(p.BlockedDeletes) != 6 || p.LocalWiped {
		t.Fatalf("want 6 blocked deletes and none planned:\n%s", p)
	}
	if !strings.Contains(p.String(), "BLOCKED: 6 deletes, after 15 in the window since 2026-11-26T11:59:00Z, exceed --max-delete of the 40 files known then") {
		t.Fatalf("plan does not say it was blocked:\n%s", p)
	}
	in.MaxDeletePercent = 60
	if p := Compute(in); p.Count(DeleteRemote) != 6 || len(p.BlockedDeletes) != 0 {
		t.Fatalf("at 60%% the deletes should go through:\n%s", p)
	}
	in.MaxDeletePercent, in.Now = 50, t0.Add(time.Hour) // the window has expired: a new budget
	if p := Compute(in); p.Count(DeleteRemote) != 6 || p.Window.Deleted != 0 || p.Window.Known != 40 {
		t.Fatalf("after the window the deletes should go through:\n%s", p)
	}
}

// More than --max-delete missing at once is a wipe: restored, not blocked and not deleted.
func TestMassDeleteAtOnceIsAWipe(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 40 {
		p := fmt.Sprintf("f%02d", i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), base(1, 1, 1)
		if i < 19 { // 21 of 40 deleted locally: 52% > 50%
			in.local()[p] = loc(1, 1)
		}
	}
	p := Compute(in)
	if !p.LocalWiped || p.Count(DeleteRemote) != 0 || p.Count(Download) != 21 || len(p.BlockedDeletes) != 0 {
		t.Fatalf("want 21 restores:\n%s", p)
	}
}

func TestMaxDeleteAllowsAFewDeletes(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 10 {
		p := fmt.Sprintf("f%d", i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), base(1, 1, 1)
		if i >= 5 { // 5 of 10 deleted locally: exactly 50%
			in.local()[p] = loc(1, 1)
		}
	}
	p := Compute(in)
	if p.Count(DeleteRemote) != 5 || p.LocalWiped {
		t.Fatalf("want 5 deletes:\n%s", p)
	}
	if p.Window.Known != 10 || !p.Window.Start.Equal(t0) {
		t.Fatalf("window %+v, want opened at t0 with 10 known", p.Window)
	}
}

// D1: an emptied bucket never deletes the replicas' copies: they restore it with create-only uploads.
// Small trees too: before, deletes of up to 10 files were never guarded, so 8 files went everywhere.
func TestEmptiedBucketIsRestoredNotPropagated(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 8 {
		p := fmt.Sprintf("f%d", i)
		in.local()[p], in.base()[p] = loc(1, 1), base(1, 1, 1)
	}
	p := Compute(in)
	if !p.RemoteWiped || p.Count(DeleteLocal) != 0 || p.Count(Upload) != 8 {
		t.Fatalf("want 8 restoring uploads and no delete:\n%s", p)
	}
	for _, a := range p.Actions {
		if a.IfGeneration != 0 {
			t.Fatalf("a restoring upload must be create-only: %v", a)
		}
	}
	// Even with --max-delete 100 (no guard), a side holding none of the known files deletes nothing.
	in.MaxDeletePercent = 100
	if p := Compute(in); !p.RemoteWiped || p.Count(DeleteLocal) != 0 {
		t.Fatalf("--max-delete 100: an emptied bucket still must not delete:\n%s", p)
	}
}

// D3: a wiped directory holding one new file (the app wrote index.php before filesync started) is a wipe:
// the known files are restored and nothing is deleted remotely.
func TestWipedDirectoryWithANewFileIsRestored(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{"index.php": loc(5, 5)}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 10 {
		p := fmt.Sprintf("f%d", i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), base(1, 1, 1)
	}
	p := Compute(in)
	if !p.LocalWiped || p.Count(DeleteRemote) != 0 || p.Count(Download) != 10 || p.Count(Upload) != 1 {
		t.Fatalf("want 10 restores, the new file uploaded, no delete:\n%s", p)
	}
}

// While one side is wiped nothing is deleted on either side (docs/design.md, FuzzCompute's checkEmptiedSide):
// a file the other side lost waits, neither deleted nor restored, until the wiped side is restored. Before,
// only the deletes toward the wiped side were held back: a local directory that lost 2 of 3 files still
// deleted its third, which the bucket lacked.
func TestWipedSideDeletesNothingOnEitherSide(t *testing.T) {
	for _, tc := range []struct {
		name          string
		local, remote []string
		want          Op // for the one file left on the wiped side and missing on the other
	}{
		{"local wiped, a file the bucket lacks", []string{"c"}, []string{"a", "b"}, Download},
		{"bucket wiped, a file the directory lacks", []string{"a", "b"}, []string{"c"}, Upload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
				Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
			for _, p := range []string{"a", "b", "c"} {
				in.base()[p] = base(1, 1, 1)
			}
			for _, p := range tc.local {
				in.local()[p] = loc(1, 1)
			}
			for _, p := range tc.remote {
				in.remote()[p] = rem(1, 1, 1)
			}
			p := Compute(in)
			if p.LocalWiped == p.RemoteWiped || len(p.Actions) != 2 || p.Count(tc.want) != 2 || len(p.BlockedDeletes) != 0 {
				t.Fatalf("want the two lost files restored and nothing else:\n%s", p)
			}
			in.Delete = false // --delete=false still restores it
			if p := Compute(in); len(p.Actions) != 3 {
				t.Fatalf("--delete=false: want 3 restores:\n%s", p)
			}
		})
	}
}

// act is an action as the tables compare it: the generation is the precondition of an upload or a remote
// delete, the object's of a download, record or conflict.
type act struct {
	op   Op
	path string
	gen  int64
}

func (a act) String() string { return fmt.Sprintf("%s %s %d", a.op, a.path, a.gen) }

func actOf(a Action) act {
	switch a.Op {
	case Upload, DeleteRemote:
		return act{a.Op, a.Path, a.IfGeneration}
	case Download, RecordBase, Conflict:
		return act{a.Op, a.Path, a.Remote.Generation}
	}
	return act{a.Op, a.Path, 0}
}

// F5 (issue 22): a folder replaced by a file of its name (`rm -r e; echo x > e`) on one side. A path
// cannot be a file and a folder at once, so the folder's files were deleted on that side, not lost: they
// do not count for the wipe rule, the objects go with the upload of the file (or once the bucket holds
// it), and the guard charges the replacement one delete less. Everything else is judged as before: an
// emptied directory with a new file is still a wipe unless the file is where a folder was, and then only
// that folder's files are excused.
func TestFolderReplacedByAFile(t *testing.T) {
	x := loc(1, 9)     // the new file e
	ex := rem(5, 1, 9) // the object e, as x
	files := func(l Map[snapshot.File], paths ...string) Map[snapshot.File] {
		for _, p := range paths {
			l[p] = loc(1, 1)
		}
		return l
	}
	objects := func(r Map[snapshot.Object], paths ...string) Map[snapshot.Object] {
		for _, p := range paths {
			r[p] = rem(1, 1, 1)
		}
		return r
	}
	type F = Map[snapshot.File]
	type O = Map[snapshot.Object]
	for _, tc := range []struct {
		name        string
		local       F
		remote      O
		base        []string // at generation 1, content 1
		keepDeleted bool     // --delete=false
		skip        string
		want        []act
		blocked     int
		wiped       string // "local", "remote" or ""
		unsettled   string
	}{
		{name: "the only file: deleted in the bucket with the upload of the file",
			local: F{"e": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"},
			want: []act{{Upload, "e", 0}, {DeleteRemote, "e/f", 1}}},
		{name: "a nested only file",
			local: F{"e": x}, remote: objects(O{}, "e/d/f"), base: []string{"e/d/f"},
			want: []act{{Upload, "e", 0}, {DeleteRemote, "e/d/f", 1}}},
		{name: "the only two files: one charged, 50% allowed",
			local: F{"e": x}, remote: objects(O{}, "e/f", "e/g"), base: []string{"e/f", "e/g"},
			want: []act{{Upload, "e", 0}, {DeleteRemote, "e/f", 1}, {DeleteRemote, "e/g", 1}}},
		{name: "the only three files: two charged, withheld",
			local: F{"e": x}, remote: objects(O{}, "e/f", "e/g", "e/h"), base: []string{"e/f", "e/g", "e/h"},
			want: []act{{Upload, "e", 0}}, blocked: 3},
		{name: "beside the rest of the tree",
			local: files(F{"e": x}, "g", "h"), remote: objects(O{}, "e/f", "g", "h"), base: []string{"e/f", "g", "h"},
			want: []act{{Upload, "e", 0}, {DeleteRemote, "e/f", 1}}},
		{name: "the file still settling: nothing yet, and no wipe",
			local: F{"e": locAt(1, 9, t0)}, remote: objects(O{}, "e/f"), base: []string{"e/f"},
			unsettled: "e"},
		{name: "the file backing off: nothing, and no wipe",
			local: F{"e": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"}, skip: "e"},
		{name: "the bucket already holds the file: the delete goes",
			local: F{"e": x}, remote: objects(O{"e": ex}, "e/f"), base: []string{"e/f"},
			want: []act{{RecordBase, "e", 5}, {DeleteRemote, "e/f", 1}}},
		{name: "the bucket already holds the file, skipped (beside its folder): the delete goes",
			local: F{"e": x}, remote: objects(O{"e": ex}, "e/f"), base: []string{"e/f"}, skip: "e",
			want: []act{{DeleteRemote, "e/f", 1}}},
		{name: "the bucket holds another file e: conflict, and the delete",
			local: F{"e": x}, remote: objects(O{"e": rem(5, 2, 8)}, "e/f"), base: []string{"e/f"},
			want: []act{{Conflict, "e", 5}, {DeleteRemote, "e/f", 1}}},
		{name: "changed in the bucket meanwhile: kept",
			local: F{"e": x}, remote: O{"e/f": rem(2, 2, 2)}, base: []string{"e/f"},
			want: []act{{Upload, "e", 0}, {Download, "e/f", 2}}},
		{name: "--delete=false: restored",
			local: F{"e": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"}, keepDeleted: true,
			want: []act{{Upload, "e", 0}, {Download, "e/f", 1}}},
		{name: "in the bucket: the local file goes with the download of the object",
			local: files(F{}, "e/f"), remote: O{"e": ex}, base: []string{"e/f"},
			want: []act{{Download, "e", 5}, {DeleteLocal, "e/f", 0}}},
		{name: "in the bucket, two files",
			local: files(F{}, "e/f", "e/g"), remote: O{"e": ex}, base: []string{"e/f", "e/g"},
			want: []act{{Download, "e", 5}, {DeleteLocal, "e/f", 0}, {DeleteLocal, "e/g", 0}}},
		{name: "in the bucket, the object skipped: the delete is charged, withheld, no wipe",
			local: files(F{}, "e/f"), remote: O{"e": ex}, base: []string{"e/f"}, skip: "e",
			blocked: 1},

		{name: "an emptied directory with a new file at the top: still a wipe",
			local: F{"index.php": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"},
			want: []act{{Download, "e/f", 1}, {Upload, "index.php", 0}}, wiped: "local"},
		{name: "a new file inside the folder is not in its place: still a wipe",
			local: F{"e/g": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"},
			want: []act{{Download, "e/f", 1}, {Upload, "e/g", 0}}, wiped: "local"},
		{name: "a file named like the folder and more is not in its place: still a wipe",
			local: F{"ef": x}, remote: objects(O{}, "e/f"), base: []string{"e/f"},
			want: []act{{Download, "e/f", 1}, {Upload, "ef", 0}}, wiped: "local"},
		{name: "a wiped tree with a file in one folder's place: the rest still count",
			local: F{"e": x}, remote: objects(O{}, "e/f", "g", "h", "i"), base: []string{"e/f", "g", "h", "i"},
			want:  []act{{Upload, "e", 0}, {Download, "e/f", 1}, {Download, "g", 1}, {Download, "h", 1}, {Download, "i", 1}},
			wiped: "local"},
		{name: "an emptied bucket holding an object named like a folder: the rest still count",
			local: files(F{}, "e/f", "g", "h"), remote: O{"e": ex}, base: []string{"e/f", "g", "h"},
			want: []act{{Download, "e", 5}, {Upload, "e/f", 0}, {Upload, "g", 0}, {Upload, "h", 0}}, wiped: "remote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: tc.local, Remote: tc.remote, Base: Map[snapshot.Base]{},
				Now: t0, Settle: time.Second, Delete: !tc.keepDeleted, MaxDeletePercent: 50, WindowLength: time.Hour}
			for _, p := range tc.base {
				in.base()[p] = base(1, 1, 1)
			}
			if tc.skip != "" {
				in.Skip = func(p string) bool { return p == tc.skip }
			}
			p := Compute(in)
			var got []act
			for _, a := range p.Actions {
				got = append(got, actOf(a))
			}
			wiped := map[[2]bool]string{{true, false}: "local", {false, true}: "remote", {true, true}: "both"}[[2]bool{p.LocalWiped, p.RemoteWiped}]
			_, unsettled := p.Unsettled[tc.unsettled]
			if !reflect.DeepEqual(got, tc.want) || len(p.BlockedDeletes) != tc.blocked || wiped != tc.wiped ||
				tc.unsettled != "" && !unsettled || tc.unsettled == "" && len(p.Unsettled) > 0 {
				t.Fatalf("got %v, blocked %d, wiped %q; want %v, blocked %d, wiped %q\n%s", got, len(p.BlockedDeletes), wiped,
					tc.want, tc.blocked, tc.wiped, p)
			}
		})
	}
}

// No floor lets a side lose nearly all of its files: 10 of 12 missing at once is a wipe, not 10 deletes.
func TestNearlyAllMissingIsAWipe(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 12 {
		p := fmt.Sprintf("f%02d", i)
		in.local()[p], in.base()[p] = loc(1, 1), base(1, 1, 1)
		if i >= 10 {
			in.remote()[p] = rem(1, 1, 1)
		}
	}
	p := Compute(in)
	if !p.RemoteWiped || p.Count(DeleteLocal) != 0 || p.Count(Upload) != 10 {
		t.Fatalf("want a wipe restored:\n%s", p)
	}
	if !strings.Contains(p.String(), "WIPED: the bucket lacks most of the 12 known files") {
		t.Fatalf("plan does not say so:\n%s", p)
	}
}

// D2: a slow remote wipe (a few objects per pass, each pass under the guard) spends one budget over the
// window: of 400 known files at most 200 are deleted locally, whatever the pace.
func TestGuardHoldsOverASlowWipe(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 400 {
		p := fmt.Sprintf("f%03d", i)
		in.local()[p], in.remote()[p], in.base()[p] = loc(1, 1), rem(1, 1, 1), base(1, 1, 1)
	}
	deleted, blocked := 0, 0
	for pass := range 20 { // 20 objects deleted remotely before each pass, 2 s apart
		for i := pass * 20; i < pass*20+20; i++ {
			delete(in.remote(), fmt.Sprintf("f%03d", i))
		}
		in.Now = t0.Add(time.Duration(pass) * 2 * time.Second)
		p := Compute(in)
		in.Window = p.Window
		for _, a := range p.Actions {
			if a.Op == DeleteLocal {
				delete(in.local(), a.Path)
				delete(in.base(), a.Path)
				in.Window.Deleted++
				deleted++
			}
		}
		if len(p.BlockedDeletes) > 0 {
			blocked++
		}
	}
	if deleted > 200 || blocked == 0 {
		t.Fatalf("a slow wipe deleted %d of 400 local files (guard tripped in %d passes); want at most 200", deleted, blocked)
	}
	if left := len(in.local()); left < 200 {
		t.Fatalf("%d local files left", left)
	}
}

// The window expires: after WindowLength, a new budget opens against the files known then.
func TestDeleteWindowRolls(t *testing.T) {
	w := DeleteWindow{Start: t0, Known: 100, Deleted: 50}
	if got := w.roll(t0.Add(59*time.Minute), time.Hour, 10); got != w {
		t.Fatalf("inside the window: %+v", got)
	}
	if got := w.roll(t0.Add(time.Hour), time.Hour, 10); got.Deleted != 0 || got.Known != 10 || !got.Start.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after the window: %+v", got)
	}
	if !w.Allows(0, 50) || w.Allows(1, 50) {
		t.Fatal("Allows: 50 of 100 spent at 50%: none left")
	}
}

func TestSettleDefersRecentLocalChanges(t *testing.T) {
	in := Input{
		Local: Map[snapshot.File]{
			"new":   locAt(1, 1, t0.Add(-100*time.Millisecond)),
			"old":   locAt(1, 1, t0.Add(-2*time.Second)),
			"clash": locAt(2, 2, t0),
		},
		Remote: Map[snapshot.Object]{"clash": rem(3, 3, 3)},
		Now:    t0, Settle: 500 * time.Millisecond, Delete: true, MaxDeletePercent: 50,
	}
	p := Compute(in)
	if len(p.Actions) != 1 || p.Actions[0].Path != "old" {
		t.Fatalf("only the quiet file may move:\n%s", p)
	}
	if got := p.Unsettled["new"]; !got.Equal(t0.Add(400 * time.Millisecond)) {
		t.Fatalf("Unsettled[new] = %v", got)
	}
	if _, ok := p.Unsettled["clash"]; !ok {
		t.Fatal("a conflict waits for the local file to settle too")
	}
}

func TestSkip(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{"a": loc(1, 1), "b": loc(1, 1)}, Now: t0,
		Skip: func(p string) bool { return p == "a" }}
	p := Compute(in)
	if len(p.Actions) != 1 || p.Actions[0].Path != "b" {
		t.Fatalf("skip ignored:\n%s", p)
	}
}

// TestUnsyncableObject: a synced file overwritten in the bucket by an object the sync leaves alone
// (stored gzip-encoded, or a folder of other objects too) ends as on a new pod, which gets no file: the
// local copy of the old version goes if it still matches the base; a local change is kept, never
// uploaded over the object; nothing is downloaded.
func TestUnsyncableObject(t *testing.T) {
	gz := rem(9, 5, 7) // the gzip-encoded object that replaced generation 7
	for _, tc := range []struct {
		name   string
		l      *snapshot.File
		b      *snapshot.Base
		delete bool
		want   []act
	}{
		{"old version here, unchanged: deleted", &[]snapshot.File{loc(3, 1)}[0], &[]snapshot.Base{base(7, 3, 1)}[0], true,
			[]act{{DeleteLocal, "a", 0}}},
		{"old version here, --delete=false: kept", &[]snapshot.File{loc(3, 1)}[0], &[]snapshot.Base{base(7, 3, 1)}[0], false, nil},
		{"changed here since: kept, not uploaded", &[]snapshot.File{loc(4, 2)}[0], &[]snapshot.Base{base(7, 3, 1)}[0], true, nil},
		{"a local file never synced: kept, not uploaded", &[]snapshot.File{loc(4, 2)}[0], nil, true, nil},
		{"no local file: nothing downloaded", nil, &[]snapshot.Base{base(7, 3, 1)}[0], true, nil},
		{"the object is still the base's: kept", &[]snapshot.File{loc(5, 7)}[0], &[]snapshot.Base{base(9, 5, 7)}[0], true, nil},
		{"no local file, no base: nothing downloaded", nil, nil, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{"a": gz}, Base: Map[snapshot.Base]{},
				Now: t0, Delete: tc.delete, MaxDeletePercent: 50, WindowLength: time.Hour,
				Unsyncable: func(p string) bool { return p == "a" }}
			if tc.l != nil {
				in.local()["a"] = *tc.l
			}
			if tc.b != nil {
				in.base()["a"] = *tc.b
			}
			for _, p := range []string{"x", "y", "z"} { // in sync: keep the wipe rule out of it
				in.local()[p], in.remote()[p], in.base()[p] = loc(1, 5), rem(1, 1, 5), base(1, 1, 5)
			}
			p := Compute(in)
			var got []act
			for _, a := range p.Actions {
				got = append(got, actOf(a))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v\n%s", got, tc.want, p)
			}
		})
	}
}

// FuzzCompute checks the invariants that make the plan safe, over arbitrary three-way states of a small
// tree (files and folders of one name meet): nothing is deleted without a base; nothing remote is
// overwritten or deleted without a matching generation; a local file is deleted only when it still matches
// the base; an empty directory deletes nothing remote; an object whose folder a local file replaced is
// deleted only with that file's upload or once the bucket holds it; the guard charges every delete but one
// per file that replaced a folder (checkEmptiedSide: the wipe verdicts).
func FuzzCompute(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80}, true, uint8(50))
	f.Add([]byte{0, 0, 0, 0}, false, uint8(0))
	f.Add([]byte{0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f}, true, uint8(100))
	f.Add([]byte{0x01, 0x00, 0x14}, true, uint8(50))                         // F5: the folder a's only file a/a, a a local file now
	f.Add([]byte{0x04, 0x00, 0x11}, true, uint8(50))                         // the same in the bucket
	f.Add([]byte{0x01, 0x00, 0x14, 0x14, 0x00, 0x00, 0x14}, true, uint8(50)) // a/a, a/b, a/a/a under the file a
	f.Fuzz(func(t *testing.T, data []byte, del bool, maxPct uint8) {
		in := fuzzInput(data, del, maxPct)
		checkSafe(t, in, Compute(in))
	})
}

// checkSafe checks FuzzCompute's invariants on the plan p of in (checkEmptiedSide among them).
func checkSafe(t *testing.T, in Input, p Plan) {
	t.Helper()
	del := in.Delete
	seen := map[string]bool{}
	if !slices.IsSorted(p.RemoteOnly) {
		t.Fatalf("the remote-only records are not in path order:\n%s", p)
	}
	for _, path := range p.RemoteOnly {
		if seen[path] {
			t.Fatalf("two remote-only records for %s:\n%s", path, p)
		}
		seen[path] = true
	}
	for _, a := range p.Actions {
		if seen[a.Path] {
			t.Fatalf("two actions for %s:\n%s", a.Path, p)
		}
		seen[a.Path] = true
		b, hasB := in.base()[a.Path]
		r, hasR := in.remote()[a.Path]
		l, hasL := in.local()[a.Path]
		switch a.Op {
		case DeleteRemote:
			if !hasB || !del || a.IfGeneration != b.Generation || !hasR || r.Generation != b.Generation || hasL {
				t.Fatalf("unsafe remote delete %v (base %v/%v)", a, b, hasB)
			}
			if p.LocalWiped {
				t.Fatalf("remote delete from a wiped directory: %v", a)
			}
		case DeleteLocal:
			if !hasB || !del || (hasR && (!in.Unsyncable(a.Path) || r.Generation == b.Generation)) || !hasL || l.Size != b.Size || l.CRC32C != b.CRC32C {
				t.Fatalf("unsafe local delete %v", a)
			}
		case Touch:
			if !hasL || !hasR || !l.Same(r) || r.ModTime.IsZero() || a.Remote != r {
				t.Fatalf("touch without the same content on both sides: %v", a)
			}
		case Upload:
			if hasR && a.IfGeneration != r.Generation {
				t.Fatalf("upload over generation %d with precondition %d", r.Generation, a.IfGeneration)
			}
			if !hasR && a.IfGeneration != 0 {
				t.Fatalf("upload of a missing object must be create-only: %v", a)
			}
			if !hasL || time.Unix(0, l.ModTime).Add(in.Settle).After(in.Now) {
				t.Fatalf("upload of a missing or unsettled file: %v", a)
			}
		case Download, Conflict:
			if !hasR {
				t.Fatalf("%v without a remote object", a)
			}
		}
		if hasR && in.Unsyncable(a.Path) && a.Op != DeleteLocal {
			t.Fatalf("%v for an object that is not synced", a)
		}
	}
	var deletes []Action
	for _, a := range p.Actions {
		if a.Op == DeleteRemote || a.Op == DeleteLocal {
			deletes = append(deletes, a)
		}
	}
	if n := charged(t, in, p.Actions, deletes); n*100 > in.MaxDeletePercent*len(in.base()) {
		t.Fatalf("%d deletes (%d charged) of %d known passed a %d%% guard:\n%s", len(deletes), n, len(in.base()), in.MaxDeletePercent, p)
	}
	charged(t, in, p.Actions, p.BlockedDeletes) // the same rules for the deletes withheld
	checkEmptiedSide(t, in, p)
}

// pathName names the i-th path of a fuzz input: the first 14 make a small tree (a, b, a/a, a/b, b/a, b/b,
// a/a/a, …, b/b/b) in which a file and a folder of one name meet, the rest are flat.
func pathName(i int) string {
	if i >= 14 {
		return fmt.Sprintf("p%03d", i)
	}
	n, segs := i, 1
	for n >= 1<<segs {
		n -= 1 << segs
		segs++
	}
	var b strings.Builder
	for k := segs - 1; k >= 0; k-- {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteByte("ab"[n>>k&1])
	}
	return b.String()
}

// parentFile returns the nearest parent folder of path that side holds as a file, the test's own walk
// over the segments (Compute's is fileAbove).
func parentFile[V any](side map[string]V, path string) (string, bool) {
	segs := strings.Split(path, "/")
	for i := len(segs) - 1; i > 0; i-- {
		if _, ok := side[strings.Join(segs[:i], "/")]; ok {
			return strings.Join(segs[:i], "/"), true
		}
	}
	return "", false
}

// charged returns how many of deletes the --max-delete guard charges: every one but one per file that
// took a folder's place on the side the folder's files are deleted from, if that side holds the file or
// gets it from actions. It fails if an object is deleted under a local file that the bucket neither holds
// nor gets from actions: the bucket would be seen without either.
func charged(t *testing.T, in Input, actions, deletes []Action) int {
	t.Helper()
	gets := map[string]Op{}
	for _, a := range actions {
		gets[a.Path] = a.Op
	}
	replacing := map[string]bool{}
	for _, a := range deletes {
		switch a.Op {
		case DeleteRemote:
			if f, ok := parentFile(in.local(), a.Path); ok {
				if _, inBucket := in.remote()[f]; !inBucket && gets[f] != Upload {
					t.Fatalf("%v before the file %s that took its folder's place is in the bucket", a, f)
				}
				replacing[f] = true
			}
		case DeleteLocal:
			if f, ok := parentFile(in.remote(), a.Path); ok {
				if _, local := in.local()[f]; local || gets[f] == Download {
					replacing[f] = true
				}
			}
		}
	}
	return len(deletes) - len(replacing)
}

// fuzzInput builds a planner input from fuzz bytes, one path per byte (pathName).
func fuzzInput(data []byte, del bool, maxPct uint8) Input {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Settle: time.Second, Delete: del, MaxDeletePercent: int(maxPct % 101)}
	// Each byte describes one path: bits 0-1 local (absent, content 1, content 2, recent content 2),
	// bits 2-3 remote (absent, gen 1/content 1, gen 2/content 2, gen 3/content 1), bits 4-5 base (absent,
	// gen 1/content 1, gen 2/content 2, gen 3/content 1); bit 6: the object is not synced (Unsyncable);
	// bit 7: the object carries an mtime other than the local file's.
	unsync := map[string]bool{}
	in.Unsyncable = func(path string) bool { return unsync[path] }
	for i, c := range data {
		p := pathName(i)
		switch c & 3 {
		case 1:
			in.local()[p] = loc(1, 1)
		case 2:
			in.local()[p] = loc(2, 2)
		case 3:
			in.local()[p] = locAt(2, 2, t0)
		}
		switch (c >> 2) & 3 {
		case 1:
			in.remote()[p] = rem(1, 1, 1)
		case 2:
			in.remote()[p] = rem(2, 2, 2)
		case 3:
			in.remote()[p] = rem(3, 1, 1)
		}
		switch (c >> 4) & 3 {
		case 1:
			in.base()[p] = base(1, 1, 1)
		case 2:
			in.base()[p] = base(2, 2, 2)
		case 3:
			in.base()[p] = base(3, 1, 1)
		}
		unsync[p] = c&0x40 != 0
		if r, ok := in.remote()[p]; ok && c&0x80 != 0 {
			r.ModTime = t0.Add(-2 * time.Hour)
			in.remote()[p] = r
		}
	}
	return in
}

// FuzzTargeted: planning a subset of the paths that holds every base entry either side lacks and the
// paths at their parent folders that either side holds (a targeted pass), with the whole tree's count of
// known files, gives exactly the whole tree's plan restricted to the subset: the same actions, the same
// withheld deletes, the same wipe verdicts. So a targeted pass never deletes what a full pass would not,
// and the guard sees every delete candidate.
func FuzzTargeted(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80, 0x15, 0x15}, []byte{0x5a}, true, uint8(50), uint8(3))
	f.Add([]byte{0x15, 0x15, 0x15, 0x15, 0x11, 0x05}, []byte{0x01}, true, uint8(30), uint8(0))
	f.Add([]byte{0x01, 0x15, 0x14, 0x14, 0x15}, []byte{0x00}, true, uint8(50), uint8(0)) // a replaced by a file, b in sync
	f.Fuzz(func(t *testing.T, data, subset []byte, del bool, maxPct, skipEvery uint8) {
		whole := fuzzInput(data, del, maxPct)
		if skipEvery > 0 {
			whole.Skip = func(path string) bool { return len(path)%int(skipEvery%5+1) == 0 && path[len(path)-1]%3 == 0 }
		}
		checkTargeted(t, whole, len(data), subset)
	})
}

// checkTargeted plans the subset of whole's first n paths that subset picks, plus what a targeted pass
// must cover (every base entry a side lacks, except a remote-only one without a local file, which is in
// sync; every one whose object is not synced; the paths at their parent folders), and checks that it is
// the whole plan restricted to it.
func checkTargeted(t *testing.T, whole Input, n int, subset []byte) {
	t.Helper()
	in := whole
	in.Local, in.Remote, in.Base = Map[snapshot.File]{}, Map[snapshot.Object]{}, Map[snapshot.Base]{}
	in.Known = len(whole.base())
	for _, b := range whole.base() {
		if b.RemoteOnly {
			in.KnownRemoteOnly++
		}
	}
	chosen := map[string]bool{}
	for i := range n {
		path := pathName(i)
		_, hasL := whole.local()[path]
		_, hasR := whole.remote()[path]
		b, hasB := whole.base()[path]
		picked := len(subset) > 0 && subset[(i/8)%len(subset)]&(1<<(i%8)) != 0
		missing := hasB && (!hasL && !b.RemoteOnly || !hasR || whole.Unsyncable(path))
		if !picked && !missing {
			continue
		}
		chosen[path] = true
		if l, ok := whole.local()[path]; ok {
			in.local()[path] = l
		}
		if r, ok := whole.remote()[path]; ok {
			in.remote()[path] = r
		}
		if b, ok := whole.base()[path]; ok {
			in.base()[path] = b
		}
		// A missing base entry (or one whose object is not synced) brings the paths at its parent
		// folders that either side holds.
		for j := strings.LastIndexByte(path, '/'); missing && j > 0; j = strings.LastIndexByte(path[:j], '/') {
			dir := path[:j]
			if l, ok := whole.local()[dir]; ok {
				in.local()[dir], chosen[dir] = l, true
			}
			if r, ok := whole.remote()[dir]; ok {
				in.remote()[dir], chosen[dir] = r, true
			}
			if b, ok := whole.base()[dir]; ok && chosen[dir] {
				in.base()[dir] = b
			}
		}
	}
	if in.Known == 0 && len(in.base()) > 0 {
		t.Fatal("bad test: a subset with base entries of an empty base")
	}
	pw, pt := Compute(whole), Compute(in)
	if pc := Compute(compactSides(whole)); !reflect.DeepEqual(pc, pw) {
		t.Fatalf("the plan from pathmap sides differs from the plan from Go maps:\ngo maps:\n%s\npathmap:\n%s", pw, pc)
	}
	restrict := func(as []Action) []Action {
		var out []Action
		for _, a := range as {
			if chosen[a.Path] {
				out = append(out, a)
			}
		}
		return out
	}
	if want := restrict(pw.Actions); !reflect.DeepEqual(want, pt.Actions) {
		t.Fatalf("targeted plan differs from the whole plan on the subset:\nwhole:\n%s\ntargeted:\n%s", pw, pt)
	}
	var remoteOnly []string
	for _, path := range pw.RemoteOnly {
		if chosen[path] {
			remoteOnly = append(remoteOnly, path)
		}
	}
	if !slices.Equal(remoteOnly, pt.RemoteOnly) {
		t.Fatalf("targeted remote-only records differ from the whole plan's on the subset:\nwhole:\n%s\ntargeted:\n%s", pw, pt)
	}
	if want := restrict(pw.BlockedDeletes); !reflect.DeepEqual(want, pt.BlockedDeletes) {
		t.Fatalf("withheld deletes differ:\nwhole:\n%s\ntargeted:\n%s", pw, pt)
	}
	if pw.LocalWiped != pt.LocalWiped || pw.RemoteWiped != pt.RemoteWiped || pw.Known != pt.Known || pw.Window != pt.Window {
		t.Fatalf("verdicts differ: whole %v/%v known %d window %+v, targeted %v/%v known %d window %+v",
			pw.LocalWiped, pw.RemoteWiped, pw.Known, pw.Window, pt.LocalWiped, pt.RemoteWiped, pt.Known, pt.Window)
	}
	for path, at := range pt.Unsettled {
		if pw.Unsettled[path] != at {
			t.Fatalf("unsettled %s differs", path)
		}
	}
}

// checkEmptiedSide: a side that lacks all known files, or more than --max-delete of them, is wiped and
// deletes nothing. Only the known files under a file of the side that lacks them (a file took their
// folder's place) are not counted, so a side with no file in place of a folder of the base is judged on
// every known file it lacks, as before, and an emptied side (no files at all) is always wiped.
func checkEmptiedSide(t *testing.T, in Input, p Plan) {
	t.Helper()
	remoteOnly := 0
	for _, b := range in.base() {
		if b.RemoteOnly {
			remoteOnly++
		}
	}
	for _, side := range []struct {
		name      string
		lacks     func(string) bool
		fileAbove func(string) bool
		files     int
		wiped     bool
		known     int
	}{
		// A remote-only entry is not a file the directory should hold.
		{"local directory", func(p string) bool { _, ok := in.local()[p]; return !ok && !in.base()[p].RemoteOnly },
			func(p string) bool { _, ok := parentFile(in.local(), p); return ok }, len(in.local()), p.LocalWiped, len(in.base()) - remoteOnly},
		{"bucket", func(p string) bool { _, ok := in.remote()[p]; return !ok },
			func(p string) bool { _, ok := parentFile(in.remote(), p); return ok }, len(in.remote()), p.RemoteWiped, len(in.base())},
	} {
		known := side.known
		lacking, replaced := 0, 0
		for path := range in.base() {
			if side.lacks(path) {
				lacking++
				if side.fileAbove(path) {
					replaced++
				}
			}
		}
		if want := Wiped(lacking-replaced, known, in.MaxDeletePercent); side.wiped != want {
			t.Fatalf("the %s lacks %d of %d known files, %d of them under a file of its own: wiped %v, want %v\n%s",
				side.name, lacking, known, replaced, side.wiped, want, p)
		}
		if known > 0 && (side.files == 0 || lacking == known && replaced == 0) && !side.wiped {
			t.Fatalf("the %s holds none of the %d known files (and %d files) and is not judged wiped", side.name, known, side.files)
		}
	}
	if (p.LocalWiped || p.RemoteWiped) && p.Count(DeleteRemote)+p.Count(DeleteLocal)+len(p.BlockedDeletes) > 0 {
		t.Fatalf("a wiped side deletes:\n%s", p)
	}
}

// FuzzWipeStaysAWipe: a side emptied of every known file is wiped whatever new files then appear on it
// (the app writing before filesync looked, another client writing to the bucket), unless one of them is
// where a folder of known files was; then only that folder's files are excused and the rest of the tree
// is judged as before. A wiped side deletes nothing, and the guard charges what is deleted.
func FuzzWipeStaysAWipe(f *testing.F) {
	f.Add([]byte{1, 1, 1, 1, 1, 1}, []byte{14, 15}, false, uint8(50))
	f.Add([]byte{0, 0, 1, 0, 0, 1, 1, 1}, []byte{0}, true, uint8(50))
	f.Add([]byte{0, 1, 1, 1, 0, 0, 1}, []byte{0, 1, 9}, false, uint8(30))
	f.Fuzz(func(t *testing.T, tree, written []byte, inBucket bool, maxPct uint8) {
		in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
			Now: t0, Delete: true, MaxDeletePercent: int(maxPct % 101), WindowLength: time.Hour}
		for i, c := range tree {
			if c&1 == 1 {
				p := pathName(i)
				in.local()[p], in.remote()[p], in.base()[p] = loc(1, 1), rem(1, 1, 1), base(1, 1, 1)
			}
		}
		side := func(path string) bool { _, ok := parentFile(in.local(), path); return ok }
		if inBucket {
			clear(in.remote())
			side = func(path string) bool { _, ok := parentFile(in.remote(), path); return ok }
		} else {
			clear(in.local())
		}
		for _, c := range written {
			p := pathName(int(c % 16))
			if _, known := in.base()[p]; known {
				continue // new files only: the side still holds none of the known ones
			}
			if inBucket {
				in.remote()[p] = rem(9, 2, 9)
			} else {
				in.local()[p] = loc(2, 9)
			}
		}
		p := Compute(in)
		known, excused := len(in.base()), 0
		for path := range in.base() {
			if side(path) {
				excused++
			}
		}
		wiped := p.LocalWiped
		if inBucket {
			wiped = p.RemoteWiped
		}
		if want := Wiped(known-excused, known, in.MaxDeletePercent); wiped != want {
			t.Fatalf("emptied side, %d of %d known files under a new file: wiped %v, want %v\n%s", excused, known, wiped, want, p)
		}
		if known > 0 && excused == 0 && !wiped {
			t.Fatalf("an emptied side with only new files elsewhere is not a wipe:\n%s", p)
		}
		checkEmptiedSide(t, in, p)
		var deletes []Action
		for _, a := range p.Actions {
			if a.Op == DeleteRemote || a.Op == DeleteLocal {
				deletes = append(deletes, a)
			}
		}
		if n := charged(t, in, p.Actions, deletes); n*100 > in.MaxDeletePercent*known {
			t.Fatalf("%d charged deletes of %d known passed a %d%% guard:\n%s", n, known, in.MaxDeletePercent, p)
		}
	})
}

// sim is a two-sided world that carries out plans, for sequences of passes.
type sim struct {
	in  Input
	gen int64
}

// apply carries out p and returns the deletes the guard charged for it (charged).
func (s *sim) apply(t *testing.T, p Plan) int {
	in := &s.in
	var deletes []Action
	for _, a := range p.Actions {
		if a.Op == DeleteRemote || a.Op == DeleteLocal {
			deletes = append(deletes, a)
		}
	}
	spent := charged(t, *in, p.Actions, deletes) // before the maps change
	for _, a := range p.Actions {
		switch a.Op {
		case Upload:
			s.gen++
			in.remote()[a.Path] = rem(s.gen, a.Local.Size, a.Local.CRC32C)
			in.base()[a.Path] = base(s.gen, a.Local.Size, a.Local.CRC32C)
		case Download, Conflict:
			in.local()[a.Path] = loc(a.Remote.Size, a.Remote.CRC32C)
			in.base()[a.Path] = base(a.Remote.Generation, a.Remote.Size, a.Remote.CRC32C)
		case RecordBase:
			in.base()[a.Path] = base(a.Remote.Generation, a.Remote.Size, a.Remote.CRC32C)
		case Touch:
			in.local()[a.Path] = locAt(a.Remote.Size, a.Remote.CRC32C, a.Remote.ModTime)
			in.base()[a.Path] = base(a.Remote.Generation, a.Remote.Size, a.Remote.CRC32C)
		case ForgetBase:
			delete(in.base(), a.Path)
		case DeleteRemote:
			delete(in.remote(), a.Path)
			delete(in.base(), a.Path)
		case DeleteLocal:
			delete(in.local(), a.Path)
			delete(in.base(), a.Path)
		}
	}
	in.Window = p.Window
	in.Window.Deleted += len(deletes) // as the syncer counts them: every delete carried out
	return spent
}

// FuzzGuardOverPasses: over any sequence of local deletes, remote deletes, new files, folders replaced by
// a file (locally or in the bucket) and elapsed time, the deletes charged within one window (all but one
// per file that replaced a folder) never exceed --max-delete of the files known when it opened, and a
// wiped side never deletes the other.
func FuzzGuardOverPasses(f *testing.F) {
	f.Add([]byte{0x07, 0x07, 0x47, 0x47, 0x07, 0xc1, 0x07, 0x47}, uint8(50), uint8(30))
	f.Add([]byte{0x81, 0x81, 0x01, 0x01, 0x01, 0x01, 0xff, 0x01}, uint8(10), uint8(0))
	f.Add([]byte{0x90, 0x91, 0x9a, 0x87, 0x93, 0xc1, 0x9b}, uint8(50), uint8(6)) // folders replaced by files on both sides
	f.Fuzz(func(t *testing.T, events []byte, maxPct, initial uint8) {
		s := &sim{in: Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
			Now: t0, Delete: true, MaxDeletePercent: int(maxPct % 101), WindowLength: time.Hour}}
		next := 0
		add := func(n int) {
			for range n {
				s.in.local()[fmt.Sprintf("d%d/f%04d", next%4, next)] = loc(int64(next%7+1), uint32(next))
				next++
			}
		}
		// replace makes the folder dir a file on one side: `rm -r dir; echo > dir`, or another client's
		// objects.
		replace := func(dir string, remote bool) {
			if remote {
				for k := range s.in.remote() {
					if strings.HasPrefix(k, dir+"/") {
						delete(s.in.remote(), k)
					}
				}
				s.gen++
				s.in.remote()[dir] = rem(s.gen, 9, 9)
				return
			}
			for k := range s.in.local() {
				if strings.HasPrefix(k, dir+"/") {
					delete(s.in.local(), k)
				}
			}
			s.in.local()[dir] = loc(9, 9)
		}
		add(int(initial % 64))
		window, spent := time.Time{}, 0
		for _, e := range events {
			n := int(e&7) + 1
			switch e >> 6 {
			case 0: // delete n files locally (the first in name order)
				for _, k := range sortedPaths(s.in.local())[:min(n, len(s.in.local()))] {
					delete(s.in.local(), k)
				}
			case 1: // another client deletes n objects
				for _, k := range sortedPaths(s.in.remote())[:min(n, len(s.in.remote()))] {
					delete(s.in.remote(), k)
				}
			case 2: // bits 3-4: new files, or folder d<bits 0-1> replaced by a file locally or remotely
				switch (e >> 3) & 3 {
				case 2:
					replace(fmt.Sprintf("d%d", e&3), false)
				case 3:
					replace(fmt.Sprintf("d%d", e&3), true)
				default:
					add(n)
				}
			case 3:
				s.in.Now = s.in.Now.Add(time.Duration(e&63) * 5 * time.Minute)
			}
			p := Compute(s.in)
			checkEmptiedSide(t, s.in, p)
			if p.Window.Start != window {
				window, spent = p.Window.Start, 0
			}
			spent += s.apply(t, p)
			if spent*100 > s.in.MaxDeletePercent*p.Window.Known {
				t.Fatalf("%d deletes in the window opened at %v exceed %d%% of the %d files known then",
					spent, window, s.in.MaxDeletePercent, p.Window.Known)
			}
		}
	})
}

func sortedPaths[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The sides of a test's Input, which are Maps: for indexing.
func (in Input) local() Map[snapshot.File]    { return in.Local.(Map[snapshot.File]) }
func (in Input) remote() Map[snapshot.Object] { return in.Remote.(Map[snapshot.Object]) }
func (in Input) base() Map[snapshot.Base]     { return in.Base.(Map[snapshot.Base]) }

// compactSides returns in with its remote side and base held as a pathmap.Map each, as the syncer's
// full pass holds them: half their paths merged into the sorted arrays, the rest added after (not merged
// yet), and a path added then deleted in each part.
func compactSides(in Input) Input {
	build := func(m map[string]snapshot.Object) *pathmap.Map[snapshot.Object] {
		merged, later := map[string]snapshot.Object{"\x00gone": {}}, []string{}
		for _, p := range slices.Sorted(maps.Keys(m)) {
			if len(merged)%2 == 0 {
				merged[p] = m[p]
			} else {
				later = append(later, p)
			}
		}
		pm := pathmap.FromMap(merged)
		pm.Delete("\x00gone")
		for _, p := range later {
			pm.Set(p, m[p])
		}
		pm.Set("\x00later", snapshot.Object{})
		pm.Delete("\x00later")
		return pm
	}
	in.Remote = build(in.remote())
	base := &pathmap.Map[snapshot.Base]{}
	for p, b := range in.base() {
		base.Set(p, b)
	}
	in.Base = base
	return in
}
