package manifests_test

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

const (
	pubsubDir   = "manifests/pubsub-emulator"
	pinsDir     = "manifests/pins"
	pubsubEmu   = "pubsub-emulator"
	fakeGCSName = "fake-gcs-server"
)

var update = flag.Bool("update", false, "rewrite generated files (manifests/pins) from hack/versions.env")

// pinsComponent is manifests/pins/kustomization.yaml as hack/versions.env says it must be.
func pinsComponent(t *testing.T) string {
	t.Helper()
	p := pins(t)
	img := p["PUBSUB_EMULATOR_IMAGE"]
	i := strings.LastIndex(img, ":")
	if i < 0 || p["FAKE_GCS_TAG"] == "" {
		t.Fatalf("%s: PUBSUB_EMULATOR_IMAGE %q has no tag, or FAKE_GCS_TAG is empty", harness.PinsFile, img)
	}
	return fmt.Sprintf(`# Generated from hack/versions.env by `+"`make pins`"+` (e2e/manifests TestPinsComponent); do not edit.
# The images of manifests/fake-gcs-server and manifests/pubsub-emulator, with their pinned tags.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component

images:
- name: fsouza/fake-gcs-server
  newTag: %q
- name: pubsub-emulator
  newName: %s
  newTag: %s
`, p["FAKE_GCS_TAG"], img[:i], img[i+1:])
}

// Manifests cannot read hack/versions.env, so the one place they take pinned tags from is generated from it.
func TestPinsComponent(t *testing.T) {
	path := filepath.Join(repoRoot(t), pinsDir, "kustomization.yaml")
	want := pinsComponent(t)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s/kustomization.yaml is not what %s says; run `make pins`\ngot:\n%s\nwant:\n%s", pinsDir, harness.PinsFile, got, want)
	}
}

// The sidecar's Pub/Sub client and the emulator image's pstest are one version, the pin.
func TestPubSubModuleIsThePin(t *testing.T) {
	t.Parallel()
	p := pins(t)
	want := "cloud.google.com/go/pubsub/v2 " + p["PUBSUB_VERSION"]
	for _, mod := range []string{"sidecar/go.mod", "images/pubsub-emulator/go.mod"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), mod))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "require"))
			if strings.HasPrefix(line, "cloud.google.com/go/pubsub/v2 ") {
				found = true
				if f := strings.Fields(line); len(f) < 2 || f[0]+" "+f[1] != want {
					t.Errorf("%s requires %q, %s pins %s", mod, line, harness.PinsFile, want)
				}
			}
		}
		if !found {
			t.Errorf("%s does not require cloud.google.com/go/pubsub/v2", mod)
		}
	}
	if !strings.HasSuffix(p["PUBSUB_EMULATOR_IMAGE"], ":"+p["PUBSUB_VERSION"]) {
		t.Errorf("PUBSUB_EMULATOR_IMAGE %q is not tagged with PUBSUB_VERSION %s", p["PUBSUB_EMULATOR_IMAGE"], p["PUBSUB_VERSION"])
	}
}

// The emulator's manifest runs the image `make images` builds, locked down, alone.
func TestPubSubEmulatorManifest(t *testing.T) {
	t.Parallel()
	m := render(t, pubsubDir)
	d := deployment(t, m, pubsubEmu)
	spec := &d.Spec.Template.Spec
	c := findContainer(spec, pubsubEmu)
	if c == nil {
		t.Fatalf("no container %s", pubsubEmu)
	}
	if c.Image != pins(t)["PUBSUB_EMULATOR_IMAGE"] || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s (%s), want %s IfNotPresent", c.Image, c.ImagePullPolicy, pins(t)["PUBSUB_EMULATOR_IMAGE"])
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the emulator keeps everything in memory: want 1 replica and the Recreate strategy")
	}
	if d.Labels["filesync.io/inject"] != "false" {
		t.Error("the emulator must opt out of the filesync Component")
	}
	checkLockedDown(t, pubsubEmu, spec, c)
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil {
		t.Errorf("want a TCP readiness probe on the gRPC port, got %+v", c.ReadinessProbe)
	}
}

