package snapshot

import "testing"

func TestBaseKnowsOnlyTheStampItRecorded(t *testing.T) {
	b := Base{Object: Object{Generation: 7, Size: 3, CRC32C: 9}, ModTime: 100}
	for _, c := range []struct {
		st   Stamp
		want bool
	}{{Stamp{3, 100}, true}, {Stamp{4, 100}, false}, {Stamp{3, 101}, false}} {
		if got := b.Knows(c.st); got != c.want {
			t.Errorf("Knows(%+v) = %v", c.st, got)
		}
	}
	if (Base{Object: b.Object}).Knows(Stamp{3, 0}) {
		t.Error("a base without a local stamp (0: re-hash) must not vouch for a file")
	}
	if !b.Agrees(File{Stamp{3, 5}, 9}) || b.Agrees(File{Stamp{3, 5}, 8}) {
		t.Error("Agrees compares size and CRC32C")
	}
	if !(File{Stamp{3, 5}, 9}).Same(b.Object) || (File{Stamp{2, 5}, 9}).Same(b.Object) {
		t.Error("Same compares size and CRC32C")
	}
}
