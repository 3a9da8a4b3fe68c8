//go:build e2e

package suite

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

type snapshotKey struct{}

// Scale to zero and back: nothing is lost, because the bucket is the source of truth.
func TestScaleToZeroAndBackLosesNothing(t *testing.T) {
	f := features.New("scale to zero").
		Setup(uploadOnFirstReplica).
		Assess("with no replica left the bucket still holds every file",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				want, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Kube.Scale(ctx, 0, st.Config.Timeout); err != nil {
					t.Fatal(err)
				}
				got, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}
				if err := completeAgainst(got, want); err != nil {
					t.Fatalf("the bucket lost files while scaling to zero: %v", err)
				}
				t.Logf("bucket holds %d files with no replica running", len(got))
				return context.WithValue(ctx, snapshotKey{}, want)
			}).
		Assess("scaled back to 3, every replica serves the media and is filled in with every file",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				want := ctx.Value(snapshotKey{}).(map[string]FileInfo)
				start := time.Now()
				if err := st.Kube.Scale(ctx, replicas, st.Config.Timeout); err != nil {
					t.Fatal(err)
				}
				t.Logf("MEASURED scale from zero: %d replicas ready %.2fs after scaling (%d files restored each)",
					replicas, time.Since(start).Seconds(), len(want))
				for _, p := range readyReplicas(ctx, t, st, replicas) {
					if err := servesMedia(ctx, st, p.Name, up.media, up.content); err != nil {
						t.Error(err)
					}
					if _, err := filledIn(ctx, st, p.Name, want); err != nil { // uploads/ is lazy: filled in behind
						t.Errorf("after scaling back: %v", err)
					}
				}
				t.Logf("files checked: %v", slices.Sorted(maps.Keys(want)))
				return ctx
			}).
		Teardown(scaleBack).
		Feature()
	testenv.Test(t, f)
}
