//go:build e2e

package suite

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

type mediaKey struct{}

type uploaded struct {
	media   Media
	content map[string][]byte
	pod     string
}

// A real WordPress media upload through its REST API on replica A is served over HTTP by replicas B and C,
// thumbnails included.
func TestMediaUploadedOnOneReplicaIsServedByTheOthers(t *testing.T) {
	f := features.New("media upload").
		Assess("an image uploaded through the REST API of replica A is stored with its generated sizes",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				a := readyReplicas(ctx, t, st, replicas)[0].Name
				m, content := uploadAndSpread(ctx, t, st, a)
				t.Logf("media %d uploaded on %s: %d files %v", m.ID, a, len(content), m.Files())
				return context.WithValue(ctx, mediaKey{}, uploaded{media: m, content: content, pod: a})
			}).
		Assess("replicas B and C serve the image and every thumbnail over HTTP, byte-identical",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				var others []string
				for _, p := range readyReplicas(ctx, t, st, replicas) {
					if p.Name != up.pod {
						others = append(others, p.Name)
					}
				}
				start := time.Now()
				took, err := awaitEverywhere(ctx, start, st.Config.PropagationBound, others,
					func(ctx context.Context, pod string) (bool, error) {
						return true, servesMedia(ctx, st, pod, up.media, up.content)
					})
				logArrivals(t, "media served by the other replicas", took)
				if err != nil {
					t.Fatal(err)
				}
				return ctx
			}).
		Feature()
	testenv.Test(t, f)
}

// uploadOnFirstReplica is a Setup step: a media item uploaded on the first ready replica and spread to
// every replica and the bucket (uploadAndSpread), kept in the context under mediaKey.
func uploadOnFirstReplica(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	a := readyReplicas(ctx, t, st, replicas)[0].Name
	m, content := uploadAndSpread(ctx, t, st, a)
	return context.WithValue(ctx, mediaKey{}, uploaded{media: m, content: content, pod: a})
}
