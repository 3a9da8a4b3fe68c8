package hooks

import (
	"container/list"
	"context"
	"net/url"
	"sync"
	"time"
)

// target is one URL's queue and its sender goroutine (run).
//
// The queue holds at most one event per path (the latest: a later change of a path replaces an earlier one
// not yet sent) in the order their paths last changed, and at most opt.MaxPending paths; the batch being
// delivered is taken out of it (inflight) and is at most opt.MaxBatch events. So an event of a path that
// is in flight waits in the queue until that batch is delivered: per path, order is kept.
type target struct {
	s    *Sender
	url  *url.URL
	name string // for logs: scheme, host and path, without credentials or query

	mu       sync.Mutex
	pending  map[string]*list.Element // path → its element in order
	order    *list.List               // of Event, least recently changed first
	since    time.Time                // when the queue last went from empty to not empty
	inflight []Event                  // the batch being delivered
	overflow bool                     // events were dropped since the queue was last empty (logged once)
	closed   bool                     // Close was called: send at once, take nothing more
	late     bool                     // an event came after Close (dropped, logged once)

	wake chan struct{} // one slot: something was queued, or Close was called
}

func newTarget(u *url.URL, s *Sender) *target {
	name := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	return &target{s: s, url: u, name: name, pending: map[string]*list.Element{}, order: list.New(),
		wake: make(chan struct{}, 1)}
}

func (t *target) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// add queues e, replacing the path's waiting event if there is one; beyond MaxPending paths the least
// recently changed one is dropped.
func (t *target) add(e Event) {
	m := t.s.opt.Metrics
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		m.HookDropped.WithLabelValues(DropShutdown).Inc()
		if !t.late {
			t.late = true
			t.s.opt.Log.Error("a change came after the change hooks were closed; not sent (logged once)", "url", t.name, "path", e.Path)
		}
		return
	}
	if el, ok := t.pending[e.Path]; ok {
		el.Value = e
		t.order.MoveToBack(el)
		t.signal()
		return
	}
	if t.order.Len() == 0 {
		t.since = time.Now()
	}
	if t.order.Len() >= t.s.opt.MaxPending {
		old := t.order.Remove(t.order.Front()).(Event)
		delete(t.pending, old.Path)
		m.HookDropped.WithLabelValues(DropOverflow).Inc()
		m.HookPending.Dec()
		if !t.overflow {
			t.overflow = true
			t.s.opt.Log.Error("change hook queue full: dropping the events of the paths changed least recently (logged once until it empties)",
				"url", t.name, "max_pending", t.s.opt.MaxPending, "first_dropped", old.Path)
		}
	}
	t.pending[e.Path] = t.order.PushBack(e)
	m.HookPending.Inc()
	t.signal()
}

// drain makes the sender send what waits at once and stop when the queue is empty.
func (t *target) drain() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.signal()
}

// next waits until a batch is due and takes it out of the queue into inflight: when the oldest event has
// waited Window, when MaxBatch events wait, or at once after Close. It returns nil when the queue is empty
// after Close, or when ctx is done.
func (t *target) next(ctx context.Context) []Event {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		n, closed, due := t.order.Len(), t.closed, t.since.Add(t.s.opt.Window)
		if n > 0 && (closed || n >= t.s.opt.MaxBatch || !time.Now().Before(due)) {
			batch := make([]Event, 0, min(n, t.s.opt.MaxBatch))
			for len(batch) < cap(batch) {
				e := t.order.Remove(t.order.Front()).(Event)
				delete(t.pending, e.Path)
				batch = append(batch, e)
			}
			if t.order.Len() == 0 {
				t.overflow = false
			}
			t.inflight = batch
			t.mu.Unlock()
			return batch
		}
		t.mu.Unlock()
		if n == 0 && closed {
			return nil
		}
		var tick <-chan time.Time
		if n > 0 {
			timer.Reset(time.Until(due))
			tick = timer.C
		}
		select {
		case <-t.wake:
		case <-tick:
		case <-ctx.Done():
			return nil
		}
	}
}

// done ends the batch in flight (delivered or dropped).
func (t *target) done() {
	t.mu.Lock()
	t.s.opt.Metrics.HookPending.Sub(float64(len(t.inflight)))
	t.inflight = nil
	t.mu.Unlock()
}

// abandon empties the queue and the batch in flight (Close gave up) and says how many events they held
// and the first path.
func (t *target) abandon() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	var first string
	n := len(t.inflight) + t.order.Len()
	if len(t.inflight) > 0 {
		first = t.inflight[0].Path
	} else if t.order.Len() > 0 {
		first = t.order.Front().Value.(Event).Path
	}
	t.inflight = nil
	t.order.Init()
	clear(t.pending)
	t.s.opt.Metrics.HookPending.Sub(float64(n))
	return n, first
}

// run sends batches until Close finds the queue empty or the Sender's context is cancelled.
func (t *target) run(ctx context.Context) {
	for {
		batch := t.next(ctx)
		if batch == nil {
			return
		}
		if !t.deliver(ctx, batch) {
			return // cancelled: abandon counts the batch
		}
		t.done()
	}
}
