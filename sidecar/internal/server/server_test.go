package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

type fake struct {
	ready, healthy bool
	warning        string
}

func (f *fake) Ready() bool            { return f.ready }
func (f *fake) NotReadyReason() string { return "restoring: 2 paths failed" }
func (f *fake) Healthy() bool          { return f.healthy }
func (f *fake) Warning() string        { return f.warning }

func TestProbes(t *testing.T) {
	f := &fake{}
	srv := New(":0", f, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m")) }))
	body := ""
	get := func(path string) int {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body = rec.Body.String()
		return rec.Code
	}
	if get("/readyz") != 503 || get("/healthz") != 503 {
		t.Fatal("probes must fail before the loop runs and restores")
	}
	f.healthy = true
	if get("/healthz") != 200 || get("/readyz") != 503 || body != "restoring: 2 paths failed\n" {
		t.Fatalf("alive but not ready, with the reason: %q", body)
	}
	f.ready = true
	if get("/readyz") != 200 || body != "ready\n" || get("/metrics") != 200 || get("/nope") != 404 {
		t.Fatalf("ready: %q", body)
	}
}

// TestReadyzWarns: a warning (directories the watcher cannot watch) is a line of /readyz's body, ready or
// not, and never changes its status; /healthz does not carry it.
func TestReadyzWarns(t *testing.T) {
	const warning = "warning: 2 directories not watched (first: plugins): the periodic rescan covers them"
	f := &fake{healthy: true, warning: warning}
	srv := New(":0", f, http.NotFoundHandler())
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != 503 || body != "restoring: 2 paths failed\n"+warning+"\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
	f.ready = true
	if code, body := get("/readyz"); code != 200 || body != "ready\n"+warning+"\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
}
