package manifests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// makeTags is the Makefile's GOTAGS line.
var makeTags = regexp.MustCompile(`(?m)^GOTAGS\s*:?=\s*(.*)$`)

// The binary `make build` ships leaves out the storage client's gRPC DirectPath (gRPC's xDS and RLS and
// the envoy protos they bring): filesync talks JSON to GCS, and their code and init cost 9 MiB of resident
// pages (docs/benchmarks.md, issue 23). Fails if the Makefile stops passing the tag to every build, or if
// a newer storage module brings xDS in some other way.
func TestBuildLeavesOutDirectPath(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := makeTags.FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile: no GOTAGS line")
	}
	tags := strings.TrimSpace(string(m[1]))
	if !strings.Contains(tags, "disable_grpc_modules") {
		t.Fatalf("Makefile: GOTAGS is %q, want disable_grpc_modules among them", tags)
	}
	builds := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "go build") && strings.Contains(line, "-ldflags \"$(LDFLAGS)\"") {
			builds++
			if !strings.Contains(line, `-tags "$(GOTAGS)"`) {
				t.Errorf("Makefile: a build of filesync without -tags \"$(GOTAGS)\": %s", strings.TrimSpace(line))
			}
		}
	}
	if builds < 2 {
		t.Fatalf("Makefile: found %d builds of filesync, want the host's and the cross-builds'", builds)
	}
	cmd := exec.Command("go", "list", "-tags", tags, "-deps", "./cmd/filesync")
	cmd.Dir = filepath.Join(root, "sidecar")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/filesync: %v", err)
	}
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		if strings.HasPrefix(p, "google.golang.org/grpc/xds") || strings.HasPrefix(p, "google.golang.org/grpc/balancer/rls") ||
			strings.HasPrefix(p, "github.com/envoyproxy/") {
			t.Errorf("the binary built with -tags %s links %s", tags, p)
		}
	}
	if len(pkgs) < 100 {
		t.Fatalf("go list -deps ./cmd/filesync gave %d packages: not the sidecar's dependencies", len(pkgs))
	}
}
