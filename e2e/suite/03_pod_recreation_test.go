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

// Pod recreation: delete replica A; its replacement's WordPress container starts only after filesync restored
// everything (every restored file predates the container's start, and is there at its first observed
// moment), and it serves the media.
func TestRecreatedReplicaRestoresBeforeWordPressStarts(t *testing.T) {
	f := features.New("pod recreation").
		Setup(uploadOnFirstReplica).
		Assess("the replacement of a deleted replica has every file before its WordPress container starts",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				before := names(readyReplicas(ctx, t, st, replicas))
				want, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}

				start := time.Now()
				if err := st.Kube.DeletePod(ctx, up.pod); err != nil {
					t.Fatal(err)
				}
				// watch for the replacement and look into it as soon as its WordPress container runs
				repl := replacementRunning(ctx, t, st, before, up.pod)
				early, err := st.Kube.Tree(ctx, repl.Name, "uploads")
				if err != nil {
					t.Fatal(err)
				}
				if err := completeAgainst(early, want); err != nil {
					t.Errorf("%s at the first sight of its running wordpress container: %v", repl.Name, err)
				}
				t.Logf("MEASURED pod recreation: replacement %s had WordPress running %.2fs after the delete, with %d/%d files present",
					repl.Name, time.Since(start).Seconds(), len(early), len(want))

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
				tree, err := st.Kube.Tree(ctx, repl.Name, "uploads")
				if err != nil {
					t.Fatal(err)
				}
				var lastRestore time.Time
				for rel := range want {
					fi := tree[rel]
					lastRestore = maxTime(lastRestore, fi.CTime)
					// container start times have a resolution of one second
					if fi.CTime.Truncate(time.Second).After(appStart) {
						t.Errorf("%s: %s was written at %s, after wordpress started (%s)", repl.Name, rel, fi.CTime, appStart)
					}
				}
				t.Logf("MEASURED pod recreation: %s filesync started %s, last of %d files restored %s, wordpress started %s",
					repl.Name, syncStart.Format(time.RFC3339), len(want), lastRestore.Format(time.RFC3339Nano), appStart.Format(time.RFC3339))
				return context.WithValue(ctx, replacementKey{}, repl.Name)
			}).
		Assess("the replacement serves the media over HTTP",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				up := ctx.Value(mediaKey{}).(uploaded)
				if err := servesMedia(ctx, st, ctx.Value(replacementKey{}).(string), up.media, up.content); err != nil {
					t.Fatal(err)
				}
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
