//go:build integration

// Package integration runs the filesync image the way a pod runs it, with testcontainers-go: a
// fake-gcs-server container and filesync containers that share nothing but the bucket, each with its own
// directory (a volume), a read-only root filesystem and the image's non-root user.
//
// Images come from the environment, as the Makefile names them (FILESYNC_IMAGE and FAKE_GCS_IMAGE, pinned in
// hack/versions.env, which is read when they are unset); `make test-integration` builds both. When Docker
// or an image is missing the tests are skipped, or fail when FILESYNC_REQUIRE_DOCKER=1 (CI).
package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/filesync/filesync/e2e/internal/harness"
)

const (
	bucket       = "filesync-it"
	remotePrefix = "wp-content"
	gcsAlias     = "fake-gcs"
	gcsPort      = "4443/tcp"
	listenPort   = "8090/tcp"
	syncDir      = "/sync"
	stateDir     = "/state"
	// imageUID is the user the filesync image runs as (USER 65532:65532 in sidecar/Dockerfile).
	imageUID = 65532
	// reaperImage is testcontainers-go v0.45.0's Ryuk image; see TestMain.
	reaperImage = "testcontainers/ryuk:0.14.0"
)

// TestMain adapts testcontainers-go to machines like the CI VM, unless the variables are set explicitly:
//   - Ryuk (the reaper) is turned off when its image is not present: it cannot be pulled without a
//     registry. Every test removes what it created in t.Cleanup, so the reaper is only a safety net.
//   - testcontainers believes it runs inside a container when /.dockerenv exists and then reaches
//     published ports through the default gateway. When dockerd runs in this very PID namespace we are
//     on the Docker host (the VM image merely carries a /.dockerenv), so published ports are on localhost.
func TestMain(m *testing.M) {
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set && !imagePresent(reaperImage) {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !set && localDockerd() {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
	os.Exit(m.Run())
}

// imagePresent reports whether ref is in the local image store (false when Docker does not answer).
func imagePresent(ref string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A plain Docker client: testcontainers reads its configuration once, on first use, and that must
	// happen after TestMain has set the variables.
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return false
	}
	defer cli.Close()
	_, err = cli.ImageInspect(ctx, ref)
	return err == nil
}

// localDockerd reports whether the Docker daemon is a process of this PID namespace, with DOCKER_HOST
// unset or a unix socket.
func localDockerd() bool {
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "dockerd" {
			return true
		}
	}
	return false
}

// config is what the tests read from the environment.
type config struct {
	filesyncImage string
	fakeGCSImage  string
	require       bool
}

func configFromEnv(t *testing.T) config {
	t.Helper()
	root, err := harness.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	pins, err := harness.LoadPins(root)
	if err != nil {
		t.Fatal(err)
	}
	e := harness.NewEnv(pins)
	c := config{
		filesyncImage: e.Required("FILESYNC_IMAGE"),
		fakeGCSImage:  e.Required("FAKE_GCS_IMAGE"),
		require:       e.Bool("FILESYNC_REQUIRE_DOCKER"),
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// stack is one test's world: a private network, fake-gcs-server on it (alias fake-gcs) with the bucket
// created, and a Docker client for what testcontainers does not wrap.
type stack struct {
	cfg     config
	docker  *testcontainers.DockerClient
	network *testcontainers.DockerNetwork
	gcs     *testcontainers.DockerContainer
	// api is fake-gcs-server's JSON API through its mapped port, for the test's own reads and writes.
	api *harness.GCS
}

// newStack starts fake-gcs-server on a new network and creates the bucket. It skips or fails the test
// (see FILESYNC_REQUIRE_DOCKER) when Docker or an image is missing.
func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	cfg := configFromEnv(t)
	unavailable := func(format string, args ...any) {
		t.Helper()
		if cfg.require {
			t.Fatalf("FILESYNC_REQUIRE_DOCKER=1: "+format, args...)
		}
		t.Skipf(format+" (build the images with `make test-integration`)", args...)
	}

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		unavailable("no Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		unavailable("Docker does not answer: %v", err)
	}
	for _, ref := range []string{cfg.filesyncImage, cfg.fakeGCSImage} {
		// Checked here so that a missing image never turns into a pull attempt.
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			unavailable("image %s is not present: %v", ref, err)
		}
	}

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}

	gcs, err := testcontainers.Run(ctx, cfg.fakeGCSImage,
		// The image's entrypoint is "fake-gcs-server -data /data", as in the official image.
		// -external-url: resumable uploads continue at the address the clients use.
		// -public-host: the Go client reads objects through the XML API (GET /BUCKET/OBJECT); without it,
		// fake-gcs-server takes the request's host name for a bucket name and answers 404.
		testcontainers.WithCmd("-scheme", "http", "-port", "4443", "-backend", "memory",
			"-external-url", "http://"+gcsAlias+":4443", "-public-host", gcsAlias+":4443", "-log-level", "warn"),
		testcontainers.WithExposedPorts(gcsPort),
		network.WithNetwork([]string{gcsAlias}, nw),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/_internal/healthcheck").WithPort(gcsPort).
			WithStartupTimeout(60*time.Second)),
	)
	testcontainers.CleanupContainer(t, gcs)
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	endpoint, err := gcs.PortEndpoint(ctx, gcsPort, "http")
	if err != nil {
		t.Fatalf("fake-gcs-server endpoint: %v", err)
	}
	s := &stack{cfg: cfg, docker: cli, network: nw, gcs: gcs, api: &harness.GCS{BaseURL: endpoint}}
	dumpLogsOnFailure(t, "fake-gcs-server", gcs)

	if err := s.api.CreateBucket(ctx, bucket); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	return s
}

