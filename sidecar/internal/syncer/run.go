package syncer

import (
	"context"
	"time"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/plan"
)

// Run syncs until ctx is done: a first full pass (the restore; Ready after it), then targeted passes
// whenever a local hint or a remote change arrives (the bucket is polled every PollInterval and a listing
// that differs from the last one is a change), or a deferred path is due; the whole tree is walked and the
// bucket listed again every RescanInterval, after lost events and after a failed pass. Errors are logged
// and retried with backoff; Run returns when ctx is done.
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
	walk, list := true, true
	for {
		res, err := s.pass(ctx, walk, list)
		if ctx.Err() != nil {
			return nil
		}
		next := res.NextWake
		walk, list = false, false
		switch {
		case err != nil:
			failures++
			d := backoff.Default.Delay(failures)
			s.log.Error("pass failed", "err", err, "retry_in", d.Round(time.Millisecond))
			next = s.now().Add(d)
			walk, list = true, true
		case res.Replan:
			failures = 0
			next = s.now() // at once, with a fresh listing
			list = true
		default:
			failures = 0
		}
		resetTimer(wake, next, s.now())

		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-s.trigger:
				// Let a burst of events coalesce: one pass for many writes.
				if !backoff.Sleep(ctx, min(s.opt.Settle/4, 100*time.Millisecond)) {
					return nil
				}
				waiting = false
			case <-wake.C:
				waiting = false
			case <-rescan.C:
				walk, list = true, !s.opt.Notified
				waiting = false
			case <-poll.C:
				s.beat()
				changed, err := s.list(ctx)
				if err != nil {
					s.log.Warn("polling the bucket", "err", err)
					continue
				}
				if changed {
					waiting = false // the objects that changed are planned by the next pass
				} else if failures == 0 && len(s.failures) == 0 {
					// Nothing changed and nothing is failing or waiting: as good as a clean pass, without one.
					s.m.LastSuccess.Set(float64(s.now().Unix()))
				}
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

// remoteChanged lists the bucket and reports whether the listing differs from the last one (which this
// replica's own writes keep current): a new object, a new generation, or an object gone. It does not
// compare with the base, which may never catch up (deletes withheld by the guard, a download that keeps
// failing) and would turn every poll into a pass. The objects that changed are planned by the next pass.
func (s *Syncer) remoteChanged(ctx context.Context) (bool, error) { return s.list(ctx) }

// Flush uploads what changed locally (and deletes remotely what was deleted locally), ignoring the settle
// time, within ctx's deadline. It is the last thing done on SIGTERM: the app has stopped writing. It
// returns the paths it could not flush.
func (s *Syncer) Flush(ctx context.Context) ([]string, error) {
	clear(s.failures) // last chance: paths backing off are tried too
	if !s.idx.listed {
		if _, err := s.list(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.walk(0); err != nil {
		return nil, err
	}
	clear(s.fresh)
	p := s.compute(nil, 0)
	var outgoing []plan.Action
	for _, a := range p.Actions {
		if a.Op == plan.Upload || a.Op == plan.DeleteRemote || a.Op == plan.Conflict {
			outgoing = append(outgoing, a)
		}
	}
	p.Actions = outgoing
	res := s.execute(ctx, p, true)
	s.saveState()
	return res.Unfinished, nil
}
