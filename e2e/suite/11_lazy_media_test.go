//go:build e2e

package suite

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"
)

type lazyKey struct{}

// lazyRun is what the lazy media feature carries from step to step.
type lazyRun struct {
	before  map[string]FileInfo // the bucket's uploads/ before the replacement
	restore func(context.Context) error
	repl    string
}

// lazyCache is the --cache-size the replacement runs with: smaller than any image WordPress writes, so
// the background fill takes none and every media request goes through the read-through (whose copies the
// next pass evicts): what the pod holds does not depend on how fast the fill is.
const lazyCache = "1kB"

// lazyFetchers is how many media files the feature fetches at once through the replacement's Apache.
const lazyFetchers = 6

// A WordPress pod recreated with uploads/ lazy (issue 23; the kind overlay's components/lazy-media) is
// ready before its media is local (at most the --cache-size budget of it); every media file of the site
// answers 200 through Apache with the bucket's bytes at once (the read-through); and the bucket loses
// nothing. The feature shrinks FILESYNC_CACHE_SIZE in the Component's ConfigMap for the replacement only
// (so that none of the media is local), and puts the overlay's back at the end (the replacement keeps the
// small cache until it is recreated).
func TestRecreatedReplicaWithLazyMediaIsReadyBeforeItsMedia(t *testing.T) {
	f := features.New("lazy media").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			st := StateFrom(ctx)
			a := readyReplicas(ctx, t, st, replicas)[0].Name
			for range 2 {
				uploadAndSpread(ctx, t, st, a)
			}
			before, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
			if err != nil {
				t.Fatal(err)
			}
			restore, err := st.Kube.SetContainerConfig(ctx, deploymentName, syncContainer,
				map[string]string{"FILESYNC_CACHE_SIZE": lazyCache})
			if err != nil {
				t.Fatal(err)
			}
			return context.WithValue(ctx, lazyKey{}, &lazyRun{before: before, restore: restore})
		}).
		Assess("a replica recreated with uploads/ lazy is ready with its code and without its media",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				run := ctx.Value(lazyKey{}).(*lazyRun)
				pods := readyReplicas(ctx, t, st, replicas)
				victim := pods[len(pods)-1].Name
				start := time.Now()
				if err := st.Kube.DeletePod(ctx, victim); err != nil {
					t.Fatal(err)
				}
				repl := replacementRunning(ctx, t, st, names(pods), victim)
				run.repl = repl.Name
				ready := time.Since(start)
				media, err := st.Kube.Tree(ctx, repl.Name, "uploads")
				if err != nil {
					t.Fatal(err)
				}
				var local, total int64
				for _, fi := range media {
					local += fi.Size
				}
				for _, fi := range run.before {
					total += fi.Size
				}
				t.Logf("MEASURED lazy media: replacement %s had WordPress running %.2fs after the delete with %d of %d media files (%d of %d bytes) local",
					repl.Name, ready.Seconds(), len(media), len(run.before), local, total)
				if local > 1000 || len(media) >= len(run.before) {
					t.Errorf("%s holds %d media files (%d bytes) at its start, want at most the %s cache", repl.Name, len(media), local, lazyCache)
				}
				return ctx
			}).
		Assess("every media file of the site answers 200 through Apache with the bucket's bytes, and the bucket loses nothing",
			func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				st := StateFrom(ctx)
				run := ctx.Value(lazyKey{}).(*lazyRun)
				readyReplicas(ctx, t, st, replicas) // Apache answers once the pod is ready, not when its container starts
				// One port-forward for every GET: one each would be an API request each, which the client
				// throttles (5 a second: 40 s for 200 files).
				web := openSites(ctx, t, st, []string{run.repl})[run.repl]
				start := time.Now()
				paths := make(chan string)
				var wg sync.WaitGroup
				for range lazyFetchers {
					wg.Go(func() {
						for rel := range paths {
							// The bucket's MD5 from the listing before the replacement (the last step checks
							// the bucket lost nothing since): one listing, not a read of every object, each
							// through a port-forward of its own.
							want := run.before[rel]
							a := web.do(ctx, http.MethodGet, "/wp-content/"+rel, nil)
							if a.err != nil {
								t.Errorf("GET /wp-content/%s on %s: %v", rel, run.repl, a.err)
								continue
							}
							sum := md5.Sum(a.body)
							if got := hex.EncodeToString(sum[:]); a.status != 200 || got != want.MD5 || int64(len(a.body)) != want.Size {
								t.Errorf("GET /wp-content/%s on %s: HTTP %d, %d bytes, md5 %s (want 200, %d bytes, md5 %s)",
									rel, run.repl, a.status, len(a.body), got, want.Size, want.MD5)
							}
						}
					})
				}
				for rel := range run.before {
					paths <- rel
				}
				close(paths)
				wg.Wait()
				t.Logf("MEASURED lazy media: %d media files served through the read-through in %.2fs", len(run.before), time.Since(start).Seconds())
				after, err := st.Bucket.List(ctx, remotePrefix+"uploads/")
				if err != nil {
					t.Fatal(err)
				}
				for rel, fi := range run.before {
					if got, ok := after[rel]; !ok || got.MD5 != fi.MD5 {
						t.Errorf("the bucket lost or changed %s", rel)
					}
				}
				return ctx
			}).
		Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if run, ok := ctx.Value(lazyKey{}).(*lazyRun); ok && run.restore != nil {
				if err := run.restore(ctx); err != nil {
					t.Error(err)
				}
			}
			return ctx
		}).
		Feature()
	testenv.Test(t, f)
}