// objectName is the bucket object that a path relative to the synced directory maps to.
func objectName(rel string) string { return remotePrefix + "/" + rel }

// readObject returns an object's content from the bucket.
func (s *stack) readObject(ctx context.Context, name string) ([]byte, error) {
	return s.api.Read(ctx, bucket, name)
}

// putObject writes an object into the bucket, as another replica (or an operator) would.
func (s *stack) putObject(ctx context.Context, name string, data []byte) error {
	return s.api.Upload(ctx, bucket, name, data)
}

// listObjects returns the names of the objects under the remote prefix.
func (s *stack) listObjects(ctx context.Context) ([]string, error) {
	objs, err := s.api.List(ctx, bucket, remotePrefix+"/")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.Name)
	}
	return names, nil
}

// replica is one filesync container: its own directory and state volumes, the shared bucket.
type replica struct {
	name  string
	stack *stack
	c     *testcontainers.DockerContainer
}

// replicaOptions adjusts how a replica is started.
type replicaOptions struct {
	// env is added to (and overrides) the defaults below.
	env map[string]string
	// noWait starts the container without waiting for /readyz.
	noWait bool
}

// startReplica runs the filesync image as a pod would: env twins of the flags, STORAGE_EMULATOR_HOST
// pointing at fake-gcs-server over the network, the image's own user, a read-only root filesystem, no
// capabilities, and two tmpfs-backed volumes owned by that user for --dir and --state-dir (volumes, so
// that the Docker copy API can write into a container whose root filesystem is read-only).
func (s *stack) startReplica(t *testing.T, name string, opts replicaOptions) *replica {
	t.Helper()
	ctx := t.Context()
	env := map[string]string{
		"FILESYNC_DIR":              syncDir,
		"FILESYNC_REMOTE":           "gs://" + bucket + "/" + remotePrefix,
		"FILESYNC_STATE_DIR":        stateDir,
		"FILESYNC_POLL_INTERVAL":    "500ms",
		"FILESYNC_SETTLE":           "200ms",
		"FILESYNC_SHUTDOWN_TIMEOUT": "20s",
		"FILESYNC_LOG_FORMAT":       "text",
		"FILESYNC_LOG_LEVEL":        "debug",
		"STORAGE_EMULATOR_HOST":     gcsAlias + ":4443",
		"POD_NAME":                  name,
	}
	for k, v := range opts.env {
		env[k] = v
	}
	suffix := harness.RandomHex(4)
	syncVol := "filesync-it-" + name + "-" + suffix + "-dir"
	stateVol := "filesync-it-" + name + "-" + suffix + "-state"

	customizers := []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(listenPort),
		network.WithNetwork([]string{name}, s.network),
		testcontainers.WithMounts(ownedVolume(syncVol, syncDir), ownedVolume(stateVol, stateDir)),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ReadonlyRootfs = true
			hc.CapDrop = []string{"ALL"}
			hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
		}),
	}
	if opts.noWait {
		customizers = append(customizers, testcontainers.WithWaitStrategy(wait.ForListeningPort(listenPort).
			WithStartupTimeout(60*time.Second)))
	} else {
		customizers = append(customizers, testcontainers.WithWaitStrategy(wait.ForHTTP("/readyz").
			WithPort(listenPort).WithStartupTimeout(90*time.Second)))
	}
	c, err := testcontainers.Run(ctx, s.cfg.filesyncImage, customizers...)
	// Removing the container also removes its volumes; registered before the log dump, so it runs after it.
	testcontainers.CleanupContainer(t, c, testcontainers.RemoveVolumes(syncVol, stateVol))
	if c != nil {
		dumpLogsOnFailure(t, name, c)
	}
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return &replica{name: name, stack: s, c: c}
}

