//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestReadyzAndMetricsThroughMappedPorts: /healthz, /readyz and /metrics answer on the published port;
// /readyz only turns 200 after the first pass, so what was already in the bucket is on disk by then; the
// upload counter moves when the app writes a file.
func TestReadyzAndMetricsThroughMappedPorts(t *testing.T) {
	s := newStack(t)
	seed := []byte("in the bucket before the replica started\n")
	if err := s.putObject(t.Context(), objectName("uploads/seed.txt"), seed); err != nil {
		t.Fatal(err)
	}

	// startReplica waits for /readyz = 200 through the mapped port.
	r := s.startReplica(t, "replica", replicaOptions{})

	// Ready means restored: no polling here.
	got, err := r.readFile(t.Context(), "uploads/seed.txt")
	if err != nil {
		t.Fatalf("ready, but the bucket's file is not on disk: %v", err)
	}
	if !bytes.Equal(got.data, seed) {
		t.Fatalf("restored seed.txt = %q, want %q", got.data, seed)
	}

	for _, p := range []string{"/healthz", "/readyz"} {
		code, body, err := r.get(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", p, code, body)
		}
	}

	code, metrics, err := r.get(t.Context(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	if v, ok := metricValue(metrics, "filesync_ready"); !ok || v != 1 {
		t.Errorf("filesync_ready = %v (found %v), want 1", v, ok)
	}
	if v, ok := metricValue(metrics, "filesync_downloads_total"); !ok || v < 1 {
		t.Errorf("filesync_downloads_total = %v (found %v), want >= 1 after the restore", v, ok)
	}
	before, _ := metricValue(metrics, "filesync_uploads_total")

	r.writeFile(t, "uploads/new.txt", []byte("new\n"))
	eventually(t, 30*time.Second, "filesync_uploads_total grows", func(ctx context.Context) error {
		code, metrics, err := r.get(ctx, "/metrics")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /metrics = %d", code)
		}
		v, ok := metricValue(metrics, "filesync_uploads_total")
		if !ok || v <= before {
			return fmt.Errorf("filesync_uploads_total = %v (found %v), was %v", v, ok, before)
		}
		return nil
	})
	if _, err := s.readObject(t.Context(), objectName("uploads/new.txt")); err != nil {
		t.Errorf("uploads counted, but the object is not in the bucket: %v", err)
	}
}
