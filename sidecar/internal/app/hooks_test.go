package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/hooks"
)

// hookReceiver is an --on-change URL: it records the events of every batch, or answers status.
type hookReceiver struct {
	mu     sync.Mutex
	status int
	events []hooks.BodyEvent
	batch  hooks.Batch // the last one taken
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status != 0 {
		w.WriteHeader(h.status)
		return
	}
	var b hooks.Batch
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.batch = b
	h.events = append(h.events, b.Events...)
}

// seen returns "op object@generation" of every event taken.
func (h *hookReceiver) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, fmt.Sprintf("%s %s@%d", e.Op, e.Object, e.Generation))
	}
	return out
}

// TestChangeHooksFollowUploadsAndDeletes: a running sidecar POSTs each upload and each delete it makes in
// the bucket to --on-change, named as the object (PREFIX/path) with its generation.
func TestChangeHooksFollowUploadsAndDeletes(t *testing.T) {
	srv := newServer(t)
	recv := &hookReceiver{}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan string, 1)
	env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media/wp", "--listen", "127.0.0.1:0", "--settle", "0s",
		"--on-change", hs.URL+"/purge")
	env.Getenv = func(k string) string {
		if k == "POD_NAME" {
			return "wordpress-0"
		}
		return ""
	}
	env.Listening = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env) }()
	waitReady(t, <-listening)
	// Files that stay: a delete of the only known file would be a wipe (nothing is deleted then).
	for _, name := range []string{"keep1.jpg", "keep2.jpg", "keep3.jpg", "a.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 20*time.Second, "the uploads' events", func() bool { return len(recv.seen()) == 4 })
	o, err := srv.GetObject("media", "wp/a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(recv.seen(), ","), fmt.Sprintf("upload wp/a.jpg@%d", o.Generation); !strings.Contains(got, want) {
		t.Fatalf("events %q, want one %q", got, want)
	}
	if err := os.Remove(filepath.Join(dir, "a.jpg")); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, "the delete's event", func() bool { return len(recv.seen()) == 5 })
	if got, want := recv.seen()[4], fmt.Sprintf("delete wp/a.jpg@%d", o.Generation); got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
	recv.mu.Lock()
	b := recv.batch
	recv.mu.Unlock()
	if b.Replica != "wordpress-0" || b.Bucket != "media" || b.Prefix != "wp" || b.Events[0].Path != "a.jpg" {
		t.Fatalf("batch %+v", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
}

// TestSIGTERMDeliversTheChangeHooks: files the shutdown flush uploads are POSTed before Run returns; with
// the receiver failing, Run still returns within the shutdown budget, the events counted and logged as
// not delivered (the exit code stays that of the sync).
func TestSIGTERMDeliversTheChangeHooks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"receiver up", 0}, {"receiver failing", http.StatusServiceUnavailable}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			recv := &hookReceiver{status: tc.status}
			hs := httptest.NewServer(recv)
			defer hs.Close()
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			listening := make(chan string, 1)
			env, _, stderr := envFor(srv, "--dir", dir, "--remote", "gs://media", "--listen", "127.0.0.1:0",
				"--settle", "1h", "--shutdown-timeout", "3s", "--on-change", hs.URL, "--log-format", "text")
			env.Listening = func(addr string) { listening <- addr }
			done := make(chan error, 1)
			go func() { done <- Run(ctx, env) }()
			waitReady(t, <-listening)
			for i := range 20 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.jpg", i)), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cancel() // SIGTERM
			start := time.Now()
			if err := <-done; err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			took := time.Since(start)
			if n := objectCount(t, srv); n != 20 {
				t.Fatalf("flush uploaded %d of 20", n)
			}
			if tc.status == 0 {
				if got := recv.seen(); len(got) != 20 {
					t.Fatalf("receiver got %d events by the time Run returned, want 20: %v", len(got), got)
				}
				return
			}
			// The flush itself is quick here: the hooks get what is left of the 3 s, at least 2 s.
			if took > 6*time.Second {
				t.Fatalf("shutdown took %v with the receiver failing, want the budget (3 s)", took)
			}
			if n := strings.Count(stderr.String(), "change hooks not delivered before the shutdown timeout"); n != 1 ||
				!strings.Contains(stderr.String(), "events=20") {
				t.Fatalf("want one line naming the 20 undelivered events:\n%s", stderr)
			}
		})
	}
}
