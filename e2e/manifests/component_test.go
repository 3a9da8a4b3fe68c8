package manifests_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/filesync/filesync/e2e/manifests"
)

// TestComponentOnAnotherApp applies the Component to a small app that is not WordPress (testdata/gallery):
// the Deployment gets the sidecar where it mounts `content`; the one labelled filesync.io/inject: "false"
// in the same kustomization is left alone.
func TestComponentOnAnotherApp(t *testing.T) {
	t.Parallel()
	m := render(t, galleryDir)
	gallery := deployment(t, m, "gallery")
	checkSidecar(t, m, gallery, sidecarWant{app: "app", dir: "/srv/gallery/photos", image: releaseImage(t), uid: 65532})

	// The app's own declaration of the volume wins where it says more (its sizeLimit).
	v := volume(&gallery.Spec.Template.Spec, "content")
	if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || !v.EmptyDir.SizeLimit.Equal(resource.MustParse("2Gi")) {
		t.Errorf("gallery's content volume lost its sizeLimit: %+v", v)
	}
	cache := deployment(t, m, "cache")
	if n := len(cache.Spec.Template.Spec.InitContainers); n != 0 || volume(&cache.Spec.Template.Spec, "filesync-state") != nil {
		t.Errorf("the opted-out Deployment cache got the sidecar (%d init containers)", n)
	}
}

// TestComponentRequiresItsSettings proves that a missing setting fails the build, naming what is missing,
// instead of rendering a sidecar that cannot start.
func TestComponentRequiresItsSettings(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	deploymentYAML, err := os.ReadFile(filepath.Join(root, galleryDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	component := filepath.Join(root, componentDir)
	for _, tc := range []struct {
		name     string
		settings string
		wantErr  string // "" for a good build
	}{
		{
			name:     "remote and dir",
			settings: "configMapGenerator:\n- name: filesync\n  literals: [FILESYNC_REMOTE=gs://b/p, FILESYNC_DIR=/srv/gallery/photos]\n",
		},
		{
			name:    "no ConfigMap",
			wantErr: "filesync",
		},
		{
			name:     "no FILESYNC_DIR",
			settings: "configMapGenerator:\n- name: filesync\n  literals: [FILESYNC_REMOTE=gs://b/p]\n",
			wantErr:  "FILESYNC_DIR",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kust := "resources: [deployment.yaml]\ncomponents: [" + relPath(t, dir, component) + "]\n" + tc.settings
			writeFile(t, filepath.Join(dir, "kustomization.yaml"), kust)
			writeFile(t, filepath.Join(dir, "deployment.yaml"), string(deploymentYAML))
			m, err := manifests.Render(dir)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "":
				d := deployment(t, m, "gallery")
				if c := findContainer(&d.Spec.Template.Spec, sidecarName); c == nil || mountAt(c, "/srv/gallery/photos") == nil {
					t.Errorf("sidecar missing or not mounted at FILESYNC_DIR")
				}
			case err == nil:
				t.Fatalf("build succeeded; want an error naming %s", tc.wantErr)
			case !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not name %s", err, tc.wantErr)
			}
		})
	}
}

// TestDocsOptInSnippet builds the opt-in snippet of docs/manifests.md (the block after the
// <!-- opt-in --> marker) against the gallery Deployment, so the documentation cannot rot, and holds it to
// five lines.
func TestDocsOptInSnippet(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "manifests.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("<!-- opt-in -->"))
	if !ok {
		t.Fatal("docs/manifests.md has no <!-- opt-in --> marker")
	}
	_, block, ok := bytes.Cut(after, []byte("```yaml\n"))
	if !ok {
		t.Fatal("no ```yaml block after the opt-in marker")
	}
	block, _, ok = bytes.Cut(block, []byte("```"))
	if !ok {
		t.Fatal("unterminated ```yaml block after the opt-in marker")
	}
	var lines []string
	for _, l := range strings.Split(string(block), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 5 {
		t.Errorf("the opt-in snippet has %d lines, want at most 5:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// The snippet names the Component by a remote URL; point it at this checkout.
	dir := t.TempDir()
	var kust strings.Builder
	kust.WriteString("resources: [deployment.yaml]\n")
	replaced := false
	for _, l := range lines {
		if strings.Contains(l, "manifests/components/filesync") {
			l = "- " + relPath(t, dir, filepath.Join(root, componentDir))
			replaced = true
		}
		kust.WriteString(l + "\n")
	}
	if !replaced {
		t.Fatal("the opt-in snippet does not name manifests/components/filesync")
	}
	deploymentYAML, err := os.ReadFile(filepath.Join(root, galleryDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "kustomization.yaml"), kust.String())
	writeFile(t, filepath.Join(dir, "deployment.yaml"), string(deploymentYAML))
	m, err := manifests.Render(dir)
	if err != nil {
		t.Fatalf("the documented snippet does not build:\n%s\n%v", kust.String(), err)
	}
	checkSidecar(t, m, deployment(t, m, "gallery"), sidecarWant{app: "app", dir: "/srv/gallery/photos", image: releaseImage(t), uid: 65532})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// relPath is target relative to dir: kustomize takes no absolute paths to kustomizations.
func relPath(t *testing.T, dir, target string) string {
	t.Helper()
	r, err := filepath.Rel(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
