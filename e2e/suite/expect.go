//go:build e2e

package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// bucketTarget names the bucket among the targets of awaitEverywhere.
const bucketTarget = "bucket"

// awaitEverywhere polls check for every target concurrently until it holds, and returns how long after start
// each target took. Targets that do not get there within bound are reported in the error, with the last
// error their check returned.
func awaitEverywhere(ctx context.Context, start time.Time, bound time.Duration, targets []string,
	check func(ctx context.Context, target string) (bool, error)) (map[string]time.Duration, error) {
	var (
		mu   sync.Mutex
		took = map[string]time.Duration{}
		errs []error
		wg   sync.WaitGroup
	)
	deadline := time.Until(start.Add(bound))
	for _, target := range targets {
		wg.Go(func() {
			var last error
			err := wait.For(func(ctx context.Context) (bool, error) {
				ok, err := check(ctx, target)
				if err != nil {
					last = err
					return false, nil
				}
				return ok, nil
			}, wait.WithContext(ctx), wait.WithImmediate(), wait.WithInterval(250*time.Millisecond),
				wait.WithTimeout(max(deadline, time.Second)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && last != nil:
				errs = append(errs, fmt.Errorf("%s: not there within %s (last error: %w)", target, bound, last))
				return
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: not there within %s: %w", target, bound, err))
				return
			}
			took[target] = time.Since(start)
		})
	}
	wg.Wait()
	return took, errors.Join(errs...)
}

// writeAndAwait writes data to rel on the first of pods and waits until every other one and the bucket
// hold it, within the propagation bound; it returns when each target had it, measured from the write.
func writeAndAwait(ctx context.Context, t *testing.T, st *State, pods []corev1.Pod, rel string, data []byte) (map[string]time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := st.Kube.WriteFile(ctx, pods[0].Name, rel, data); err != nil {
		t.Fatal(err)
	}
	targets := append(names(pods[1:]), bucketTarget)
	return awaitEverywhere(ctx, start, st.Config.PropagationBound, targets, hasContent(st, rel, data))
}

// logArrivals prints each target's arrival time and returns the slowest.
func logArrivals(t *testing.T, what string, took map[string]time.Duration) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, target := range slices.Sorted(maps.Keys(took)) {
		t.Logf("MEASURED %s: %-40s %6.2fs", what, target, took[target].Seconds())
		slowest = max(slowest, took[target])
	}
	t.Logf("MEASURED %s: slowest %.2fs", what, slowest.Seconds())
	return slowest
}

// hasContent is a check for awaitEverywhere: the file rel holds exactly want on a replica, or in the bucket.
func hasContent(st *State, rel string, want []byte) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, target string) (bool, error) {
		got, ok, err := readAt(ctx, st, target, rel)
		if err != nil || !ok {
			return false, err
		}
		if !bytes.Equal(got, want) {
			return false, fmt.Errorf("%s: %d bytes differ from the %d written", rel, len(got), len(want))
		}
		return true, nil
	}
}

// readAt reads rel from target: the bucket (bucketTarget) or a replica's pod.
func readAt(ctx context.Context, st *State, target, rel string) ([]byte, bool, error) {
	if target == bucketTarget {
		return st.Bucket.Read(ctx, rel)
	}
	return st.Kube.ReadFile(ctx, target, rel)
}

// isGone is a check for awaitEverywhere: none of files exists on a replica, or in the bucket.
func isGone(st *State, files []string) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, target string) (bool, error) {
		for _, rel := range files {
			_, ok, err := readAt(ctx, st, target, rel)
			if err != nil {
				return false, err
			}
			if ok {
				return false, fmt.Errorf("%s still there", rel)
			}
		}
		return true, nil
	}
}

// scaleBack is the teardown of features that scale WordPress: back to the suite's replica count.
func scaleBack(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	if err := st.Kube.Scale(ctx, replicas, st.Config.Timeout); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// readyReplicas waits until the WordPress Deployment has settled at n Ready pods and returns them.
func readyReplicas(ctx context.Context, t *testing.T, st *State, n int) []corev1.Pod {
	t.Helper()
	if err := st.Kube.WaitRollout(ctx, deploymentName, st.Config.Timeout); err != nil {
		t.Fatal(err)
	}
	pods, err := st.Kube.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != n {
		t.Fatalf("want %d ready wordpress replicas, have %d", n, len(pods))
	}
	return pods
}

func names(pods []corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// uploadAndSpread uploads a fresh PNG through the REST API of pod and waits until every file of the media
// (original and sizes) is in the bucket, byte-identical to the uploading replica's copy. It returns the media
// and the content of each of its files.
func uploadAndSpread(ctx context.Context, t *testing.T, st *State, pod string) (Media, map[string][]byte) {
	t.Helper()
	img, err := testPNG(1200, 900)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.WordPress.Upload(ctx, pod, harness.RandomName("e2e")+".png", "image/png", img)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Details.Sizes) == 0 {
		t.Fatalf("media %d has no generated sizes: WordPress has no image editor (php-gd or imagick)", m.ID)
	}
	content := map[string][]byte{}
	for _, rel := range m.Files() {
		data, ok, err := st.Kube.ReadFile(ctx, pod, rel)
		if err != nil || !ok {
			t.Fatalf("media %d file %s on %s: present=%v err=%v", m.ID, rel, pod, ok, err)
		}
		content[rel] = data
	}
	if !bytes.Equal(content[m.Files()[0]], img) {
		t.Fatalf("media %d: original %s on %s differs from the uploaded bytes", m.ID, m.Files()[0], pod)
	}
	start := time.Now()
	for rel, data := range content {
		if _, err := awaitEverywhere(ctx, start, st.Config.PropagationBound, []string{bucketTarget}, hasContent(st, rel, data)); err != nil {
			t.Fatalf("media %d: %v", m.ID, err)
		}
	}
	return m, content
}

// servesMedia checks that pod serves every file of m over HTTP (GET /wp-content/<file> with the site's Host)
// with exactly the expected content.
func servesMedia(ctx context.Context, st *State, pod string, m Media, content map[string][]byte) error {
	for _, rel := range m.Files() {
		status, body, err := st.WordPress.Fetch(ctx, pod, "/wp-content/"+rel)
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("GET /wp-content/%s on %s: HTTP %d", rel, pod, status)
		}
		if !bytes.Equal(body, content[rel]) {
			return fmt.Errorf("GET /wp-content/%s on %s: %d bytes, not the %d expected", rel, pod, len(body), len(content[rel]))
		}
	}
	return nil
}

