package manifests_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

// The emulator's manifest pulls the official image of the pinned version (the kind overlay renames it to the
// image `make images` builds; TestKindOverlay checks that one); its init container runs the Pub/Sub emulator's.
func TestFakeGCSManifestRunsThePinnedVersion(t *testing.T) {
	t.Parallel()
	p := pins(t)
	m := render(t, fakeGCSDir)
	for _, d := range manifests.All[appsv1.Deployment](m) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != p["PUBLIC_FAKE_GCS_IMAGE"] {
				t.Errorf("%s: container %s runs %s, %s pins PUBLIC_FAKE_GCS_IMAGE=%s", fakeGCSDir, c.Name, c.Image,
					harness.PinsFile, p["PUBLIC_FAKE_GCS_IMAGE"])
			}
		}
		for _, c := range d.Spec.Template.Spec.InitContainers {
			if c.Image != p["PUBSUB_EMULATOR_IMAGE"] {
				t.Errorf("%s: init container %s runs %s, %s pins PUBSUB_EMULATOR_IMAGE=%s", fakeGCSDir, c.Name, c.Image,
					harness.PinsFile, p["PUBSUB_EMULATOR_IMAGE"])
			}
		}
	}
}

// shellDefault is a parameter expansion with a default: ${KEY:-value} or ${KEY:=value}.
var shellDefault = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*):[-=]([^}]*)\}`)

// No script has a default of its own for a pinned value: they load hack/versions.env (hack/lib.sh; the
// air-gap stages through hack/airgap/lib.sh).
func TestScriptsTakePinsFromVersionsEnv(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	p := pins(t)
	var scripts []string
	for _, glob := range []string{"hack/*.sh", "hack/*/*.sh", ".ci/run", "Makefile"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, m...)
	}
	if len(scripts) < 10 {
		t.Fatalf("found only %d scripts under hack/", len(scripts))
	}
	for _, path := range scripts {
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range shellDefault.FindAllStringSubmatch(string(b), -1) {
			if _, pinned := p[m[1]]; pinned {
				t.Errorf("%s: %s has its own default for %s (the pin is in %s)", rel, m[0], m[1], harness.PinsFile)
			}
		}
	}
}

// The pinned versions and the filesync image are written nowhere else in the scripts, the workflows and the
// Go code. Manifests and the Tiltfile cannot read the file of pins: the tests above, TestKindOverlay and
// TestTiltfile check that they agree with it.
func TestPinnedValuesAreWrittenOnce(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	p := pins(t)
	var files []string
	for _, glob := range []string{"hack/*.sh", "hack/*/*.sh", "Makefile", ".ci/run",
		".github/workflows/*.yaml", "e2e/*/*.go", "e2e/internal/*/*.go"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		if strings.HasSuffix(rel, "_test.go") && strings.Contains(rel, "e2e/manifests/") {
			continue // the checks themselves
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"FAKE_GCS_TAG", "KIND_VERSION", "K8S_VERSION", "GOLANGCI_LINT_VERSION", "RCLONE_VERSION",
			"ACTIONLINT_VERSION", "PUBSUB_VERSION", "FILESYNC_IMAGE", "ETCD_VERSION", "COREDNS_VERSION", "CRICTL_VERSION",
			"LPP_VERSION"} {
			if strings.Contains(string(b), p[key]) {
				t.Errorf("%s writes %s (%s) again; take it from %s", rel, p[key], key, harness.PinsFile)
			}
		}
	}
}

// Manifests take the emulators' tags from the generated manifests/pins (TestPinsComponent), and docs name
// the pin instead of its value, so a version bump is one line in hack/versions.env (and `make pins`).
func TestManifestsAndDocsNameNoPinnedVersion(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	p := pins(t)
	var files []string
	for _, glob := range []string{"README.md", "docs/*.md", "manifests/*/*.yaml", "manifests/components/*/*.yaml",
		"examples/wordpress/*/*.yaml", "examples/wordpress/*/*/*.yaml", "images/*/Dockerfile", "Tiltfile"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d manifests and docs", len(files))
	}
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		if strings.HasPrefix(rel, pinsDir+"/") {
			continue // generated from the pins
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"FAKE_GCS_TAG", "PUBSUB_VERSION", "RCLONE_VERSION", "GOLANGCI_LINT_VERSION", "ACTIONLINT_VERSION"} {
			if strings.Contains(string(b), p[key]) {
				t.Errorf("%s writes %s (%s); name the pin in %s instead (manifests: take it from %s)", rel, p[key], key,
					harness.PinsFile, pinsDir)
			}
		}
	}
}

// releaseImage is the image the Component and the gke overlay name: RELEASE_IMAGE:RELEASE_TAG, which the
// release workflow sets on a v* tag.
func releaseImage(t *testing.T) string {
	t.Helper()
	p := pins(t)
	return p["RELEASE_IMAGE"] + ":" + p["RELEASE_TAG"]
}
