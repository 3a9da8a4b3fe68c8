// Package server serves /healthz, /readyz and /metrics.
package server

import (
	"net/http"
	"time"
)

// Prober is what the probes ask.
type Prober interface {
	Ready() bool
	NotReadyReason() string
	Healthy() bool
}

// New returns the HTTP server: /healthz is 200 while the sync loop is alive, /readyz is 200 once the
// first full pass (the restore) is complete, /metrics serves Prometheus metrics.
func New(addr string, p Prober, metrics http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", probe(p.Healthy, "ok\n", func() string { return "sync loop not running" }))
	mux.HandleFunc("GET /readyz", probe(p.Ready, "ready\n", p.NotReadyReason))
	mux.Handle("GET /metrics", metrics)
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

func probe(ok func() bool, yes string, no func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(no() + "\n"))
			return
		}
		_, _ = w.Write([]byte(yes))
	}
}
