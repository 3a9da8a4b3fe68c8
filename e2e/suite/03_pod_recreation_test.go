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

type replacementKey struct{}

// recreation is what the pod recreation feature carries from step to step.
type recreation struct {
	media map[string]FileInfo // the bucket's uploads/ before the delete
	repl  string
}

// Pod recreation: delete replica A; its replacement's WordPress container starts only after filesync restored
// its code (every code file predates the container's start, and is there at its first observed moment); it
// serves every media file at once (uploads/ is lazy: read through from the bucket until the fill has it), and
// the fill then brings all of the media to it.
func TestRecreatedReplicaRestoresBeforeWordPressStarts(t *testing.T) {
	f := features.New("pod recreation").
		Setup(uploadOnFirstReplica).
		Setup(placeCodeOnUploader).
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			media, err := StateFrom(ctx).Bucket.List(ctx, remotePrefix+"uploads/")
			if err != nil {
				t.Fatal(err)
			}
			return context.WithValue(ctx, replacementKey{}, &recreation{media: media})
		}).
		Assess("the replacement of a deleted replica has its code before its WordPress container starts",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				run := ctx.Value(replacementKey{}).(*recreation)
				code := ctx.Value(codeKey{}).(map[string]FileInfo)
				before := names(readyReplicas(ctx, t, st, replicas))

				start := time.Now()
				if err := st.Kube.DeletePod(ctx, up.pod); err != nil {
					t.Fatal(err)
				}
				// watch for the replacement and look into it as soon as its WordPress container runs
				repl := replacementRunning(ctx, t, st, before, up.pod)
				early, err := st.Kube.Tree(ctx, repl.Name, codeDir)
				if err != nil {
					t.Fatal(err)
				}
				if err := completeAgainst(early, code); err != nil {
					t.Errorf("%s at the first sight of its running wordpress container: %v", repl.Name, err)
				}
				media, err := st.Kube.Tree(ctx, repl.Name, "uploads")
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("MEASURED pod recreation: replacement %s had WordPress running %.2fs after the delete, with %d/%d code files and %d/%d media files present",
					repl.Name, time.Since(start).Seconds(), len(early), len(code), len(media), len(run.media))

				pods := readyReplicas(ctx, t, st, replicas)
				idx := slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.Name == repl.Name })
				if idx < 0 {
					t.Fatalf("replacement %s is not among the ready replicas %v", repl.Name, names(pods))
				}
				repl = pods[idx]
				syncStart, ok1 := containerStarted(repl, syncContainer)
				appStart, ok2 := containerStarted(repl, appContainer)
				if !ok1 || !ok2 {
					t.Fatalf("%s: filesync running=%v, wordpress running=%v", repl.Name, ok1, ok2)
				}
				if n := restarts(repl, appContainer); n != 0 {
					t.Errorf("%s: wordpress restarted %d times; its first start is not the one observed", repl.Name, n)
				}
				if appStart.Before(syncStart) {
					t.Errorf("%s: wordpress started at %s, before filesync (%s)", repl.Name, appStart, syncStart)
				}
				tree := codeBeforeStart(ctx, t, st, repl.Name, appStart, code)
				var lastRestore time.Time
				for rel := range code {
					lastRestore = maxTime(lastRestore, tree[rel].CTime)
				}
				t.Logf("MEASURED pod recreation: %s filesync started %s, last of %d code files restored %s, wordpress started %s",
					repl.Name, syncStart.Format(time.RFC3339), len(code), lastRestore.Format(time.RFC3339Nano), appStart.Format(time.RFC3339))
				run.repl = repl.Name
				return ctx
			}).
		Assess("the replacement serves the media over HTTP, and the fill brings all of it",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				run := ctx.Value(replacementKey{}).(*recreation)
				if err := servesMedia(ctx, st, run.repl, up.media, up.content); err != nil {
					t.Fatal(err)
				}
				took, err := filledIn(ctx, st, run.repl, run.media)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("MEASURED pod recreation: %s held all %d media files %.2fs after serving them", run.repl, len(run.media), took.Seconds())
				return ctx
			}).
		Feature()
	testenv.Test(t, f)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
