//go:build e2e

package suite

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// scrapeMetrics reads filesync's /metrics on pod (the sidecar listens on :8090).
func scrapeMetrics(ctx context.Context, k *Kube, pod string) (harness.Metrics, error) {
	status, body, err := k.Get(ctx, pod, metricsPort, "", "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", pod, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d: %s", pod, status, excerpt(body))
	}
	m, err := harness.ParseMetrics(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", pod, err)
	}
	return m, nil
}
