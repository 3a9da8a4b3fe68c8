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

// Scale up from 3 to 5: the new replicas start with their code (every code file of the bucket is there,
// written before their WordPress container started), serve the media at once and are then filled in with
// all of it (uploads/ is lazy in the kind overlay).
func TestScaledUpReplicasStartComplete(t *testing.T) {
	f := features.New("scale up").
		Setup(uploadOnFirstReplica).
		Setup(placeCodeOnUploader).
		Assess("scaling from 3 to 5 adds two replicas that hold their code when WordPress starts, serve the media and fill it in",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				code := ctx.Value(codeKey{}).(map[string]FileInfo)
				before := names(readyReplicas(ctx, t, st, replicas))
				want, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				if err := st.Kube.Scale(ctx, 5, st.Config.Timeout); err != nil {
					t.Fatal(err)
				}
				t.Logf("MEASURED scale up: 5 replicas ready %.2fs after scaling (%d code files to restore, %d media files to fill in)",
					time.Since(start).Seconds(), len(code), len(want))
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
					tree := codeBeforeStart(ctx, t, st, p.Name, appStart, code)
					if err := servesMedia(ctx, st, p.Name, up.media, up.content); err != nil {
						t.Error(err)
					}
					took, err := filledIn(ctx, st, p.Name, want)
					if err != nil {
						t.Error(err)
					}
					t.Logf("new replica %s: %d/%d code files, wordpress started %s, all %d media files %.2fs later",
						p.Name, len(tree), len(code), appStart.Format(time.RFC3339), len(want), took.Seconds())
				}
				return ctx
			}).
		Teardown(scaleBack).
		Feature()
	testenv.Test(t, f)
}
