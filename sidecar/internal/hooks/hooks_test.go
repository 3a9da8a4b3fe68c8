package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/metrics"
)

// receiver is a change hook receiver: an http.Handler recording the batches it took. It is served either
// by httptest.NewServer (real sockets and time) or in process through transport (inside a synctest bubble,
// where a socket's goroutines would keep the fake clock from moving).
type receiver struct {
	mu       sync.Mutex
	down     bool // the connection is refused (the receiver's pod is gone)
	status   int  // answered instead of taking the batch (0: take it, 200)
	hang     chan struct{}
	requests int
	batches  []Batch
	bodies   []string
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hang := r.hang
	r.mu.Unlock()
	if hang != nil {
		<-hang
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	var b Batch
	if err := json.Unmarshal(buf.Bytes(), &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.batches = append(r.batches, b)
	r.bodies = append(r.bodies, buf.String())
	r.headers = append(r.headers, req.Header.Clone())
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// RoundTrip serves req in process, as the receiver's server would, or refuses it while down.
func (r *receiver) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.requests++
	down := r.down
	r.mu.Unlock()
	if down {
		return nil, errors.New("dial tcp 10.0.0.9:80: connect: connection refused")
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (r *receiver) batch(i int) Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches[i]
}

// events returns every event taken, in delivery order.
func (r *receiver) events() []BodyEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []BodyEvent
	for _, b := range r.batches {
		out = append(out, b.Events...)
	}
	return out
}

func (r *receiver) count() (requests, batches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, len(r.batches)
}

// logBuffer collects log lines from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// newSender starts a Sender to rt (a receiver, in process), with opt's settings.
func newSender(t *testing.T, rt http.RoundTripper, opt Options) (*Sender, *metrics.Metrics, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	m := metrics.New()
	if opt.URLs == nil {
		opt.URLs = []string{"http://purger.cdn.svc/hook?token=s3cret"}
	}
	opt.Replica, opt.Bucket, opt.Prefix = "wp-0", "media", "wp-content"
	opt.Client = &http.Client{Transport: rt, Timeout: DefaultTimeout, CheckRedirect: noRedirect}
	opt.Metrics = m
	opt.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, m, logs
}

func up(path string, gen int64) Event {
	return Event{Path: path, Op: OpUpload, Generation: gen, Time: time.Now()}
}

func del(path string, gen int64) Event {
	return Event{Path: path, Op: OpDelete, Generation: gen, Time: time.Now()}
}

// TestBatchesGatherOverTheWindow: changes arriving within the window go in one POST, sent a window after
// the first; a burst of more than MaxBatch goes at once, in batches of MaxBatch.
func TestBatchesGatherOverTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{}
		s, m, _ := newSender(t, r, Options{})
		start := time.Now()
		s.Notify(up("uploads/a.jpg", 1))
		time.Sleep(200 * time.Millisecond)
		s.Notify(up("uploads/b.jpg", 2))
		time.Sleep(500 * time.Millisecond)
		s.Notify(del("uploads/c.jpg", 3))
		synctest.Wait()
		if _, n := r.count(); n != 0 {
			t.Fatalf("%d batches sent before the window ended", n)
		}
		time.Sleep(300 * time.Millisecond) // the window ends 1 s after the first change
		synctest.Wait()
		if _, n := r.count(); n != 1 || time.Since(start) != DefaultWindow {
			t.Fatalf("%d batches after %v, want 1 after %v", n, time.Since(start), DefaultWindow)
		}
		b := r.batch(0)
		if b.Replica != "wp-0" || b.Bucket != "media" || b.Prefix != "wp-content" || len(b.Events) != 3 {
			t.Fatalf("batch %+v", b)
		}
		if e := b.Events[2]; e.Path != "uploads/c.jpg" || e.Object != "wp-content/uploads/c.jpg" || e.Op != OpDelete || e.Generation != 3 {
			t.Fatalf("event %+v", e)
		}

		for i := range 2*DefaultMaxBatch + 100 {
			s.Notify(up(fmt.Sprintf("burst/%04d.jpg", i), int64(10+i)))
		}
		synctest.Wait()
		if _, n := r.count(); n != 3 {
			t.Fatalf("a burst of 1100 sent %d batches at once, want the two full ones", n-1)
		}
		time.Sleep(DefaultWindow)
		synctest.Wait()
		if _, n := r.count(); n != 4 || len(r.batch(3).Events) != 100 {
			t.Fatalf("%d batches; the last holds %d events", n, len(r.batch(n-1).Events))
		}
		if got := testutil.ToFloat64(m.HookDelivered); got != 1103 {
			t.Fatalf("delivered %v, want 1103", got)
		}
		if got := testutil.ToFloat64(m.HookPending); got != 0 {
			t.Fatalf("pending %v, want 0", got)
		}
		if s.Close(context.Background()) != 0 {
			t.Fatal("Close left events")
		}
	})
}

