//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// Outcome remembers whether anything failed, so Finish knows whether to export the cluster's logs.
type Outcome struct{ failed atomic.Bool }

// Fail records a failure.
func (o *Outcome) Fail() { o.failed.Store(true) }

// Failed reports whether anything failed.
func (o *Outcome) Failed() bool { return o.failed.Load() }

// Guard wraps setup steps so that an error or a panic (harness.Protect) marks the outcome failed and keeps
// the context the steps before built, for FinishSteps.
func (o *Outcome) Guard(fns ...env.Func) []env.Func {
	out := make([]env.Func, 0, len(fns))
	for _, fn := range fns {
		out = append(out, func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			ctx, err := harness.Protect(ctx, func(ctx context.Context) (context.Context, error) { return fn(ctx, c) })
			if err != nil {
				o.Fail()
			}
			return ctx, err
		})
	}
	return out
}

// FinishSteps exports the cluster's logs if anything failed, then deletes the cluster unless it is to be
// kept (E2E_KEEP=1) or existed before the suite started.
func FinishSteps(cfg Config, existed bool, outcome *Outcome, log *slog.Logger) []env.Func {
	return []env.Func{
		func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			if !outcome.Failed() {
				return ctx, nil
			}
			dest := filepath.Join(cfg.Artifacts, time.Now().UTC().Format("20060102-150405"))
			if err := os.MkdirAll(cfg.Artifacts, 0o755); err != nil {
				return ctx, fmt.Errorf("artifacts dir: %w", err)
			}
			log.Info("exporting cluster logs", "dest", dest)
			return envfuncs.ExportClusterLogs(cfg.Cluster, dest)(ctx, c)
		},
		func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			switch {
			case cfg.Keep:
				log.Info("keeping the cluster (E2E_KEEP=1)", "cluster", cfg.Cluster, "context", "kind-"+cfg.Cluster)
				return ctx, nil
			case existed:
				log.Info("leaving the cluster that existed before the suite", "cluster", cfg.Cluster)
				return ctx, nil
			}
			return Timed(log, "delete cluster", envfuncs.DestroyCluster(cfg.Cluster))(ctx, c)
		},
	}
}
