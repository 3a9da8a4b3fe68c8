package readthrough

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// fakeBucket is a Fetcher over a map: a fetch writes the object into the directory, as syncer.Fetch does.
type fakeBucket struct {
	dir     *localfs.Dir
	mu      sync.Mutex
	objects map[string]string
	failing map[string]error // objects that exist but cannot be fetched
	calls   atomic.Int64     // Fetch calls that reached the bucket
	gate    chan struct{}    // if set, every fetch waits for it
}

// Fetch behaves as syncer.Fetch: a file already there (a fetch that finished meanwhile) is returned as it
// is, without the bucket.
func (b *fakeBucket) Fetch(ctx context.Context, rel string) (snapshot.Stamp, error) {
	if st, err := b.dir.Stat(rel); err == nil {
		return st, nil
	}
	b.calls.Add(1)
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return snapshot.Stamp{}, ctx.Err()
		}
	}
	b.mu.Lock()
	v, ok := b.objects[rel]
	ferr := b.failing[rel]
	b.mu.Unlock()
	if ferr != nil {
		return snapshot.Stamp{}, fmt.Errorf("fetch %s: %w", rel, ferr)
	}
	if !ok {
		return snapshot.Stamp{}, fmt.Errorf("fetch %s: %w", rel, gcsstore.ErrNotFound)
	}
	return b.dir.WriteAtomic(rel, strings.NewReader(v), int64(len(v)), localfs.CRC32C([]byte(v)), time.Unix(1_700_000_000, 0),
		localfs.Expect{Absent: true})
}

// busyDir is a directory whose files all count as open for writing.
type busyDir struct{ *localfs.Dir }

func (busyDir) InUseFile(*os.File) bool { return true }

type site struct {
	t      *testing.T
	root   string
	dir    *localfs.Dir
	bucket *fakeBucket
	h      *Handler
	counts map[string]int
	mu     sync.Mutex
}

