// Package hooks tells HTTP receivers (a CDN purger, a search indexer) of the changes this replica made in
// the bucket (--on-change URL; docs/design.md, "Change hooks"). The sync loop hands each change to Notify,
// which never blocks: it lands in a bounded in-memory queue per URL, coalesced per path (the latest change
// of a path replaces an undelivered earlier one). One goroutine per URL sends the queue as JSON batches,
// gathered over a short window, one batch at a time and retried with capped, jittered backoff until the
// receiver takes it, so a later change of a path is never delivered before an earlier one. Close sends
// what is left within the shutdown budget.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/metrics"
)

// Op is what happened to an object.
type Op string

// The ops a batch carries: this replica stored a new generation of the object, or deleted one.
const (
	OpUpload Op = "upload"
	OpDelete Op = "delete"
)

// Event is one change this replica made in the bucket.
type Event struct {
	Path string // relative to --dir (and to the remote's prefix)
	Op   Op
	// Generation: for an upload the generation stored, for a delete the generation deleted.
	Generation int64
	Time       time.Time // when the sync loop committed it
}

// Defaults of Options (docs/design.md, "Change hooks").
const (
	DefaultWindow     = time.Second
	DefaultMaxBatch   = 500
	DefaultMaxPending = 10000
	DefaultTimeout    = 10 * time.Second
)

// DefaultRetry is the wait between attempts to deliver one batch: 0.5 s doubling to 30 s, jittered.
var DefaultRetry = backoff.Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second}

// Options configure a Sender. Zero values take the defaults.
type Options struct {
	URLs []string // http(s) URLs with a host (config checks them)
	// Replica names this sidecar in every batch (POD_NAME); Bucket and Prefix say where the objects are,
	// so that a receiver can name each object (PREFIX/path).
	Replica, Bucket, Prefix string
	// Window: a batch is sent this long after the oldest change waiting in it arrived, or at once when
	// MaxBatch changes wait.
	Window   time.Duration
	MaxBatch int
	// MaxPending bounds the paths waiting per URL (besides the batch in flight); beyond it the path changed
	// least recently is dropped, counted and logged.
	MaxPending int
	Retry      backoff.Policy
	// Client sends the requests (default: DefaultTimeout per request, redirects not followed).
	Client  *http.Client
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Sender delivers events to every URL. Notify and Close may be called from any goroutine.
type Sender struct {
	opt     Options
	targets []*target
	ctx     context.Context // cancelled when Close gives up: in-flight requests are abandoned
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New checks the URLs and starts one sender goroutine per URL.
func New(opt Options) (*Sender, error) {
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = DefaultMaxPending
	}
	if opt.Retry == (backoff.Policy{}) {
		opt.Retry = DefaultRetry
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: DefaultTimeout, CheckRedirect: noRedirect}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Metrics == nil {
		opt.Metrics = metrics.New()
	}
	s := &Sender{opt: opt}
	for _, raw := range opt.URLs {
		u, err := CheckURL(raw)
		if err != nil {
			return nil, err
		}
		s.targets = append(s.targets, newTarget(u, s))
	}
	names := make([]string, len(s.targets))
	for i, t := range s.targets {
		names[i] = t.name
	}
	opt.Log.Info("change hooks: the changes this replica makes in the bucket are POSTed", "urls", names,
		"window", opt.Window, "max_batch", opt.MaxBatch, "max_pending", opt.MaxPending)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, t := range s.targets {
		s.wg.Go(func() { t.run(s.ctx) })
	}
	return s, nil
}

// noRedirect keeps a 3xx as the answer: a POST is not re-sent elsewhere (the client would make it a GET).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CheckURL parses an --on-change URL: http or https, with a host.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL with a host", raw)
	}
	return u, nil
}

// Notify queues e for every URL and returns at once. After Close it only counts e as dropped.
func (s *Sender) Notify(e Event) {
	for _, t := range s.targets {
		t.add(e)
	}
}

// Close stops taking events and delivers those waiting, at once (no window), retrying until ctx is done;
// then it abandons what is left, counts it in filesync_hook_events_dropped_total{reason="shutdown"}, logs
// it once and returns how many events it was (over all URLs).
func (s *Sender) Close(ctx context.Context) int {
	for _, t := range s.targets {
		t.drain()
	}
	idle := make(chan struct{})
	go func() { s.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		s.cancel()
		<-idle
	}
	s.cancel()
	left := 0
	for _, t := range s.targets {
		n, first := t.abandon()
		if n > 0 {
			s.opt.Metrics.HookDropped.WithLabelValues(DropShutdown).Add(float64(n))
			s.opt.Log.Error("change hooks not delivered before the shutdown timeout", "url", t.name, "events", n, "first", first)
		}
		left += n
	}
	return left
}

// The reasons of filesync_hook_events_dropped_total and the results of filesync_hook_requests_total.
const (
	DropOverflow = "overflow" // more than MaxPending paths waiting: the least recently changed went
	DropRejected = "rejected" // the receiver refused the batch (4xx other than 408 and 429)
	DropShutdown = "shutdown" // still waiting when Close gave up

	ResultOK       = "ok"       // 2xx
	ResultError    = "error"    // a network error, a timeout, 408, 429 or 5xx: retried
	ResultRejected = "rejected" // 3xx or another 4xx: the batch is dropped
)
