package snapshot

import "time"

// Packed is an Object as the sets that grow with a site hold it (the base, the remote view): 32 bytes
// and no pointer, where an Object is 48 with a time.Time whose *Location the collector must follow, so a
// million of them are 32 MB it never scans. It is a way of storing an Object, not another thing to
// compare: pack one to store it, take the Object back to use it.
type Packed struct {
	Generation int64
	Size       int64
	sec        int64 // ModTime: seconds since 1970 (time.Time.Unix; the zero time is some 62 billion before)
	CRC32C     uint32
	nsec       int32 // ModTime: nanoseconds within the second
}

// Pack returns o packed.
func (o Object) Pack() Packed {
	return Packed{Generation: o.Generation, Size: o.Size, sec: o.ModTime.Unix(), CRC32C: o.CRC32C, nsec: int32(o.ModTime.Nanosecond())}
}

// Object returns the Object p packs: the same, its ModTime the same instant in UTC (Equal, and the zero
// time for the zero time).
func (p Packed) Object() Object {
	return Object{Generation: p.Generation, Size: p.Size, CRC32C: p.CRC32C, ModTime: time.Unix(p.sec, int64(p.nsec&nsecBits)).UTC()}
}

// PackedBase is a Base as the base holds it (Packed): 40 bytes and no pointer, the remote-only mark a bit
// of the nanoseconds (remoteOnlyBit) rather than a bool that would pad it to 48.
type PackedBase struct {
	Packed
	ModTime int64
}

// Nanoseconds take 30 bits of Packed.nsec (less than 2^30); a PackedBase marks a remote-only base in the
// next one.
const (
	nsecBits      = 1<<30 - 1
	remoteOnlyBit = 1 << 30
)

// Pack returns b packed.
func (b Base) Pack() PackedBase {
	p := PackedBase{Packed: b.Object.Pack(), ModTime: b.ModTime}
	if b.RemoteOnly {
		p.nsec |= remoteOnlyBit
	}
	return p
}

// Base returns the Base p packs (Packed.Object).
func (p PackedBase) Base() Base {
	return Base{Object: p.Object(), ModTime: p.ModTime, RemoteOnly: p.nsec&remoteOnlyBit != 0}
}
