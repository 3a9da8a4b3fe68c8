package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestChangeStatsTakeOutThePollsPerPage(t *testing.T) {
	// Idle: 600 ms of CPU for 30 listed pages, 20 ms a page.
	idle := cost{CPU: 600 * time.Millisecond, Requests: map[string]float64{"list": 30}}
	ch := func(window time.Duration, cpu time.Duration, list, insert float64, written int64) scaleChange {
		return scaleChange{Propagation: window / 2, Window: window, Cost: [2]cost{
			{CPU: cpu, Written: written, Requests: map[string]float64{"list": list, "insert": insert}},
			{CPU: 2 * cpu, Requests: map[string]float64{"list": list, "read": 1}},
		}}
	}
	chs := []scaleChange{
		ch(6*time.Second, 100*time.Millisecond, 3, 1, 8192),   // net 100-60 = 40 ms
		ch(6*time.Second, 160*time.Millisecond, 4, 1, 8192),   // net 160-80 = 80 ms
		ch(12*time.Second, 300*time.Millisecond, 5, 1, 12288), // net 300-100 = 200 ms: fewer polls than the time would say
	}
	st := changeStatsOf(chs, idle, time.Minute, 0)
	if st.CPUNet != 80*time.Millisecond || st.CPURaw != 160*time.Millisecond {
		t.Errorf("CPU net %s raw %s, want the medians 80ms and 160ms", st.CPUNet, st.CPURaw)
	}
	if st.Requests["list"] != 4 || st.Requests["insert"] != 1 || st.Requests["read"] != 0 {
		t.Errorf("requests %v", st.Requests)
	}
	if st.Written != 8192 || st.Window != 6*time.Second || st.Propagation != 3*time.Second || st.PropagationMax != 6*time.Second {
		t.Errorf("written %d window %s propagation %s max %s", st.Written, st.Window, st.Propagation, st.PropagationMax)
	}
	if b := changeStatsOf(chs, idle, time.Minute, 1); b.Requests["read"] != 1 || b.CPURaw != 320*time.Millisecond ||
		b.CPUNet != 240*time.Millisecond {
		t.Errorf("replica B: %+v", b)
	}
	// No list request while idle: the idle CPU is taken out per second instead (1 % of a core here).
	quiet := cost{CPU: 600 * time.Millisecond, Requests: map[string]float64{}}
	if st := changeStatsOf(chs[:1], quiet, time.Minute, 0); st.CPUNet != 40*time.Millisecond {
		t.Errorf("per-second fallback: net %s, want 40ms", st.CPUNet)
	}
	if z := changeStatsOf(nil, idle, time.Minute, 0); z.CPUNet != 0 || z.Requests == nil {
		t.Errorf("no changes: %+v", z)
	}
}

func TestStatsOfTakesTheCheaperIdleMinute(t *testing.T) {
	ch := scaleChange{Window: 3 * time.Second, Cost: [2]cost{{CPU: 200 * time.Millisecond, Requests: map[string]float64{"list": 2}}}}
	sz := &scaleSize{IdleWindow: time.Minute, IdleAfterWindow: time.Minute,
		Idle:      [2]cost{{CPU: 3 * time.Second, Requests: map[string]float64{"list": 30}}},         // 100 ms a page
		IdleAfter: [2]cost{{CPU: 1500 * time.Millisecond, Requests: map[string]float64{"list": 30}}}, // 50 ms a page
		Local:     []scaleChange{ch}}
	if st := statsOf(sz.Local, sz, 0); st.CPUNet != 100*time.Millisecond {
		t.Errorf("net %s, want 200ms less 2 pages at 50ms", st.CPUNet)
	}
}

func TestSampleSince(t *testing.T) {
	before := sample{CPU: time.Second, Written: 4096, Passes: 3, Requests: map[string]float64{"list": 10, "insert": 2}}
	after := sample{CPU: 1500 * time.Millisecond, Written: 12288, Passes: 4, Requests: map[string]float64{"list": 12, "insert": 3, "read": 1}}
	c := after.since(before)
	if c.CPU != 500*time.Millisecond || c.Written != 8192 || c.Passes != 1 {
		t.Errorf("cost %+v", c)
	}
	if got := reqs(c.Requests); got != "2/0/1/1/0" {
		t.Errorf("requests %s, want list/get/read/insert/delete = 2/0/1/1/0", got)
	}
}

