package syncer

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// isWrite reports whether the request writes or deletes an object (an upload or a delete).
func isWrite(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/upload/") ||
		r.Method == http.MethodDelete
}

// refuse answers the writes (uploads and deletes) for which when says so with status and message, as GCS
// would, before the server sees them; it records when each write was sent.
type refuse struct {
	status  int
	message string
	when    func(n int64) bool // n: the number of this write, from 1
	writes  atomic.Int64
	mu      sync.Mutex
	at      []time.Time // when each write was sent
}

// sent returns when each write was sent.
func (f *refuse) sent() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

func (f *refuse) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !isWrite(r) {
			return next.RoundTrip(r)
		}
		n := f.writes.Add(1)
		f.mu.Lock()
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
		if !f.when(n) {
			return next.RoundTrip(r)
		}
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		body := `{"error":{"code":` + strconv.Itoa(f.status) + `,"message":"` + f.message + `"}}`
		return &http.Response{StatusCode: f.status, Status: http.StatusText(f.status),
			Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(body))}, nil
	})
}

// TestRateLimitedWriteWaitsASecondAndCoalesces: GCS allows about one write per second to an object name
// and answers 429 beyond it. The path then waits at least a second (no retry within the pass, none by the
// SDK), readiness is not held, and the changes made meanwhile go up as one write of the latest version.
func TestRateLimitedWriteWaitsASecondAndCoalesces(t *testing.T) {
	b := newBucket(t)
	f := &refuse{status: http.StatusTooManyRequests,
		message: "The object exceeded the rate limit for object mutation operations (create, update, and delete).",
		when:    func(n int64) bool { return n == 1 }}
	a := b.replica("a", withTransport(f.wrap))
	a.write("hot.json", "v1")
	res := a.pass()
	if n := f.writes.Load(); n != 1 {
		t.Fatalf("a 429 cost %d write requests in the pass, want 1 (no retry before a second)", n)
	}
	fl, ok := a.s.holds.failures["hot.json"]
	if !ok {
		t.Fatalf("hot.json does not back off:\n%s", res.Plan)
	}
	if wait := fl.next.Sub(f.sent()[0]); wait < time.Second {
		t.Fatalf("after a 429 the path waits %v, want at least 1s", wait)
	}
	if !a.s.Ready() || a.s.holds.failing().n != 0 {
		t.Fatal("a rate-limited path holds readiness")
	}
	a.write("hot.json", "v2")
	a.write("hot.json", "version 3")
	a.settle()
	if got := b.objects()["hot.json"]; got != "version 3" {
		t.Fatalf("bucket holds %q, want the latest version", got)
	}
	if n := f.writes.Load(); n != 2 {
		t.Fatalf("%d write requests, want 2: the refused one and one for the versions written meanwhile", n)
	}
	if at := f.sent(); at[1].Sub(at[0]) < time.Second {
		gap := at[1].Sub(at[0])
		t.Fatalf("the next write followed the 429 after %v, want at least 1s", gap)
	}
}

// TestRetainedObjectIsAPermanentFailure: an object under a retention policy or a hold refuses overwrite and
// delete (403). That is one ERROR line and one count per path and version, not a retry every pass, and not
// a reason to be unready; a new local version is tried once more, and once the hold is gone it goes up.
func TestRetainedObjectIsAPermanentFailure(t *testing.T) {
	b := newBucket(t)
	var held atomic.Bool
	f := &refuse{status: http.StatusForbidden,
		message: "Object 'media/wp-content/locked.jpg' is under active Event-Based hold and cannot be deleted, overwritten or archived until hold is removed.",
		when:    func(int64) bool { return held.Load() }}
	a := b.replica("a", withTransport(f.wrap))
	for _, p := range []string{"locked.jpg", "gone.jpg", "k1.jpg", "k2.jpg", "k3.jpg", "k4.jpg"} {
		a.write(p, "v1 "+p)
	}
	a.settle()
	held.Store(true)
	retained := func() float64 { return testutil.ToFloat64(a.m.PermanentFailures.WithLabelValues("retention")) }

	a.write("locked.jpg", "v2")
	a.remove("gone.jpg")
	before := f.writes.Load()
	for range 3 {
		a.pass()
	}
	if n := f.writes.Load() - before; n != 2 {
		t.Fatalf("%d write requests over 3 passes, want 2: the refused upload and delete, once each", n)
	}
	if got := retained(); got != 2 {
		t.Fatalf("permanent_failures{retention} = %v, want 2", got)
	}
	if !a.s.Ready() || a.s.holds.failing().n != 0 {
		t.Fatalf("refused writes hold readiness: %+v", a.s.holds.failing())
	}
	if res := a.pass(); !res.Clean() {
		t.Fatalf("a pass with refused writes is not clean: %+v", res)
	}

	a.write("locked.jpg", "version 3") // a new local version: tried again, once
	a.settle()
	if n := f.writes.Load() - before; n != 3 || retained() != 3 {
		t.Fatalf("a new version: %d write requests in all, %v counted; want 3 and 3", n, retained())
	}

	held.Store(false)
	a.write("locked.jpg", "version four")
	a.settle()
	if got := b.objects()["locked.jpg"]; got != "version four" {
		t.Fatalf("after the hold: bucket holds %q", got)
	}
	if _, ok := b.objects()["gone.jpg"]; !ok {
		t.Fatal("the refused delete was retried without a change (the object went)")
	}
}
