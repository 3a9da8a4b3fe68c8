//go:build e2e

// Command cluster brings up the WordPress example on kind with the cluster steps the e2e suite runs too
// (e2e/internal/cluster), so that `make up` and `make e2e` create, wait for and deploy to a cluster in one way.
//
//	cluster up            the example on kind (hack/up.sh); the cluster is reused when it exists, kept after
//	cluster wait-system   connect to the cluster and wait for its system pods and storage (hack/airgap's smoke)
//
// It reads the suite's environment (E2E_CLUSTER, E2E_NODE_IMAGE, E2E_KIND, E2E_WAIT_TIMEOUT, the image names).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/filesync/filesync/e2e/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], log); err != nil {
		log.Error("cluster", "err", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "wait-system") {
		return errors.New("usage: cluster up|wait-system")
	}
	cfg, err := cluster.LoadConfig()
	if err != nil {
		return err
	}
	var steps []env.Func
	if args[0] == "wait-system" {
		steps = cluster.SystemSteps(cfg, log)
	} else {
		existed, err := cluster.Reuse(ctx, cfg, log)
		if err != nil {
			return err
		}
		steps = cluster.Steps(cfg, existed, log)
	}
	c := envconf.New()
	for _, step := range steps {
		if ctx, err = step(ctx, c); err != nil {
			return fmt.Errorf("%s %s: %w", args[0], cfg.Cluster, err)
		}
	}
	return nil
}
