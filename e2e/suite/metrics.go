//go:build e2e

package suite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Metrics is one scrape of a filesync /metrics endpoint: every sample's value by its full series text
// (name plus labels).
type Metrics map[string]float64

// Sum adds up every series of the metric name (all label combinations).
func (m Metrics) Sum(name string) float64 {
	var total float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// scrapeMetrics reads filesync's /metrics on pod (the sidecar listens on :8090).
func scrapeMetrics(ctx context.Context, k *Kube, pod string) (Metrics, error) {
	status, body, err := k.Get(ctx, pod, metricsPort, "", "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", pod, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d: %s", pod, status, excerpt(body))
	}
	return parseMetrics(body)
}

// parseMetrics reads the Prometheus text exposition format (comments skipped, timestamps ignored).
func parseMetrics(body []byte) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// the series may contain spaces inside label values: split after the closing brace if any
		series, rest := line, ""
		if i := strings.LastIndex(line, "}"); i >= 0 {
			series, rest = line[:i+1], strings.TrimSpace(line[i+1:])
		} else if f := strings.Fields(line); len(f) >= 2 {
			series, rest = f[0], strings.Join(f[1:], " ")
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[series] = v
	}
	return m, sc.Err()
}
