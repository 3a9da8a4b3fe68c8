package manifests_test

import (
	"cmp"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

// Paths of the things under test, relative to the repository root.
const (
	kindOverlay   = "examples/wordpress/overlays/kind"
	gkeOverlay    = "examples/wordpress/overlays/gke"
	componentDir  = "manifests/components/filesync"
	fakeGCSDir    = "manifests/fake-gcs-server"
	galleryDir    = "e2e/manifests/testdata/gallery"
	kindConfig    = "kind-config.yaml"
	sidecarName   = "filesync"
	sidecarPort   = 8090
	wpContentPath = "/var/www/html/wp-content"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func render(t *testing.T, rel string) *manifests.Manifest {
	t.Helper()
	m, err := manifests.Render(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deployment(t *testing.T, m *manifests.Manifest, name string) *appsv1.Deployment {
	t.Helper()
	d := manifests.Get[appsv1.Deployment](m, name)
	if d == nil {
		t.Fatalf("no Deployment %q", name)
	}
	return d
}

// findContainer looks in containers and init containers.
func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	named := func(c *corev1.Container) bool { return c.Name == name }
	if c := find(spec.InitContainers, named); c != nil {
		return c
	}
	return find(spec.Containers, named)
}

func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return slices.Concat(spec.InitContainers, spec.Containers)
}

// podSpecs returns every workload's pod template by "Kind/name".
func podSpecs(m *manifests.Manifest) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, d := range manifests.All[appsv1.Deployment](m) {
		out["Deployment/"+d.Name] = &d.Spec.Template
	}
	for _, s := range manifests.All[appsv1.StatefulSet](m) {
		out["StatefulSet/"+s.Name] = &s.Spec.Template
	}
	return out
}

// env computes a container's environment as the kubelet would: envFrom sources in order, then env on top.
// Values from Secrets are resolved too; a reference to a missing object or key is an error.
func env(m *manifests.Manifest, c *corev1.Container) (map[string]string, error) {
	out := map[string]string{}
	for _, src := range c.EnvFrom {
		switch {
		case src.ConfigMapRef != nil:
			cm := manifests.Get[corev1.ConfigMap](m, src.ConfigMapRef.Name)
			if cm == nil {
				return nil, fmt.Errorf("container %s: envFrom ConfigMap %q not in the manifest", c.Name, src.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				out[src.Prefix+k] = v
			}
		case src.SecretRef != nil:
			s := manifests.Get[corev1.Secret](m, src.SecretRef.Name)
			if s == nil {
				return nil, fmt.Errorf("container %s: envFrom Secret %q not in the manifest", c.Name, src.SecretRef.Name)
			}
			for k, v := range s.Data {
				out[src.Prefix+k] = string(v)
			}
			for k, v := range s.StringData {
				out[src.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := manifests.Get[corev1.ConfigMap](m, ref.Name)
			if cm == nil {
				return nil, fmt.Errorf("container %s: env %s: ConfigMap %q not in the manifest", c.Name, e.Name, ref.Name)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				return nil, fmt.Errorf("container %s: env %s: ConfigMap %q has no key %q", c.Name, e.Name, ref.Name, ref.Key)
			}
			out[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := manifests.Get[corev1.Secret](m, ref.Name)
			if s == nil {
				return nil, fmt.Errorf("container %s: env %s: Secret %q not in the manifest", c.Name, e.Name, ref.Name)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				sv, sok := s.StringData[ref.Key]
				if !sok {
					return nil, fmt.Errorf("container %s: env %s: Secret %q has no key %q", c.Name, e.Name, ref.Name, ref.Key)
				}
				v = []byte(sv)
			}
			out[e.Name] = string(v)
		case e.ValueFrom.FieldRef != nil:
			out[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.ResourceFieldRef != nil:
			out[e.Name] = "resourceFieldRef:" + e.ValueFrom.ResourceFieldRef.Resource
		}
	}
	return out, nil
}

func mustEnv(t *testing.T, m *manifests.Manifest, c *corev1.Container) map[string]string {
	t.Helper()
	e, err := env(m, c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(VAR) references the way the kubelet does in args and subPathExpr.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := env[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// find returns the first element of xs that match holds for, or nil.
func find[T any](xs []T, match func(*T) bool) *T {
	for i := range xs {
		if match(&xs[i]) {
			return &xs[i]
		}
	}
	return nil
}

func mountAt(c *corev1.Container, path string) *corev1.VolumeMount {
	return find(c.VolumeMounts, func(m *corev1.VolumeMount) bool { return m.MountPath == path })
}

func mountOf(c *corev1.Container, volume string) *corev1.VolumeMount {
	return find(c.VolumeMounts, func(m *corev1.VolumeMount) bool { return m.Name == volume })
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	return find(spec.Volumes, func(v *corev1.Volume) bool { return v.Name == name })
}

// containerPort resolves a probe's port (a number or a port name) against the container's ports.
func containerPort(c *corev1.Container, p corev1.HTTPGetAction) (int32, bool) {
	if p.Port.StrVal == "" {
		for _, cp := range c.Ports {
			if cp.ContainerPort == p.Port.IntVal {
				return cp.ContainerPort, true
			}
		}
		return p.Port.IntVal, false
	}
	for _, cp := range c.Ports {
		if cp.Name == p.Port.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// sidecarWant is what a workload that took the filesync Component must show.
type sidecarWant struct {
	app   string // the app container that shares the files
	dir   string // FILESYNC_DIR: where both containers see the files
	image string
	uid   int64 // runAsUser and runAsGroup of the sidecar
}

// checkSidecar asserts the filesync native sidecar of one Deployment: restart policy, probes and their
// budget, the shared emptyDir, the state emptyDir, resources, security context, grace period.
func checkSidecar(t *testing.T, m *manifests.Manifest, d *appsv1.Deployment, want sidecarWant) {
	t.Helper()
	spec := &d.Spec.Template.Spec
	c := findContainer(spec, sidecarName)
	if c == nil || !slices.ContainsFunc(spec.InitContainers, func(ic corev1.Container) bool { return ic.Name == sidecarName }) {
		t.Fatalf("Deployment %s: no init container %q", d.Name, sidecarName)
	}
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("%s: restartPolicy = %v, want Always (a native sidecar)", d.Name, c.RestartPolicy)
	}
	if c.Image != want.image {
		t.Errorf("%s: sidecar image = %q, want %q", d.Name, c.Image, want.image)
	}
	e := mustEnv(t, m, c)

	// Probes: startup on /readyz (the restore gates the app), liveness on /healthz, both on the listen port.
	listen := e["FILESYNC_LISTEN"]
	if listen != fmt.Sprintf(":%d", sidecarPort) {
		t.Errorf("%s: FILESYNC_LISTEN = %q, want :%d", d.Name, listen, sidecarPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startupProbe", c.StartupProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: sidecar %s is not an httpGet probe", d.Name, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: sidecar %s path = %q, want %q", d.Name, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if port, ok := containerPort(c, *p.probe.HTTPGet); !ok || port != sidecarPort {
			t.Errorf("%s: sidecar %s port = %v, want the declared port %d", d.Name, p.name, p.probe.HTTPGet.Port.String(), sidecarPort)
		}
	}
	if sp := c.StartupProbe; sp != nil {
		budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
		if budget < 30*time.Minute {
			t.Errorf("%s: startup probe budget %v (period %ds x %d failures) cannot fit a large restore; want >= 30m",
				d.Name, budget, sp.PeriodSeconds, sp.FailureThreshold)
		}
	}

	// The shared emptyDir: mounted by the sidecar at FILESYNC_DIR and by the app at the same path.
	if e["FILESYNC_DIR"] != want.dir {
		t.Errorf("%s: FILESYNC_DIR = %q, want %q", d.Name, e["FILESYNC_DIR"], want.dir)
	}
	if !strings.HasPrefix(e["FILESYNC_REMOTE"], "gs://") {
		t.Errorf("%s: FILESYNC_REMOTE = %q, want gs://BUCKET[/PREFIX]", d.Name, e["FILESYNC_REMOTE"])
	}
	sm := mountAt(c, want.dir)
	if sm == nil {
		t.Fatalf("%s: sidecar mounts nothing at FILESYNC_DIR %s: %+v", d.Name, want.dir, c.VolumeMounts)
	}
	if sm.ReadOnly || sm.SubPath != "" || sm.SubPathExpr != "" {
		t.Errorf("%s: sidecar mount of %s must be the whole volume, read-write: %+v", d.Name, sm.Name, sm)
	}
	if v := volume(spec, sm.Name); v == nil || v.EmptyDir == nil {
		t.Errorf("%s: volume %q at FILESYNC_DIR is not an emptyDir: %+v", d.Name, sm.Name, v)
	}
	app := findContainer(spec, want.app)
	if app == nil {
		t.Fatalf("%s: no app container %q", d.Name, want.app)
	}
	if am := mountOf(app, sm.Name); am == nil || am.MountPath != want.dir || am.SubPath != "" {
		t.Errorf("%s: app container %s must mount volume %q at %s, has %+v", d.Name, app.Name, sm.Name, want.dir, app.VolumeMounts)
	}

	// The state dir: its own small emptyDir.
	stateDir := e["FILESYNC_STATE_DIR"]
	if stateDir == "" {
		t.Errorf("%s: FILESYNC_STATE_DIR is not set", d.Name)
	} else if stm := mountAt(c, stateDir); stm == nil {
		t.Errorf("%s: nothing mounted at FILESYNC_STATE_DIR %s", d.Name, stateDir)
	} else if v := volume(spec, stm.Name); v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || stm.Name == sm.Name {
		t.Errorf("%s: state volume %q must be its own emptyDir with a sizeLimit: %+v", d.Name, stm.Name, v)
	} else if mountOf(app, stm.Name) != nil {
		t.Errorf("%s: the app container must not see the state volume %q", d.Name, stm.Name)
	}
	if e["POD_NAME"] != "fieldRef:metadata.name" {
		t.Errorf("%s: POD_NAME = %q, want the pod name from the downward API", d.Name, e["POD_NAME"])
	}
	if _, ok := e["STORAGE_EMULATOR_HOST"]; ok && strings.HasPrefix(want.image, "ghcr.io/") {
		t.Errorf("%s: a production image must not point at an emulator", d.Name)
	}

	// Resources.
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("%s: sidecar resources want cpu+memory requests and a memory limit, got %+v", d.Name, r)
	}

	// Security context.
	checkLockedDown(t, d.Name+"/"+c.Name, spec, c)
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser == nil || *sc.RunAsUser != want.uid || sc.RunAsGroup == nil || *sc.RunAsGroup != want.uid {
			t.Errorf("%s: sidecar runs as %v:%v, want %d:%d", d.Name, sc.RunAsUser, sc.RunAsGroup, want.uid, want.uid)
		}
	}

	// The grace period covers the app's own stop, then the sidecar's flush.
	shutdown := 25 * time.Second
	if s, ok := e["FILESYNC_SHUTDOWN_TIMEOUT"]; ok {
		var err error
		if shutdown, err = time.ParseDuration(s); err != nil {
			t.Errorf("%s: FILESYNC_SHUTDOWN_TIMEOUT %q: %v", d.Name, s, err)
		}
	}
	grace := 30 * time.Second
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace < shutdown+30*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v leaves less than 30s for the app's stop before the sidecar's %v flush",
			d.Name, grace, shutdown)
	}
}

// checkLockedDown asserts a container's security context: non-root, read-only root filesystem, no
// privilege escalation, every capability dropped, the runtime's default seccomp profile.
func checkLockedDown(t *testing.T, what string, spec *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", what)
		return
	}
	// Pod-level settings apply where the container sets none.
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	nonRoot, uid := cmp.Or(sc.RunAsNonRoot, pod.RunAsNonRoot), cmp.Or(sc.RunAsUser, pod.RunAsUser)
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", what)
	}
	if uid != nil && *uid == 0 {
		t.Errorf("%s: runs as root", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", what)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities must drop ALL and add none: %+v", what, sc.Capabilities)
	}
	seccomp := cmp.Or(sc.SeccompProfile, pod.SeccompProfile)
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault: %+v", what, seccomp)
	}
}

// selects reports whether a label selector (as a map) selects a pod template's labels.
func selects(selector map[string]string, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// eachOverlay runs fn, in a parallel subtest per overlay (kind, gke), on the overlay's rendering.
func eachOverlay(t *testing.T, fn func(t *testing.T, overlay string, m *manifests.Manifest)) {
	t.Helper()
	for _, overlay := range []string{kindOverlay, gkeOverlay} {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			fn(t, overlay, render(t, overlay))
		})
	}
}
