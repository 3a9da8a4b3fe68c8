package syncer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/gcsstore/gcstest"
	"github.com/filesync/filesync/sidecar/internal/gsurl"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/state"
)

const (
	testBucket = "media"
	testPrefix = "wp-content"
)

// bucket is an in-process fake-gcs-server (memory backend: it enforces generations and preconditions).
type bucket struct {
	srv *fakestorage.Server
	t   *testing.T
}

func newBucket(t *testing.T) *bucket {
	t.Helper()
	return &bucket{srv: gcstest.NewServer(t, testBucket), t: t}
}

// client returns a real storage client whose requests go through wrap (fault injection) to the server.
func (b *bucket) client(wrap func(http.RoundTripper) http.RoundTripper) *storage.Client {
	b.t.Helper()
	rt := b.srv.HTTPClient().Transport
	if wrap != nil {
		rt = wrap(rt)
	}
	c, err := gcsstore.NewClient(context.Background(), option.WithHTTPClient(&http.Client{Transport: rt}),
		option.WithEndpoint("http://fake.gcs/storage/v1/"))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// objects returns name -> content of every object under the prefix (including .filesync/).
func (b *bucket) objects() map[string]string {
	b.t.Helper()
	out := map[string]string{}
	res, err := b.srv.ListObjectsWithOptionsPaginated(testBucket, fakestorage.ListOptions{Prefix: testPrefix + "/"})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, o := range res.Objects {
		full, err := b.srv.GetObject(testBucket, o.Name)
		if err != nil {
			b.t.Fatal(err)
		}
		out[strings.TrimPrefix(o.Name, testPrefix+"/")] = string(full.Content)
	}
	return out
}

func (b *bucket) generation(rel string) int64 {
	b.t.Helper()
	o, err := b.srv.GetObject(testBucket, testPrefix+"/"+rel)
	if err != nil {
		b.t.Fatalf("object %s: %v", rel, err)
	}
	return o.Generation
}

// put writes an object directly (as another writer would), bypassing filesync.
func (b *bucket) put(name, content string) {
	b.t.Helper()
	c := b.srv.Client()
	w := c.Bucket(testBucket).Object(name).NewWriter(context.Background())
	if _, err := io.WriteString(w, content); err != nil {
		b.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.t.Fatal(err)
	}
}

// replica is one pod's sidecar: its own directory, state and metrics, sharing the bucket.
type replica struct {
	t     *testing.T
	name  string
	dir   string
	state string
	s     *Syncer
	m     *metrics.Metrics
	opt   Options
	b     *bucket
	wrap  func(http.RoundTripper) http.RoundTripper
	excl  []string
	exec  []string // --no-exec
}

type replicaOpt func(*replica)

func withOptions(f func(*Options)) replicaOpt { return func(r *replica) { f(&r.opt) } }
func withTransport(w func(http.RoundTripper) http.RoundTripper) replicaOpt {
	return func(r *replica) { r.wrap = w }
}
func withExcludes(g ...string) replicaOpt { return func(r *replica) { r.excl = g } }
func withNoExec(g ...string) replicaOpt   { return func(r *replica) { r.exec = g } }
func withDir(dir string) replicaOpt       { return func(r *replica) { r.dir = dir } }
func withStateDir() replicaOpt            { return func(r *replica) { r.state = r.t.TempDir() } }

func (b *bucket) replica(name string, opts ...replicaOpt) *replica {
	b.t.Helper()
	r := &replica{t: b.t, name: name, dir: b.t.TempDir(), b: b, opt: Options{
		PollInterval: 50 * time.Millisecond, RescanInterval: time.Minute, Settle: 0,
		Delete: true, MaxDelete: 50, Transfers: 4, Pod: name,
	}}
	for _, o := range opts {
		o(r)
	}
	r.start()
	return r
}

// start (re)creates the syncer, as a container (re)start would: a new process over the same directory.
func (r *replica) start() {
	r.t.Helper()
	f, err := filter.New(r.excl)
	if err == nil {
		f, err = f.WithNoExec(r.exec)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := localfs.Open(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { d.Close() })
	base, _, err := state.Open(r.state, "gs://"+testBucket+"/"+testPrefix)
	if err != nil {
		r.t.Fatal(err)
	}
	r.m = metrics.New()
	store := gcsstore.New(r.b.client(r.wrap), gsurl.Location{Bucket: testBucket, Prefix: testPrefix},
		func(op string) { r.m.GCSRequests.WithLabelValues(op).Inc() })
	log := slog.New(slog.NewTextHandler(testWriter{r.t, r.name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r.s = New(d, store, base, f, r.m, log, r.opt)
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("[%s] %s", w.name, bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// pass runs one pass with a fresh listing and fails the test on error.
func (r *replica) pass() Result {
	r.t.Helper()
	res, err := r.s.Pass(context.Background(), true)
	if err != nil {
		r.t.Fatalf("[%s] pass: %v", r.name, err)
	}
	return res
}

// settle runs passes until one is clean (at most n).
func (r *replica) settle() {
	r.t.Helper()
	for range 10 {
		res := r.pass()
		if res.Clean() && len(res.Plan.Actions) == 0 {
			return
		}
		if wait := time.Until(res.NextWake); wait > 0 {
			time.Sleep(min(wait, time.Second))
		}
	}
	res := r.pass()
	r.t.Fatalf("[%s] did not settle in 10 passes: failed=%d replan=%v wake=%v\n%s", r.name, res.Failed, res.Replan, res.NextWake, res.Plan)
}

func (r *replica) write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	// Distinct mtimes even for writes within one clock tick, like real edits.
	future := time.Now().Add(-time.Duration(len(content)) * time.Millisecond)
	_ = os.Chtimes(p, future, future)
}

func (r *replica) remove(rel string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.dir, filepath.FromSlash(rel))); err != nil {
		r.t.Fatal(err)
	}
}

// files returns rel -> content of the regular files in the replica's directory.
func (r *replica) files() map[string]string {
	r.t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == filter.InternalDir {
			return filepath.SkipDir // filesync's own folder (temps come and go)
		}
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// run starts the replica's loop; it stops at test end.
func (r *replica) run() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.s.Run(ctx); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

func describe(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		v := m[k]
		if len(v) > 20 {
			v = v[:20] + "…"
		}
		fmt.Fprintf(&b, "  %s = %q\n", k, v)
	}
	return b.String()
}
