package manifests_test

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

// pins reads hack/versions.env, the one place of every pinned version and image name.
func pins(t *testing.T) map[string]string {
	t.Helper()
	p, err := harness.LoadPins(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"FILESYNC_IMAGE", "FAKE_GCS_IMAGE", "WORDPRESS_IMAGE", "MARIADB_IMAGE", "PUBSUB_EMULATOR_IMAGE"} {
		if p[k] == "" {
			t.Fatalf("%s pins no %s", harness.PinsFile, k)
		}
	}
	return p
}

func readKindConfig(t *testing.T) harness.KindConfig {
	t.Helper()
	c, err := harness.ReadKindConfig(filepath.Join(repoRoot(t), kindConfig))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKindOverlay(t *testing.T) {
	t.Parallel()
	m := render(t, kindOverlay)
	images := pins(t)

	wp := deployment(t, m, "wordpress")
	if wp.Spec.Replicas == nil || *wp.Spec.Replicas != 3 {
		t.Errorf("wordpress replicas = %v, want 3", wp.Spec.Replicas)
	}
	checkSidecar(t, m, wp, sidecarWant{app: "wordpress", dir: wpContentPath, image: images["FILESYNC_IMAGE"], uid: 33})
	checkWordPressFiles(t, wp)

	t.Run("images are the ones make images loads into kind, never pulled", func(t *testing.T) {
		want := []string{images["FILESYNC_IMAGE"], images["FAKE_GCS_IMAGE"], images["WORDPRESS_IMAGE"], images["MARIADB_IMAGE"],
			images["PUBSUB_EMULATOR_IMAGE"]}
		var got []string
		for what, pod := range podSpecs(m) {
			for _, c := range allContainers(&pod.Spec) {
				got = append(got, c.Image)
				if c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("%s/%s: imagePullPolicy = %q, want IfNotPresent", what, c.Name, c.ImagePullPolicy)
				}
			}
		}
		slices.Sort(got)
		got = slices.Compact(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("images = %v, want exactly %v", got, want)
		}
	})

	t.Run("filesync talks to the in-cluster emulator", func(t *testing.T) {
		e := mustEnv(t, m, findContainer(&wp.Spec.Template.Spec, sidecarName))
		if got, want := e["STORAGE_EMULATOR_HOST"], "gcs.wordpress.svc.cluster.local:4443"; got != want {
			t.Fatalf("STORAGE_EMULATOR_HOST = %q, want %q", got, want)
		}
		if got, want := e["FILESYNC_REMOTE"], "gs://wordpress-media/wp-content"; got != want {
			t.Errorf("FILESYNC_REMOTE = %q, want %q", got, want)
		}
		checkEmulator(t, m, e["STORAGE_EMULATOR_HOST"], strings.SplitN(strings.TrimPrefix(e["FILESYNC_REMOTE"], "gs://"), "/", 2)[0])
	})

	t.Run("Services are on the node ports kind-config.yaml maps to the host", func(t *testing.T) {
		kc := readKindConfig(t)
		for _, tc := range []struct {
			service  string
			port     int32
			nodePort int32
			hostPort int32
		}{
			{"wordpress", 80, 30080, 8080},
			{"gcs", 4443, 30443, 4443},
		} {
			s := manifests.Get[corev1.Service](m, tc.service)
			if s == nil {
				t.Errorf("no Service %s", tc.service)
				continue
			}
			if s.Spec.Type != corev1.ServiceTypeNodePort || len(s.Spec.Ports) != 1 ||
				s.Spec.Ports[0].Port != tc.port || s.Spec.Ports[0].NodePort != tc.nodePort {
				t.Errorf("Service %s: type %s ports %+v, want NodePort %d -> %d", s.Name, s.Spec.Type, s.Spec.Ports, tc.nodePort, tc.port)
			}
			if got := kc.HostPortFor(tc.nodePort); got != tc.hostPort {
				t.Errorf("kind-config.yaml maps node port %d to host port %d, want %d", tc.nodePort, got, tc.hostPort)
			}
		}
	})

	t.Run("WordPress works at http://localhost:8080 with application passwords", func(t *testing.T) {
		e := mustEnv(t, m, findContainer(&wp.Spec.Template.Spec, "wordpress"))
		if e["WP_ENVIRONMENT_TYPE"] != "local" {
			t.Errorf("WP_ENVIRONMENT_TYPE = %q, want local", e["WP_ENVIRONMENT_TYPE"])
		}
		for _, c := range []string{"WP_HOME", "WP_SITEURL"} {
			if !strings.Contains(e["WORDPRESS_CONFIG_EXTRA"], fmt.Sprintf("define('%s', 'http://localhost:8080')", c)) {
				t.Errorf("WORDPRESS_CONFIG_EXTRA does not define %s as http://localhost:8080: %q", c, e["WORDPRESS_CONFIG_EXTRA"])
			}
		}
		if got := e["WORDPRESS_DB_HOST"]; got != "mariadb:3306" {
			t.Errorf("WORDPRESS_DB_HOST = %q, want mariadb:3306", got)
		}
	})

	t.Run("MariaDB keeps its data on a PVC of the default StorageClass", func(t *testing.T) {
		db := manifests.Get[appsv1.StatefulSet](m, "mariadb")
		if db == nil {
			t.Fatal("no StatefulSet mariadb")
		}
		if len(db.Spec.VolumeClaimTemplates) != 1 {
			t.Fatalf("mariadb volumeClaimTemplates = %d, want 1", len(db.Spec.VolumeClaimTemplates))
		}
		vct := db.Spec.VolumeClaimTemplates[0]
		if vct.Spec.StorageClassName != nil {
			t.Errorf("mariadb PVC names StorageClass %q; kind's default (standard) is taken when none is named", *vct.Spec.StorageClassName)
		}
		c := findContainer(&db.Spec.Template.Spec, "mariadb")
		if c == nil || mountOf(c, vct.Name) == nil || mountOf(c, vct.Name).MountPath != "/var/lib/mysql" {
			t.Errorf("mariadb does not mount its PVC at /var/lib/mysql")
		}
		if manifests.Get[corev1.Service](m, db.Spec.ServiceName) == nil {
			t.Errorf("mariadb's governing Service %q is missing", db.Spec.ServiceName)
		}
	})
}