// completeAgainst checks that a replica's tree holds every file of want with the same MD5.
func completeAgainst(tree, want map[string]FileInfo) error {
	var errs []error
	for _, rel := range slices.Sorted(maps.Keys(want)) {
		got, ok := tree[rel]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s missing", rel))
		case got.MD5 != want[rel].MD5:
			errs = append(errs, fmt.Errorf("%s: md5 %s, bucket has %s", rel, got.MD5, want[rel].MD5))
		}
	}
	return errors.Join(errs...)
}

// replacementRunning waits for the pod the Deployment makes in place of a deleted one (any pod not in
// before) to run its WordPress container, and returns it at that moment.
func replacementRunning(ctx context.Context, t *testing.T, st *State, before []string, deleted string) corev1.Pod {
	t.Helper()
	var repl corev1.Pod
	err := wait.For(func(ctx context.Context) (bool, error) {
		all, err := st.Kube.PodsOf(ctx, deploymentName, func(p corev1.Pod) bool {
			return p.DeletionTimestamp == nil && !slices.Contains(before, p.Name)
		})
		if err != nil || len(all) == 0 {
			return false, nil
		}
		repl = all[0]
		_, running := containerStarted(repl, appContainer)
		return running, nil
	}, wait.WithContext(ctx), wait.WithInterval(200*time.Millisecond), wait.WithTimeout(st.Config.Timeout))
	if err != nil {
		t.Fatalf("no replacement of %s with a running wordpress container: %v", deleted, err)
	}
	return repl
}

// The kind overlay makes uploads/ lazy (examples/wordpress/components/lazy-media): a new replica's
// WordPress starts once its code is local, and its media is filled in behind (the 1 GiB cache holds all of
// the suite's), served through the read-through meanwhile. codeDir is the eager folder the features check.
const codeDir = "plugins"

// placeCode writes a file under codeDir on pod (a folder WordPress lists as no plugin: it holds no PHP)
// and waits until the bucket has it, so that a new replica has code to restore before its start. It
// returns the bucket's codeDir then.
func placeCode(ctx context.Context, t *testing.T, st *State, pod string) map[string]FileInfo {
	t.Helper()
	rel := codeDir + "/e2e-code/" + harness.RandomName("readme") + ".txt"
	data := []byte("not a plugin: code the e2e suite restores before WordPress starts\n")
	if err := st.Kube.WriteFile(ctx, pod, rel, data); err != nil {
		t.Fatal(err)
	}
	if _, err := awaitEverywhere(ctx, time.Now(), st.Config.PropagationBound, []string{bucketTarget}, hasContent(st, rel, data)); err != nil {
		t.Fatal(err)
	}
	code, err := st.Bucket.List(ctx, remotePrefix+codeDir+"/")
	if err != nil {
		t.Fatal(err)
	}
	maps.DeleteFunc(code, func(rel string, _ FileInfo) bool { return strings.HasPrefix(path.Base(rel), ".") }) // Tree lists no hidden file
	return code
}

type codeKey struct{}

// placeCodeOnUploader is a Setup step after uploadOnFirstReplica: placeCode on the replica that uploaded,
// the bucket's codeDir then kept in the context under codeKey.
func placeCodeOnUploader(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	up := ctx.Value(mediaKey{}).(uploaded)
	return context.WithValue(ctx, codeKey{}, placeCode(ctx, t, st, up.pod))
}

// codeBeforeStart checks that pod held every file of code (the bucket's codeDir), each written before its
// WordPress container started at appStart. It returns the tree it saw.
func codeBeforeStart(ctx context.Context, t *testing.T, st *State, pod string, appStart time.Time, code map[string]FileInfo) map[string]FileInfo {
	t.Helper()
	tree, err := st.Kube.Tree(ctx, pod, codeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := completeAgainst(tree, code); err != nil {
		t.Errorf("%s: its code is not complete: %v", pod, err)
	}
	for rel := range code {
		// container start times have a resolution of one second
		if ct := tree[rel].CTime; ct.Truncate(time.Second).After(appStart) {
			t.Errorf("%s: %s written at %s, after wordpress started (%s)", pod, rel, ct, appStart)
		}
	}
	return tree
}

// filledIn waits, within the propagation bound, until pod holds every media file of want (the bucket's
// uploads/): the background fill's work. It returns how long that took.
func filledIn(ctx context.Context, st *State, pod string, want map[string]FileInfo) (time.Duration, error) {
	took, err := awaitEverywhere(ctx, time.Now(), st.Config.PropagationBound, []string{pod}, holdsMedia(st, want))
	return took[pod], err
}

// holdsMedia checks that a replica's uploads/ holds every file of want, byte-identical (more is fine).
func holdsMedia(st *State, want map[string]FileInfo) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, pod string) (bool, error) {
		tree, err := st.Kube.Tree(ctx, pod, "uploads")
		if err != nil {
			return false, err
		}
		if err := completeAgainst(tree, want); err != nil {
			return false, err
		}
		return true, nil
	}
}
