//go:build interop

// Package interop checks what filesync and the other clients of a bucket, rclone and `gcloud storage`,
// make of each other's objects, in both directions: a tool writes the bucket and filesync restores or
// follows it, and filesync writes the bucket and the tool reads it (docs/e2e.md, "The interop lane").
// Everything runs on this machine: one fake-gcs-server process (memory backend, plain HTTP on a free port),
// the built binaries bin/filesync (or INTEROP_FILESYNC, another build to try), bin/rclone and
// bin/fake-gcs-server (`make test-interop` builds them), and gcloud from PATH, each tool with a private configuration (e2e/internal/tools).
//
// Each test states what should happen. Without a binary the tests are skipped, or fail when
// FILESYNC_REQUIRE_INTEROP=1 (CI).
package interop

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/internal/tools"
)

// lane is what every test uses; missing says why it could not be set up.
var (
	lane    *env
	missing string
)

// env is the lane's server, its tools and the filesync binary.
type env struct {
	root     string // the repository
	filesync string
	gcs      *tools.FakeGCS
	tools    *tools.Clients
	logDir   string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := harness.RepoRoot(".")
	if err != nil {
		return 0, err
	}
	bin := filepath.Join(root, "bin")
	gcloud, _ := exec.LookPath("gcloud")
	filesync := cmp.Or(os.Getenv("INTEROP_FILESYNC"), filepath.Join(bin, "filesync"))
	var absent []string
	for _, p := range []string{filesync, filepath.Join(bin, "rclone"), filepath.Join(bin, "fake-gcs-server"), gcloud} {
		if p == "" {
			absent = append(absent, "gcloud (not on PATH)")
		} else if _, err := os.Stat(p); err != nil {
			absent = append(absent, p)
		}
	}
	if len(absent) > 0 {
		missing = "missing " + strings.Join(absent, ", ") + " (`make test-interop` builds bin/; gcloud comes with google-cloud-cli)"
		return m.Run(), nil
	}
	work, err := os.MkdirTemp("", "filesync-interop-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	g, err := tools.StartFakeGCS(ctx, filepath.Join(bin, "fake-gcs-server"), filepath.Join(work, "fake-gcs-server.log"), port, tools.FakeGCSOptions{})
	if err != nil {
		return 0, err
	}
	defer g.Stop()
	c, err := tools.Configure(ctx, filepath.Join(work, "tools"), g.Host(), filepath.Join(bin, "rclone"), gcloud)
	if err != nil {
		return 0, err
	}
	lane = &env{root: root, filesync: filesync, gcs: g, tools: c, logDir: work}
	return m.Run(), nil
}

// freePort asks the kernel for a free port (fake-gcs-server must be told its port: the URLs it hands out
// name it).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// need returns the lane, or skips the test (fails it under FILESYNC_REQUIRE_INTEROP=1) when a tool is
// missing.
func need(t *testing.T) *env {
	t.Helper()
	if lane == nil {
		if os.Getenv("FILESYNC_REQUIRE_INTEROP") == "1" {
			t.Fatalf("FILESYNC_REQUIRE_INTEROP=1: %s", missing)
		}
		t.Skipf("%s; set FILESYNC_REQUIRE_INTEROP=1 to make this a failure", missing)
	}
	return lane
}

// deadline bounds every wait for a running replica: with a 200 ms poll a change arrives in about a
// second.
const deadline = 10 * time.Second