// checkEmulator asserts the fake-gcs-server Deployment and Service behind STORAGE_EMULATOR_HOST.
func checkEmulator(t *testing.T, m *manifests.Manifest, emulatorHost, bucket string) {
	t.Helper()
	host, port, err := net.SplitHostPort(emulatorHost)
	if err != nil {
		t.Fatalf("STORAGE_EMULATOR_HOST %q: %v", emulatorHost, err)
	}
	svcName, ns, ok := strings.Cut(strings.TrimSuffix(host, ".svc.cluster.local"), ".")
	if !ok || !strings.HasSuffix(host, ".svc.cluster.local") {
		t.Fatalf("STORAGE_EMULATOR_HOST %q is not a Service's cluster DNS name", emulatorHost)
	}
	svc := manifests.Get[corev1.Service](m, svcName)
	if svc == nil || svc.Namespace != ns {
		t.Fatalf("STORAGE_EMULATOR_HOST names Service %s in namespace %s; the manifest has %+v", svcName, ns, svc)
	}
	if len(svc.Spec.Ports) != 1 || fmt.Sprint(svc.Spec.Ports[0].Port) != port {
		t.Errorf("Service %s ports %+v, want %s", svcName, svc.Spec.Ports, port)
	}
	d := deployment(t, m, "fake-gcs-server")
	if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service %s does not select the fake-gcs-server pods", svcName)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("fake-gcs-server keeps its objects in memory: want 1 replica and the Recreate strategy")
	}
	spec := &d.Spec.Template.Spec
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("fake-gcs-server: enableServiceLinks must be false (FAKE_GCS_* service env is read as config)")
	}
	// Its one init container waits for the Pub/Sub emulator, on the emulator's image, with the topic it
	// publishes to; the filesync Component leaves the pod alone.
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "wait-for-pubsub" {
		t.Errorf("fake-gcs-server: want one init container, wait-for-pubsub, got %v", spec.InitContainers)
	} else {
		w := &spec.InitContainers[0]
		emu := findContainer(&deployment(t, m, "pubsub-emulator").Spec.Template.Spec, "pubsub-emulator")
		if emu == nil || w.Image != emu.Image {
			t.Errorf("fake-gcs-server: wait-for-pubsub runs %s, not the emulator's image", w.Image)
		}
		we := mustEnv(t, m, w)
		args := expand(strings.Join(w.Args, " "), we)
		if want := "-wait-for=" + we["PUBSUB_EMULATOR_HOST"] + " -topics=projects/" + we["PUBSUB_PROJECT"] + "/topics/" +
			we["PUBSUB_TOPIC"]; args != want || we["PUBSUB_EMULATOR_HOST"] == "" {
			t.Errorf("fake-gcs-server: wait-for-pubsub args %q, want %q", args, want)
		}
	}
	for _, c := range allContainers(spec) {
		if c.Name == sidecarName {
			t.Errorf("fake-gcs-server took the filesync sidecar (the Component must leave it alone)")
		}
	}
	c := findContainer(spec, "fake-gcs-server")
	if c == nil {
		t.Fatal("no container fake-gcs-server")
	}
	checkLockedDown(t, "fake-gcs-server", spec, c)
	e := mustEnv(t, m, c)
	flags := map[string]string{}
	for _, a := range c.Args {
		a = expand(a, e)
		if strings.Contains(a, "$(") {
			t.Errorf("fake-gcs-server arg %q refers to an undefined variable", a)
		}
		k, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		flags[k] = v
	}
	for k, want := range map[string]string{
		"backend":      "memory",
		"scheme":       "http",
		"port":         port,
		"external-url": "http://" + emulatorHost,
		"public-host":  host,
	} {
		if flags[k] != want {
			t.Errorf("fake-gcs-server -%s = %q, want %q", k, flags[k], want)
		}
	}
	if u, err := url.Parse(flags["external-url"]); err != nil || u.Host != emulatorHost {
		t.Errorf("-external-url %q must be the URL the clients use (%s): resumable uploads follow it", flags["external-url"], emulatorHost)
	}
	// The bucket exists at start: -data holds a directory named after it.
	data := flags["data"]
	dm := mountAt(c, data)
	if data == "" || dm == nil {
		t.Fatalf("fake-gcs-server: -data %q is not a mounted volume", data)
	}
	created := false
	for _, vm := range c.VolumeMounts {
		if vm.Name == dm.Name && (expand(vm.SubPathExpr, e) == bucket || vm.SubPath == bucket) {
			created = true
		}
	}
	if mountAt(c, data+"/"+bucket) != nil {
		created = true
	}
	if !created {
		t.Errorf("nothing creates the bucket directory %s/%s before fake-gcs-server starts", data, bucket)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/_internal/healthcheck" {
		t.Errorf("fake-gcs-server: want a readiness probe on /_internal/healthcheck, got %+v", c.ReadinessProbe)
	}
}

