package manifests_test

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

// renderYAML is the kustomize() of the stand-ins: the krusty API, like the other tests.
func renderYAML(dir string) ([]byte, error) {
	m, err := manifests.Render(dir)
	if err != nil {
		return nil, err
	}
	return m.YAML, nil
}

// makeTargets lists the Makefile's targets, and the files `make build` writes (its -o arguments).
func makeTargets(t *testing.T) (targets map[string]bool, buildOutputs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets = map[string]bool{}
	targetRE := regexp.MustCompile(`^([a-zA-Z0-9_-]+):`)
	outputRE := regexp.MustCompile(`-o \$\(BIN\)/(\S+)`)
	inBuild := false
	for _, line := range strings.Split(string(b), "\n") {
		if m := targetRE.FindStringSubmatch(line); m != nil {
			targets[m[1]] = true
			inBuild = m[1] == "build"
			continue
		}
		if inBuild && strings.HasPrefix(line, "\t") {
			for _, m := range outputRE.FindAllStringSubmatch(line, -1) {
				buildOutputs = append(buildOutputs, "bin/"+m[1])
			}
		}
	}
	return targets, buildOutputs
}

func TestTiltfile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	tf, err := manifests.ExecTiltfile(filepath.Join(root, "Tiltfile"), renderYAML)
	if err != nil {
		t.Fatal(err)
	}
	targets, buildOutputs := makeTargets(t)
	kc := readKindConfig(t)
	images := pins(t)

	t.Run("only the kind cluster of kind-config.yaml", func(t *testing.T) {
		if want := []string{"kind-" + kc.Name}; !slices.Equal(tf.AllowedContexts, want) || want[0] != "kind-filesync" {
			t.Errorf("allow_k8s_contexts = %v, want %v (kind-filesync)", tf.AllowedContexts, want)
		}
	})

	// What the local resources produce may be named before it exists.
	var produced []string
	for _, lr := range tf.LocalResources {
		fields := strings.Fields(lr.Cmd)
		if len(fields) < 2 || fields[0] != "make" {
			t.Errorf("local_resource %s runs %q; want a make target (the Makefile is the one build recipe)", lr.Name, lr.Cmd)
			continue
		}
		for _, target := range fields[1:] {
			if !targets[target] {
				t.Errorf("local_resource %s: the Makefile has no target %q", lr.Name, target)
			}
			if target == "build" {
				produced = append(produced, buildOutputs...)
			}
		}
	}
	exists := func(what, p string) {
		t.Helper()
		if slices.Contains(produced, p) {
			return
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s names %q, which is neither in the repository nor made by a local_resource", what, p)
		}
	}

	t.Run("every path it names exists", func(t *testing.T) {
		for _, lr := range tf.LocalResources {
			for _, d := range lr.Deps {
				exists("local_resource "+lr.Name+" deps", d)
			}
		}
		for _, ib := range tf.ImageBuilds {
			for _, d := range slices.Concat(ib.Deps, ib.Only) {
				exists(ib.Builtin+" "+ib.Ref, d)
			}
			if ib.Builtin == "docker_build" {
				exists("docker_build context", ib.Context)
				exists("docker_build dockerfile", ib.Dockerfile)
			}
		}
		for _, k := range tf.Kustomizations {
			exists("kustomize()", k)
		}
	})

	t.Run("it builds the filesync image the kind overlay runs", func(t *testing.T) {
		if len(tf.ImageBuilds) != 1 {
			t.Fatalf("want one image build (filesync), got %+v", tf.ImageBuilds)
		}
		ib := tf.ImageBuilds[0]
		if ib.Ref != images["FILESYNC_IMAGE"] {
			t.Errorf("%s builds %q, the Makefile's FILESYNC_IMAGE is %q", ib.Builtin, ib.Ref, images["FILESYNC_IMAGE"])
		}
		if ib.LiveUpdate || ib.HasEntrypoint {
			t.Errorf("%s uses live_update/entrypoint: restart_process needs a shell, which the scratch image lacks", ib.Builtin)
		}
		switch ib.Builtin {
		case "custom_build":
			// Tilt tags the image itself and finds it under $EXPECTED_REF.
			if !strings.Contains(ib.Command, "$EXPECTED_REF") {
				t.Errorf("custom_build command %q does not build $EXPECTED_REF", ib.Command)
			}
			if f := strings.Fields(ib.Command); len(f) < 2 || f[0] != "make" || !targets[f[1]] {
				t.Errorf("custom_build command %q is not a Makefile target", ib.Command)
			}
			// A new binary must trigger a new image.
			if !slices.ContainsFunc(ib.Deps, func(d string) bool { return slices.Contains(produced, d) }) {
				t.Errorf("custom_build deps %v do not include the binary the compile step makes %v", ib.Deps, produced)
			}
			if !slices.Contains(ib.Deps, "sidecar/Dockerfile") {
				t.Errorf("custom_build deps %v do not include sidecar/Dockerfile", ib.Deps)
			}
		case "docker_build":
			checkDockerfileSources(t, root, ib, produced)
		}
		var found bool
		for _, k := range tf.Kustomizations {
			m := render(t, k)
			for _, pod := range podSpecs(m) {
				for _, c := range allContainers(&pod.Spec) {
					found = found || c.Image == ib.Ref
				}
			}
		}
		if !found {
			t.Errorf("no workload of %v runs the image %s", tf.Kustomizations, ib.Ref)
		}
	})

	t.Run("resources, links and port forwards match the rendered overlay and kind-config.yaml", func(t *testing.T) {
		if !slices.Equal(tf.Kustomizations, []string{kindOverlay}) || len(tf.YAML) != 1 {
			t.Fatalf("want k8s_yaml(kustomize(%q)), got kustomize %v and %d k8s_yaml", kindOverlay, tf.Kustomizations, len(tf.YAML))
		}
		m := render(t, kindOverlay)
		if diff, err := manifests.DiffDocs(m.YAML, tf.YAML[0]); err != nil || diff != "" {
			t.Fatalf("k8s_yaml got something else than the kind overlay: %v %s", err, diff)
		}
		workloads := map[string]*corev1.PodTemplateSpec{}
		for _, d := range manifests.All[appsv1.Deployment](m) {
			workloads[d.Name] = &d.Spec.Template
		}
		for _, s := range manifests.All[appsv1.StatefulSet](m) {
			workloads[s.Name] = &s.Spec.Template
		}
		known := map[string]bool{}
		for _, lr := range tf.LocalResources {
			known[lr.Name] = true
		}
		hostPorts := map[int]bool{}
		for _, n := range kc.Nodes {
			for _, pm := range n.ExtraPortMappings {
				hostPorts[int(pm.HostPort)] = true
			}
		}
		covered := map[string]bool{}
		forwarded := map[int]string{}
		for _, r := range tf.Resources {
			pod, ok := workloads[r.Workload]
			if !ok {
				t.Errorf("k8s_resource(%q): no such workload in the kind overlay", r.Workload)
				continue
			}
			covered[r.Workload], known[cmpOr(r.NewName, r.Workload)] = true, true
			if len(r.Labels) == 0 {
				t.Errorf("k8s_resource(%q) has no labels", r.Workload)
			}
			for _, pf := range r.PortForwards {
				if hostPorts[pf.Local] {
					t.Errorf("k8s_resource(%q) forwards local port %d, which kind-config.yaml already maps on the host", r.Workload, pf.Local)
				}
				if other, dup := forwarded[pf.Local]; dup {
					t.Errorf("local port %d forwarded for %s and %s", pf.Local, other, r.Workload)
				}
				forwarded[pf.Local] = r.Workload
				if !slices.ContainsFunc(allContainers(&pod.Spec), func(c corev1.Container) bool {
					return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == pf.Container })
				}) {
					t.Errorf("k8s_resource(%q) forwards container port %d, which no container of the pod declares", r.Workload, pf.Container)
				}
			}
			for _, l := range r.Links {
				checkLink(t, m, kc, r.Workload, pod, l)
			}
		}
		for name := range workloads {
			if !covered[name] {
				t.Errorf("workload %s has no k8s_resource (it would land in Tilt's unlabelled group)", name)
			}
		}
		for _, r := range tf.Resources {
			for _, d := range r.ResourceDeps {
				if !known[d] {
					t.Errorf("k8s_resource(%q) depends on unknown resource %q", r.Workload, d)
				}
			}
		}
		for _, lr := range tf.LocalResources {
			for _, d := range lr.ResourceDeps {
				if !known[d] {
					t.Errorf("local_resource(%q) depends on unknown resource %q", lr.Name, d)
				}
			}
		}
	})
}

