package syncer

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/filesync/filesync/sidecar/internal/eventually"
)

// Loop signals mean what they say (the change-driven engine issue, point 6).

// A changed file the app keeps open backs off like a failure (growing waits), instead of waking the loop
// at a fixed short interval for as long as it stays open.
func TestBusyFileBacksOff(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a", withOptions(func(o *Options) { o.Settle = 100 * time.Millisecond }))
	a.write("open.log", "x")
	fh, err := os.OpenFile(filepath.Join(a.dir, "open.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if !a.s.dir.InUse("open.log") {
		t.Skip("file leases are not available here")
	}
	time.Sleep(150 * time.Millisecond) // past the settle time: only the open file holds it back
	var waits []time.Duration
	for range 6 {
		for p, f := range a.s.holds.failures { // due now: look at it again
			f.next = time.Time{}
			a.s.holds.failures[p] = f
		}
		res := a.pass()
		waits = append(waits, time.Until(res.NextWake))
	}
	if waits[5] < 2*waits[0] || waits[5] < time.Second {
		t.Fatalf("waits for a busy file do not grow: %v", waits)
	}
	if n := a.s.holds.failures["open.log"].n; n != 6 {
		t.Fatalf("busy attempts = %d, want 6", n)
	}
}

// Liveness counts bytes moved: a transfer longer than the liveness limit is healthy while it moves.
func TestLongTransferKeepsLivenessGreen(t *testing.T) {
	b := newBucket(t)
	b.put(testPrefix+"/video.mp4", strings.Repeat("v", 4<<20))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	var reading atomic.Bool
	c := b.replica("b", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err == nil && isMedia(r) {
				resp.Body = slowBody{resp.Body, &reading}
			}
			return resp, err
		})
	}))
	c.s.now = func() time.Time { return time.Unix(0, clock.Load()) }
	c.s.status.running.Store(true)
	done := make(chan struct{})
	go func() { defer close(done); c.pass() }()
	eventually.True(t, 10*time.Second, "the download to start", reading.Load)
	clock.Add(int64(3 * time.Minute)) // longer than the liveness limit (2 min), in the middle of the transfer
	time.Sleep(100 * time.Millisecond)
	healthy := c.s.Healthy()
	<-done
	if !healthy {
		t.Fatal("a transfer that moves bytes turned liveness red")
	}
}

// slowBody hands out a body in small pieces, slowly.
type slowBody struct {
	io.ReadCloser
	reading *atomic.Bool
}

func (s slowBody) Read(p []byte) (int, error) {
	s.reading.Store(true)
	time.Sleep(5 * time.Millisecond)
	return s.ReadCloser.Read(p[:min(len(p), 64<<10)])
}

