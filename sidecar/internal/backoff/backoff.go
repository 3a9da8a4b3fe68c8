// Package backoff is capped, jittered exponential backoff whose waits return on context cancellation.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy describes the delays: Initial, doubled each attempt up to Max, with "equal jitter": a random wait
// between half the delay and the delay (never less than half, so retries stay spread but bounded below).
type Policy struct {
	Initial time.Duration
	Max     time.Duration
}

// Default is used for failing paths and passes.
var Default = Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second}

// Delay returns the wait before attempt n (n >= 1 is the first retry).
func (p Policy) Delay(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	return half + rand.N(half+1)
}

// Sleep waits d or until ctx is done; it reports whether the full wait elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
