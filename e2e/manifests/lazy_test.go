package manifests_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/filesync/filesync/e2e/manifests"
)

// TestLazyMediaSizing: an overlay that makes uploads/ lazy (components/lazy-media) also serves what is
// not local yet (the read-through covers uploads/), bounds the cache, and gives the shared emptyDir a
// sizeLimit that holds the cache plus at least 512 MiB for the code, the temporary files and the
// transfers in flight (the sizing its kustomization.yaml explains); the kind overlay takes it.
func TestLazyMediaSizing(t *testing.T) {
	t.Parallel()
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		spec := &deployment(t, m, "wordpress").Spec.Template.Spec
		env := mustEnv(t, m, findContainer(spec, sidecarName))
		if env["FILESYNC_LAZY"] == "" {
			if overlay == kindOverlay {
				t.Fatal("the kind overlay does not make uploads/ lazy")
			}
			return
		}
		if got := env["FILESYNC_LAZY"]; got != "uploads/" {
			t.Errorf("FILESYNC_LAZY = %q, want uploads/", got)
		}
		if env["FILESYNC_READ_THROUGH"] == "" || !strings.Contains(env["FILESYNC_READ_THROUGH_INCLUDE"], "uploads/") {
			t.Errorf("lazy media without a read-through for uploads/ (FILESYNC_READ_THROUGH=%q, FILESYNC_READ_THROUGH_INCLUDE=%q): a media file not local yet would be a 404",
				env["FILESYNC_READ_THROUGH"], env["FILESYNC_READ_THROUGH_INCLUDE"])
		}
		cache, err := parseSize(env["FILESYNC_CACHE_SIZE"])
		if err != nil || cache == 0 {
			t.Fatalf("FILESYNC_CACHE_SIZE = %q (%v): want a bound", env["FILESYNC_CACHE_SIZE"], err)
		}
		v := volume(spec, "content")
		if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
			t.Fatal("the content emptyDir has no sizeLimit")
		}
		if limit := v.EmptyDir.SizeLimit.Value(); limit < cache+512<<20 {
			t.Errorf("content sizeLimit %s holds the %s cache with %d MiB to spare, want at least 512 MiB for the code, temporary files and transfers in flight",
				v.EmptyDir.SizeLimit, env["FILESYNC_CACHE_SIZE"], (limit-cache)>>20)
		}
	})
}

// parseSize reads a size as the sidecar's --cache-size does (config.Size): bytes, or a number with one
// of B, kB, KB, MB, GB, TB, KiB, MiB, GiB, TiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}
