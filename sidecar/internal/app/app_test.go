package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/gcsstore/gcstest"
)

func newServer(t *testing.T) *fakestorage.Server { return gcstest.NewServer(t, "media") }

func envFor(srv *fakestorage.Server, args ...string) (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return Env{
		Args: args, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb, Version: "test",
		ClientOptions: []option.ClientOption{option.WithHTTPClient(srv.HTTPClient())},
	}, &out, &errb
}

func objectCount(t *testing.T, srv *fakestorage.Server) int {
	t.Helper()
	res, err := srv.ListObjectsWithOptionsPaginated("media", fakestorage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Objects)
}

func TestExitCodes(t *testing.T) {
	srv := newServer(t)
	env, _, _ := envFor(srv, "--remote", "gs://media")
	var stderr bytes.Buffer
	if code := ExitCode(Run(context.Background(), env), &stderr); code != 2 || !strings.Contains(stderr.String(), "--dir") {
		t.Fatalf("missing --dir: exit %d, %q", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 {
		t.Fatalf("want one line, got %q", stderr.String())
	}
	env, _, _ = envFor(srv, "--dir", t.TempDir(), "--remote", "gs://no-such-bucket", "--once", "--log-format", "text")
	stderr.Reset()
	if code := ExitCode(Run(context.Background(), env), &stderr); code != 1 {
		t.Fatalf("missing bucket: exit %d, want 1 (%s)", code, stderr.String())
	}
	env, out, _ := envFor(srv, "--help")
	if code := ExitCode(Run(context.Background(), env), &stderr); code != 0 || !strings.Contains(out.String(), "--remote") {
		t.Fatalf("--help: exit %d", code)
	}
}

func TestOnceDoesOnePassAndExitsZero(t *testing.T) {
	srv := newServer(t)
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "p/remote.jpg"}, Content: []byte("r")})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.jpg"), []byte("l"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--once", "--settle", "0s")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--once: %v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "remote.jpg")); err != nil || string(b) != "r" {
		t.Fatalf("remote.jpg not restored: %v", err)
	}
	if objectCount(t, srv) != 2 {
		t.Fatal("local.jpg not uploaded")
	}
}

// TestOnceWithLazyRestoresTheEagerSetOnly (issue 23): --once with --lazy restores what is not lazy,
// leaves the lazy objects in the bucket (recorded, not downloaded, never deleted), exits 0 and says so.
func TestOnceWithLazyRestoresTheEagerSetOnly(t *testing.T) {
	srv := newServer(t)
	for _, name := range []string{"p/plugins/a.php", "p/uploads/2026/12/photo.jpg", "p/uploads/2026/12/photo-150x150.jpg"} {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: name}, Content: []byte(name)})
	}
	dir := t.TempDir()
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--once", "--lazy", "uploads/", "--cache-size", "1MiB", "--log-format", "text")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--once --lazy: %v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "plugins/a.php")); err != nil || string(b) != "p/plugins/a.php" {
		t.Fatalf("the eager file was not restored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads")); err == nil {
		t.Fatal("--once downloaded lazy files")
	}
	if objectCount(t, srv) != 3 {
		t.Fatal("the bucket lost objects")
	}
	// The restore lists no folder wholly lazy: uploads/ is not counted, and the line says so.
	if !strings.Contains(stderr.String(), "restored the eager files only") ||
		!strings.Contains(stderr.String(), "lazy: 0 files (0 B) left in the bucket, and the folders wholly lazy (not listed)") {
		t.Fatalf("--once did not say what it left in the bucket:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "lazy=[uploads/] cache_size_bytes=1048576") {
		t.Fatalf("the starting line does not say what is lazy and the cache's bound:\n%s", stderr)
	}
	// A glob that leaves no folder out: the lazy files are listed, and counted.
	dir = t.TempDir()
	env, _, stderr = envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--once", "--lazy", "*.jpg", "--log-format", "text")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--once --lazy '*.jpg': %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "lazy: 2 files (62 B) left in the bucket\"") {
		t.Fatalf("--once --lazy '*.jpg' did not count what it left in the bucket:\n%s", stderr)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	srv := newServer(t)
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "p/remote.jpg"}, Content: []byte("r")})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.jpg"), []byte("l"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, out, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--dry-run")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--dry-run: %v\n%s", err, stderr)
	}
	plan := out.String()
	if !strings.Contains(plan, "download      remote.jpg") || !strings.Contains(plan, "upload        local.jpg (create-only)") {
		t.Fatalf("plan does not show the actions:\n%s", plan)
	}
	if _, err := os.Stat(filepath.Join(dir, "remote.jpg")); err == nil || objectCount(t, srv) != 1 {
		t.Fatal("--dry-run changed something")
	}
}

