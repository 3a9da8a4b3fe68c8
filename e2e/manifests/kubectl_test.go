package manifests_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/filesync/filesync/e2e/manifests"
)

// TestKubectlRendersIdentically renders every kustomization with `kubectl kustomize` (what users, the
// Makefile and Tilt run) and with the krusty API the other tests use, and wants the same objects.
// Without kubectl the test skips, unless FILESYNC_REQUIRE_KUBECTL=1 (CI) makes that a failure.
func TestKubectlRendersIdentically(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, dir := range []string{kindOverlay, gkeOverlay, galleryDir, fakeGCSDir} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			got, err := manifests.KubectlKustomize(t.Context(), filepath.Join(root, dir))
			if errors.Is(err, manifests.ErrNoKubectl) {
				if os.Getenv("FILESYNC_REQUIRE_KUBECTL") == "1" {
					t.Fatal("kubectl is not on PATH and FILESYNC_REQUIRE_KUBECTL=1")
				}
				t.Skip("kubectl is not on PATH; set FILESYNC_REQUIRE_KUBECTL=1 to make this a failure")
			}
			if err != nil {
				t.Fatal(err)
			}
			want := render(t, dir).YAML
			diff, err := manifests.DiffDocs(want, got)
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("krusty (first) and kubectl kustomize (second) disagree: %s", diff)
			}
		})
	}
}
