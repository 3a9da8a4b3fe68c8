package plan

import (
	"testing"

	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// remoteOnly is the base of a lazy path recorded without a local file.
func remoteOnly(gen, size int64, crc uint32) snapshot.Base {
	b := base(gen, size, crc)
	b.RemoteOnly = true
	return b
}

func lazyUploads(path string) bool { return len(path) > 8 && path[:8] == "uploads/" }

// TestRemoteOnly (issue 23, point 4): absent is not deleted. A lazy object without a local file is
// recorded, not downloaded; a remote-only path's absence deletes nothing and is no wipe; a remote change
// updates its base without a download, a remote delete forgets it; a local file written over it without
// seeing it is a conflict, a fetched copy is in sync.
func TestRemoteOnly(t *testing.T) {
	const p = "uploads/2026/12/a.jpg"
	for _, tc := range []struct {
		name string
		l    *snapshot.File
		r    *snapshot.Object
		b    *snapshot.Base
		lazy bool
		want Op // 0: nothing
	}{
		{"new lazy object", nil, ptr(rem(1, 1, 1)), nil, true, RemoteOnly},
		{"new eager object", nil, ptr(rem(1, 1, 1)), nil, false, Download},
		{"remote-only, unchanged", nil, ptr(rem(1, 1, 1)), ptr(remoteOnly(1, 1, 1)), true, 0},
		{"remote-only, changed remotely", nil, ptr(rem(2, 2, 2)), ptr(remoteOnly(1, 1, 1)), true, RemoteOnly},
		{"remote-only, a new mtime remotely", nil, ptr(remAt(1, 1, 1, t0)), ptr(remoteOnly(1, 1, 1)), true, RemoteOnly},
		{"remote-only, deleted remotely", nil, nil, ptr(remoteOnly(1, 1, 1)), true, ForgetBase},
		{"remote-only, not lazy any more", nil, ptr(rem(1, 1, 1)), ptr(remoteOnly(1, 1, 1)), false, Download},
		{"remote-only, fetched", ptr(loc(1, 1)), ptr(rem(1, 1, 1)), ptr(remoteOnly(1, 1, 1)), true, RecordBase},
		{"remote-only, fetched, then changed remotely", ptr(loc(1, 1)), ptr(rem(2, 2, 2)), ptr(remoteOnly(1, 1, 1)), true, Download},
		{"remote-only, the app wrote the path without seeing it", ptr(loc(2, 9)), ptr(rem(1, 1, 1)), ptr(remoteOnly(1, 1, 1)), true, Conflict},
		{"remote-only, fetched, deleted remotely", ptr(loc(1, 1)), nil, ptr(remoteOnly(1, 1, 1)), true, DeleteLocal},
		{"lazy file the app deleted", nil, ptr(rem(1, 1, 1)), ptr(base(1, 1, 1)), true, DeleteRemote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
				Now: t0, Delete: true, MaxDeletePercent: 100, Lazy: func(string) bool { return tc.lazy }}
			if tc.l != nil {
				in.local()[p] = *tc.l
			}
			if tc.r != nil {
				in.remote()[p] = *tc.r
			}
			if tc.b != nil {
				in.base()[p] = *tc.b
			}
			for i := range 9 { // files in sync, so that one path gone is no wipe
				f := "plugins/" + pathName(20+i)
				in.local()[f], in.remote()[f], in.base()[f] = loc(1, 1), rem(1, 1, 1), base(1, 1, 1)
			}
			plan := Compute(in)
			var got Op
			switch {
			case len(plan.Actions) == 1:
				got = plan.Actions[0].Op
			case len(plan.RemoteOnly) == 1 && plan.RemoteOnly[0] == p:
				got = RemoteOnly
			}
			if got != tc.want || len(plan.Actions)+len(plan.RemoteOnly) > 1 || len(plan.BlockedDeletes) > 0 {
				t.Fatalf("got %v, want %v\n%s", got, tc.want, plan)
			}
		})
	}
}

func ptr[V any](v V) *V { return &v }

