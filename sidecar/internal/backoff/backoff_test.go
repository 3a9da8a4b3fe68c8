package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelayIsCappedAndJittered(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	seen := map[time.Duration]bool{}
	for n := 1; n <= 20; n++ {
		for range 50 {
			d := p.Delay(n)
			want := min(p.Initial<<(n-1), p.Max)
			if n > 10 {
				want = p.Max
			}
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays: no jitter?", len(seen))
	}
}

func TestSleepHonoursCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan bool)
		go func() { done <- Sleep(ctx, time.Hour) }()
		time.Sleep(time.Minute)
		cancel()
		if <-done {
			t.Fatal("Sleep reported a full wait after cancellation")
		}
		start := time.Now()
		if !Sleep(context.Background(), 3*time.Second) || time.Since(start) != 3*time.Second {
			t.Fatal("Sleep did not wait exactly 3s of fake time")
		}
	})
}
