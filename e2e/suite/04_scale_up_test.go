//go:build e2e

package suite

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

// Scale up from 3 to 5: the new replicas start complete (every file of the bucket is there, written before
// their WordPress container started).
func TestScaledUpReplicasStartComplete(t *testing.T) {
	f := features.New("scale up").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			st := StateFrom(ctx)
			uploadAndSpread(ctx, t, st, readyReplicas(ctx, t, st, replicas)[0].Name)
			return ctx
		}).
		Assess("scaling from 3 to 5 adds two replicas that hold every file of the bucket when WordPress starts",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				before := names(readyReplicas(ctx, t, st, replicas))
				want, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				if err := st.Kube.Scale(ctx, 5, st.Config.Timeout); err != nil {
					t.Fatal(err)
				}
				t.Logf("MEASURED scale up: 5 replicas ready %.2fs after scaling (%d files to restore)", time.Since(start).Seconds(), len(want))
				var fresh []corev1.Pod
				for _, p := range readyReplicas(ctx, t, st, 5) {
					if !slices.Contains(before, p.Name) {
						fresh = append(fresh, p)
					}
				}
				if len(fresh) != 2 {
					t.Fatalf("want 2 new replicas, have %v", names(fresh))
				}
				for _, p := range fresh {
					appStart, _ := containerStarted(p, appContainer)
					tree, err := st.Kube.Tree(ctx, p.Name, "uploads")
					if err != nil {
						t.Fatal(err)
					}
					if err := completeAgainst(tree, want); err != nil {
						t.Errorf("new replica %s is not complete: %v", p.Name, err)
					}
					for rel := range want {
						if ct := tree[rel].CTime; ct.Truncate(time.Second).After(appStart) {
							t.Errorf("%s: %s written at %s, after wordpress started (%s)", p.Name, rel, ct, appStart)
						}
					}
					t.Logf("new replica %s: %d/%d files, wordpress started %s", p.Name, len(tree), len(want), appStart.Format(time.RFC3339))
				}
				return ctx
			}).
		Teardown(scaleBack).
		Feature()
	testenv.Test(t, f)
}
