package readthrough_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/gcsstore/gcstest"
	"github.com/filesync/filesync/sidecar/internal/gsurl"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/readthrough"
	"github.com/filesync/filesync/sidecar/internal/state"
	"github.com/filesync/filesync/sidecar/internal/syncer"
)

// replica is a sidecar's syncer and read-through over the real storage client and an in-process
// fake-gcs-server, as app.Run wires them.
type replica struct {
	dir string
	s   *syncer.Syncer
	m   *metrics.Metrics
	h   *readthrough.Handler
}

func newReplica(t *testing.T, srv *fakestorage.Server, peers *readthrough.Peers, opts ...func(*readthrough.Options)) *replica {
	t.Helper()
	root := t.TempDir()
	d, err := localfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := gcsstore.NewClient(context.Background(), option.WithHTTPClient(srv.HTTPClient()),
		option.WithEndpoint("http://fake.gcs/storage/v1/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := metrics.New()
	store := gcsstore.New(c, gsurl.Location{Bucket: "media", Prefix: "wp-content"}, func(op string) { m.GCSRequests.WithLabelValues(op).Inc() })
	base, _, _ := state.Open("", "gs://media/wp-content")
	f, _ := filter.New(nil)
	log := slog.New(slog.DiscardHandler)
	s := syncer.New(d, store, base, f, m, log, syncer.Options{PollInterval: time.Second, RescanInterval: time.Minute, Transfers: 4, Pod: "r"})
	if _, err := s.Pass(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	inc, _ := filter.New([]string{"uploads/**"})
	opt := readthrough.Options{Include: inc, Exclude: f, Peers: peers, Log: log}
	for _, o := range opts {
		o(&opt)
	}
	h := readthrough.New(d, s, opt)
	return &replica{dir: root, s: s, m: m, h: h}
}

func newServer(t *testing.T) *fakestorage.Server { return gcstest.NewServer(t, "media") }

func put(t *testing.T, srv *fakestorage.Server, rel, content string, meta map[string]string) {
	t.Helper()
	w := srv.Client().Bucket("media").Object("wp-content/" + rel).NewWriter(context.Background())
	w.Metadata = meta
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func (r *replica) gcs(op string) float64 {
	return testutil.ToFloat64(r.m.GCSRequests.WithLabelValues(op))
}

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// TestBucketNewerThanTheListing: an object uploaded by another replica after this one's last listing is
// served at once: looked up in the bucket itself (one get, one read), downloaded into the directory with
// the object's mtime (goog-reserved-file-mtime), so its Last-Modified and ETag are the writer's.
func TestBucketNewerThanTheListing(t *testing.T) {
	srv := newServer(t)
	r := newReplica(t, srv, nil)
	put(t, srv, "uploads/2026/12/new-1024x768.jpg", "jpeg bytes", map[string]string{gcsstore.MtimeKey: "1764633600"})
	gets, reads := r.gcs("get"), r.gcs("read")
	rec := get(r.h, "/uploads/2026/12/new-1024x768.jpg")
	if rec.Code != http.StatusOK || rec.Body.String() != "jpeg bytes" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	want := time.Unix(1764633600, 0)
	if lm := rec.Header().Get("Last-Modified"); lm != want.UTC().Format(http.TimeFormat) {
		t.Errorf("Last-Modified %q", lm)
	}
	if et := rec.Header().Get("ETag"); et != readthrough.ETag(10, want) {
		t.Errorf("ETag %q, want %q", et, readthrough.ETag(10, want))
	}
	fi, err := os.Stat(filepath.Join(r.dir, "uploads", "2026", "12", "new-1024x768.jpg"))
	if err != nil || !fi.ModTime().Equal(want) {
		t.Fatalf("local file: %v, %v", fi, err)
	}
	if g, rd := r.gcs("get")-gets, r.gcs("read")-reads; g != 1 || rd != 1 {
		t.Errorf("a bucket hit cost %v gets and %v reads, want 1 and 1", g, rd)
	}
	if res, err := r.s.Pass(context.Background(), true); err != nil || res.Failed > 0 || len(res.Plan.Actions) != 1 {
		t.Errorf("the pass after the read-through: %v\n%s", err, res.Plan) // one action: record the base
	}
	if got := r.gcs("insert"); got != 0 {
		t.Errorf("the fetched file was uploaded back (%v inserts)", got)
	}
}

// TestCrawlerBoundOnGCSRequests: 10,000 requests for distinct paths that exist nowhere, through the
// real client, cost at most Bound(elapsed) GCS requests (20 + 10 per second), then one for a repeat.
func TestCrawlerBoundOnGCSRequests(t *testing.T) {
	srv := newServer(t)
	r := newReplica(t, srv, nil)
	before := r.gcs("get") + r.gcs("read") + r.gcs("list")
	start := time.Now()
	for i := range 10000 {
		if rec := get(r.h, fmt.Sprintf("/uploads/%d/%d/missing-%d.jpg", 2000+i%26, i%12, i)); rec.Code != http.StatusNotFound {
			t.Fatalf("%d", rec.Code)
		}
	}
	elapsed := time.Since(start)
	n := r.gcs("get") + r.gcs("read") + r.gcs("list") - before
	bound := r.h.Bound(elapsed)
	t.Logf("MEASURED crawler: 10000 missing paths in %v cost %v GCS requests (bound %d = %d + %v/s x %v)",
		elapsed.Round(time.Millisecond), n, bound, readthrough.DefaultLookupBurst, readthrough.DefaultLookupRate, elapsed.Round(time.Millisecond))
	if int(n) > bound {
		t.Fatalf("10,000 missing paths cost %v GCS requests, bound %d", n, bound)
	}
	if n < readthrough.DefaultLookupBurst {
		t.Fatalf("only %v lookups: the budget is not even spent (test proves nothing)", n)
	}
}

// TestUnservableObjectsCostOneLookup: 200 requests each for objects that exist but cannot be served (a
// gzip-encoded one, refused after its metadata get; one under a local file, a file/folder clash, refused
// after its read) cost one lookup each and one WARN line each, through the real client, while the clock
// stands still; and no more than Bound(0) GCS requests of every kind.
func TestUnservableObjectsCostOneLookup(t *testing.T) {
	srv := newServer(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	r := newReplica(t, srv, nil, func(o *readthrough.Options) {
		o.Now = func() time.Time { return now }
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, "<svg/>")
	_ = zw.Close()
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "wp-content/uploads/gz.svg",
		ContentEncoding: "gzip"}, Content: gz.Bytes()})
	if err := os.MkdirAll(filepath.Join(r.dir, "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "uploads", "f.jpg"), []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, srv, "uploads/f.jpg/clash.jpg", "under a file", nil)
	requests := func() float64 { return r.gcs("get") + r.gcs("read") + r.gcs("list") }
	for _, tc := range []struct {
		path     string
		requests float64 // of one lookup
	}{{"/uploads/gz.svg", 1}, {"/uploads/f.jpg/clash.jpg", 3}} { // get; get, folder listing, read
		logs.Reset()
		before := requests()
		for range 200 {
			if rec := get(r.h, tc.path); rec.Code != http.StatusBadGateway {
				t.Fatalf("GET %s: %d %q", tc.path, rec.Code, rec.Body.String())
			}
		}
		n, warns := requests()-before, strings.Count(logs.String(), "level=WARN")
		t.Logf("MEASURED unservable %s: 200 requests cost %v GCS requests and %d WARN lines", tc.path, n, warns)
		if n != tc.requests || warns != 1 {
			t.Errorf("200 requests for %s: %v GCS requests and %d WARN lines, want %v and 1\n%s", tc.path, n, warns, tc.requests, logs.String())
		}
	}
	if got := r.gcs("get"); int(got) > r.h.Bound(0) {
		t.Errorf("%v gets, bound %d", got, r.h.Bound(0))
	}
}

// TestReadThroughLatency measures the time of a local hit, a bucket hit and a peer hit (in process, on
// loopback: what the read-through adds, not the network's or GCS's latency).
func TestReadThroughLatency(t *testing.T) {
	srv := newServer(t)
	writer := newReplica(t, srv, nil)
	peerSrv := httptest.NewServer(writer.h.PeerHandler("k"))
	t.Cleanup(peerSrv.Close)
	peers := &readthrough.Peers{Secret: "k", Client: &http.Client{},
		Resolve: func(context.Context) ([]string, error) {
			return []string{strings.TrimPrefix(peerSrv.URL, "http://")}, nil
		}}
	r := newReplica(t, srv, peers)
	const n = 50
	content := bytes.Repeat([]byte("x"), 100<<10)
	median := func(f func(i int)) time.Duration {
		var d []time.Duration
		for i := range n {
			start := time.Now()
			f(i)
			d = append(d, time.Since(start))
		}
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		return d[n/2]
	}
	check := func(rec *httptest.ResponseRecorder) {
		if rec.Code != http.StatusOK || rec.Body.Len() != len(content) {
			t.Fatalf("%d, %d bytes", rec.Code, rec.Body.Len())
		}
	}
	for i := range n {
		put(t, srv, fmt.Sprintf("uploads/b%d.jpg", i), string(content), nil)
		p := filepath.Join(writer.dir, "uploads", fmt.Sprintf("p%d.jpg", i))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bucket := median(func(i int) { check(get(r.h, fmt.Sprintf("/uploads/b%d.jpg", i))) })
	local := median(func(i int) { check(get(r.h, fmt.Sprintf("/uploads/b%d.jpg", i))) })
	peer := median(func(i int) { check(get(r.h, fmt.Sprintf("/uploads/p%d.jpg", i))) })
	t.Logf("MEASURED read-through, 100 KiB, median of %d, in process: local %v, bucket hit %v (+%v), peer hit %v (+%v)",
		n, local, bucket, bucket-local, peer, peer-local)
	if bucket < local || peer < local {
		t.Logf("(a miss path faster than a local hit: noise)")
	}
}
