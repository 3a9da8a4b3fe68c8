package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLatencyProxyDelaysEveryRequestAndKeepsTheHost(t *testing.T) {
	var gotHost string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		// An absolute URL the client must follow through the proxy, as a resumable upload's Location.
		w.Header().Set("Location", "http://"+r.Host+"/upload/resumable/1")
		_, _ = io.WriteString(w, "payload:"+r.URL.RequestURI())
	}))
	defer backend.Close()
	errLog := log.New(io.Discard, "", 0)
	p, err := startLatencyProxy(errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	port := strings.TrimPrefix(p.addr(), "127.0.0.1:")
	if n := atoi(t, port); n < portRange[0] || n > portRange[1] {
		t.Errorf("proxy listens on %s, outside %v", p.addr(), portRange)
	}

	resp, err := http.Get("http://" + p.addr() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("before setTarget: %d, want 503", resp.StatusCode)
	}
	if err := p.setTarget(backend.URL, errLog); err != nil {
		t.Fatal(err)
	}

	get := func() (time.Duration, string, http.Header) {
		t.Helper()
		start := time.Now()
		resp, err := http.Get("http://" + p.addr() + "/storage/v1/b/x/o?prefix=a")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return time.Since(start), string(body), resp.Header
	}
	p.setDelay(80 * time.Millisecond)
	took, body, header := get()
	if took < 80*time.Millisecond {
		t.Errorf("request took %s through an 80ms proxy", took)
	}
	if body != "payload:/storage/v1/b/x/o?prefix=a" {
		t.Errorf("body %q: path or query not forwarded as is", body)
	}
	if gotHost != p.addr() {
		t.Errorf("backend saw Host %q, want the proxy's %q (the server's -public-host)", gotHost, p.addr())
	}
	if loc := header.Get("Location"); loc != "http://"+p.addr()+"/upload/resumable/1" {
		t.Errorf("Location %q does not point at the proxy", loc)
	}
	p.setDelay(0)
	if took, _, _ := get(); took >= 80*time.Millisecond {
		t.Errorf("request took %s with no delay", took)
	}
	if n := p.requests.Load(); n != 3 {
		t.Errorf("proxy counted %d requests, want 3", n)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a port: %q", s)
		}
		n = 10*n + int(c-'0')
	}
	return n
}

func TestLatencyFloor(t *testing.T) {
	// 2,000 files at 20 ms, 64 at a time: 0.625 s; 250 MB at 100 MB/s: 2.5 s.
	got := latencyFloor(2000, 20*time.Millisecond, 64, 250_000_000, 100_000_000)
	if want := 625*time.Millisecond + 2500*time.Millisecond; got != want {
		t.Errorf("floor = %s, want %s", got, want)
	}
	if got := latencyFloor(2000, 20*time.Millisecond, 64, 1, 0); got != 0 {
		t.Errorf("floor without a throughput = %s, want 0 (unknown)", got)
	}
}

func TestLatencyResultFloorUsesTheBetterThroughput(t *testing.T) {
	r := &latencyResult{Files: 1000, Bytes: 200 * mb, DownBefore: 50 * mb, DownAfter: 100 * mb, UpBefore: 20 * mb, UpAfter: 10 * mb}
	// 1,000 x 20 ms / 64 + 200 MiB at 100 MiB/s.
	if got, want := r.floor("restore", 20*time.Millisecond), 312500*time.Microsecond+2*time.Second; got != want {
		t.Errorf("restore floor %s, want %s", got, want)
	}
	// Push: 1,000 x 20 ms / 64 (a --once pass is before ready) + 200 MiB at 20 MiB/s.
	if got, want := r.floor("push", 20*time.Millisecond), 312500*time.Microsecond+10*time.Second; got != want {
		t.Errorf("push floor %s, want %s", got, want)
	}
}

func TestLargestFilesUpToABudget(t *testing.T) {
	files := []file{{"a", 10}, {"b", 40}, {"c", 30}, {"d", 20}}
	got := largest(files, 60)
	if len(got) != 2 || got[0].Rel != "b" || got[1].Rel != "c" {
		t.Errorf("largest(60) = %v, want b and c", got)
	}
	if got := largest(files, 1000); len(got) != 4 {
		t.Errorf("largest(1000) = %v, want all four", got)
	}
	if files[0].Rel != "a" {
		t.Error("largest reordered its argument")
	}
}

func TestWithZero(t *testing.T) {
	got := withZero([]time.Duration{20 * time.Millisecond, 0, 50 * time.Millisecond, 20 * time.Millisecond})
	want := []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("withZero = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("withZero = %v, want %v", got, want)
		}
	}
}

func TestRenderLatencyNamesTheDelayPeersAndFloor(t *testing.T) {
	r := &latencyResult{Dataset: "wp2k", Files: 2000, Bytes: 240 * mb, Runs: 1, Tools: latencyTools, DownBefore: 240 * mb,
		Delays: []time.Duration{0, 20 * time.Millisecond}, Results: map[latencyKey][]latencyRun{}}
	for _, op := range []string{"restore", "push"} {
		for _, d := range r.Delays {
			for i, tool := range latencyTools {
				r.Results[latencyKey{op, d, tool}] = []latencyRun{{run: run{Wall: time.Duration(i+1) * time.Second}, Requests: 2000}}
			}
		}
	}
	var b strings.Builder
	renderLatency(&b, r)
	out := b.String()
	for _, want := range []string{"| restore | 20ms | 1.00 s | 2.00 s | 3.00 s |", "--transfers 8 --checkers 16",
		"--restore-transfers 64", "Floor = files x delay", "| 1.62 s |", "<= 0.3x rclone defaults: **missed** (0.50x, by 67%)",
		"<= 0.5x rclone t8/c16: met (0.33x)", "| push | 0s |"} {
		if !strings.Contains(out, want) {
			t.Errorf("latency table lacks %q:\n%s", want, out)
		}
	}
}

// The curve behind --restore-transfers: a row per value, a column per delay, each with its floor.
func TestRenderCurveTabulatesEveryValueAndDelay(t *testing.T) {
	d := 20 * time.Millisecond
	r := &latencyResult{Dataset: "wp2k", Files: 2000, Bytes: 240 * mb, Runs: 1, Tools: latencyTools, DownBefore: 240 * mb,
		Delays: []time.Duration{0, d}, Results: map[latencyKey][]latencyRun{}, Curve: map[curveKey][]latencyRun{
			{d, 8}:  {{run: run{Wall: 6 * time.Second}}},
			{d, 64}: {{run: run{Wall: 2 * time.Second}}},
		}}
	var b strings.Builder
	renderCurve(&b, r)
	out := b.String()
	// Floors: 2,000 x 20 ms / 8 + 1 s = 6.00 s; / 64 = 1.62 s.
	for _, want := range []string{"| --restore-transfers | 20ms |", "| 8 | 6.00 s (6.00 s) |", "| 64 | 2.00 s (1.62 s) |"} {
		if !strings.Contains(out, want) {
			t.Errorf("curve lacks %q:\n%s", want, out)
		}
	}
	if _, err := parseOptions([]string{"-restore-transfers", "8,0"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "BENCH_RESTORE_TRANSFERS") {
		t.Errorf("-restore-transfers 8,0: err %v, want one naming BENCH_RESTORE_TRANSFERS", err)
	}
}
