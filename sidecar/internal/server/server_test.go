package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

type fake struct{ ready, healthy bool }

func (f *fake) Ready() bool            { return f.ready }
func (f *fake) NotReadyReason() string { return "restoring: 2 paths failed" }
func (f *fake) Healthy() bool          { return f.healthy }

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
	if get("/readyz") != 200 || get("/metrics") != 200 || get("/nope") != 404 {
		t.Fatal("ready")
	}
}
