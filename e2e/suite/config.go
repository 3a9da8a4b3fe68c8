//go:build e2e

package suite

import (
	"errors"
	"time"

	"github.com/filesync/filesync/e2e/internal/cluster"
	"github.com/filesync/filesync/e2e/internal/harness"
)

// Config is what the suite reads from its environment, once, in TestMain: the cluster's (cluster.Config)
// and the specification's own.
type Config struct {
	cluster.Config
	// PropagationBound is the stated upper bound for a change to reach every replica and the bucket
	// (E2E_PROPAGATION_BOUND, default 30s).
	PropagationBound time.Duration
}

// The example's fixed names (the contract between the manifests and the suite); the cluster steps' own are
// cluster's.
const (
	deploymentName = cluster.WordPress
	appContainer   = cluster.AppContainer
	syncContainer  = "filesync"
	gcsDeployment  = cluster.GCSDeployment
	pubsubDeploy   = cluster.PubSubDeployment
	bucket         = "wordpress-media"
	remotePrefix   = "wp-content/"
	wpContent      = "/var/www/html/wp-content"
	siteHost       = "localhost:8080"
	metricsPort    = 8090
	httpPort       = 80
	gcsPort        = 4443
	replicas       = 3
)

// LoadConfig reads the environment the Makefile passes (hack/e2e.sh): the cluster's (cluster.LoadConfig)
// and the propagation bound; a bad value is an error that names its variable.
func LoadConfig() (Config, error) {
	cc, err := cluster.LoadConfig()
	e := harness.NewEnv(nil)
	c := Config{Config: cc, PropagationBound: e.Duration("E2E_PROPAGATION_BOUND", 30*time.Second)}
	return c, errors.Join(err, e.Err())
}
