//go:build e2e

package suite

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/filesync/filesync/e2e/internal/cluster"
	"github.com/filesync/filesync/e2e/internal/harness"
)

// A plugin installed on one replica reaches the others whole, at once, and never breaks a page (issue 21):
// a plugin of 400 files that require each other is installed on replica A as WordPress's upgrader does it
// (unpacked under wp-content/upgrade/, renamed into plugins/) and activated there, while the other replicas
// serve their front page without a pause: none answers anything but 200, and every replica has the whole
// plugin within treeLag of its last object reaching the bucket (treeTarget). The Plugins screen, opened on every replica, keeps it active. Then the plugin is
// updated on A the same way (the old version moved to upgrade-temp-backup/, the new one renamed in) to a
// version whose main file requires files the old one did not have: again no page fails, and every replica
// has the new version whole within treeLag of its last object.
func TestPluginInstalledOnOneReplicaReachesTheOthersWhole(t *testing.T) {
	f := features.New("plugin install and update").
		Assess("a 400-file plugin installed and activated on replica A is whole on every replica as soon as the bucket has it, and no page fails meanwhile",
			installPlugin).
		Assess("the Plugins screen, opened on every replica, keeps the plugin active", pluginsScreenKeepsItActive).
		Assess("an update whose main file requires new files is whole on every replica as soon as the bucket has it, and no page fails meanwhile",
			updatePlugin).
		Feature()
	testenv.Test(t, f)
}

const (
	// treeTarget is how long a plugin should take to reach every replica, from its rename on the writer
	// (issue 21). On this kit most of it is the writer's upload: fake-gcs-server takes its inserts one at a
	// time, 40-70 a second on the 2-core CI machine, so 400 files alone take 6-11 s; the feature reports
	// the total against this target and asserts treeLag, the part filesync adds after the bucket has the
	// whole plugin (the receivers' quiet time and their last downloads), and the propagation bound.
	treeTarget = 10 * time.Second
	// treeLag bounds how long after the plugin's last object was written every replica has it whole:
	// max(--settle, 1 s) of quiet, then only renames (its files were staged as they came), plus what the
	// receivers still had to download: each notified object costs a receiver a read from the same emulator
	// the writer inserts into, on the same two cores: 2.3-2.9 s measured here with notifications received on
	// 4 streams, 4.4-9 s with one (docs/e2e.md); the bound leaves room for a loaded CI machine.
	treeLag = 15 * time.Second
	// opcacheLag is how long a replica may still run its cached copy of a changed PHP file: the kit's image
	// has opcache.revalidate_freq=2 (docs/manifests.md, "Plugins and themes").
	opcacheLag = 2 * time.Second
	// pluginFiles is how many files version 1 of the plugin has: main file, loader and 398 includes.
	pluginFiles = 400
)

// pagePause is the pause between a replica's answer and the next request for its front page: a page takes
// 300-500 ms of PHP on the 2-core CI machine, so requests back to back would leave the sidecars and the
// emulator next to no CPU.
const pagePause = 200 * time.Millisecond

type pluginKey struct{}

// pluginState is what the install leaves for the later steps.
type pluginState struct {
	slug string
	pods []string
}

func pluginFrom(ctx context.Context, t *testing.T) *pluginState {
	t.Helper()
	ps, ok := ctx.Value(pluginKey{}).(*pluginState)
	if !ok {
		t.Fatal("the install step did not run")
	}
	return ps
}

func installPlugin(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	ps := &pluginState{slug: harness.RandomName("fse2e"), pods: names(readyReplicas(ctx, t, st, replicas))}
	a, others := ps.pods[0], ps.pods[1:]
	files := pluginVersion(ps.slug, 1)

	pages := servePages(ctx, t, st, others)
	at := upgraderInstall(ctx, t, st, a, ps.slug, files, false)
	if err := activatePlugin(ctx, st, a, ps.slug); err != nil {
		t.Fatal(err)
	}
	awaitPlugin(ctx, t, st, "install", a, others, ps.slug, files, at)
	pages.stop(t)
	expectFooter(ctx, t, st, ps.pods, ps.slug, 1)
	return context.WithValue(ctx, pluginKey{}, ps)
}

func pluginsScreenKeepsItActive(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	ps := pluginFrom(ctx, t)
	for _, pod := range ps.pods {
		status, body, err := pluginsScreen(ctx, st, pod)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || !bytes.Contains(body, []byte("filesync e2e "+ps.slug)) {
			t.Fatalf("the Plugins screen on %s: HTTP %d, the plugin not listed: %s", pod, status, excerpt(body))
		}
		if bytes.Contains(body, []byte("has been deactivated due to an error")) {
			t.Fatalf("the Plugins screen on %s deactivated the plugin: %s", pod, excerpt(body))
		}
	}
	for _, pod := range ps.pods {
		active, err := pluginActive(ctx, st, pod, ps.slug)
		if err != nil {
			t.Fatal(err)
		}
		if !active {
			t.Fatalf("after the Plugins screen was opened on every replica, %s says the plugin is not active", pod)
		}
	}
	return ctx
}