// checkWordPressFiles asserts what makes the synced files usable by Apache (uid/gid 33) and what is not
// synced.
func checkWordPressFiles(t *testing.T, wp *appsv1.Deployment) {
	t.Helper()
	spec := &wp.Spec.Template.Spec
	if spec.SecurityContext == nil || spec.SecurityContext.FSGroup == nil || *spec.SecurityContext.FSGroup != 33 {
		t.Errorf("wordpress pod: fsGroup must be 33 (www-data)")
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("wordpress pod: enableServiceLinks must be false (the image turns WORDPRESS_* env into config)")
	}
}

func TestWordPressExcludes(t *testing.T) {
	t.Parallel()
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		wp := deployment(t, m, "wordpress")
		e := mustEnv(t, m, findContainer(&wp.Spec.Template.Spec, sidecarName))
		globs := strings.Split(e["FILESYNC_EXCLUDE"], ",")
		for _, want := range []string{"cache/**", "upgrade/**", "upgrade-temp-backup/**", "wflogs/**", "uploads/wc-logs/**", "debug.log", "**/*.tmp"} {
			if !slices.Contains(globs, want) {
				t.Errorf("FILESYNC_EXCLUDE lacks %q: %v", want, globs)
			}
		}
		for _, g := range globs {
			if g == "" || strings.TrimSpace(g) != g || strings.HasPrefix(g, "/") {
				t.Errorf("FILESYNC_EXCLUDE has a malformed glob %q", g)
			}
			if strings.HasPrefix(g, "uploads/**") || g == "uploads" || g == "**" {
				t.Errorf("FILESYNC_EXCLUDE must never exclude the uploads themselves: %q", g)
			}
		}
	})
}

