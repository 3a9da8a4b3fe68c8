package plan

import (
	"fmt"
	"github.com/filesync/filesync/sidecar/internal/version"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func loc(size int64, crc uint32) version.File { return locAt(size, crc, t0.Add(-time.Hour)) }
func locAt(size int64, crc uint32, mtime time.Time) version.File {
	return version.File{Stamp: version.Stamp{Size: size, ModTime: mtime.UnixNano()}, CRC32C: crc}
}
func rem(gen, size int64, crc uint32) version.Object {
	return version.Object{Generation: gen, Size: size, CRC32C: crc}
}
func base(gen, size int64, crc uint32) version.Base { return version.Base{Object: rem(gen, size, crc)} }

// TestCompute walks the three-way table of docs/design.md ("Sync semantics") row by row, plus the rules that make it safe.
func TestCompute(t *testing.T) {
	type side struct {
		l *version.File
		r *version.Object
		b *version.Base
	}
	L := func(l version.File) *version.File { return &l }
	R := func(r version.Object) *version.Object { return &r }
	B := func(b version.Base) *version.Base { return &b }
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
				Now: t0, Settle: time.Second, Delete: tc.delete, MaxDeletePercent: 50}
			if tc.s.l != nil {
				in.Local["a"] = *tc.s.l
			}
			if tc.s.r != nil {
				in.Remote["a"] = *tc.s.r
			}
			if tc.s.b != nil {
				in.Base["a"] = *tc.s.b
			}
			// Keep "a" from being the only local file, so the empty-directory rule stays out of these cases.
			in.Local["zz"], in.Remote["zz"], in.Base["zz"] = loc(1, 5), rem(1, 1, 5), base(1, 1, 5)
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
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 100}
	for i := range 5 {
		p := fmt.Sprintf("f%d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
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
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour,
		Window: DeleteWindow{Start: t0.Add(-time.Minute), Known: 40, Deleted: 15}}
	for i := range 40 {
		p := fmt.Sprintf("f%02d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
		if i >= 6 { // 6 more of 40 deleted locally: 15+6 = 21 of 40 in the window, 52% > 50%
			in.Local[p] = loc(1, 1)
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
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 40 {
		p := fmt.Sprintf("f%02d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
		if i < 19 { // 21 of 40 deleted locally: 52% > 50%
			in.Local[p] = loc(1, 1)
		}
	}
	p := Compute(in)
	if !p.LocalWiped || p.Count(DeleteRemote) != 0 || p.Count(Download) != 21 || len(p.BlockedDeletes) != 0 {
		t.Fatalf("want 21 restores:\n%s", p)
	}
}

func TestMaxDeleteAllowsAFewDeletes(t *testing.T) {
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 10 {
		p := fmt.Sprintf("f%d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
		if i >= 5 { // 5 of 10 deleted locally: exactly 50%
			in.Local[p] = loc(1, 1)
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
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 8 {
		p := fmt.Sprintf("f%d", i)
		in.Local[p], in.Base[p] = loc(1, 1), base(1, 1, 1)
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
	in := Input{Local: map[string]version.File{"index.php": loc(5, 5)}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 10 {
		p := fmt.Sprintf("f%d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
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
			in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
				Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
			for _, p := range []string{"a", "b", "c"} {
				in.Base[p] = base(1, 1, 1)
			}
			for _, p := range tc.local {
				in.Local[p] = loc(1, 1)
			}
			for _, p := range tc.remote {
				in.Remote[p] = rem(1, 1, 1)
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

// No floor lets a side lose nearly all of its files: 10 of 12 missing at once is a wipe, not 10 deletes.
func TestNearlyAllMissingIsAWipe(t *testing.T) {
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 12 {
		p := fmt.Sprintf("f%02d", i)
		in.Local[p], in.Base[p] = loc(1, 1), base(1, 1, 1)
		if i >= 10 {
			in.Remote[p] = rem(1, 1, 1)
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
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50, WindowLength: time.Hour}
	for i := range 400 {
		p := fmt.Sprintf("f%03d", i)
		in.Local[p], in.Remote[p], in.Base[p] = loc(1, 1), rem(1, 1, 1), base(1, 1, 1)
	}
	deleted, blocked := 0, 0
	for pass := range 20 { // 20 objects deleted remotely before each pass, 2 s apart
		for i := pass * 20; i < pass*20+20; i++ {
			delete(in.Remote, fmt.Sprintf("f%03d", i))
		}
		in.Now = t0.Add(time.Duration(pass) * 2 * time.Second)
		p := Compute(in)
		in.Window = p.Window
		for _, a := range p.Actions {
			if a.Op == DeleteLocal {
				delete(in.Local, a.Path)
				delete(in.Base, a.Path)
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
	if left := len(in.Local); left < 200 {
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
		Local: map[string]version.File{
			"new":   locAt(1, 1, t0.Add(-100*time.Millisecond)),
			"old":   locAt(1, 1, t0.Add(-2*time.Second)),
			"clash": locAt(2, 2, t0),
		},
		Remote: map[string]version.Object{"clash": rem(3, 3, 3)},
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
	in := Input{Local: map[string]version.File{"a": loc(1, 1), "b": loc(1, 1)}, Now: t0,
		Skip: func(p string) bool { return p == "a" }}
	p := Compute(in)
	if len(p.Actions) != 1 || p.Actions[0].Path != "b" {
		t.Fatalf("skip ignored:\n%s", p)
	}
}

// FuzzCompute checks the invariants that make the plan safe, over arbitrary three-way states:
// nothing is deleted without a base; nothing remote is overwritten or deleted without a matching generation;
// a local file is deleted only when it still matches the base; an empty directory deletes nothing remote.
func FuzzCompute(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80}, true, uint8(50))
	f.Add([]byte{0, 0, 0, 0}, false, uint8(0))
	f.Add([]byte{0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f}, true, uint8(100))
	f.Fuzz(func(t *testing.T, data []byte, del bool, maxPct uint8) {
		in := fuzzInput(data, del, maxPct)
		p := Compute(in)
		seen := map[string]bool{}
		for _, a := range p.Actions {
			if seen[a.Path] {
				t.Fatalf("two actions for %s:\n%s", a.Path, p)
			}
			seen[a.Path] = true
			b, hasB := in.Base[a.Path]
			r, hasR := in.Remote[a.Path]
			l, hasL := in.Local[a.Path]
			switch a.Op {
			case DeleteRemote:
				if !hasB || !del || a.IfGeneration != b.Generation || !hasR || r.Generation != b.Generation || hasL {
					t.Fatalf("unsafe remote delete %v (base %v/%v)", a, b, hasB)
				}
				if p.LocalWiped {
					t.Fatalf("remote delete from a wiped directory: %v", a)
				}
			case DeleteLocal:
				if !hasB || !del || hasR || !hasL || l.Size != b.Size || l.CRC32C != b.CRC32C {
					t.Fatalf("unsafe local delete %v", a)
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
		}
		deletes := p.Count(DeleteRemote) + p.Count(DeleteLocal)
		if deletes*100 > in.MaxDeletePercent*len(in.Base) {
			t.Fatalf("%d deletes of %d known passed a %d%% guard", deletes, len(in.Base), in.MaxDeletePercent)
		}
		checkEmptiedSide(t, in, p)
	})
}

// fuzzInput builds a planner input from fuzz bytes, one path per byte.
func fuzzInput(data []byte, del bool, maxPct uint8) Input {
	in := Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
		Now: t0, Settle: time.Second, Delete: del, MaxDeletePercent: int(maxPct % 101)}
	// Each byte describes one path: bits 0-1 local (absent, content 1, content 2, recent content 2),
	// bits 2-3 remote (absent, gen 1/content 1, gen 2/content 2, gen 3/content 1), bits 4-5 base (absent,
	// gen 1/content 1, gen 2/content 2, gen 3/content 1).
	for i, c := range data {
		p := fmt.Sprintf("p%03d", i)
		switch c & 3 {
		case 1:
			in.Local[p] = loc(1, 1)
		case 2:
			in.Local[p] = loc(2, 2)
		case 3:
			in.Local[p] = locAt(2, 2, t0)
		}
		switch (c >> 2) & 3 {
		case 1:
			in.Remote[p] = rem(1, 1, 1)
		case 2:
			in.Remote[p] = rem(2, 2, 2)
		case 3:
			in.Remote[p] = rem(3, 1, 1)
		}
		switch (c >> 4) & 3 {
		case 1:
			in.Base[p] = base(1, 1, 1)
		case 2:
			in.Base[p] = base(2, 2, 2)
		case 3:
			in.Base[p] = base(3, 1, 1)
		}
	}
	return in
}

// FuzzTargeted: planning a subset of the paths that holds every base entry either side lacks (a targeted
// pass), with the whole tree's count of known files, gives exactly the whole tree's plan restricted to the
// subset: the same actions, the same withheld deletes, the same wipe verdicts. So a targeted pass never
// deletes what a full pass would not, and the guard sees every delete candidate.
func FuzzTargeted(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80, 0x15, 0x15}, []byte{0x5a}, true, uint8(50), uint8(3))
	f.Add([]byte{0x15, 0x15, 0x15, 0x15, 0x11, 0x05}, []byte{0x01}, true, uint8(30), uint8(0))
	f.Fuzz(func(t *testing.T, data, subset []byte, del bool, maxPct, skipEvery uint8) {
		whole := fuzzInput(data, del, maxPct)
		if skipEvery > 0 {
			whole.Skip = func(path string) bool { return len(path)%int(skipEvery%5+1) == 0 && path[len(path)-1]%3 == 0 }
		}
		in := whole
		in.Local, in.Remote, in.Base = map[string]version.File{}, map[string]version.Object{}, map[string]version.Base{}
		in.Known = len(whole.Base)
		chosen := map[string]bool{}
		for i := range data {
			path := fmt.Sprintf("p%03d", i)
			_, hasL := whole.Local[path]
			_, hasR := whole.Remote[path]
			_, hasB := whole.Base[path]
			picked := len(subset) > 0 && subset[(i/8)%len(subset)]&(1<<(i%8)) != 0
			if missing := hasB && (!hasL || !hasR); !picked && !missing {
				continue
			}
			chosen[path] = true
			if l, ok := whole.Local[path]; ok {
				in.Local[path] = l
			}
			if r, ok := whole.Remote[path]; ok {
				in.Remote[path] = r
			}
			if b, ok := whole.Base[path]; ok {
				in.Base[path] = b
			}
		}
		if in.Known == 0 && len(in.Base) > 0 {
			t.Fatal("bad test: a subset with base entries of an empty base")
		}
		pw, pt := Compute(whole), Compute(in)
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
	})
}

// checkEmptiedSide: a side that lacks all known files, or more than --max-delete of them, deletes nothing.
func checkEmptiedSide(t *testing.T, in Input, p Plan) {
	t.Helper()
	missL, missR := 0, 0
	for path := range in.Base {
		if _, ok := in.Local[path]; !ok {
			missL++
		}
		if _, ok := in.Remote[path]; !ok {
			missR++
		}
	}
	wiped := Wiped(missL, len(in.Base), in.MaxDeletePercent) || Wiped(missR, len(in.Base), in.MaxDeletePercent)
	if len(in.Base) > 0 && (missL == len(in.Base) || missR == len(in.Base)) && !wiped {
		t.Fatalf("a side holding none of %d known files is not judged wiped", len(in.Base))
	}
	if wiped && p.Count(DeleteRemote)+p.Count(DeleteLocal)+len(p.BlockedDeletes) > 0 {
		t.Fatalf("a wiped side (local missing %d, remote missing %d of %d) deletes:\n%s", missL, missR, len(in.Base), p)
	}
}

// sim is a two-sided world that carries out plans, for sequences of passes.
type sim struct {
	in  Input
	gen int64
}

func (s *sim) apply(p Plan) (deletes int) {
	in := &s.in
	for _, a := range p.Actions {
		switch a.Op {
		case Upload:
			s.gen++
			in.Remote[a.Path] = rem(s.gen, a.Local.Size, a.Local.CRC32C)
			in.Base[a.Path] = base(s.gen, a.Local.Size, a.Local.CRC32C)
		case Download, Conflict:
			in.Local[a.Path] = loc(a.Remote.Size, a.Remote.CRC32C)
			in.Base[a.Path] = base(a.Remote.Generation, a.Remote.Size, a.Remote.CRC32C)
		case RecordBase:
			in.Base[a.Path] = base(a.Remote.Generation, a.Remote.Size, a.Remote.CRC32C)
		case ForgetBase:
			delete(in.Base, a.Path)
		case DeleteRemote:
			delete(in.Remote, a.Path)
			delete(in.Base, a.Path)
			deletes++
		case DeleteLocal:
			delete(in.Local, a.Path)
			delete(in.Base, a.Path)
			deletes++
		}
	}
	in.Window = p.Window
	in.Window.Deleted += deletes
	return deletes
}

// FuzzGuardOverPasses: over any sequence of local deletes, remote deletes, new files and elapsed time, the
// deletes carried out within one window never exceed --max-delete of the files known when it opened, and
// a wiped side never deletes the other.
func FuzzGuardOverPasses(f *testing.F) {
	f.Add([]byte{0x07, 0x07, 0x47, 0x47, 0x07, 0xc1, 0x07, 0x47}, uint8(50), uint8(30))
	f.Add([]byte{0x81, 0x81, 0x01, 0x01, 0x01, 0x01, 0xff, 0x01}, uint8(10), uint8(0))
	f.Fuzz(func(t *testing.T, events []byte, maxPct, initial uint8) {
		s := &sim{in: Input{Local: map[string]version.File{}, Remote: map[string]version.Object{}, Base: map[string]version.Base{},
			Now: t0, Delete: true, MaxDeletePercent: int(maxPct % 101), WindowLength: time.Hour}}
		next := 0
		add := func(n int) {
			for range n {
				s.in.Local[fmt.Sprintf("f%04d", next)] = loc(int64(next%7+1), uint32(next))
				next++
			}
		}
		add(int(initial % 64))
		window, spent := time.Time{}, 0
		for _, e := range events {
			n := int(e&7) + 1
			switch e >> 6 {
			case 0: // delete n files locally (the first in name order)
				for _, k := range sortedPaths(s.in.Local)[:min(n, len(s.in.Local))] {
					delete(s.in.Local, k)
				}
			case 1: // another client deletes n objects
				for _, k := range sortedPaths(s.in.Remote)[:min(n, len(s.in.Remote))] {
					delete(s.in.Remote, k)
				}
			case 2:
				add(n)
			case 3:
				s.in.Now = s.in.Now.Add(time.Duration(e&63) * 5 * time.Minute)
			}
			p := Compute(s.in)
			checkEmptiedSide(t, s.in, p)
			if p.Window.Start != window {
				window, spent = p.Window.Start, 0
			}
			spent += s.apply(p)
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