func TestProcWriteBytesCountsThisProcess(t *testing.T) {
	before, err := procWriteBytes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, strings.Repeat("x", 64*1024)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	after, err := procWriteBytes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// tmpfs does not count (no backing storage); a disk does, per page.
	if after < before {
		t.Errorf("write_bytes went down: %d -> %d", before, after)
	}
}

func TestRenderScaleOneRowPerSize(t *testing.T) {
	s := &scaleResult{Backend: "memory", Changes: 1}
	for _, n := range []int{2000, 20000} {
		idle := cost{CPU: time.Second, Requests: map[string]float64{"list": 30}}
		ch := scaleChange{Propagation: time.Second, Uploaded: 500 * time.Millisecond, Window: 3 * time.Second,
			Cost: [2]cost{{CPU: 200 * time.Millisecond, Written: 8192, Requests: map[string]float64{"insert": 1, "list": 2}},
				{CPU: 100 * time.Millisecond, Written: 16384, Requests: map[string]float64{"read": 1, "list": 2}}}}
		after := cost{CPU: 3 * time.Second, Requests: map[string]float64{"list": 30}} // dearer: not used
		s.Sizes = append(s.Sizes, &scaleSize{Files: n, IdleWindow: time.Minute, Idle: [2]cost{idle, idle},
			IdleAfterWindow: time.Minute, IdleAfter: [2]cost{after, after},
			Local: []scaleChange{ch}, Remote: []scaleChange{ch}})
	}
	var b strings.Builder
	renderScale(&b, s)
	out := b.String()
	for _, n := range []string{"2000", "20000"} {
		if c := strings.Count(out, "\n| "+n+" |"); c != 3 {
			t.Errorf("%d rows for %s files, want one in each of the 3 tables:\n%s", c, n, out)
		}
	}
	// Idle 1 s for 30 pages: 33 ms a page; A listed 2 pages in the window: 200 - 67 = 133 ms.
	for _, want := range []string{"| 2000 | 1.00 s (1.00 s) | 0.50 s | 3.00 s | 133 (200) | 2/0/0/1/0 | 8.0 |",
		"| 30/0/0/0/0 | 30/0/0/0/0 |", "1.67 %", "| 33.3 / 33.3; 100.0 / 100.0 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("scale tables lack %q:\n%s", want, out)
		}
	}
}

func TestOptionsRejectBadListsNamingTheVariable(t *testing.T) {
	t.Setenv("BENCH_DELAYS", "20")
	t.Setenv("BENCH_SCALE_SIZES", "2000,x")
	_, err := parseOptions(nil, io.Discard)
	for _, want := range []string{`BENCH_DELAYS="20"`, `BENCH_SCALE_SIZES="2000,x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	t.Setenv("BENCH_DELAYS", "20ms")
	t.Setenv("BENCH_SCALE_SIZES", "2000,20000,100000")
	o, err := parseOptions([]string{"-delays", "5ms,50ms", "-ports", "46100-46199"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { portRange = [2]int{46000, 46999} }()
	if len(o.delays) != 2 || o.delays[0] != 5*time.Millisecond || len(o.scaleSizes) != 3 || portRange != [2]int{46100, 46199} {
		t.Errorf("delays %v sizes %v ports %v", o.delays, o.scaleSizes, portRange)
	}
	if _, err := parseOptions([]string{"-scale-sizes", "10"}, io.Discard); err == nil {
		t.Error("-scale-sizes 10 accepted")
	}
	if _, err := parseOptions([]string{"-ports", "47000-46000"}, io.Discard); err == nil {
		t.Error("-ports 47000-46000 accepted")
	}
}

func TestFreePortStaysInRangeAndNeverRepeats(t *testing.T) {
	defer func(r [2]int) { portRange = r }(portRange)
	portRange = [2]int{46990, 46999}
	seen := map[int]bool{}
	for range 3 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 46990 || p > 46999 || seen[p] {
			t.Errorf("port %d: outside the range or given twice (%v)", p, seen)
		}
		seen[p] = true
	}
}