func TestGKEOverlay(t *testing.T) {
	t.Parallel()
	m := render(t, gkeOverlay)
	wp := deployment(t, m, "wordpress")
	spec := &wp.Spec.Template.Spec
	checkSidecar(t, m, wp, sidecarWant{app: "wordpress", dir: wpContentPath, image: releaseImage(t), uid: 33})
	checkWordPressFiles(t, wp)

	t.Run("a real bucket, no emulator anywhere", func(t *testing.T) {
		for what, pod := range podSpecs(m) {
			for _, c := range allContainers(&pod.Spec) {
				e := mustEnv(t, m, &c)
				if v, ok := e["STORAGE_EMULATOR_HOST"]; ok {
					t.Errorf("%s/%s: STORAGE_EMULATOR_HOST=%q in the gke overlay", what, c.Name, v)
				}
			}
		}
		for _, cm := range manifests.All[corev1.ConfigMap](m) {
			if _, ok := cm.Data["STORAGE_EMULATOR_HOST"]; ok {
				t.Errorf("ConfigMap %s carries STORAGE_EMULATOR_HOST", cm.Name)
			}
		}
		if manifests.Get[appsv1.Deployment](m, "fake-gcs-server") != nil || manifests.Get[corev1.Service](m, "gcs") != nil {
			t.Errorf("the gke overlay deploys fake-gcs-server")
		}
	})

	t.Run("Workload Identity, no key files", func(t *testing.T) {
		sa := manifests.Get[corev1.ServiceAccount](m, spec.ServiceAccountName)
		if spec.ServiceAccountName == "" || sa == nil {
			t.Fatalf("wordpress pods run as ServiceAccount %q, which the overlay does not define", spec.ServiceAccountName)
		}
		gsa := sa.Annotations["iam.gke.io/gcp-service-account"]
		if !regexp.MustCompile(`^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$`).MatchString(gsa) {
			t.Errorf("ServiceAccount %s: iam.gke.io/gcp-service-account = %q, want a Google service account email", sa.Name, gsa)
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil || v.Projected != nil {
				t.Errorf("wordpress pod mounts a Secret/projected volume %q: no key files with Workload Identity", v.Name)
			}
		}
		for _, c := range allContainers(spec) {
			for _, e := range c.Env {
				if e.Name == "GOOGLE_APPLICATION_CREDENTIALS" {
					t.Errorf("%s sets GOOGLE_APPLICATION_CREDENTIALS", c.Name)
				}
			}
			if slices.ContainsFunc(c.Args, func(a string) bool { return strings.Contains(a, "credentials-file") }) {
				t.Errorf("%s reads a credentials file", c.Name)
			}
		}
	})

	t.Run("Cloud SQL through the Auth Proxy as a second native sidecar", func(t *testing.T) {
		if manifests.Get[appsv1.StatefulSet](m, "mariadb") != nil || manifests.Get[corev1.Service](m, "mariadb") != nil {
			t.Errorf("MariaDB is still deployed")
		}
		p := findContainer(spec, "cloud-sql-proxy")
		if p == nil || !slices.ContainsFunc(spec.InitContainers, func(c corev1.Container) bool { return c.Name == "cloud-sql-proxy" }) {
			t.Fatal("no init container cloud-sql-proxy")
		}
		if p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("cloud-sql-proxy is not a native sidecar (restartPolicy Always)")
		}
		if p.StartupProbe == nil || p.StartupProbe.HTTPGet == nil || p.StartupProbe.HTTPGet.Path != "/startup" {
			t.Errorf("cloud-sql-proxy: want a startup probe on /startup so WordPress waits for the database")
		} else if _, ok := containerPort(p, *p.StartupProbe.HTTPGet); !ok {
			t.Errorf("cloud-sql-proxy: the startup probe's port is not declared")
		}
		if !slices.Contains(p.Args, "--health-check") || !slices.Contains(p.Args, "--http-address=0.0.0.0") {
			t.Errorf("cloud-sql-proxy: the probes need --health-check and --http-address=0.0.0.0: %v", p.Args)
		}
		if !slices.Contains(p.Args, "--port=3306") {
			t.Errorf("cloud-sql-proxy does not listen on 3306: %v", p.Args)
		}
		if !regexp.MustCompile(`^[a-z][-a-z0-9]+:[a-z]+-[a-z]+[0-9]:[a-z][-a-z0-9]*$`).MatchString(p.Args[len(p.Args)-1]) {
			t.Errorf("cloud-sql-proxy: last arg %q is not PROJECT:REGION:INSTANCE", p.Args[len(p.Args)-1])
		}
		checkLockedDown(t, "cloud-sql-proxy", spec, p)
		e := mustEnv(t, m, findContainer(spec, "wordpress"))
		if e["WORDPRESS_DB_HOST"] != "127.0.0.1:3306" {
			t.Errorf("WORDPRESS_DB_HOST = %q, want the proxy at 127.0.0.1:3306", e["WORDPRESS_DB_HOST"])
		}
	})

	t.Run("PodDisruptionBudget and HorizontalPodAutoscaler", func(t *testing.T) {
		pdbs := manifests.All[policyv1.PodDisruptionBudget](m)
		if len(pdbs) != 1 || pdbs[0].Spec.Selector == nil || !selects(pdbs[0].Spec.Selector.MatchLabels, wp.Spec.Template.Labels) {
			t.Errorf("want one PodDisruptionBudget selecting the wordpress pods, got %+v", pdbs)
		} else if pdbs[0].Spec.MaxUnavailable == nil && pdbs[0].Spec.MinAvailable == nil {
			t.Errorf("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
		}
		hpas := manifests.All[autoscalingv2.HorizontalPodAutoscaler](m)
		if len(hpas) != 1 {
			t.Fatalf("want one HorizontalPodAutoscaler, got %d", len(hpas))
		}
		h := hpas[0]
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != "wordpress" || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("HPA targets %+v, want apps/v1 Deployment wordpress", h.Spec.ScaleTargetRef)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HPA min/max replicas %v/%d: want at least 2 replicas at all times", h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if wp.Spec.Replicas != nil {
			t.Errorf("wordpress sets replicas (%d) while an HPA owns the count", *wp.Spec.Replicas)
		}
		for _, c := range wp.Spec.Template.Spec.Containers {
			if c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("container %s has no CPU request: the HPA's utilization target needs one", c.Name)
			}
		}
	})

	t.Run("public images, pinned", func(t *testing.T) {
		for what, pod := range podSpecs(m) {
			for _, c := range allContainers(&pod.Spec) {
				if strings.HasPrefix(c.Image, "kind.local/") {
					t.Errorf("%s/%s: image %s exists only in kind", what, c.Name, c.Image)
				}
			}
		}
	})
}

