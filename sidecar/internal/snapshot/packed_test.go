package snapshot

import (
	"testing"
	"time"
	"unsafe"
)

// TestPackKeepsEverything: an Object packed and taken back is the same version with the same mtime
// instant, whatever the mtime (the zero time, before 1970, nanoseconds, far future, any zone), and a
// Base keeps its stamp and remote-only flag.
func TestPackKeepsEverything(t *testing.T) {
	for _, mt := range []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Unix(0, 0),
		time.Date(2026, 12, 7, 1, 2, 3, 456_789_012, time.FixedZone("CET", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 12, 7, 3, 0, 0, 999_999_999, time.UTC), // every nanosecond bit set
	} {
		o := Object{Generation: 1_700_000_000_000_001, Size: 1 << 40, CRC32C: 0xdeadbeef, ModTime: mt}
		got := o.Pack().Object()
		if !got.Is(o) || !got.ModTime.Equal(mt) || got.ModTime.IsZero() != mt.IsZero() {
			t.Fatalf("packed %v, got back %v", o, got)
		}
		for _, remoteOnly := range []bool{true, false} {
			b := Base{Object: o, ModTime: -5, RemoteOnly: remoteOnly}
			if gb := b.Pack().Base(); !gb.Is(o) || !gb.Object.ModTime.Equal(mt) || gb.ModTime != -5 || gb.RemoteOnly != remoteOnly {
				t.Fatalf("packed %v, got back %v", b, gb)
			}
		}
	}
	if (Object{}).Pack().Object() != (Object{}) {
		t.Fatal("the zero Object does not come back as the zero Object")
	}
	if s, b := unsafe.Sizeof(Packed{}), unsafe.Sizeof(PackedBase{}); s != 32 || b != 40 {
		t.Fatalf("Packed is %d bytes, PackedBase %d: want 32 and 40", s, b)
	}
}
