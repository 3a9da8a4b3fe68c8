package syncer

import (
	"context"
	"maps"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// Run syncs until ctx is done: a first full pass (the restore; Ready after it), then a pass whenever a
// local hint arrives, the bucket changed (polled every PollInterval), a deferred path is due, or the
// RescanInterval elapses. Errors are logged and retried with backoff; Run returns when ctx is done.
func (s *Syncer) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)

	poll := time.NewTicker(s.opt.PollInterval)
	defer poll.Stop()
	rescan := time.NewTicker(s.opt.RescanInterval)
	defer rescan.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	failures := 0
	freshList := true
	for {
		res, err := s.Pass(ctx, freshList)
		if ctx.Err() != nil {
			return nil
		}
		next := res.NextWake
		switch {
		case err != nil:
			failures++
			d := backoff.Default.Delay(failures)
			s.log.Error("pass failed", "err", err, "retry_in", d.Round(time.Millisecond))
			next = s.now().Add(d)
		case res.Replan:
			failures = 0
			next = s.now() // at once, with a fresh listing
		default:
			failures = 0
		}
		resetTimer(wake, next, s.now())

		freshList = err != nil || res.Replan
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-s.trigger:
				if s.rescan.Swap(false) {
					freshList = true
				}
				// Let a burst of events coalesce: one pass for many writes.
				if !backoff.Sleep(ctx, min(s.opt.Settle/4, 100*time.Millisecond)) {
					return nil
				}
				waiting = false
			case <-wake.C:
				waiting = false
			case <-rescan.C:
				freshList = true
				waiting = false
			case <-poll.C:
				s.beat()
				changed, err := s.remoteChanged(ctx)
				if err != nil {
					s.log.Warn("polling the bucket", "err", err)
					continue
				}
				if changed {
					freshList = false // remoteChanged just refreshed the view
					waiting = false
				} else if failures == 0 && s.idleInSync() {
					// Nothing changed and nothing is failing or waiting: as good as a clean pass, without one.
					s.m.LastSuccess.Set(float64(s.now().Unix()))
				}
			}
		}
	}
}

// idleInSync reports whether no path is failing or waiting (busy, backing off).
func (s *Syncer) idleInSync() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failures) == 0
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

// remoteChanged lists the bucket and reports whether the listing differs from the last one (which this
// replica's own writes keep current): a new object, a new generation, or an object gone. It does not
// compare with the base, which may never catch up (deletes withheld by the guard, a download that keeps
// failing) and would turn every poll into a pass. The listing becomes the view the next pass uses.
func (s *Syncer) remoteChanged(ctx context.Context) (bool, error) {
	s.mu.Lock()
	before, listed := s.view, s.listed
	s.mu.Unlock()
	view, err := s.list(ctx)
	if err != nil {
		return false, err
	}
	return !listed || !maps.Equal(before, view), nil
}

// Flush uploads what changed locally (and deletes remotely what was deleted locally), ignoring the settle
// time, within ctx's deadline. It is the last thing done on SIGTERM: the app has stopped writing. It
// returns the paths it could not flush.
func (s *Syncer) Flush(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	clear(s.failures) // last chance: paths backing off are tried too
	s.mu.Unlock()
	remote, err := s.cachedView(ctx)
	if err != nil {
		return nil, err
	}
	local, _, err := s.scan(0)
	if err != nil {
		return nil, err
	}
	snap := snapshot{local: local, remote: remote}
	p := s.compute(snap, 0)
	var outgoing []plan.Action
	for _, a := range p.Actions {
		if a.Op == plan.Upload || a.Op == plan.DeleteRemote || a.Op == plan.Conflict {
			outgoing = append(outgoing, a)
		}
	}
	p.Actions = outgoing
	res := s.execute(ctx, p, snap, true)
	s.saveState()
	return res.Unfinished, nil
}