// TestReceiverDownForAMinuteLosesNothing: while the receiver refuses connections for a minute, changes keep
// coming (two per second over 50 paths, each path changing several times); once it is back every path's
// last change is delivered, each path's changes arrive in the order they were made, and the attempts in
// between back off (capped, not one per change).
func TestReceiverDownForAMinuteLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{down: true}
		s, m, logs := newSender(t, r, Options{})
		last := map[string]int64{}
		gen := int64(0)
		for range 120 { // a minute
			gen++
			p := fmt.Sprintf("uploads/%02d.jpg", gen%50)
			if gen%7 == 0 {
				s.Notify(del(p, gen))
			} else {
				s.Notify(up(p, gen))
			}
			last[p] = gen
			time.Sleep(500 * time.Millisecond)
		}
		synctest.Wait()
		attempts, _ := r.count()
		// 0.5 s doubling to 30 s, jittered: about 8 attempts in a minute; one per change would be 120.
		if attempts < 4 || attempts > 14 {
			t.Fatalf("%d attempts while down for a minute, want about 8 (capped backoff)", attempts)
		}
		// The first batch (the changes of the first second) in flight, then one event per path.
		if pending := testutil.ToFloat64(m.HookPending); pending < 52 || pending > 53 {
			t.Fatalf("pending %v, want 50 paths waiting plus the 2 or 3 events in flight", pending)
		}
		r.set(func(r *receiver) { r.down = false })
		time.Sleep(31 * time.Second) // the next attempt is at most the cap away
		synctest.Wait()

		seen := map[string]int64{}
		for _, e := range r.events() {
			if e.Generation <= seen[e.Path] {
				t.Fatalf("%s: generation %d delivered after %d", e.Path, e.Generation, seen[e.Path])
			}
			seen[e.Path] = e.Generation
		}
		for p, g := range last {
			if seen[p] != g {
				t.Fatalf("%s: last delivered generation %d, want %d", p, seen[p], g)
			}
		}
		for _, reason := range []string{DropOverflow, DropRejected, DropShutdown} {
			if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(reason)); d != 0 {
				t.Fatalf("dropped{%s} = %v", reason, d)
			}
		}
		if logs.lines("change hook receiver failed; retrying") != 1 || logs.lines("change hook receiver took the batch") != 1 {
			t.Fatalf("want one WARN when it failed and one INFO when it took the batch:\n%s", logs.b.String())
		}
		if strings.Contains(logs.b.String(), "s3cret") {
			t.Fatalf("the URL's query (a token) was logged:\n%s", logs.b.String())
		}
		if got := testutil.ToFloat64(m.HookRequests.WithLabelValues(ResultError)); int(got) != attempts {
			t.Fatalf("requests{error} = %v, want %d", got, attempts)
		}
		s.Close(context.Background())
	})
}

// TestLaterChangeWaitsForTheBatchInFlight: a path's change that arrives while its earlier change is being
// retried is delivered after it, never before, and never both in one batch out of order.
func TestLaterChangeWaitsForTheBatchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{status: http.StatusServiceUnavailable}
		s, _, _ := newSender(t, r, Options{})
		s.Notify(up("a.jpg", 1))
		time.Sleep(DefaultWindow + 100*time.Millisecond) // batch [a.jpg@1] is in flight and failing
		synctest.Wait()
		s.Notify(del("a.jpg", 1))
		s.Notify(up("b.jpg", 2))
		s.Notify(up("a.jpg", 3)) // replaces the delete: only the latest change of a path waits
		r.set(func(r *receiver) { r.status = 0 })
		time.Sleep(time.Minute)
		synctest.Wait()
		var got []string
		for _, e := range r.events() {
			got = append(got, fmt.Sprintf("%s %s@%d", e.Op, e.Path, e.Generation))
		}
		if want := "upload a.jpg@1,upload b.jpg@2,upload a.jpg@3"; strings.Join(got, ",") != want {
			t.Fatalf("delivered %q, want %q", strings.Join(got, ","), want)
		}
		s.Close(context.Background())
	})
}

