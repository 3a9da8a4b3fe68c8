//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// TestSIGTERMFlushesAndExitsZero: a file written just before the container is stopped is still uploaded
// (the settle delay is long, so only the shutdown flush can have sent it) and filesync exits 0 within the
// stop timeout, not by SIGKILL.
func TestSIGTERMFlushesAndExitsZero(t *testing.T) {
	s := newStack(t)
	r := s.startReplica(t, "replica", replicaOptions{env: map[string]string{
		"FILESYNC_SETTLE":           "30s",
		"FILESYNC_SHUTDOWN_TIMEOUT": "20s",
	}})

	last := harness.RandomBytes(64 << 10)
	r.writeFile(t, "uploads/last-write.bin", last)

	// Give the watcher the chance to see the file (pending, not yet uploaded because of the settle delay).
	eventually(t, 10*time.Second, "the write is seen as pending", func(ctx context.Context) error {
		_, metrics, err := r.get(ctx, "/metrics")
		if err != nil {
			return err
		}
		if v, ok := metricValue(metrics, "filesync_pending_uploads"); !ok || v < 1 {
			return fmt.Errorf("filesync_pending_uploads = %v (found %v)", v, ok)
		}
		return nil
	})
	if _, err := s.readObject(t.Context(), objectName("uploads/last-write.bin")); err == nil {
		t.Fatal("the file was uploaded before SIGTERM; raise FILESYNC_SETTLE so the test exercises the flush")
	}

	// docker stop: SIGTERM, then SIGKILL after the timeout.
	stopTimeout := 40 * time.Second
	start := time.Now()
	if err := r.c.Stop(t.Context(), &stopTimeout); err != nil {
		t.Fatalf("stop: %v", err)
	}
	took := time.Since(start)
	st, err := r.c.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Running {
		t.Fatal("still running after stop")
	}
	if st.ExitCode != 0 || st.OOMKilled {
		t.Errorf("exit code %d (OOM killed %v) after %s, want 0", st.ExitCode, st.OOMKilled, took)
	}
	if took >= stopTimeout {
		t.Errorf("stop took %s: killed at the timeout, not exited on SIGTERM", took)
	}

	got, err := s.readObject(t.Context(), objectName("uploads/last-write.bin"))
	if err != nil {
		t.Fatalf("the last write was not flushed on SIGTERM: %v", err)
	}
	if !bytes.Equal(got, last) {
		t.Fatalf("flushed object has %d bytes, want %d", len(got), len(last))
	}
}