func globs(t *testing.T, g ...string) *filter.Filter {
	t.Helper()
	f, err := filter.New(g)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newSite is one replica: a directory, a fake bucket, the read-through with include uploads/** and
// exclude uploads/private/**.
func newSite(t *testing.T, opt Options) *site {
	t.Helper()
	root := t.TempDir()
	d, err := localfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s := &site{t: t, root: root, dir: d, counts: map[string]int{}}
	s.bucket = &fakeBucket{dir: d, objects: map[string]string{}, failing: map[string]error{}}
	opt.Include = globs(t, "uploads/**")
	opt.Exclude = globs(t, "uploads/private/**")
	opt.Count = func(r string) { s.mu.Lock(); s.counts[r]++; s.mu.Unlock() }
	s.h = New(d, s.bucket, opt)
	return s
}

func (s *site) write(rel, content string, mtime time.Time) {
	s.t.Helper()
	p := filepath.Join(s.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) has(rel string) bool {
	_, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(rel)))
	return err == nil
}

func (s *site) get(target string, hdr ...string) *result {
	return do(s.h, http.MethodGet, target, hdr...)
}

// result is a recorded response, its body read and closed.
type result struct {
	StatusCode int
	Header     http.Header
	text       string
}

func do(h http.Handler, method, target string, hdr ...string) *result {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return &result{StatusCode: rec.Code, Header: rec.Header(), text: rec.Body.String()}
}

func body(_ *testing.T, r *result) string { return r.text }

func respBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, r *result, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("status %d, want %d (body %q)", r.StatusCode, code, r.text)
	}
}

var mtime = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// TestLocalFileIsServedAsAFileServerWould: a local file, with the Content-Type of its extension, Apache's
// ETag, Last-Modified from its mtime; If-None-Match answers 304, Range 206; HEAD has no body. The bucket
// is not asked.
func TestLocalFileIsServedAsAFileServerWould(t *testing.T) {
	s := newSite(t, Options{})
	s.write("uploads/2026/11/photo.jpg", "0123456789", mtime)
	r := s.get("/uploads/2026/11/photo.jpg")
	wantStatus(t, r, http.StatusOK)
	etag := fmt.Sprintf(`"a-%x"`, mtime.UnixMicro())
	for k, v := range map[string]string{"Content-Type": "image/jpeg", "ETag": etag, "Last-Modified": mtime.Format(http.TimeFormat),
		"Accept-Ranges": "bytes", "Content-Length": "10"} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if got := body(t, r); got != "0123456789" {
		t.Errorf("body %q", got)
	}
	wantStatus(t, s.get("/uploads/2026/11/photo.jpg", "If-None-Match", etag), http.StatusNotModified)
	r = s.get("/uploads/2026/11/photo.jpg", "Range", "bytes=2-4")
	wantStatus(t, r, http.StatusPartialContent)
	if got, cr := body(t, r), r.Header.Get("Content-Range"); got != "234" || cr != "bytes 2-4/10" {
		t.Errorf("range: body %q, Content-Range %q", got, cr)
	}
	r = do(s.h, http.MethodHead, "/uploads/2026/11/photo.jpg")
	wantStatus(t, r, http.StatusOK)
	if got := body(t, r); got != "" || r.Header.Get("Content-Length") != "10" {
		t.Errorf("HEAD: body %q, Content-Length %q", got, r.Header.Get("Content-Length"))
	}
	wantStatus(t, do(s.h, http.MethodPost, "/uploads/2026/11/photo.jpg"), http.StatusMethodNotAllowed)
	if n := s.bucket.calls.Load(); n != 0 {
		t.Errorf("the bucket was asked %d times for a local file", n)
	}
	if s.counts[ResultLocal] != 4 {
		t.Errorf("counted %v", s.counts)
	}
}

// TestMissingLocallyIsFetchedFromTheBucket: a file not in the directory but in the bucket is downloaded
// into the directory and served; the next request is local.
func TestMissingLocallyIsFetchedFromTheBucket(t *testing.T) {
	s := newSite(t, Options{})
	s.bucket.objects["uploads/new-768x512.jpg"] = "fresh bytes"
	r := s.get("/uploads/new-768x512.jpg")
	wantStatus(t, r, http.StatusOK)
	if got := body(t, r); got != "fresh bytes" {
		t.Fatalf("body %q", got)
	}
	if r.Header.Get("Content-Type") != "image/jpeg" || r.Header.Get("Last-Modified") != time.Unix(1_700_000_000, 0).UTC().Format(http.TimeFormat) {
		t.Errorf("headers %v", r.Header)
	}
	if got := r.Header.Get(SourceHeader); got != ResultBucket {
		t.Errorf("%s: %q, want bucket", SourceHeader, got)
	}
	if !s.has("uploads/new-768x512.jpg") {
		t.Error("the fetched file is not in the directory")
	}
	wantStatus(t, s.get("/uploads/new-768x512.jpg"), http.StatusOK)
	if s.counts[ResultBucket] != 1 || s.counts[ResultLocal] != 1 || s.bucket.calls.Load() != 1 {
		t.Errorf("counted %v, %d fetches", s.counts, s.bucket.calls.Load())
	}
}

// TestNowhereIs404NoStore: a path in neither the directory, the bucket nor a peer is 404 with
// Cache-Control: no-store (a CDN must not cache it), and is remembered for MissTTL.
func TestNowhereIs404NoStore(t *testing.T) {
	now := mtime
	s := newSite(t, Options{Now: func() time.Time { return now }})
	for range 3 {
		r := s.get("/uploads/nothing.jpg")
		wantStatus(t, r, http.StatusNotFound)
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
	}
	if n := s.bucket.calls.Load(); n != 1 {
		t.Errorf("a path missing 3 times in a row was looked up %d times, want 1", n)
	}
	now = now.Add(DefaultMissTTL)
	s.bucket.objects["uploads/nothing.jpg"] = "arrived"
	wantStatus(t, s.get("/uploads/nothing.jpg"), http.StatusOK)
}

// TestRefusedPaths: outside the include globs, excluded, filesync's own folder, unsafe names and
// directories are 404; PHP and server configuration are 403; none of them is looked up anywhere.
func TestRefusedPaths(t *testing.T) {
	s := newSite(t, Options{})
	for _, rel := range []string{"uploads/private/a.jpg", "plugins/x.jpg", "uploads/a.php", "uploads/b.PHP", "uploads/c.phtml",
		"uploads/d.phar", "uploads/.htaccess", "uploads/e.php7", ".filesync/tmp/x", "uploads/x.php.jpg", "uploads/x.php.",
		"uploads/x.PHP.png", "uploads/x.phtml.gif", "uploads/x.shtml", "uploads/php.ini"} {
		s.bucket.objects[rel] = "<?php echo 'pwned';"
	}
	s.write("uploads/private/a.jpg", "local but excluded", mtime)
	for target, want := range map[string]int{
		"/uploads/private/a.jpg": 404, "/plugins/x.jpg": 404, "/.filesync/tmp/x": 404, "/uploads/": 404, "/": 404,
		"/uploads/../wp-config.php": 404, "/uploads/..%2f..%2fetc/passwd": 404, "/uploads/a%5Cb.jpg": 404,
		"/uploads/a%00.jpg": 404, "/uploads//x.jpg": 404, "/uploads/./x.jpg": 404,
		"/uploads/a.php": 403, "/uploads/b.PHP": 403, "/uploads/c.phtml": 403, "/uploads/d.phar": 403,
		"/uploads/.htaccess": 403, "/uploads/e.php7": 403, "/uploads/.user.ini": 403,
		// Run as PHP by Apache with AddHandler (every extension counts), or after the trailing dot is dropped.
		"/uploads/x.php.jpg": 403, "/uploads/x.php.": 403, "/uploads/x.pHp7": 403, "/uploads/x.PHP.png": 403,
		"/uploads/x.phtml.gif": 403, "/uploads/x.shtml": 403, "/uploads/.htpasswd": 403, "/uploads/php.ini": 403,
	} {
		r := s.get(target)
		if r.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", target, r.StatusCode, want)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", target, r.Header.Get("Cache-Control"))
		}
	}
	if n := s.bucket.calls.Load(); n != 0 {
		t.Errorf("refused paths were looked up in the bucket %d times", n)
	}
	for _, rel := range []string{"uploads/a.php", "uploads/.htaccess", "uploads/x.php.jpg", "uploads/x.php."} {
		if s.has(rel) {
			t.Errorf("%s was written into the directory", rel)
		}
	}
}

// TestConcurrentRequestsShareOneFetch: many requests for one missing file at once cause one download;
// all get the bytes. A requester that goes away does not cancel the download the others wait for.
func TestConcurrentRequestsShareOneFetch(t *testing.T) {
	s := newSite(t, Options{})
	s.bucket.objects["uploads/big.jpg"] = strings.Repeat("x", 1<<16)
	s.bucket.gate = make(chan struct{})
	const n = 50
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.get("/uploads/big.jpg")
			results <- fmt.Sprintf("%d %d", r.StatusCode, len(body(t, r)))
		}()
	}
	// One requester that gives up early.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/uploads/big.jpg", nil)
		s.h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.bucket.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-gone
	close(s.bucket.gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r != fmt.Sprintf("200 %d", 1<<16) {
			t.Errorf("a waiting request got %s", r)
		}
	}
	if got := s.bucket.calls.Load(); got != 1 {
		t.Errorf("%d concurrent requests made %d fetches, want 1", n, got)
	}
}

// TestCrawlerCostsABoundedNumberOfLookups: 10,000 requests for distinct missing paths cost at most
// LookupBurst bucket lookups while the clock stands still, and LookupRate more per second after; files
// that are found do not draw on that budget.
func TestCrawlerCostsABoundedNumberOfLookups(t *testing.T) {
	now := mtime
	s := newSite(t, Options{Now: func() time.Time { return now }})
	for i := range 10000 {
		wantStatus(t, s.get(fmt.Sprintf("/uploads/crawl/%05d.jpg", i)), http.StatusNotFound)
	}
	if got := s.bucket.calls.Load(); got != DefaultLookupBurst || int(got) != s.h.Bound(0) {
		t.Fatalf("10,000 missing paths cost %d lookups, want the burst %d", got, DefaultLookupBurst)
	}
	// Found files are served whatever the budget: the budget is refilled by a found file, too.
	now = now.Add(time.Second)
	s.bucket.objects["uploads/real.jpg"] = "real"
	for i := range 100 {
		s.bucket.objects[fmt.Sprintf("uploads/real%d.jpg", i)] = "real"
		wantStatus(t, s.get(fmt.Sprintf("/uploads/real%d.jpg", i)), http.StatusOK)
	}
	for i := range 1000 {
		wantStatus(t, s.get(fmt.Sprintf("/uploads/crawl2/%05d.jpg", i)), http.StatusNotFound)
	}
	if got, bound := s.bucket.calls.Load()-100, s.h.Bound(time.Second); int(got) > bound || got <= DefaultLookupBurst {
		t.Fatalf("after 1 s, misses cost %d lookups in all, want more than %d and at most %d", got, DefaultLookupBurst, bound)
	}
}

// peerSite is a replica whose peer listener runs on a real HTTP server.
func peerSite(t *testing.T, secret string, local Local) *httptest.Server {
	t.Helper()
	h := New(local, &fakeBucket{}, Options{Include: globs(t, "uploads/**")})
	srv := httptest.NewServer(h.PeerHandler(secret))
	t.Cleanup(srv.Close)
	return srv
}

func peersOf(secret string, srvs ...*httptest.Server) *Peers {
	var addrs []string
	for _, s := range srvs {
		addrs = append(addrs, strings.TrimPrefix(s.URL, "http://"))
	}
	return &Peers{Resolve: func(context.Context) ([]string, error) { return addrs, nil }, Secret: secret,
		Client: &http.Client{}, Timeout: 2 * time.Second}
}

// TestPeerServesWhatTheBucketHasNotYet: the writer has the file, the bucket not yet (it is settling): a
// peer answers, the bytes are streamed (Range and ETag too), and nothing is written into the directory.
func TestPeerServesWhatTheBucketHasNotYet(t *testing.T) {
	writer := newSite(t, Options{})
	writer.write("uploads/just-now-300x200.jpg", "written on the writer", mtime)
	empty := newSite(t, Options{})
	empty.write("uploads/other.jpg", "x", mtime) // a peer without the file answers 404: not the winner
	srvW := peerSite(t, "s3cret", writer.dir)
	srvE := peerSite(t, "s3cret", empty.dir)

	s := newSite(t, Options{Peers: peersOf("s3cret", srvE, srvW)})
	r := s.get("/uploads/just-now-300x200.jpg")
	wantStatus(t, r, http.StatusOK)
	if got := body(t, r); got != "written on the writer" {
		t.Fatalf("body %q", got)
	}
	etag := fmt.Sprintf(`"15-%x"`, mtime.UnixMicro())
	if r.Header.Get("ETag") != etag || r.Header.Get("Content-Type") != "image/jpeg" || r.Header.Get(SourceHeader) != ResultPeer {
		t.Errorf("peer answer headers %v", r.Header)
	}
	if s.has("uploads/just-now-300x200.jpg") {
		t.Error("a peer's bytes were written into the directory (they would race the writer's upload)")
	}
	r = s.get("/uploads/just-now-300x200.jpg", "Range", "bytes=0-6")
	wantStatus(t, r, http.StatusPartialContent)
	if got := body(t, r); got != "written" {
		t.Errorf("range from a peer: %q", got)
	}
	wantStatus(t, s.get("/uploads/just-now-300x200.jpg", "If-None-Match", etag), http.StatusNotModified)
	r = do(s.h, http.MethodHead, "/uploads/just-now-300x200.jpg")
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get("Content-Length") != "21" {
		t.Errorf("HEAD from a peer: Content-Length %q", r.Header.Get("Content-Length"))
	}
	if s.counts[ResultPeer] != 4 {
		t.Errorf("counted %v", s.counts)
	}
	wantStatus(t, s.get("/uploads/nowhere.jpg"), http.StatusNotFound)
}

// TestPeerRefusesWithoutTheSecret: the peer listener is on the pod IP; a request without the shared
// secret, or with another, is 401 and serves nothing; a file open for writing is not served to peers;
// refused paths stay refused.
func TestPeerRefusesWithoutTheSecret(t *testing.T) {
	writer := newSite(t, Options{})
	writer.write("uploads/a.jpg", "secret bytes", mtime)
	writer.write("uploads/x.php", "<?php", mtime)
	srv := peerSite(t, "s3cret", writer.dir)
	get := func(path string, hdr ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		return r.StatusCode, respBody(t, r)
	}
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Bearer "}} {
		code, b := get("/uploads/a.jpg", hdr...)
		if code != http.StatusUnauthorized || strings.Contains(b, "secret bytes") {
			t.Errorf("with %v: %d, want 401 and no bytes", hdr, code)
		}
	}
	if code, _ := get("/uploads/a.jpg", "Authorization", "Bearer s3cret"); code != http.StatusOK {
		t.Errorf("with the secret: %d", code)
	}
	if code, _ := get("/uploads/x.php", "Authorization", "Bearer s3cret"); code != http.StatusForbidden {
		t.Errorf("PHP to a peer: %d", code)
	}
	// A peer listener without a secret refuses everything.
	if code := statusOf(t, peerSite(t, "", writer.dir).URL+"/uploads/a.jpg"); code != http.StatusUnauthorized {
		t.Errorf("a listener with no secret: %v", code)
	}
	busy := peerSite(t, "s3cret", busyDir{writer.dir})
	req, _ := http.NewRequest(http.MethodGet, busy.URL+"/uploads/a.jpg", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("a file open for writing served to a peer: %d", r.StatusCode)
	}
	// And the read-through asking with the wrong secret gets nothing.
	s := newSite(t, Options{Peers: peersOf("wrong", srv)})
	wantStatus(t, s.get("/uploads/a.jpg"), http.StatusNotFound)
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	return r.StatusCode
}

// TestSlowPeerTimesOut: a peer that does not answer within the timeout is given up on: 404 no-store.
func TestSlowPeerTimesOut(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(block) })
	p := peersOf("s", slow)
	p.Timeout = 100 * time.Millisecond
	s := newSite(t, Options{Peers: p})
	start := time.Now()
	wantStatus(t, s.get("/uploads/x.jpg"), http.StatusNotFound)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v with a peer timeout of 100ms", d)
	}
}

// TestStoreOnlyRequests: with X-Filesync-Fetch: store (the plugin, for an original it must process), a
// file only a peer has is 404, a remembered miss is looked up again, and a bucket hit is stored.
func TestStoreOnlyRequests(t *testing.T) {
	writer := newSite(t, Options{})
	writer.write("uploads/orig.jpg", "original", mtime)
	srv := peerSite(t, "s3cret", writer.dir)
	s := newSite(t, Options{Peers: peersOf("s3cret", srv)})
	wantStatus(t, s.get("/uploads/orig.jpg"), http.StatusOK) // from the peer
	wantStatus(t, s.get("/uploads/orig.jpg", FetchHeader, "store"), http.StatusNotFound)
	wantStatus(t, s.get("/uploads/gone.jpg"), http.StatusNotFound) // remembered
	s.bucket.objects["uploads/orig.jpg"] = "original"
	s.bucket.objects["uploads/gone.jpg"] = "arrived"
	wantStatus(t, s.get("/uploads/gone.jpg", FetchHeader, "store"), http.StatusOK)
	wantStatus(t, s.get("/uploads/orig.jpg", FetchHeader, "store"), http.StatusOK)
	if !s.has("uploads/orig.jpg") || !s.has("uploads/gone.jpg") {
		t.Error("store-only bucket hits are not in the directory")
	}
}