func updatePlugin(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
	st := StateFrom(ctx)
	ps := pluginFrom(ctx, t)
	a, others := ps.pods[0], ps.pods[1:]
	files := pluginVersion(ps.slug, 2)

	pages := servePages(ctx, t, st, others)
	at := upgraderInstall(ctx, t, st, a, ps.slug, files, true)
	awaitPlugin(ctx, t, st, "update", a, others, ps.slug, files, at)
	pages.stop(t)
	expectFooter(ctx, t, st, ps.pods, ps.slug, 2)
	if err := st.WordPress.setPluginStatus(ctx, a, ps.slug, "inactive"); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// awaitPlugin waits until every one of others holds exactly files as plugins/SLUG (within the propagation
// bound), then checks that each had it within treeLag of the last of its objects reaching the bucket, and
// reports the times from the rename at (what the 10 s target measures).
func awaitPlugin(ctx context.Context, t *testing.T, st *State, what, writer string, others []string, slug string,
	files map[string][]byte, at time.Time) {
	t.Helper()
	dir := "plugins/" + slug
	took, err := awaitEverywhere(ctx, at, st.Config.PropagationBound, others, hasTree(st, dir, files))
	slowest := logArrivals(t, fmt.Sprintf("plugin %s, %d files, from %s", what, len(files), writer), took)
	if err != nil {
		t.Fatalf("the plugin is not whole everywhere within %s: %v", st.Config.PropagationBound, err)
	}
	objs, err := st.Bucket.List(ctx, remotePrefix+dir+"/")
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, o := range objs {
		if o.CTime.After(last) {
			last = o.CTime
		}
	}
	uploaded := last.Sub(at)
	t.Logf("MEASURED plugin %s: %d files; the bucket had the last of them %.2fs after the rename on %s, the last replica "+
		"had all of them %.2fs after it (target %s): %.2fs after the bucket", what, len(files), uploaded.Seconds(),
		writer, slowest.Seconds(), treeTarget, (slowest - uploaded).Seconds())
	for pod, d := range took {
		if lag := d - uploaded; lag > treeLag {
			t.Errorf("%s had the plugin whole %.2fs after its last object reached the bucket; want at most %s",
				pod, lag.Seconds(), treeLag)
		}
	}
}

// pluginVersion is version v of a plugin whose every file is required: the main file requires the loader,
// which requires each include, and a footer hook sums what each include returns, so that a missing file is
// a fatal error (WordPress's "critical error" page, HTTP 500). Version 2 changes the main file, the loader
// and 150 includes, drops 48 and adds 50 under inc/v2/ (new files the new main file requires). Paths are
// relative to wp-content/plugins/SLUG.
func pluginVersion(slug string, v int) map[string][]byte {
	fn := strings.ReplaceAll(slug, "-", "_")
	files := map[string][]byte{}
	var includes []string
	add := func(rel string, ret int) {
		files[rel] = fmt.Appendf(nil, "<?php\nfunction %s_%s() { return %d; }\n// %s\n", fn, funcName(rel), ret,
			strings.Repeat("padding so that the file is not tiny ", 20))
		includes = append(includes, rel)
	}
	n := pluginFiles - 2
	if v == 2 {
		n -= 48
	}
	for i := range n {
		ret := 1
		if v == 2 && i < 150 {
			ret = 2
		}
		add(fmt.Sprintf("inc/f%03d.php", i), ret)
	}
	if v == 2 {
		for i := range 50 {
			add(fmt.Sprintf("inc/v2/g%03d.php", i), 2)
		}
	}
	var loader strings.Builder
	fmt.Fprintf(&loader, "<?php\n")
	for _, rel := range includes {
		fmt.Fprintf(&loader, "require_once __DIR__ . '/../%s';\n", rel)
	}
	fmt.Fprintf(&loader, "function %s_total() {\n\treturn 0", fn)
	for _, rel := range includes {
		fmt.Fprintf(&loader, " + %s_%s()", fn, funcName(rel))
	}
	fmt.Fprintf(&loader, ";\n}\n")
	files["inc/loader.php"] = []byte(loader.String())
	files[slug+".php"] = fmt.Appendf(nil, `<?php
/*
 * Plugin Name: filesync e2e %[1]s
 * Version: %[2]d
 */
require_once __DIR__ . '/inc/loader.php';
add_action('wp_footer', function () { echo '<!-- fse2e %[1]s v%[2]d ' . %[3]s_total() . ' -->'; });
`, slug, v, fn)
	return files
}

// funcName is the include rel's function suffix: inc/v2/g001.php -> v2_g001.
func funcName(rel string) string {
	return strings.NewReplacer("inc/", "", "/", "_", ".php", "").Replace(rel)
}

// footerTotal is what version v's footer hook prints: the sum of its includes.
func footerTotal(v int) int {
	if v == 1 {
		return pluginFiles - 2
	}
	return 150*2 + (pluginFiles - 2 - 48 - 150) + 50*2
}

// upgraderInstall puts files on pod as WordPress's upgrader does: unpacked under wp-content/upgrade/ (which
// filesync excludes), then renamed into plugins/SLUG; an update first moves the old version to
// upgrade-temp-backup/plugins/SLUG (excluded too). It returns when the rename happened, on the pod's clock
// (kind's nodes share the host's).
func upgraderInstall(ctx context.Context, t *testing.T, st *State, pod, slug string, files map[string][]byte, update bool) time.Time {
	t.Helper()
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	paths := make([]string, 0, len(files))
	for rel := range files {
		paths = append(paths, rel)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		h := &tar.Header{Name: slug + "/" + rel, Mode: 0o644, Size: int64(len(files[rel])), Uid: 33, Gid: 33, ModTime: time.Now()}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[rel]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	const script = `set -e
cd "$1"; work="upgrade/$2-$(date +%s%N)"
mkdir -p "$work" upgrade-temp-backup/plugins
tar -x -C "$work"
chown -R 33:33 upgrade "$work"
if [ "$3" = update ]; then rm -rf "upgrade-temp-backup/plugins/$2"; mv "plugins/$2" "upgrade-temp-backup/plugins/$2"; fi
mv "$work/$2" "plugins/$2"
date +%s.%N
rmdir "$work"`
	mode := "install"
	if update {
		mode = "update"
	}
	out, err := st.Kube.Exec(ctx, pod, appContainer, archive.Bytes(), "sh", "-c", script, "sh", wpContent, slug, mode)
	if err != nil {
		t.Fatalf("%s the plugin on %s: %v", mode, pod, err)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("%s the plugin on %s: the rename's time %q: %v", mode, pod, out, err)
	}
	return time.Unix(0, int64(secs*1e9))
}

// hasTree checks that a replica's dir holds exactly files (relative to dir), byte-identical.
func hasTree(st *State, dir string, files map[string][]byte) func(context.Context, string) (bool, error) {
	want := map[string]string{}
	for rel, b := range files {
		sum := md5.Sum(b)
		want[dir+"/"+rel] = hex.EncodeToString(sum[:])
	}
	return func(ctx context.Context, pod string) (bool, error) {
		tree, err := st.Kube.Tree(ctx, pod, dir)
		if err != nil {
			return false, err
		}
		if len(tree) != len(want) {
			return false, fmt.Errorf("%d of %d files", len(tree), len(want))
		}
		for rel, fi := range tree {
			if want[rel] != fi.MD5 {
				return false, fmt.Errorf("%s differs", rel)
			}
		}
		return true, nil
	}
}

// pages is the front page served over and over by each of some replicas while a step runs.
type pages struct {
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	counts map[string]map[int]int // pod -> status (0: transport error) -> responses
	bad    []string               // the first failures, for the report
}

// servePages asks each pod for the front page over and over until stop, pagePause after each answer, as
// visitors would.
func servePages(ctx context.Context, t *testing.T, st *State, pods []string) *pages {
	t.Helper()
	p := &pages{quit: make(chan struct{}), counts: map[string]map[int]int{}}
	sites := openSites(ctx, t, st, pods)
	for _, pod := range pods {
		p.counts[pod] = map[int]int{}
		p.wg.Go(func() {
			for {
				a := sites[pod].do(ctx, http.MethodGet, "/", nil)
				p.record(pod, a)
				select {
				case <-p.quit:
					return
				case <-ctx.Done():
					return
				case <-time.After(pagePause):
				}
			}
		})
	}
	return p
}

func (p *pages) record(pod string, a answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	status := a.status
	if a.err != nil {
		status = 0
	}
	p.counts[pod][status]++
	if status != http.StatusOK && len(p.bad) < 5 {
		p.bad = append(p.bad, fmt.Sprintf("%s: HTTP %d %v %s", pod, a.status, a.err, excerpt(a.body)))
	}
}

// stop ends the requests and fails the step if any answer was not a 200.
func (p *pages) stop(t *testing.T) {
	t.Helper()
	close(p.quit)
	p.wg.Wait()
	failed := 0
	for pod, byStatus := range p.counts {
		total := 0
		for status, n := range byStatus {
			total += n
			if status != http.StatusOK {
				failed += n
			}
		}
		t.Logf("MEASURED front page on %s meanwhile: %d requests, by status %v", pod, total, byStatus)
	}
	if failed > 0 {
		t.Fatalf("%d front-page requests did not answer 200, the first: %s", failed, strings.Join(p.bad, "; "))
	}
}

// expectFooter checks that every pod's front page runs version v of the plugin, with all of its includes,
// within opcacheLag (and the time a page takes).
func expectFooter(ctx context.Context, t *testing.T, st *State, pods []string, slug string, v int) {
	t.Helper()
	want := fmt.Sprintf("<!-- fse2e %s v%d %d -->", slug, v, footerTotal(v))
	footerOf := regexp.MustCompile(`<!-- fse2e ` + regexp.QuoteMeta(slug) + ` v\d+ \d+ -->`)
	_, err := awaitEverywhere(ctx, time.Now(), opcacheLag+3*time.Second, pods, func(ctx context.Context, pod string) (bool, error) {
		status, body, err := st.WordPress.Fetch(ctx, pod, "/")
		switch {
		case err != nil:
			return false, err
		case status != http.StatusOK || !bytes.Contains(body, []byte(want)):
			return false, fmt.Errorf("HTTP %d, footer %q, want %q", status, footerOf.Find(body), want)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the front pages do not run version %d of the plugin: %v", v, err)
	}
}

// activatePlugin activates the plugin through the REST API of pod (what the Activate link does).
func activatePlugin(ctx context.Context, st *State, pod, slug string) error {
	return st.WordPress.setPluginStatus(ctx, pod, slug, "active")
}

func (w *WordPress) setPluginStatus(ctx context.Context, pod, slug, status string) error {
	h := http.Header{"Content-Type": {"application/json"}}
	code, body, err := w.rest(ctx, pod, http.MethodPost, "/wp/v2/plugins/"+slug+"/"+slug, nil,
		fmt.Appendf(nil, `{"status":%q}`, status), h)
	if err != nil {
		return fmt.Errorf("set plugin %s %s on %s: %w", slug, status, pod, err)
	}
	if code != http.StatusOK || !bytes.Contains(body, fmt.Appendf(nil, `"status":%q`, status)) {
		return fmt.Errorf("set plugin %s %s on %s: HTTP %d: %s", slug, status, pod, code, excerpt(body))
	}
	return nil
}

// pluginActive asks pod's REST API whether the plugin is active (the shared database says so, and pod has
// its main file).
func pluginActive(ctx context.Context, st *State, pod, slug string) (bool, error) {
	code, body, err := st.WordPress.rest(ctx, pod, http.MethodGet, "/wp/v2/plugins/"+slug+"/"+slug, nil, nil, nil)
	if err != nil {
		return false, fmt.Errorf("plugin %s on %s: %w", slug, pod, err)
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("plugin %s on %s: HTTP %d: %s", slug, pod, code, excerpt(body))
	}
	return bytes.Contains(body, []byte(`"status":"active"`)), nil
}

// pluginsScreen opens wp-admin/plugins.php on pod as the administrator (the screen runs
// validate_active_plugins(), which deactivates an active plugin whose file this replica lacks), with login
// cookies made by WordPress itself in the container.
func pluginsScreen(ctx context.Context, st *State, pod string) (int, []byte, error) {
	code := fmt.Sprintf(`
$_SERVER["HTTP_HOST"] = %[1]q; $_SERVER["SERVER_NAME"] = "localhost"; $_SERVER["REQUEST_URI"] = "/";
require "/var/www/html/wp-load.php";
$u = get_user_by("login", %[2]q);
if (!$u) { fwrite(STDERR, "no user %[2]s\n"); exit(1); }
$exp = time() + 600;
echo "\n" . AUTH_COOKIE . "=" . wp_generate_auth_cookie($u->ID, $exp, "auth") . "; " .
	LOGGED_IN_COOKIE . "=" . wp_generate_auth_cookie($u->ID, $exp, "logged_in") . "\n";
`, siteHost, st.WordPress.user)
	out, err := st.Kube.Exec(ctx, pod, appContainer, nil, "php", "-r", code)
	if err != nil {
		return 0, nil, fmt.Errorf("login cookies on %s: %w", pod, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	cookie := lines[len(lines)-1]
	if !strings.Contains(cookie, "wordpress_logged_in_") {
		return 0, nil, errors.New("login cookies: unexpected output: " + excerpt(out))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cluster.PlaceholderHost+"/wp-admin/plugins.php", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = siteHost
	req.Header.Set("Cookie", cookie)
	return st.Kube.Do(ctx, pod, httpPort, req)
}
