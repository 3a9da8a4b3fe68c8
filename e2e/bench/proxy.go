package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// latencyProxy is a reverse proxy in front of fake-gcs-server that holds every request for a fixed delay
// before forwarding it: the time to first byte a pod pays against a real bucket (tens of milliseconds per
// request), which loopback does not have. The kernel here has no netem, so the delay is modelled in user
// space. The bytes themselves flow at loopback speed. The delay can be changed between measurements.
type latencyProxy struct {
	ln       net.Listener
	srv      *http.Server
	delay    atomic.Int64 // nanoseconds
	requests atomic.Int64
	target   atomic.Pointer[httputil.ReverseProxy]
	done     chan struct{}
}

// startLatencyProxy listens on a port of the bench's range. It answers 503 until setTarget names the
// server behind it (the server is started after the proxy, because its -external-url must name the proxy).
func startLatencyProxy(errLog *log.Logger) (*latencyProxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	p := &latencyProxy{ln: ln, done: make(chan struct{})}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute, ErrorLog: errLog}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errLog.Printf("latency proxy: %v", err)
		}
	}()
	return p, nil
}

func (p *latencyProxy) addr() string { return p.ln.Addr().String() }

// setTarget forwards to base (http://HOST:PORT). The Host header stays the proxy's, which the server
// knows as its -public-host.
func (p *latencyProxy) setTarget(base string, errLog *log.Logger) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("latency proxy target %q: %w", base, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		// Many parallel requests (filesync restores 64 at a time): keep a connection per request in flight.
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true,
			IdleConnTimeout: time.Minute},
		FlushInterval: -1, // stream downloads as they come
		ErrorLog:      errLog,
	}
	p.target.Store(rp)
	return nil
}

func (p *latencyProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *latencyProxy) getDelay() time.Duration { return time.Duration(p.delay.Load()) }

// ServeHTTP waits the delay, then forwards the request.
func (p *latencyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if d := p.getDelay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	rp := p.target.Load()
	if rp == nil {
		http.Error(w, "latency proxy: no target yet", http.StatusServiceUnavailable)
		return
	}
	rp.ServeHTTP(w, r)
}

func (p *latencyProxy) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.done
}
