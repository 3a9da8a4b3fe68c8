package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// median returns the median of ds (the mean of the middle two for an even count); 0 when empty. Durations
// and byte counts alike.
func median[T ~int64](ds []T) T {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of ds; 0 when empty.
// With 30 samples p99 is the largest sample.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// metric is one extra value/unit pair of a Go benchmark result line.
type metric struct {
	Value float64
	Unit  string
}

// benchLine formats one result in the Go benchmark format that benchstat reads:
// "BenchmarkName/key=value 1 123 ns/op 4.5 unit".
func benchLine(name string, ns time.Duration, extra ...metric) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmark%s 1 %d ns/op", name, ns.Nanoseconds())
	for _, m := range extra {
		fmt.Fprintf(&b, " %s %s", formatValue(m.Value), m.Unit)
	}
	return b.String()
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.4g", v)
}

// ratio formats a/b as "0.62x", or "n/a" when either side is missing.
func ratio(a, b time.Duration) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// secs formats a duration in seconds with two decimals.
func secs(d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