// TestQueueIsBounded: Notify never blocks, even with the receiver hanging; one path changing without end
// holds one event; more distinct paths than MaxPending drop the least recently changed, counted and logged
// once.
func TestQueueIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{hang: make(chan struct{})}
		s, m, logs := newSender(t, r, Options{MaxPending: 100, MaxBatch: 10})
		for i := range 10 {
			s.Notify(up(fmt.Sprintf("first/%d", i), int64(i)))
		}
		synctest.Wait() // ten events: a full batch, in flight and hanging
		for i := range 100000 {
			s.Notify(up("hot.jpg", int64(100+i)))
		}
		if p := testutil.ToFloat64(m.HookPending); p != 11 {
			t.Fatalf("pending %v after 100,000 changes of one path, want 11 (10 in flight, 1 waiting)", p)
		}
		for i := range 1000 {
			s.Notify(up(fmt.Sprintf("many/%04d", i), int64(200000+i)))
		}
		if p := testutil.ToFloat64(m.HookPending); p != 110 {
			t.Fatalf("pending %v, want the bound: 100 waiting + 10 in flight", p)
		}
		// hot.jpg and many/0000..0899 went; many/0900..0999 wait.
		if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(DropOverflow)); d != 901 {
			t.Fatalf("dropped{overflow} = %v, want 901", d)
		}
		if n := logs.lines("change hook queue full"); n != 1 {
			t.Fatalf("%d log lines for the overflow, want 1", n)
		}
		close(r.hang)
		time.Sleep(time.Second)
		synctest.Wait()
		ev := r.events()
		if len(ev) != 110 || ev[10].Path != "many/0900" || ev[109].Path != "many/0999" {
			t.Fatalf("delivered %d events: %v ... %v", len(ev), ev[10], ev[len(ev)-1])
		}
		s.Close(context.Background())
	})
}

// TestRefusedBatchIsDroppedNotRetried: a 4xx answer (but 408 and 429) drops the batch, counted and logged,
// and the next batch goes as usual; 429 and 5xx are retried. A redirect is not followed.
func TestRefusedBatchIsDroppedNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retried bool
	}{{400, false}, {404, false}, {302, false}, {408, true}, {429, true}, {500, true}, {503, true}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &receiver{status: tc.status}
				s, m, logs := newSender(t, r, Options{})
				s.Notify(up("a.jpg", 1))
				time.Sleep(DefaultWindow + 10*time.Second)
				synctest.Wait()
				attempts, _ := r.count()
				if retried := attempts > 1; retried != tc.retried {
					t.Fatalf("HTTP %d: %d attempts", tc.status, attempts)
				}
				r.set(func(r *receiver) { r.status = 0 })
				s.Notify(up("b.jpg", 2))
				time.Sleep(time.Minute)
				synctest.Wait()
				var paths []string
				for _, e := range r.events() {
					paths = append(paths, e.Path)
				}
				want, dropped := "a.jpg,b.jpg", 0.0
				if !tc.retried {
					want, dropped = "b.jpg", 1
					if logs.lines("change hook receiver refused the batch; dropped") != 1 {
						t.Fatalf("no log line for the dropped batch:\n%s", logs.b.String())
					}
				}
				if strings.Join(paths, ",") != want {
					t.Fatalf("delivered %v, want %s", paths, want)
				}
				if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(DropRejected)); d != dropped {
					t.Fatalf("dropped{rejected} = %v, want %v", d, dropped)
				}
				s.Close(context.Background())
			})
		})
	}
}

// TestCloseSendsAtOnce: on SIGTERM what waits is sent without waiting for the window.
func TestCloseSendsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{}
		s, m, logs := newSender(t, r, Options{Window: time.Hour})
		s.Notify(up("a.jpg", 1))
		s.Notify(del("b.jpg", 2))
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if left := s.Close(ctx); left != 0 {
			t.Fatalf("Close left %d events", left)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v with the receiver up", d)
		}
		if ev := r.events(); len(ev) != 2 {
			t.Fatalf("delivered %v", ev)
		}
		s.Notify(up("late.jpg", 3)) // after Close: counted and logged once, not sent
		s.Notify(up("later.jpg", 4))
		if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(DropShutdown)); d != 2 {
			t.Fatalf("dropped{shutdown} = %v, want the 2 late events", d)
		}
		if n := logs.lines("a change came after the change hooks were closed"); n != 1 {
			t.Fatalf("%d log lines for late events, want 1", n)
		}
	})
}