// pubsubService checks that host:port (a PUBSUB_EMULATOR_HOST) is a Service selecting the emulator's pods
// on the port it serves.
func pubsubService(t *testing.T, m *manifests.Manifest, hostPort, namespace string) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("PUBSUB_EMULATOR_HOST %q: %v", hostPort, err)
	}
	svcName, ns, _ := strings.Cut(strings.TrimSuffix(host, ".svc.cluster.local"), ".")
	svc := manifests.Get[corev1.Service](m, svcName)
	if svc == nil || svc.Namespace != ns || ns != namespace || !strings.HasSuffix(host, ".svc.cluster.local") {
		t.Fatalf("PUBSUB_EMULATOR_HOST %q names no Service of namespace %s", hostPort, namespace)
	}
	d := deployment(t, m, pubsubEmu)
	if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service %s does not select the emulator's pods", svcName)
	}
	c := findContainer(&d.Spec.Template.Spec, pubsubEmu)
	if len(svc.Spec.Ports) != 1 || fmt.Sprint(svc.Spec.Ports[0].Port) != port {
		t.Fatalf("Service %s ports %+v, want %s", svcName, svc.Spec.Ports, port)
	}
	e := mustEnv(t, m, c)
	var address string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(expand(a, e), "-address="); ok {
			address = v
		}
	}
	_, served, _ := net.SplitHostPort(address)
	target := svc.Spec.Ports[0].TargetPort
	cp, ok := containerPort(c, corev1.HTTPGetAction{Port: target})
	if !ok || fmt.Sprint(cp) != served {
		t.Errorf("Service %s targets %s (container port %d), the emulator serves -address=%s", svcName, target.String(), cp, address)
	}
}

// In the kind overlay the sidecars, fake-gcs-server and the emulator agree on the topic and the address.
func TestKindOverlayNotifications(t *testing.T) {
	t.Parallel()
	m := render(t, kindOverlay)
	wp := deployment(t, m, "wordpress")
	se := mustEnv(t, m, findContainer(&wp.Spec.Template.Spec, sidecarName))
	topic := se["FILESYNC_NOTIFICATIONS"]
	if !strings.HasPrefix(topic, "projects/") || !strings.Contains(topic, "/topics/") {
		t.Fatalf("FILESYNC_NOTIFICATIONS = %q: notifications are off in the kind overlay", topic)
	}
	if se["FILESYNC_POLL_INTERVAL"] != "" {
		t.Errorf("FILESYNC_POLL_INTERVAL is set but unused with notifications (the reconcile interval replaces it)")
	}
	host := se["PUBSUB_EMULATOR_HOST"]
	pubsubService(t, m, host, "wordpress")

	emu := deployment(t, m, pubsubEmu)
	ec := findContainer(&emu.Spec.Template.Spec, pubsubEmu)
	ee := mustEnv(t, m, ec)
	var topics []string
	for _, a := range ec.Args {
		if v, ok := strings.CutPrefix(expand(a, ee), "-topics="); ok {
			topics = strings.Split(v, ",")
		}
	}
	if !slices.Contains(topics, topic) {
		t.Errorf("the emulator creates topics %v, not the sidecars' %s", topics, topic)
	}

	gcs := deployment(t, m, fakeGCSName)
	gc := findContainer(&gcs.Spec.Template.Spec, fakeGCSName)
	ge := mustEnv(t, m, gc)
	if ge["PUBSUB_EMULATOR_HOST"] != host {
		t.Errorf("fake-gcs-server publishes to PUBSUB_EMULATOR_HOST=%q, the sidecars subscribe at %q", ge["PUBSUB_EMULATOR_HOST"], host)
	}
	flags := map[string]string{}
	for _, a := range gc.Args {
		k, v, _ := strings.Cut(strings.TrimLeft(expand(a, ge), "-"), "=")
		flags[k] = v
	}
	if got := "projects/" + flags["event.pubsub-project-id"] + "/topics/" + flags["event.pubsub-topic"]; got != topic {
		t.Errorf("fake-gcs-server publishes to %s, the sidecars subscribe to %s", got, topic)
	}
	events := strings.Split(flags["event.list"], ",")
	for _, want := range []string{"finalize", "delete", "archive", "metadataUpdate"} {
		if !slices.Contains(events, want) {
			t.Errorf("fake-gcs-server -event.list=%s lacks %s", flags["event.list"], want)
		}
	}
}
