//go:build e2e

package suite

import (
	"context"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// filesync's /metrics on each replica shows the uploads and downloads the test caused.
func TestMetricsShowTheTransfersTheTestCaused(t *testing.T) {
	const (
		uploads   = "filesync_uploads_total"
		downloads = "filesync_downloads_total"
		ready     = "filesync_ready"
	)
	f := features.New("metrics").
		Assess("a file written on replica A counts as an upload on A and as a download on every other replica",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				pods := readyReplicas(ctx, t, st, replicas)
				before := map[string]harness.Metrics{}
				for _, p := range pods {
					m, err := scrapeMetrics(ctx, st.Kube, p.Name)
					if err != nil {
						t.Fatal(err)
					}
					if m.Sum(ready) != 1 {
						t.Errorf("%s: %s = %v, want 1", p.Name, ready, m.Sum(ready))
					}
					before[p.Name] = m
				}
				a := pods[0].Name
				rel := "uploads/e2e/" + harness.RandomName("metrics") + "/counted.bin"
				data := harness.RandomBytes(32 << 10)
				if _, err := writeAndAwait(ctx, t, st, pods, rel, data); err != nil {
					t.Fatal(err)
				}
				for _, p := range pods {
					// a download is counted when the file is in place, an upload once GCS acknowledged it:
					// both happened before the content was seen, so one scrape suffices
					after, err := scrapeMetrics(ctx, st.Kube, p.Name)
					if err != nil {
						t.Fatal(err)
					}
					du := after.Sum(uploads) - before[p.Name].Sum(uploads)
					dd := after.Sum(downloads) - before[p.Name].Sum(downloads)
					t.Logf("MEASURED metrics %s: %s %v (+%v), %s %v (+%v)", p.Name,
						uploads, after.Sum(uploads), du, downloads, after.Sum(downloads), dd)
					if p.Name == a && du < 1 {
						t.Errorf("%s wrote the file but %s rose by %v", p.Name, uploads, du)
					}
					if p.Name != a && dd < 1 {
						t.Errorf("%s received the file but %s rose by %v", p.Name, downloads, dd)
					}
				}
				return ctx
			}).
		Feature()
	testenv.Test(t, f)
}