// TestSIGTERMFlushesPendingUploads: 1,000 files written, SIGTERM at once: all are in the bucket when Run
// returns, within --shutdown-timeout.
func TestSIGTERMFlushesPendingUploads(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--listen", "127.0.0.1:0",
		"--settle", "10s", "--shutdown-timeout", "150s") // generous: -race on a busy 2-core machine is ~8x slower
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	addr := <-listening
	waitReady(t, addr)
	for i := range 1000 {
		p := filepath.Join(dir, fmt.Sprintf("uploads/%02d/%04d.jpg", i%20, i))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // SIGTERM: signal.NotifyContext cancels the same way
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr)
		}
	case <-time.After(180 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if n := objectCount(t, srv); n != 1000 {
		t.Fatalf("bucket has %d of 1000 files after shutdown", n)
	}
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("never ready")
}

// TestProbesAndMetrics: /healthz, /readyz and /metrics answer as specified while running.
func TestProbesAndMetrics(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "a.jpg"), []byte("a"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan string, 1)
	env, _, _ := envFor(srv, "--dir", dir, "--remote", "gs://media", "--listen", "127.0.0.1:0", "--settle", "0s")
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	addr := <-listening
	waitReady(t, addr)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, m := range []string{"filesync_uploads_total 1", "filesync_ready 1", "filesync_known_files 1",
		"filesync_pass_duration_seconds_bucket", `filesync_deletes_total{side="local"} 0`, `filesync_bytes_total{direction="upload"} 1`,
		"filesync_pending_uploads", "filesync_last_success_timestamp_seconds", "filesync_conflicts_total 0",
		"filesync_skipped_unsafe_total 0", "filesync_downloads_total 0", "filesync_watch_unwatched_directories 0"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Fatalf("/metrics lacks %q:\n%s", m, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWaitsForAnUnreachableBucket: the sidecar may start before the emulator or the network: it retries
// (it does not exit) and becomes ready once the bucket answers.
func TestWaitsForAnUnreachableBucket(t *testing.T) {
	srv := newServer(t)
	var up atomic.Bool
	rt := srv.HTTPClient().Transport
	flaky := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if !up.Load() {
			return nil, errors.New("dial tcp: connection refused")
		}
		return rt.RoundTrip(r)
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan string, 1)
	env, _, _ := envFor(srv, "--dir", t.TempDir(), "--remote", "gs://media", "--listen", "127.0.0.1:0", "--log-format", "text")
	env.ClientOptions = []option.ClientOption{option.WithHTTPClient(flaky)}
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	select {
	case err := <-done:
		t.Fatalf("exited while the bucket was unreachable: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	up.Store(true)
	select {
	case addr := <-listening:
		waitReady(t, addr)
	case err := <-done:
		t.Fatalf("exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("never started serving after the bucket came up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A site over one listing page (the restore splits its listing and leaves uploads/ out): --once still
// says that it restored the eager files only. It said nothing before, as it counted no lazy file.
func TestOnceWithLazySaysSoForALargeSite(t *testing.T) {
	srv := newServer(t)
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "p/plugins/a.php"}, Content: []byte("a")})
	for i := range 1200 {
		name := fmt.Sprintf("p/uploads/2026/12/m%04d.jpg", i)
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: name}, Content: []byte(name)})
	}
	dir := t.TempDir()
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/p", "--once", "--lazy", "uploads/", "--log-format", "text")
	if err := Run(context.Background(), env); err != nil {
		t.Fatalf("--once --lazy: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads")); err == nil {
		t.Fatal("--once downloaded lazy files")
	}
	if !strings.Contains(stderr.String(), "restored the eager files only") || !strings.Contains(stderr.String(), "the folders wholly lazy (not listed)") {
		t.Fatalf("--once did not say what it left in the bucket:\n%s", stderr)
	}
}
