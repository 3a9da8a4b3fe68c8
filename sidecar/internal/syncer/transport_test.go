package syncer

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// isMedia reports whether the request reads object content.
func isMedia(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("alt") == "media"
}

// objectIn reports whether the request concerns an object whose name contains s.
func objectIn(r *http.Request, s string) bool {
	return strings.Contains(r.URL.Path, s) || strings.Contains(r.URL.RawQuery, s) ||
		strings.Contains(r.URL.EscapedPath(), strings.ReplaceAll(s, "/", "%2F"))
}

// corruptMedia flips a byte of every downloaded body of objects whose name contains match.
func corruptMedia(match string) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err != nil || !isMedia(r) || !objectIn(r, match) {
				return resp, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return resp, nil
		})
	}
}

// recordBodies keeps the bodies of upload requests.
type recordBodies struct {
	mu     sync.Mutex
	bodies []string
}

func (rb *recordBodies) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/upload/") && r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			rb.mu.Lock()
			rb.bodies = append(rb.bodies, string(b))
			rb.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		return next.RoundTrip(r)
	})
}

// faulty injects, at random, 503s before the server sees the request, latency, and dropped connections
// after the server has processed it (the response is lost: the client must cope with its own write having
// landed). It injects nothing once disabled.
type faulty struct {
	rate     float64
	disabled atomic.Bool
	injected atomic.Int64
	mu       sync.Mutex
	rnd      *rand.Rand
}

func newFaulty(rate float64) *faulty { return &faulty{rate: rate, rnd: rand.New(rand.NewPCG(1, 2))} }

func (f *faulty) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64()
}

func (f *faulty) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if f.disabled.Load() {
			return next.RoundTrip(r)
		}
		x := f.roll()
		switch {
		case x < f.rate/3:
			f.injected.Add(1)
			if r.Body != nil {
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
				Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
				Body: io.NopCloser(strings.NewReader(`{"error":{"code":503,"message":"injected"}}`))}, nil
		case x < 2*f.rate/3:
			f.injected.Add(1)
			resp, err := next.RoundTrip(r)
			if err == nil {
				resp.Body.Close()
			}
			return nil, errors.New("injected: connection reset by peer")
		case x < f.rate:
			f.injected.Add(1)
			time.Sleep(time.Duration(f.roll() * float64(50*time.Millisecond)))
		}
		return next.RoundTrip(r)
	})
}

// slowMedia delays every download by d (a slow network), so a restore takes a while.
func slowMedia(next http.RoundTripper, d time.Duration) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if isMedia(r) {
			time.Sleep(d)
		}
		return next.RoundTrip(r)
	})
}
