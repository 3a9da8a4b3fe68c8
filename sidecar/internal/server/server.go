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
	// Warning is a line /readyz's body adds, ready or not, about something that works only in part
	// (readiness does not depend on it); "" when there is none.
	Warning() string
}

// New returns the HTTP server: /healthz is 200 while the sync loop is alive, /readyz is 200 once the
// first full pass (the restore) is complete, /metrics serves Prometheus metrics.
func New(addr string, p Prober, metrics http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", probe(p.Healthy, "ok", func() string { return "sync loop not running" }, nil))
	mux.HandleFunc("GET /readyz", probe(p.Ready, "ready", p.NotReadyReason, p.Warning))
	mux.Handle("GET /metrics", metrics)
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// probe answers 200 and yes while ok, else 503 and no's reason; each followed by warning's line if any.
func probe(ok func() bool, yes string, no, warning func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		body := yes + "\n"
		if !ok() {
			w.WriteHeader(http.StatusServiceUnavailable)
			body = no() + "\n"
		}
		if warning != nil {
			if line := warning(); line != "" {
				body += line + "\n"
			}
		}
		_, _ = w.Write([]byte(body))
	}
}