// TestCloseGivesUpAtTheDeadline: with the receiver down, Close retries until its deadline, then counts
// what is left as dropped (reason shutdown), logs it once and returns.
func TestCloseGivesUpAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{down: true}
		s, m, logs := newSender(t, r, Options{MaxBatch: 2})
		for i := range 5 {
			s.Notify(up(fmt.Sprintf("f%d", i), int64(i)))
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		left := s.Close(ctx)
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("Close returned after %v, want the 3 s deadline", d)
		}
		if attempts, _ := r.count(); left != 5 || attempts < 2 {
			t.Fatalf("left %d (want 5) after %d attempts", left, attempts)
		}
		if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(DropShutdown)); d != 5 {
			t.Fatalf("dropped{shutdown} = %v", d)
		}
		if p := testutil.ToFloat64(m.HookPending); p != 0 {
			t.Fatalf("pending %v after Close", p)
		}
		if n := logs.lines("change hooks not delivered before the shutdown timeout"); n != 1 {
			t.Fatalf("%d log lines, want 1:\n%s", n, logs.b.String())
		}
	})
}

// TestEveryURLGetsEveryEvent: each --on-change URL has its own queue; one being down does not hold back
// the other.
func TestEveryURLGetsEveryEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{}
		down := &receiver{down: true}
		route := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == "b.example" {
				return down.RoundTrip(req)
			}
			return r.RoundTrip(req)
		})
		s, _, _ := newSender(t, route, Options{URLs: []string{"http://a.example/hook", "https://b.example/hook"}})
		s.Notify(up("a.jpg", 1))
		time.Sleep(2 * DefaultWindow)
		synctest.Wait()
		if len(r.events()) != 1 {
			t.Fatalf("the up receiver got %v", r.events())
		}
		if n, _ := down.count(); n == 0 {
			t.Fatal("the down receiver was never tried")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if left := s.Close(ctx); left != 1 {
			t.Fatalf("Close left %d, want the down URL's 1", left)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestOverTheWire: a real HTTP server gets the documented JSON (docs/design.md, "Change hooks") with
// Content-Type application/json; a redirect is not followed (the batch is refused, not re-sent elsewhere
// as a GET).
func TestOverTheWire(t *testing.T) {
	r := &receiver{}
	srv := httptest.NewServer(r)
	defer srv.Close()
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redirect.Close()
	m := metrics.New()
	s, err := New(Options{URLs: []string{srv.URL + "/purge", redirect.URL}, Replica: "wp-1", Bucket: "media",
		Window: 10 * time.Millisecond, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 5, 30, 0, 123000000, time.FixedZone("CET", 3600))
	s.Notify(Event{Path: "uploads/2026/12/a.jpg", Op: OpUpload, Generation: 1765000000123456, Time: at})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Close(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != 1 {
		t.Fatalf("the receiver got %d bodies (the redirect must not be followed)", len(r.bodies))
	}
	want := `{"replica":"wp-1","bucket":"media","prefix":"","events":[{"path":"uploads/2026/12/a.jpg",` +
		`"object":"uploads/2026/12/a.jpg","op":"upload","generation":1765000000123456,"time":"2026-12-06T04:30:00.123Z"}]}`
	if r.bodies[0] != want {
		t.Fatalf("body\n%s\nwant\n%s", r.bodies[0], want)
	}
	if ct := r.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if d := testutil.ToFloat64(m.HookDropped.WithLabelValues(DropRejected)); d != 1 {
		t.Fatalf("the redirected batch: dropped{rejected} = %v, want 1", d)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://purger.cdn.svc.cluster.local:8080/hook", true},
		{"https://example.com/purge?token=x", true},
		{"http://[::1]:9000/", true},
		{"ftp://example.com/x", false},
		{"example.com/hook", false},
		{"http://", false},
		{"http:///path", false},
		{"https://:8080/x", false},
		{"http://exa mple.com/", false},
		{"", false},
	} {
		_, err := CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}
