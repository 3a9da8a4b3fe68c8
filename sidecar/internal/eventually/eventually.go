// Package eventually is the tests' one way to wait for a condition: poll it until it holds or a deadline
// passes, instead of sleeping to "let things settle".
package eventually

import (
	"testing"
	"time"
)

// True polls cond every 10 ms until it holds; after timeout the test fails, naming what it waited for.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
