//go:build e2e

package suite

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

// Deleting the media in WordPress removes its files on every replica and in the bucket.
func TestDeletedMediaLeavesEveryReplicaAndTheBucket(t *testing.T) {
	f := features.New("media delete").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			st := StateFrom(ctx)
			pods := readyReplicas(ctx, t, st, replicas)
			m, content := uploadAndSpread(ctx, t, st, pods[0].Name)
			// the media must be everywhere before its deletion can be seen to propagate
			for rel, data := range content {
				if _, err := awaitEverywhere(ctx, time.Now(), st.Config.PropagationBound, names(pods), hasContent(st, rel, data)); err != nil {
					t.Fatal(err)
				}
			}
			return context.WithValue(ctx, mediaKey{}, uploaded{media: m, content: content, pod: pods[0].Name})
		}).
		Assess("deleting the media through the REST API of replica A removes every file of it everywhere",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				pods := readyReplicas(ctx, t, st, replicas)
				start := time.Now()
				if err := st.WordPress.Delete(ctx, up.pod, up.media.ID); err != nil {
					t.Fatal(err)
				}
				targets := append(names(pods), bucketTarget)
				took, err := awaitEverywhere(ctx, start, st.Config.PropagationBound, targets, isGone(st, up.media.Files()))
				logArrivals(t, "deletion of the media's files", took)
				if err != nil {
					t.Fatal(err)
				}
				return ctx
			}).
		Feature()
	testenv.Test(t, f)
}
