package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestReadThroughRefusesANonLoopbackAddress: the read-through can read the bucket, so it is never on the
// pod IP: exit 2, naming the flag.
func TestReadThroughRefusesANonLoopbackAddress(t *testing.T) {
	srv := newServer(t)
	for _, addr := range []string{":48091", "0.0.0.0:48091", "10.1.2.3:48091"} {
		env, _, _ := envFor(srv, "--dir", t.TempDir(), "--remote", "gs://media", "--read-through", addr, "--read-through-include", "uploads/**")
		var stderr bytes.Buffer
		if code := ExitCode(Run(context.Background(), env), &stderr); code != 2 || !strings.Contains(stderr.String(), "--read-through") {
			t.Errorf("--read-through %s: exit %d, %q", addr, code, stderr.String())
		}
	}
}

// TestReadThroughIsWired: with --read-through and --peers, the running sidecar serves a bucket object on
// the loopback address, and its peer listener refuses a request without the secret and serves one with it;
// /metrics counts the read-through's answers in filesync_read_through_requests_total and every one of the
// peer listener's in filesync_peer_requests_total, and not the other way round.
func TestReadThroughIsWired(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("peer-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	addr, stderr := serveReady(t, srv, "--dir", dir, "--remote", "gs://media/p", "--listen", "127.0.0.1:0", "--settle", "0s",
		"--read-through", "127.0.0.1:48191", "--read-through-include", "uploads/**",
		"--peers", "localhost", "--peer-listen", "127.0.0.1:48192", "--peer-secret-file", secret)
	w := srv.Client().Bucket("media").Object("p/uploads/late.jpg").NewWriter(ctx)
	_, _ = w.Write([]byte("late bytes"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	get := func(url, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://127.0.0.1:48191/uploads/late.jpg", ""); code != 200 || body != "late bytes" {
		t.Fatalf("read-through: %d %q\n%s", code, body, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads", "late.jpg")); err != nil {
		t.Errorf("not downloaded into the directory: %v", err)
	}
	if code, _ := get("http://127.0.0.1:48192/uploads/late.jpg", ""); code != http.StatusUnauthorized {
		t.Errorf("peer listener without the secret: %d", code)
	}
	if code, body := get("http://127.0.0.1:48192/uploads/late.jpg", "Bearer peer-secret-0123456789"); code != 200 || body != "late bytes" {
		t.Errorf("peer listener with the secret: %d %q", code, body)
	}
	if code, _ := get("http://127.0.0.1:48191/uploads/none.jpg", ""); code != http.StatusNotFound {
		t.Errorf("missing: %d", code)
	}
	if code, _ := get("http://127.0.0.1:48192/uploads/none.jpg", "Bearer peer-secret-0123456789"); code != http.StatusNotFound {
		t.Errorf("peer listener, missing: %d", code)
	}
	for _, p := range []string{"/uploads/x.php", "/plugins/p.jpg"} {
		if code, _ := get("http://127.0.0.1:48192"+p, "Bearer peer-secret-0123456789"); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("peer listener, %s: %d", p, code)
		}
	}
	_, metrics := get("http://"+addr+"/metrics", "")
	for series, want := range map[string]string{
		`filesync_read_through_requests_total{result="bucket"}`:  "1",
		`filesync_read_through_requests_total{result="miss"}`:    "1",
		`filesync_read_through_requests_total{result="refused"}`: "",
		`filesync_peer_requests_total{result="unauthorized"}`:    "1",
		`filesync_peer_requests_total{result="served"}`:          "1",
		`filesync_peer_requests_total{result="miss"}`:            "1",
		`filesync_peer_requests_total{result="refused"}`:         "2",
	} {
		got := ""
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				got = v
			}
		}
		if got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
}

// TestLazyMediaReadsThroughAtOnce (issue 23): with uploads/ lazy, a pod is ready with its code; every
// media file answers at once through the read-through with its bytes, whether the fill has brought it yet
// or not; the fill then makes all of it local, /readyz stops naming lazy files, and the bucket loses
// nothing.
func TestLazyMediaReadsThroughAtOnce(t *testing.T) {
	srv := newServer(t)
	const n = 40
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: "p/plugins/a.php"}, Content: []byte("<?php")})
	for i := range n {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: fmt.Sprintf("p/uploads/m%02d.jpg", i)},
			Content: []byte(fmt.Sprintf("jpeg %d", i))})
	}
	dir := t.TempDir()
	addr, stderr := serveReady(t, srv, "--dir", dir, "--remote", "gs://media/p", "--listen", "127.0.0.1:0", "--settle", "0s",
		"--lazy", "uploads/", "--read-through", "127.0.0.1:48193", "--read-through-include", "uploads/**")
	if b, err := os.ReadFile(filepath.Join(dir, "plugins/a.php")); err != nil || string(b) != "<?php" {
		t.Fatalf("ready without the code: %v", err)
	}
	get := func(url string) (int, string) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := n - 1; i >= 0; i-- {
		if code, body := get(fmt.Sprintf("http://127.0.0.1:48193/uploads/m%02d.jpg", i)); code != 200 || body != fmt.Sprintf("jpeg %d", i) {
			t.Fatalf("m%02d through the read-through: %d %q\n%s", i, code, body, stderr)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, readyz := get("http://" + addr + "/readyz")
		entries, _ := os.ReadDir(filepath.Join(dir, "uploads"))
		if len(entries) == n && !strings.Contains(readyz, "lazy:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d media files local; /readyz: %q\n%s", len(entries), n, readyz, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if objectCount(t, srv) != n+1 {
		t.Fatal("the bucket lost objects")
	}
}

// serveReady runs the sidecar with args until the test ends (then it must stop without an error) and
// returns the address of its HTTP server once /readyz answers 200, and its stderr.
func serveReady(t *testing.T, srv *fakestorage.Server, args ...string) (string, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	env, _, stderr := envFor(srv, args...)
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, stderr)
		}
	})
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("exited: %v\n%s", err, stderr)
	}
	waitReady(t, addr)
	return addr, stderr
}
