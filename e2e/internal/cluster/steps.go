//go:build e2e

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
	"sigs.k8s.io/e2e-framework/support"
	"sigs.k8s.io/e2e-framework/support/kind"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// Steps bring up the example on kind, the same for the suite and `make up` (e2e/cmd/cluster): pre-flight
// checks, the cluster created from kind-config.yaml (or reused: existed, see Reuse), the system pods and
// storage waited for, the images loaded, the kind overlay applied, the example waited for.
func Steps(cfg Config, existed bool, log *slog.Logger) []env.Func {
	steps := []env.Func{
		Timed(log, "pre-flight checks", preflight(cfg, existed)),
		Timed(log, "create cluster", createCluster(cfg)),
		Timed(log, "wait for system pods and storage", waitForSystem(cfg)),
	}
	for _, img := range cfg.Images {
		steps = append(steps, Timed(log, "load "+img, envfuncs.LoadImageToCluster(cfg.Cluster, img)))
	}
	return append(steps,
		Timed(log, "apply kind overlay", applyKustomization(filepath.Join(cfg.Root, "examples", "wordpress", "overlays", "kind"), cfg.ReadThroughOff)),
		Timed(log, "wait for the example", waitForExample(cfg)),
	)
}

// SystemSteps connect to the cluster (creating it from kind-config.yaml if it does not exist) and wait for
// its system pods and storage: what hack/airgap's smoke test needs of a cluster it created itself.
func SystemSteps(cfg Config, log *slog.Logger) []env.Func {
	return []env.Func{
		Timed(log, "connect to cluster", createCluster(cfg)),
		Timed(log, "wait for system pods and storage", waitForSystem(cfg)),
	}
}

// Timed logs how long the setup step fn took, or its error, which it wraps with what.
func Timed(log *slog.Logger, what string, fn env.Func) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		start := time.Now()
		ctx, err := fn(ctx, c)
		if err != nil {
			log.Error("setup step failed", "step", what, "after", time.Since(start).Round(time.Millisecond), "err", err)
			return ctx, fmt.Errorf("%s: %w", what, err)
		}
		log.Info("setup step done", "step", what, "took", time.Since(start).Round(time.Millisecond))
		return ctx, nil
	}
}

// Reuse reports whether kind already has a usable cluster of that name. A cluster whose node containers
// stopped (dockerd restarted, machine rebooted) is listed by kind but cannot be reused: it is deleted, so
// that the setup creates it anew.
func Reuse(ctx context.Context, cfg Config, log *slog.Logger) (bool, error) {
	out, err := exec.CommandContext(ctx, cfg.Kind, "get", "clusters").Output()
	if err != nil {
		return false, fmt.Errorf("%s get clusters: %w", cfg.Kind, err)
	}
	if !slices.Contains(strings.Fields(string(out)), cfg.Cluster) {
		return false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if exec.CommandContext(rctx, "kubectl", "--context", "kind-"+cfg.Cluster, "--request-timeout=10s",
		"get", "--raw", "/readyz").Run() == nil {
		return true, nil
	}
	log.Info("kind cluster exists but its API server does not answer: deleting it", "cluster", cfg.Cluster)
	if out, err := exec.CommandContext(ctx, cfg.Kind, "delete", "cluster", "--name", cfg.Cluster).CombinedOutput(); err != nil {
		return false, fmt.Errorf("%s delete cluster %s: %w: %s", cfg.Kind, cfg.Cluster, err, out)
	}
	return false, nil
}

// preflight fails fast, before anything is created: every image must be in the local Docker store (it is
// loaded, never pulled), and a cluster to be created needs the host ports kind-config.yaml maps (a cluster
// holding them makes `kind create` fail late, after starting the node).
func preflight(cfg Config, existed bool) env.Func {
	return func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		var errs []error
		for _, img := range cfg.Images {
			if err := exec.CommandContext(ctx, "docker", "image", "inspect", img).Run(); err != nil {
				errs = append(errs, fmt.Errorf("image %s not found: run 'make images'", img))
			}
		}
		if !existed {
			kc, err := harness.ReadKindConfig(filepath.Join(cfg.Root, "kind-config.yaml"))
			if err != nil {
				return ctx, err
			}
			for _, port := range kc.HostPorts() {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
				if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					_ = conn.Close()
					errs = append(errs, fmt.Errorf("%s is in use (another kind cluster from kind-config.yaml? "+
						"'kind get clusters'; delete it with CLUSTER=<name> make down)", addr))
				}
			}
		}
		return ctx, errors.Join(errs...)
	}
}

// createCluster creates the kind cluster from kind-config.yaml, or connects to it when it exists.
func createCluster(cfg Config) env.Func {
	opts := []support.ClusterOpts{kind.WithPath(cfg.Kind)}
	if cfg.NodeImage != "" {
		opts = append(opts, kind.WithImage(cfg.NodeImage))
	}
	return envfuncs.CreateClusterWithConfig(kind.NewProvider(), cfg.Cluster, filepath.Join(cfg.Root, "kind-config.yaml"), opts...)
}