// TestOverlaysAreConsistent checks what every overlay must get right: pinned images, namespaces, labels,
// Services that select pods and name their ports, references that resolve, locked-down pods.
func TestOverlaysAreConsistent(t *testing.T) {
	t.Parallel()
	pinned := regexp.MustCompile(`(@sha256:[0-9a-f]{64}$)|(:v?[0-9]+\.[0-9]+\.[0-9]+[-.A-Za-z0-9]*$)`)
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		images := pins(t)
		kindImages := []string{images["FILESYNC_IMAGE"], images["FAKE_GCS_IMAGE"], images["WORDPRESS_IMAGE"], images["MARIADB_IMAGE"],
			images["PUBSUB_EMULATOR_IMAGE"]}
		pods := podSpecs(m)

		for what, pod := range pods {
			for _, c := range allContainers(&pod.Spec) {
				switch {
				case strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"):
					t.Errorf("%s/%s: image %q is not pinned", what, c.Name, c.Image)
				case strings.HasPrefix(c.Image, "kind.local/"):
					if !slices.Contains(kindImages, c.Image) {
						t.Errorf("%s/%s: local image %q is none the Makefile builds %v", what, c.Name, c.Image, kindImages)
					}
				case !pinned.MatchString(c.Image):
					t.Errorf("%s/%s: image %q is not pinned to a full version or a digest", what, c.Name, c.Image)
				}
				if _, err := env(m, &c); err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s/%s: want a memory request and limit", what, c.Name)
				}
				if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
					t.Errorf("%s/%s: allowPrivilegeEscalation must be false", what, c.Name)
				}
			}
			names, ports := map[string]bool{}, map[int32]bool{}
			for _, c := range allContainers(&pod.Spec) {
				for _, p := range c.Ports {
					if names[p.Name] || ports[p.ContainerPort] {
						t.Errorf("%s: port %s/%d declared twice in the pod", what, p.Name, p.ContainerPort)
					}
					names[p.Name], ports[p.ContainerPort] = true, true
				}
			}
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod seccompProfile is not RuntimeDefault", what)
			}
			if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
				t.Errorf("%s: enableServiceLinks must be false", what)
			}
		}

		for _, o := range m.Objects {
			if o.Kind != "Namespace" && o.Namespace != "wordpress" {
				t.Errorf("%s %s is in namespace %q, want wordpress", o.Kind, o.Name, o.Namespace)
			}
		}

		for _, o := range m.Objects {
			meta := objectLabels(o)
			if meta["app.kubernetes.io/part-of"] != "wordpress" {
				t.Errorf("%s %s: label app.kubernetes.io/part-of = %q, want wordpress", o.Kind, o.Name, meta["app.kubernetes.io/part-of"])
			}
		}
		for _, d := range manifests.All[appsv1.Deployment](m) {
			checkWorkloadLabels(t, "Deployment/"+d.Name, d.Labels, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		for _, s := range manifests.All[appsv1.StatefulSet](m) {
			checkWorkloadLabels(t, "StatefulSet/"+s.Name, s.Labels, s.Spec.Selector.MatchLabels, s.Spec.Template.Labels)
		}

		for _, svc := range manifests.All[corev1.Service](m) {
			var matched []string
			for what, pod := range pods {
				if selects(svc.Spec.Selector, pod.Labels) {
					matched = append(matched, what)
					for _, sp := range svc.Spec.Ports {
						if sp.TargetPort.StrVal == "" {
							continue
						}
						if !slices.ContainsFunc(allContainers(&pod.Spec), func(c corev1.Container) bool {
							return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == sp.TargetPort.StrVal })
						}) {
							t.Errorf("Service %s: targetPort %q is no port of %s", svc.Name, sp.TargetPort.StrVal, what)
						}
					}
				}
			}
			if len(matched) != 1 {
				t.Errorf("Service %s selects %v, want exactly one workload", svc.Name, matched)
			}
		}
	})
}

func checkWorkloadLabels(t *testing.T, what string, meta, selector, template map[string]string) {
	t.Helper()
	if !selects(selector, template) {
		t.Errorf("%s: selector %v does not select its own pod template %v", what, selector, template)
	}
	for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of"} {
		if meta[k] == "" || meta[k] != template[k] {
			t.Errorf("%s: label %s differs between the object (%q) and its pods (%q)", what, k, meta[k], template[k])
		}
	}
}

func objectLabels(o manifests.Object) map[string]string {
	type labeled interface{ GetLabels() map[string]string }
	if l, ok := o.Value.(labeled); ok {
		return l.GetLabels()
	}
	return nil
}
