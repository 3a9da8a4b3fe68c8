package metrics

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// monitoringDir is the kit's monitoring Component, whose dashboard and alerts name these metrics.
const monitoringDir = "../../../manifests/components/filesync-monitoring"

// metricName matches a metric the sidecar exports (filesync_…) or the Go/process collectors it registers.
var metricName = regexp.MustCompile(`\b(?:filesync|go|process)_[a-zA-Z0-9_]+`)

// exported returns every series name the registry gathers, with the _bucket/_sum/_count names of
// histograms and summaries, once every vec has a child.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := New()
	m.Errors.WithLabelValues("list")
	m.SkippedPaths.WithLabelValues("unreadable")
	m.ReadThrough.WithLabelValues("local")
	m.PeerRequests.WithLabelValues("served")
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		n := f.GetName()
		names[n] = true
		// By the type's name, so the sidecar's go.mod needs no direct client_model requirement.
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case "SUMMARY":
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}

// TestMonitoringNamesExportedMetrics fails when the dashboard or the alerts name a metric the sidecar does
// not export (a rename, a typo, a metric not yet built).
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	have := exported(t)
	for _, file := range []string{"dashboard.json", "prometheusrule.yaml"} {
		b, err := os.ReadFile(filepath.Join(monitoringDir, file))
		if err != nil {
			t.Fatal(err)
		}
		named := metricName.FindAllString(string(b), -1)
		if len(named) == 0 {
			t.Fatalf("%s names no metric: is the pattern wrong?", file)
		}
		slices.Sort(named)
		for _, n := range slices.Compact(named) {
			if !have[n] {
				t.Errorf("%s names %s, which the sidecar's registry does not export", file, n)
			}
		}
	}
}

// TestMetricNamePattern keeps the extraction honest: it finds names inside PromQL and skips lookalikes.
func TestMetricNamePattern(t *testing.T) {
	got := metricName.FindAllString(`sum by (pod) (rate(filesync_errors_total{op="x"}[5m])) / go_memstats_x filesync:rec`, -1)
	if want := []string{"filesync_errors_total", "go_memstats_x"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if have := exported(t); !have["filesync_pass_duration_seconds_bucket"] || have["filesync_nonexistent_total"] ||
		!have["process_resident_memory_bytes"] || !have["filesync_errors_total"] {
		t.Fatalf("registry names: %s", strings.Join(slices.Sorted(maps.Keys(have)), " "))
	}
}
