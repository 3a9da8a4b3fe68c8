package syncer

import (
	"context"
	"fmt"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
)

// loopPolicy is how a loop of passes reacts to how a pass went. Run and Once share one retry policy: a
// failed pass is retried with backoff.Default, walking and listing afresh; a pass that hit a precondition
// failure is followed at once by one with a fresh listing; paths waiting for a time are looked at when it
// comes. What differs between them is this data.
type loopPolicy struct {
	stopWhenClean bool // return after the first clean pass
	fullPasses    bool // every pass walks the tree and lists the bucket
	maxFailed     int  // failed passes before giving up (0: never)
	maxReplans    int  // re-planned passes before giving up (0: never)
	// countActions: a pass whose actions failed counts as a failed pass; otherwise only a pass that failed
	// as a whole does (its failed paths back off one by one in the holds).
	countActions bool
	// keepCount: failed passes are counted across good ones; otherwise the count (and so the backoff)
	// starts again after a good pass.
	keepCount bool
}

var (
	// runPolicy is Run's: never stop, never give up.
	runPolicy = loopPolicy{}
	// oncePolicy is Once's (--once, init containers): passes until one is clean, giving up after
	// maxFailedPasses passes with failures (or four times as many re-plans: other writers).
	oncePolicy = loopPolicy{stopWhenClean: true, fullPasses: true, maxFailed: maxFailedPasses,
		maxReplans: 4 * maxFailedPasses, countActions: true, keepCount: true}
)

// maxFailedPasses is how many passes with failures Once tolerates before it gives up.
const maxFailedPasses = 8

// tally counts a loop's failed and re-planned passes.
type tally struct{ failed, replans int }

// next is what a loop does after a pass: the next pass's kind, and when it is due at the latest (zero:
// when something arrives). done: stop, with err.
type next struct {
	kind passKind
	at   time.Time
	done bool
	err  error
}

// after decides, by policy, what follows a pass that returned res and err.
func (s *Syncer) after(pol loopPolicy, t *tally, res Result, err error) next {
	n := next{at: res.NextWake}
	switch {
	case err != nil:
		t.failed++
		if pol.maxFailed > 0 && t.failed >= pol.maxFailed {
			return next{done: true, err: fmt.Errorf("sync did not converge: %w", err)}
		}
		d := backoff.Default.Delay(t.failed)
		s.log.Error("pass failed", "attempt", t.failed, "err", err, "retry_in", d.Round(time.Millisecond))
		n.at, n.kind = s.now().Add(d), passKind{walk: true, list: true}
	case pol.stopWhenClean && res.Clean():
		n.done = true
	case res.Replan:
		if t.replans++; pol.maxReplans > 0 && t.replans > pol.maxReplans {
			return next{done: true, err: fmt.Errorf("sync did not converge: other writers kept changing %v", res.Unfinished)}
		}
		n.at, n.kind.list = s.now(), true // at once, with a fresh listing
		t.restart(pol)
	case res.Failed > 0 && pol.countActions:
		if t.failed++; pol.maxFailed > 0 && t.failed >= pol.maxFailed {
			return next{done: true, err: fmt.Errorf("sync did not converge: %d actions failed in the last pass: %v", res.Failed, res.Unfinished)}
		}
	default:
		t.restart(pol)
	}
	if pol.fullPasses {
		n.kind.walk, n.kind.list = true, true
	}
	return n
}

// restart starts the count of failed passes again after a good one, unless the policy keeps it.
func (t *tally) restart(pol loopPolicy) {
	if !pol.keepCount {
		t.failed = 0
	}
}

// Once runs passes until one is clean (for --once and init containers): oncePolicy. Files still settling
// or open for writing are waited for without limit: they are the app's.
func (s *Syncer) Once(ctx context.Context) error {
	var t tally
	k := passKind{walk: true, list: true}
	for {
		res, err := s.pass(ctx, k)
		n := s.after(oncePolicy, &t, res, err)
		if n.done {
			return n.err
		}
		k = n.kind
		if wait := n.at.Sub(s.now()); wait > 0 && !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// Run syncs until ctx is done (runPolicy): a first full pass (the restore; Ready after it), then targeted
// passes whenever a local hint or a remote change arrives (the bucket is polled every PollInterval and a
// listing that differs from the last one is a change), or a deferred path is due; the whole tree is
// walked, and the bucket listed, every RescanInterval, after lost events and after a failed pass. Errors
// are logged and retried with backoff; Run returns when ctx is done.
func (s *Syncer) Run(ctx context.Context) error {
	s.status.running.Store(true)
	defer s.status.running.Store(false)
	if s.opt.Lazy != nil {
		fillCtx, stopFill := context.WithCancel(ctx)
		filled := make(chan struct{})
		go func() { defer close(filled); s.runFill(fillCtx) }()
		defer func() { stopFill(); <-filled }()
	}
	w := newWaker(s.opt)
	defer w.stop()
	var t tally
	k := passKind{walk: true, list: true}
	for {
		res, err := s.pass(ctx, k)
		if ctx.Err() != nil {
			return nil
		}
		n := s.after(runPolicy, &t, res, err)
		resetTimer(w.wake, n.at, s.now())
		var ok bool
		if k, ok = s.waitForWork(ctx, w, n.kind, t.failed == 0); !ok {
			return nil
		}
	}
}

// waker holds Run's timers: the poll (or reconcile), the periodic rescan and the next due path.
type waker struct {
	poll, rescan *time.Ticker
	wake         *time.Timer
}

func newWaker(opt Options) *waker {
	return &waker{poll: time.NewTicker(opt.PollInterval), rescan: time.NewTicker(opt.RescanInterval), wake: time.NewTimer(time.Hour)}
}

func (w *waker) stop() { w.poll.Stop(); w.rescan.Stop(); w.wake.Stop() }

// waitForWork waits for a reason to run the next pass, of kind k at least, and returns its kind; false
// when ctx is done. A poll that finds nothing new costs no pass; with nothing failing or waiting it counts
// as a success (an idle replica stays current).
func (s *Syncer) waitForWork(ctx context.Context, w *waker, k passKind, noFailures bool) (passKind, bool) {
	for {
		select {
		case <-ctx.Done():
			return k, false
		case <-s.intake.trigger:
			// Let a burst of events coalesce: one pass for many writes.
			return k, backoff.Sleep(ctx, min(s.opt.Settle/4, 100*time.Millisecond))
		case <-w.wake.C:
			return k, true
		case <-w.rescan.C:
			k.walk, k.list = true, k.list || !s.opt.Notified
			return k, true
		case <-w.poll.C:
			s.beat()
			changed, err := s.list(ctx, false)
			switch {
			case err != nil:
				s.log.Warn("polling the bucket", "err", err)
			case changed:
				return k, true // the objects that changed are planned by the next pass
			case noFailures && len(s.holds.failures) == 0:
				s.m.LastSuccess.Set(float64(s.now().Unix()))
			}
		}
	}
}

// resetTimer arms t for at (an hour when there is nothing to wait for). Since Go 1.23 Reset discards a
// pending expiry, so no drain is needed.
func resetTimer(t *time.Timer, at, now time.Time) {
	if at.IsZero() {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(at.Sub(now), 0))
}
