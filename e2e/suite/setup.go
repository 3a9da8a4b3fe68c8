//go:build e2e

package suite

import (
	"context"
	"errors"
	"log/slog"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/filesync/filesync/e2e/internal/cluster"
	"github.com/filesync/filesync/e2e/internal/harness"
)

// State is what the setup hands to the features (through the context).
type State struct {
	Config    Config
	Kube      *Kube
	WordPress *WordPress
	Bucket    Bucket
}

type stateKey struct{}

// StateFrom returns the suite's State from a feature's context.
func StateFrom(ctx context.Context) *State {
	s, _ := ctx.Value(stateKey{}).(*State)
	return s
}

// SetupSteps is the suite's setup, in order: the cluster steps (cluster.Steps, which `make up` runs too),
// then WordPress installed.
func SetupSteps(cfg Config, existed bool, log *slog.Logger) []env.Func {
	return append(cluster.Steps(cfg.Config, existed, log), cluster.Timed(log, "install wordpress", setUpWordPress(cfg, log)))
}

// setUpWordPress installs WordPress through its install form (unless installed), creates an application
// password for the REST API, and stores the suite's State in the context.
func setUpWordPress(cfg Config, log *slog.Logger) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		ck, err := cluster.NewKube(c.Client().RESTConfig())
		if err != nil {
			return ctx, err
		}
		k := &Kube{ck}
		pods, err := k.Replicas(ctx)
		if err != nil {
			return ctx, err
		}
		if len(pods) == 0 {
			return ctx, errors.New("no ready wordpress replica")
		}
		const user = "admin"
		password := harness.RandomName("pw") + harness.RandomName("x")
		installed, err := installWordPress(ctx, k, pods[0].Name, user, password)
		if err != nil {
			return ctx, err
		}
		if installed {
			log.Info("wordpress installed", "url", "http://"+siteHost, "user", user, "password", password)
		} else {
			log.Info("wordpress was already installed")
		}
		appPassword, err := createAppPassword(ctx, k, pods[0].Name, user)
		if err != nil {
			return ctx, err
		}
		st := &State{
			Config:    cfg,
			Kube:      k,
			WordPress: &WordPress{k: k, user: user, appPassword: appPassword},
			Bucket:    newBucket(k),
		}
		return context.WithValue(ctx, stateKey{}, st), nil
	}
}
