package manifests_test

import (
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/filesync/filesync/e2e/manifests"
)

// configMapFile returns the content of the ConfigMap key a mount shows at mountPath (a subPath mount of one
// key, or a directory mount), and the ConfigMap's name.
func configMapFile(t *testing.T, m *manifests.Manifest, spec *corev1.PodSpec, c *corev1.Container, mountPath string) string {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != mountPath && !strings.HasPrefix(mountPath, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			continue
		}
		v := volume(spec, vm.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("%s is mounted from volume %s, not a ConfigMap", mountPath, vm.Name)
		}
		cm := manifests.Get[corev1.ConfigMap](m, v.ConfigMap.Name)
		if cm == nil {
			t.Fatalf("no ConfigMap %s for %s", v.ConfigMap.Name, mountPath)
		}
		key := vm.SubPath
		if key == "" {
			key = path.Base(mountPath)
		}
		data, ok := cm.Data[key]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %s (for %s)", cm.Name, key, mountPath)
		}
		if !vm.ReadOnly {
			t.Errorf("%s: mount %s is not read-only", c.Name, mountPath)
		}
		return data
	}
	t.Fatalf("%s: nothing mounted at %s: %+v", c.Name, mountPath, c.VolumeMounts)
	return ""
}

// TestKindOverlayReadThrough: the kind overlay runs WordPress with the read-through, its peers and the
// plugin, wired so that each piece names the others correctly.
func TestKindOverlayReadThrough(t *testing.T) {
	t.Parallel()
	m := render(t, kindOverlay)
	wp := deployment(t, m, "wordpress")
	spec := &wp.Spec.Template.Spec
	sc := findContainer(spec, sidecarName)
	app := findContainer(spec, "wordpress")
	e := mustEnv(t, m, sc)

	addr := e["FILESYNC_READ_THROUGH"]
	host, port, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("FILESYNC_READ_THROUGH = %q, want a loopback HOST:PORT (it can read the bucket)", addr)
	}
	if e["FILESYNC_READ_THROUGH_INCLUDE"] != "uploads/**" {
		t.Errorf("FILESYNC_READ_THROUGH_INCLUDE = %q, want uploads/**", e["FILESYNC_READ_THROUGH_INCLUDE"])
	}
	if p, _ := strconv.Atoi(port); p == sidecarPort {
		t.Errorf("the read-through shares the probes' port %d", p)
	}

	t.Run("peers: a headless Service of these pods on the declared peer port", func(t *testing.T) {
		svc := manifests.Get[corev1.Service](m, e["FILESYNC_PEERS"])
		if svc == nil {
			t.Fatalf("FILESYNC_PEERS = %q names no Service", e["FILESYNC_PEERS"])
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || !selects(svc.Spec.Selector, wp.Spec.Template.Labels) {
			t.Errorf("Service %s: clusterIP %q selector %v, want headless and selecting the wordpress pods", svc.Name, svc.Spec.ClusterIP, svc.Spec.Selector)
		}
		_, listen, _ := net.SplitHostPort(e["FILESYNC_PEER_LISTEN"])
		var declared int32
		for _, p := range sc.Ports {
			if p.Name == "peers" {
				declared = p.ContainerPort
			}
		}
		if declared == 0 || strconv.Itoa(int(declared)) != listen || len(svc.Spec.Ports) != 1 ||
			svc.Spec.Ports[0].TargetPort.StrVal != "peers" || svc.Spec.Ports[0].Port != declared {
			t.Errorf("peer port: FILESYNC_PEER_LISTEN %q, declared %d, Service %+v: want one port everywhere", e["FILESYNC_PEER_LISTEN"], declared, svc.Spec.Ports)
		}
	})

	t.Run("peers: the secret file is a generated Secret's token", func(t *testing.T) {
		file := e["FILESYNC_PEER_SECRET_FILE"]
		vm := mountAt(sc, path.Dir(file))
		if vm == nil || !vm.ReadOnly {
			t.Fatalf("FILESYNC_PEER_SECRET_FILE %s: no read-only mount of its directory: %+v", file, sc.VolumeMounts)
		}
		v := volume(spec, vm.Name)
		if v == nil || v.Secret == nil {
			t.Fatalf("%s is not mounted from a Secret", file)
		}
		s := manifests.Get[corev1.Secret](m, v.Secret.SecretName)
		if s == nil {
			t.Fatalf("no Secret %s", v.Secret.SecretName)
		}
		tok := s.Data[path.Base(file)]
		if len(tok) == 0 {
			tok = []byte(s.StringData[path.Base(file)])
		}
		if len(strings.TrimSpace(string(tok))) < 16 {
			t.Errorf("Secret %s key %s: want at least 16 characters, got %d", s.Name, path.Base(file), len(tok))
		}
	})

	t.Run("peers: a NetworkPolicy lets only the WordPress pods reach the peer port", func(t *testing.T) {
		np := manifests.Get[networkingv1.NetworkPolicy](m, "wordpress-peers")
		if np == nil {
			t.Fatal("no NetworkPolicy wordpress-peers")
		}
		if !selects(np.Spec.PodSelector.MatchLabels, wp.Spec.Template.Labels) {
			t.Fatalf("NetworkPolicy selects %v, not the wordpress pods", np.Spec.PodSelector.MatchLabels)
		}
		open := map[string]bool{}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				name := p.Port.String()
				if name == "peers" {
					if len(rule.From) != 1 || rule.From[0].PodSelector == nil || !selects(rule.From[0].PodSelector.MatchLabels, wp.Spec.Template.Labels) {
						t.Errorf("the peer port is open to %+v, want only the wordpress pods", rule.From)
					}
					continue
				}
				if len(rule.From) == 0 {
					open[name] = true
				}
			}
		}
		for _, p := range []string{"http", "filesync"} {
			if !open[p] {
				t.Errorf("the NetworkPolicy closes port %s (it must stay open: the Service, the probes, Prometheus)", p)
			}
		}
	})

	t.Run("Apache sends missing uploads to the read-through, never PHP", func(t *testing.T) {
		conf := configMapFile(t, m, spec, app, "/etc/apache2/conf-enabled/zz-filesync-read-through.conf")
		for _, want := range []string{
			"LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so",
			"LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so",
			`<Directory "` + wpContentPath + `">`,
			"RewriteOptions Inherit",
			"RewriteCond %{REQUEST_FILENAME} !-f",
			"RewriteRule ^uploads/(.+)$ http://" + addr + "/uploads/$1 [P,L]",
		} {
			if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(want)).MatchString(conf) {
				t.Errorf("the Apache configuration lacks %q", want)
			}
		}
		php := regexp.MustCompile(`RewriteCond %\{REQUEST_URI\} !\\\.\(php[^)]*phtml\|phar[^)]*\)\$ \[NC\]`)
		if !php.MatchString(conf) {
			t.Errorf("the Apache configuration does not keep PHP from being proxied:\n%s", conf)
		}
	})

	t.Run("the must-use plugin", func(t *testing.T) {
		plugin := configMapFile(t, m, spec, app, wpContentPath+"/mu-plugins/filesync-read-through.php")
		for _, want := range []string{"add_filter('wp_unique_filename'", "add_filter('get_attached_file'",
			"add_filter('wp_get_original_image_path'", "X-Filesync-Fetch", "INSERT IGNORE INTO"} {
			if !strings.Contains(plugin, want) {
				t.Errorf("the plugin lacks %q", want)
			}
		}
		ae := mustEnv(t, m, app)
		if ae["FILESYNC_READ_THROUGH_URL"] != "http://"+addr {
			t.Errorf("FILESYNC_READ_THROUGH_URL = %q, want http://%s", ae["FILESYNC_READ_THROUGH_URL"], addr)
		}
		// Its mount point lies in the synced directory: never synced.
		if !strings.Contains(","+e["FILESYNC_EXCLUDE"]+",", ",mu-plugins/filesync-read-through.php,") {
			t.Errorf("FILESYNC_EXCLUDE does not exclude the plugin's mount point: %q", e["FILESYNC_EXCLUDE"])
		}
	})
}