// TestRemoteOnlyIsNoWipe: a replica with 3 code files and 1,000 remote-only media files is in sync; it
// lacks every media file locally and that is neither a wipe nor a delete. Losing its code files still is
// a wipe, judged on the files it should hold (the remote-only ones do not dilute it).
func TestRemoteOnlyIsNoWipe(t *testing.T) {
	in := Input{Local: Map[snapshot.File]{}, Remote: Map[snapshot.Object]{}, Base: Map[snapshot.Base]{},
		Now: t0, Delete: true, MaxDeletePercent: 50, Lazy: lazyUploads}
	for _, p := range []string{"plugins/a.php", "plugins/b.php", "themes/c.php"} {
		in.local()[p], in.remote()[p], in.base()[p] = loc(1, 1), rem(1, 1, 1), base(1, 1, 1)
	}
	for i := range 1000 {
		p := "uploads/m" + pathName(20+i)
		in.remote()[p], in.base()[p] = rem(1, 1, 1), remoteOnly(1, 1, 1)
	}
	if p := Compute(in); len(p.Actions) != 0 || len(p.RemoteOnly) != 0 || p.LocalWiped || p.RemoteWiped {
		t.Fatalf("a replica with remote-only media is not in sync:\n%s", p)
	}
	clear(in.local())
	p := Compute(in)
	if !p.LocalWiped || p.Count(DeleteRemote) != 0 || len(p.BlockedDeletes) != 0 || p.Count(Download) != 3 {
		t.Fatalf("the code files lost: wiped %v, want a wipe restoring 3 files:\n%s", p.LocalWiped, p)
	}
}

// lazyInput adds laziness to a fuzz input: two bits a path from marks (bit 0: the path is lazy; bit 1:
// its base, if any, is remote-only).
func lazyInput(in Input, n int, marks []byte) Input {
	lazy := map[string]bool{}
	in.Lazy = func(path string) bool { return lazy[path] }
	for i := range n {
		if len(marks) == 0 {
			break
		}
		m := marks[(i/4)%len(marks)] >> (2 * (i % 4))
		path := pathName(i)
		lazy[path] = m&1 != 0
		if b, ok := in.base()[path]; ok && m&2 != 0 {
			b.RemoteOnly, b.ModTime = true, 0
			in.base()[path] = b
		}
	}
	return in
}

// FuzzRemoteOnly: FuzzCompute's invariants hold with lazy paths and remote-only entries in the mix, and
// absent is never deleted: a remote-only path never deletes (or is held back from deleting) its object,
// is never overwritten by an upload, and a lazy path without a local file is never downloaded unless the
// local directory is wiped of files it should hold... which it restores as remote-only too.
func FuzzRemoteOnly(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80}, []byte{0xff, 0x0f}, true, uint8(50))
	f.Add([]byte{0x15, 0x15, 0x15, 0x15, 0x14, 0x14}, []byte{0xff, 0xff}, true, uint8(30))
	f.Add([]byte{0x14, 0x14, 0x14, 0x14, 0x15}, []byte{0x03, 0x03}, true, uint8(10))
	f.Fuzz(func(t *testing.T, data, marks []byte, del bool, maxPct uint8) {
		in := lazyInput(fuzzInput(data, del, maxPct), len(data), marks)
		p := Compute(in)
		checkSafe(t, in, p)
		for _, list := range [][]Action{p.Actions, p.BlockedDeletes} {
			for _, a := range list {
				b, hasB := in.base()[a.Path]
				_, hasL := in.local()[a.Path]
				switch {
				case hasB && b.RemoteOnly && a.Op == DeleteRemote:
					t.Fatalf("a remote-only path deletes its object: %v\n%s", a, p)
				case hasB && b.RemoteOnly && a.Op == Upload && a.IfGeneration != 0:
					t.Fatalf("an upload over a remote-only path's object: %v\n%s", a, p)
				case a.Op == Download && !hasL && in.Lazy(a.Path) && (!hasB || b.RemoteOnly):
					t.Fatalf("a lazy path downloaded before it is asked for: %v\n%s", a, p)
				case a.Op == RemoteOnly:
					t.Fatalf("a remote-only record among the actions: %v\n%s", a, p)
				}
			}
		}
		for _, path := range p.RemoteOnly {
			_, hasL := in.local()[path]
			if _, hasR := in.remote()[path]; hasL || !hasR || !in.Lazy(path) {
				t.Fatalf("remote-only recorded for %s, which is local (%v), not in the bucket (%v) or not lazy:\n%s", path, hasL, !hasR, p)
			}
		}
	})
}

// FuzzTargetedRemoteOnly: FuzzTargeted with lazy paths and remote-only entries: a targeted pass leaves
// out the remote-only entries without a local file, and still plans exactly what a full pass would.
func FuzzTargetedRemoteOnly(f *testing.F) {
	f.Add([]byte{0x11, 0x22, 0x37, 0x05, 0xff, 0x80, 0x15, 0x15}, []byte{0x5a}, []byte{0xff, 0x0f}, true, uint8(50))
	f.Add([]byte{0x14, 0x14, 0x14, 0x14, 0x15, 0x05}, []byte{0x01}, []byte{0xff, 0xff}, true, uint8(30))
	f.Fuzz(func(t *testing.T, data, subset, marks []byte, del bool, maxPct uint8) {
		checkTargeted(t, lazyInput(fuzzInput(data, del, maxPct), len(data), marks), len(data), subset)
	})
}
