package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func loc(size int64, crc uint32) Local {
	return Local{Size: size, CRC32C: crc, ModTime: t0.Add(-time.Hour)}
}
func rem(gen, size int64, crc uint32) Remote {
	return Remote{Generation: gen, Size: size, CRC32C: crc}
}
func base(gen, size int64, crc uint32) Base { return Base{Generation: gen, Size: size, CRC32C: crc} }

// TestCompute walks the three-way table of DESIGN.md row by row, plus the rules that make it safe.
func TestCompute(t *testing.T) {
	type side struct {
		l *Local
		r *Remote
		b *Base
	}
	L := func(l Local) *Local { return &l }
	R := func(r Remote) *Remote { return &r }
	B := func(b Base) *Base { return &b }
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
			in := Input{Local: map[string]Local{}, Remote: map[string]Remote{}, Base: map[string]Base{},
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
	in := Input{Local: map[string]Local{}, Remote: map[string]Remote{}, Base: map[string]Base{},
		Now: t0, Delete: true, MaxDeletePercent: 100}
	for i := range 5 {
		p := fmt.Sprintf("f%d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
	}
	p := Compute(in)
	if !p.LocalEmpty {
		t.Fatal("want LocalEmpty")
	}
	if p.Count(Download) != 5 || p.Count(DeleteRemote) != 0 {
		t.Fatalf("want 5 restores and no delete:\n%s", p)
	}
}

func TestMaxDeleteBlocksMassDelete(t *testing.T) {
	in := Input{Local: map[string]Local{}, Remote: map[string]Remote{}, Base: map[string]Base{},
		Now: t0, Delete: true, MaxDeletePercent: 50}
	for i := range 40 {
		p := fmt.Sprintf("f%02d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
		if i < 19 { // 21 of 40 deleted locally: 52% > 50%
			in.Local[p] = loc(1, 1)
		}
	}
	p := Compute(in)
	if p.Count(DeleteRemote) != 0 || len(p.BlockedDeletes) != 21 {
		t.Fatalf("want 21 blocked deletes and none planned:\n%s", p)
	}
	if !strings.Contains(p.String(), "BLOCKED: 21 deletes of 40 known files") {
		t.Fatalf("plan does not say it was blocked:\n%s", p)
	}
	in.MaxDeletePercent = 60
	if p := Compute(in); p.Count(DeleteRemote) != 21 || len(p.BlockedDeletes) != 0 {
		t.Fatalf("at 60%% the deletes should go through:\n%s", p)
	}
}

func TestMaxDeleteIgnoresAFewDeletes(t *testing.T) {
	in := Input{Local: map[string]Local{"keep": loc(1, 1)}, Remote: map[string]Remote{"keep": rem(1, 1, 1)},
		Base: map[string]Base{"keep": base(1, 1, 1)}, Now: t0, Delete: true, MaxDeletePercent: 50}
	for i := range MinGuardedDeletes {
		p := fmt.Sprintf("f%d", i)
		in.Remote[p], in.Base[p] = rem(1, 1, 1), base(1, 1, 1)
	}
	if p := Compute(in); p.Count(DeleteRemote) != MinGuardedDeletes {
		t.Fatalf("want %d deletes:\n%s", MinGuardedDeletes, p)
	}
}

func TestSettleDefersRecentLocalChanges(t *testing.T) {
	in := Input{
		Local: map[string]Local{
			"new":   {Size: 1, CRC32C: 1, ModTime: t0.Add(-100 * time.Millisecond)},
			"old":   {Size: 1, CRC32C: 1, ModTime: t0.Add(-2 * time.Second)},
			"clash": {Size: 2, CRC32C: 2, ModTime: t0},
		},
		Remote: map[string]Remote{"clash": rem(3, 3, 3)},
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
	in := Input{Local: map[string]Local{"a": loc(1, 1), "b": loc(1, 1)}, Now: t0,
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
		in := Input{Local: map[string]Local{}, Remote: map[string]Remote{}, Base: map[string]Base{},
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
				in.Local[p] = Local{Size: 2, CRC32C: 2, ModTime: t0}
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
				if p.LocalEmpty {
					t.Fatalf("remote delete from an empty directory: %v", a)
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
				if !hasL || l.ModTime.Add(in.Settle).After(in.Now) {
					t.Fatalf("upload of a missing or unsettled file: %v", a)
				}
			case Download, Conflict:
				if !hasR {
					t.Fatalf("%v without a remote object", a)
				}
			}
		}
		deletes := p.Count(DeleteRemote) + p.Count(DeleteLocal)
		if deletes > MinGuardedDeletes && deletes*100 > in.MaxDeletePercent*len(in.Base) {
			t.Fatalf("%d deletes of %d known passed a %d%% guard", deletes, len(in.Base), in.MaxDeletePercent)
		}
	})
}