// ownedVolume is a tmpfs-backed named volume, owned by the image's user, mounted at target.
func ownedVolume(name, target string) testcontainers.ContainerMount {
	return testcontainers.ContainerMount{
		Source: testcontainers.DockerVolumeMountSource{
			Name: name,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{}, DriverConfig: &mount.Driver{
				Name: "local",
				Options: map[string]string{
					"type":   "tmpfs",
					"device": "tmpfs",
					"o":      fmt.Sprintf("uid=%d,gid=%d,mode=0755,size=128m", imageUID, imageUID),
				},
			}},
		},
		Target: testcontainers.ContainerMountTarget(target),
	}
}

// writeFile creates rel (and its missing parent directories) in the replica's directory, owned by the
// image's user, as the app sharing the directory would. The file appears at once (one tar extraction).
func (r *replica) writeFile(t *testing.T, rel string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := path.Dir(rel)
	var parents []string
	for d := dir; d != "."; d = path.Dir(d) {
		parents = append([]string{d}, parents...)
	}
	for _, d := range parents {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Uid: imageUID, Gid: imageUID, ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar %s: %v", d, err)
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data)), Uid: imageUID, Gid: imageUID, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatalf("tar %s: %v", rel, err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatalf("tar %s: %v", rel, err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar %s: %v", rel, err)
	}
	_, err := r.stack.docker.CopyToContainer(t.Context(), r.c.GetContainerID(), client.CopyToContainerOptions{
		DestinationPath: syncDir,
		Content:         &buf,
	})
	if err != nil {
		t.Fatalf("write %s into %s: %v", rel, r.name, err)
	}
}

// entry is a regular file read out of a container, with its tar header (owner, mode).
type entry struct {
	hdr  *tar.Header
	data []byte
}

// readTree returns the regular files under dir in the container, keyed by path relative to dir.
func (r *replica) readTree(ctx context.Context, dir string) (map[string]entry, error) {
	res, err := r.stack.docker.CopyFromContainer(ctx, r.c.GetContainerID(), client.CopyFromContainerOptions{SourcePath: dir + "/."})
	if err != nil {
		return nil, fmt.Errorf("copy %s out of %s: %w", dir, r.name, err)
	}
	defer res.Content.Close()
	out := map[string]entry{}
	tr := tar.NewReader(res.Content)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", dir, r.name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s in %s: %w", hdr.Name, r.name, err)
		}
		// The archive of "dir/." names entries "./a/b" (or "a/b").
		rel := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		out[rel] = entry{hdr: hdr, data: data}
	}
}

// readFile returns one file of the replica's directory.
func (r *replica) readFile(ctx context.Context, rel string) (entry, error) {
	res, err := r.stack.docker.CopyFromContainer(ctx, r.c.GetContainerID(),
		client.CopyFromContainerOptions{SourcePath: path.Join(syncDir, rel)})
	if err != nil {
		return entry{}, fmt.Errorf("copy %s out of %s: %w", rel, r.name, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	if err != nil {
		return entry{}, fmt.Errorf("read %s of %s: %w", rel, r.name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return entry{}, fmt.Errorf("%s in %s is not a regular file (type %c)", rel, r.name, hdr.Typeflag)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return entry{}, fmt.Errorf("read %s of %s: %w", rel, r.name, err)
	}
	return entry{hdr: hdr, data: data}, nil
}

// get fetches one of the replica's HTTP endpoints through its mapped port.
func (r *replica) get(ctx context.Context, p string) (int, string, error) {
	endpoint, err := r.c.PortEndpoint(ctx, listenPort, "http")
	if err != nil {
		return 0, "", fmt.Errorf("endpoint of %s: %w", r.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+p, nil)
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s on %s: %w", p, r.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read %s on %s: %w", p, r.name, err)
	}
	return resp.StatusCode, string(body), nil
}

// eventually polls check until it succeeds or timeout passes, then fails the test with the last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last error: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// dumpLogsOnFailure logs the container's output when the test has failed.
func dumpLogsOnFailure(t *testing.T, name string, c *testcontainers.DockerContainer) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc, err := c.Logs(ctx)
		if err != nil {
			t.Logf("logs of %s: %v", name, err)
			return
		}
		defer rc.Close()
		out, _ := io.ReadAll(rc)
		t.Logf("--- logs of %s ---\n%s", name, out)
	})
}

// metricValue sums the samples of one metric family in a Prometheus text exposition (all label sets); found
// is false when no sample of it is there (or the exposition does not parse).
func metricValue(exposition, name string) (sum float64, found bool) {
	m, err := harness.ParseMetrics(strings.NewReader(exposition))
	if err != nil || !m.Has(name) {
		return 0, false
	}
	return m.Sum(name), true
}