// checkLink wants a link to the host: a port kind-config.yaml maps to a node port of a Service that selects
// the resource's pods.
func checkLink(t *testing.T, m *manifests.Manifest, kc harness.KindConfig, workload string, pod *corev1.PodTemplateSpec, l manifests.Link) {
	t.Helper()
	u, err := url.Parse(l.URL)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1") {
		t.Errorf("k8s_resource(%q) link %q: want http://localhost:PORT/...", workload, l.URL)
		return
	}
	port, _ := strconv.Atoi(u.Port())
	var nodePort int32
	for _, n := range kc.Nodes {
		for _, pm := range n.ExtraPortMappings {
			if int(pm.HostPort) == port && (pm.ListenAddress == "" || net.ParseIP(pm.ListenAddress).IsLoopback()) {
				nodePort = pm.ContainerPort
			}
		}
	}
	if nodePort == 0 {
		t.Errorf("k8s_resource(%q) link %q: kind-config.yaml maps no host port %d", workload, l.URL, port)
		return
	}
	for _, s := range manifests.All[corev1.Service](m) {
		for _, sp := range s.Spec.Ports {
			if sp.NodePort == nodePort && selects(s.Spec.Selector, pod.Labels) {
				return
			}
		}
	}
	t.Errorf("k8s_resource(%q) link %q: host port %d -> node port %d, but no Service of that node port selects %s",
		workload, l.URL, port, nodePort, workload)
}

