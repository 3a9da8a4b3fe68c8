package manifests_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/filesync/filesync/e2e/manifests"
)

// TestWordPressTrees: both overlays apply a plugin, a theme, the must-use plugins and the language packs as
// trees (FILESYNC_TREE: staged and switched to in one burst, docs/design.md "Trees arrive whole"). (The
// upgrader's work folders, which hold half-unpacked trees, are excluded: TestWordPressExcludes.)
func TestWordPressTrees(t *testing.T) {
	t.Parallel()
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		spec := &deployment(t, m, "wordpress").Spec.Template.Spec
		env := mustEnv(t, m, findContainer(spec, sidecarName))
		trees := strings.Split(env["FILESYNC_TREE"], ",")
		for _, want := range []string{"plugins/*/", "themes/*/", "mu-plugins/", "languages/"} {
			if !slices.Contains(trees, want) {
				t.Errorf("FILESYNC_TREE = %q lacks %s", env["FILESYNC_TREE"], want)
			}
		}
	})
}