// TestPHPUploadLimits: both overlays raise PHP's upload limits above 2 MB through a drop-in that both the
// official image and the stand-in read (PHP_INI_SCAN_DIR with a leading ':' keeps the image's own dir).
func TestPHPUploadLimits(t *testing.T) {
	t.Parallel()
	eachOverlay(t, func(t *testing.T, overlay string, m *manifests.Manifest) {
		wp := deployment(t, m, "wordpress")
		app := findContainer(&wp.Spec.Template.Spec, "wordpress")
		scan := mustEnv(t, m, app)["PHP_INI_SCAN_DIR"]
		if !strings.HasPrefix(scan, ":") {
			t.Fatalf("PHP_INI_SCAN_DIR = %q: want a leading ':' (keep the image's conf.d)", scan)
		}
		ini := configMapFile(t, m, &wp.Spec.Template.Spec, app, strings.TrimPrefix(scan, ":")+"/php-uploads.ini")
		for key, min := range map[string]int{"upload_max_filesize": 32, "post_max_size": 32, "memory_limit": 256} {
			v := regexp.MustCompile(`(?m)^` + key + ` = (\d+)M$`).FindStringSubmatch(ini)
			if v == nil {
				t.Errorf("php-uploads.ini sets no %s in M", key)
				continue
			}
			if n, _ := strconv.Atoi(v[1]); n < min {
				t.Errorf("%s = %dM, want at least %dM", key, n, min)
			}
		}
	})
}

// TestComponentWithoutReadThrough: the generic Component (and the GKE overlay, which does not take the
// read-through) renders no read-through: it is off unless an app opts in.
func TestComponentWithoutReadThrough(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{galleryDir, gkeOverlay} {
		m := render(t, dir)
		for _, d := range []string{"gallery", "wordpress"} {
			if dir == galleryDir && d == "wordpress" || dir == gkeOverlay && d == "gallery" {
				continue
			}
			e := mustEnv(t, m, findContainer(&deployment(t, m, d).Spec.Template.Spec, sidecarName))
			for _, k := range []string{"FILESYNC_READ_THROUGH", "FILESYNC_PEERS"} {
				if e[k] != "" {
					t.Errorf("%s: %s = %q, want read-through off", dir, k, e[k])
				}
			}
		}
	}
}