// checkDockerfileSources wants every COPY/ADD source of a docker_build's Dockerfile inside its context and
// its only= list.
func checkDockerfileSources(t *testing.T, root string, ib manifests.ImageBuild, produced []string) {
	t.Helper()
	df, err := os.ReadFile(filepath.Join(root, ib.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (!strings.EqualFold(f[0], "COPY") && !strings.EqualFold(f[0], "ADD")) {
			continue
		}
		var srcs []string
		for _, a := range f[1 : len(f)-1] {
			if !strings.HasPrefix(a, "--") {
				srcs = append(srcs, a)
			}
		}
		for _, s := range srcs {
			p := filepath.ToSlash(filepath.Join(ib.Context, s))
			if len(ib.Only) > 0 && !slices.ContainsFunc(ib.Only, func(o string) bool {
				o = filepath.ToSlash(filepath.Join(ib.Context, o))
				return p == o || strings.HasPrefix(p, o+"/")
			}) {
				t.Errorf("%s copies %s, which only=%v leaves out of the context", ib.Dockerfile, s, ib.Only)
			}
			if !slices.Contains(produced, p) {
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s copies %s (%s), which does not exist", ib.Dockerfile, s, p)
				}
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestTiltfileStandIns proves the stand-ins refuse what real Tilt would do differently or what nobody
// checked: an unknown builtin, an unknown keyword argument, a wrong argument type.
func TestTiltfileStandIns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src, wantErr string
	}{
		{"known builtins", "allow_k8s_contexts('kind-x')\nk8s_resource('w', port_forwards=['8080:80', 9000], links=['http://localhost:1'])\n", ""},
		{"unknown builtin", "docker_compose('compose.yaml')\n", "undefined: docker_compose"},
		{"unknown keyword", "local_resource('x', 'make build', depz=['a'])\n", "unexpected keyword argument"},
		{"missing required", "custom_build('img', 'make image')\n", "missing argument for deps"},
		{"wrong type", "k8s_resource('w', labels=[1])\n", "want strings"},
		{"bad port forward", "k8s_resource('w', port_forwards='http')\n", "LOCAL[:CONTAINER]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "Tiltfile")
			writeFile(t, path, tc.src)
			tf, err := manifests.ExecTiltfile(path, renderYAML)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "":
				if len(tf.Resources) != 1 || len(tf.Resources[0].PortForwards) != 2 || tf.Resources[0].PortForwards[0] != (manifests.PortForward{Local: 8080, Container: 80}) {
					t.Errorf("recorded %+v", tf.Resources)
				}
			case err == nil || !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
