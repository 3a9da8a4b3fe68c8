//go:build e2e

package suite

import (
	"context"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// A file written into wp-content/uploads of replica A appears, byte-identical, in every other replica and in
// the bucket within the stated bound (E2E_PROPAGATION_BOUND, 30s by default); the measured times are printed.
func TestFileWrittenOnOneReplicaReachesEveryReplicaAndTheBucket(t *testing.T) {
	f := features.New("propagation").
		Assess("a file written on replica A is byte-identical on every other replica and in the bucket within the bound",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				pods := readyReplicas(ctx, t, st, replicas)
				a := pods[0].Name
				rel := "uploads/e2e/" + harness.RandomName("propagation") + "/hello.bin"
				data := harness.RandomBytes(96 << 10)

				took, err := writeAndAwait(ctx, t, st, pods, rel, data)
				slowest := logArrivals(t, "propagation of a 96 KiB file from "+a, took)
				if err != nil {
					t.Fatalf("not everywhere within %s: %v", st.Config.PropagationBound, err)
				}
				t.Logf("MEASURED propagation bound: stated %s, slowest observed %.2fs", st.Config.PropagationBound, slowest.Seconds())
				return ctx
			}).
		Feature()
	testenv.Test(t, f)
}
