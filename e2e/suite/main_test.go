//go:build e2e

package suite

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/filesync/filesync/e2e/internal/cluster"
)

var testenv env.Environment

// TestMain runs the cluster steps (cluster.Steps: checks the images and the host ports, creates the kind
// cluster from kind-config.yaml (E2E_NODE_IMAGE overrides the node image), loads the images, applies
// examples/wordpress/overlays/kind, waits for it), then installs WordPress; afterwards it exports the
// cluster's logs if anything failed and deletes the cluster unless E2E_KEEP=1 (cluster.FinishSteps).
func TestMain(m *testing.M) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := LoadConfig()
	if err != nil {
		log.Error("e2e config", "err", err)
		os.Exit(2)
	}
	existed, err := cluster.Reuse(context.Background(), cfg.Config, log)
	if err != nil {
		log.Error("kind", "err", err)
		os.Exit(2)
	}
	log.Info("e2e", "cluster", cfg.Cluster, "reuse", existed, "node_image", cfg.NodeImage, "keep", cfg.Keep,
		"propagation_bound", cfg.PropagationBound)

	outcome := &cluster.Outcome{}
	testenv = env.NewWithConfig(envconf.New())
	testenv.Setup(outcome.Guard(SetupSteps(cfg, existed, log)...)...)
	testenv.AfterEachTest(func(ctx context.Context, _ *envconf.Config, t *testing.T) (context.Context, error) {
		if t.Failed() {
			outcome.Fail()
		}
		return ctx, nil
	})
	testenv.Finish(cluster.FinishSteps(cfg.Config, existed, outcome, log)...)
	os.Exit(testenv.Run(m))
}