// The restore reports its progress: log lines every ProgressInterval, the gauges, and /readyz's reason.
func TestRestoreShowsProgress(t *testing.T) {
	b := newBucket(t)
	for i := range 300 {
		b.put(fmt.Sprintf("%s/uploads/f%03d.jpg", testPrefix, i), strings.Repeat("x", 1000))
	}
	var lines atomic.Int64
	var reasons []string
	var mu sync.Mutex
	c := b.replica("b", withTransport(func(next http.RoundTripper) http.RoundTripper { return slowMedia(next, 2*time.Millisecond) }),
		withOptions(func(o *Options) {
			o.ProgressInterval = 20 * time.Millisecond
			o.OnProgress = func(string) { lines.Add(1) }
		}))
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				mu.Lock()
				reasons = append(reasons, c.s.NotReadyReason())
				mu.Unlock()
			}
		}
	}()
	c.settle()
	close(stop)
	if lines.Load() < 2 {
		t.Fatalf("%d progress lines during the restore, want several", lines.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	seen := false
	for _, r := range reasons {
		if strings.HasPrefix(r, "restoring: ") && strings.Contains(r, "/300 files") {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("/readyz never said how far the restore was: %q", reasons)
	}
	if testutil.ToFloat64(c.m.RestoreFilesDone) != 300 || testutil.ToFloat64(c.m.RestoreBytes) != 300000 ||
		testutil.ToFloat64(c.m.RestoreBytesDone) != 300000 {
		t.Fatalf("gauges: files done %v, bytes %v, bytes done %v", testutil.ToFloat64(c.m.RestoreFilesDone),
			testutil.ToFloat64(c.m.RestoreBytes), testutil.ToFloat64(c.m.RestoreBytesDone))
	}
}

// The restore runs RestoreTransfers downloads at once; once ready, Transfers.
func TestRestoreUsesItsOwnParallelism(t *testing.T) {
	b := newBucket(t)
	for i := range 64 {
		b.put(fmt.Sprintf("%s/f%02d", testPrefix, i), "x")
	}
	var inFlight, peak atomic.Int64
	c := b.replica("b", withOptions(func(o *Options) { o.Transfers, o.RestoreTransfers = 2, 16 }),
		withTransport(func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if isMedia(r) {
					n := inFlight.Add(1)
					defer inFlight.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					time.Sleep(20 * time.Millisecond)
				}
				return next.RoundTrip(r)
			})
		}))
	c.settle()
	if p := peak.Load(); p < 8 || p > 16 {
		t.Fatalf("peak parallel downloads during the restore = %d, want up to 16 (well above --transfers 2)", p)
	}
	peak.Store(0)
	for i := range 20 {
		b.put(fmt.Sprintf("%s/later%02d", testPrefix, i), "y")
	}
	c.settle()
	if p := peak.Load(); p > 2 {
		t.Fatalf("peak parallel downloads once ready = %d, want at most --transfers 2", p)
	}
}

// A fresh pod's restore starts downloading while the listing's pages are still arriving.
func TestFreshPodDownloadsWhileListing(t *testing.T) {
	b := newBucket(t)
	for i := range 1100 { // two pages of 1,000
		b.put(fmt.Sprintf("%s/uploads/f%04d.jpg", testPrefix, i), "x")
	}
	var mu sync.Mutex
	var events []string
	c := b.replica("b", withTransport(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			isList := r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/o")
			if isList {
				mu.Lock()
				events = append(events, "list")
				mu.Unlock()
				time.Sleep(300 * time.Millisecond) // a slow page, as on GCS
			}
			if isMedia(r) {
				mu.Lock()
				events = append(events, "get")
				mu.Unlock()
			}
			return next.RoundTrip(r)
		})
	}))
	c.settle()
	if n := len(c.files()); n != 1100 || !c.s.Ready() {
		t.Fatalf("restored %d files, ready %v", n, c.s.Ready())
	}
	mu.Lock()
	defer mu.Unlock()
	lists, getsBeforeSecondPage := 0, 0
	for _, e := range events {
		if e == "list" {
			lists++
		} else if lists == 1 {
			getsBeforeSecondPage++
		}
	}
	if getsBeforeSecondPage == 0 {
		t.Fatalf("no download started before the second page was asked for (%d list requests)", lists)
	}
}

// An idle replica (nothing changes, so no pass runs) still shows that it is in sync: a poll that finds
// nothing new while nothing fails moves filesync_last_success_timestamp_seconds.
func TestIdlePollsMoveLastSuccess(t *testing.T) {
	b := newBucket(t)
	a := b.replica("a")
	a.write("f", "x")
	a.settle()
	a.m.LastSuccess.Set(0)
	a.run()
	eventually.True(t, 5*time.Second, "the loop's first pass", func() bool { return testutil.ToFloat64(a.m.LastSuccess) > 0 })
	before := histogramCount(t, a)
	a.m.LastSuccess.Set(0)
	eventually.True(t, 5*time.Second, "last success to move while idle", func() bool {
		return testutil.ToFloat64(a.m.LastSuccess) > 0
	})
	if after := histogramCount(t, a); after != before {
		t.Fatalf("passes ran while idle: %d -> %d", before, after)
	}
}

// histogramCount is how many passes the replica has run (observations of the pass duration).
func histogramCount(t *testing.T, r *replica) uint64 {
	t.Helper()
	var m dto.Metric
	if err := r.m.PassDuration.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
