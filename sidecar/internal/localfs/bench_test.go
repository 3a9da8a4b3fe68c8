package localfs

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWriteAtomic: the local cost of one download into uploads/YYYY/MM/ (the directory exists, as it
// does after its first file): temp create, write, checks, rename. The bytes are few, so the path work shows.
func BenchmarkWriteAtomic(b *testing.B) {
	b.Run("mtime=none", func(b *testing.B) { benchWriteAtomic(b, time.Time{}) })
	// As a download writes: with the object's mtime.
	b.Run("mtime=object", func(b *testing.B) { benchWriteAtomic(b, time.Unix(1_700_000_000, 0)) })
}

func benchWriteAtomic(b *testing.B, mtime time.Time) {
	d, _ := open(b)
	data := bytes.Repeat([]byte("x"), 4096)
	crc := CRC32C(data)
	i := 0
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for b.Loop() {
		rel := fmt.Sprintf("uploads/2026/%02d/img-%06d.jpg", i%12+1, i)
		if _, err := d.WriteAtomic(rel, bytes.NewReader(data), int64(len(data)), crc, mtime, Expect{Absent: true}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	// CPU time, which the machine's other load disturbs far less than wall time.
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
