//go:build e2e

package cluster

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// Config is what the cluster steps read from their environment, once.
type Config struct {
	// Cluster is the kind cluster name (E2E_CLUSTER, default filesync-e2e).
	Cluster string
	// NodeImage overrides kind's node image (E2E_NODE_IMAGE; empty: kind's default).
	NodeImage string
	// Kind is the kind binary (E2E_KIND, default "kind" from PATH).
	Kind string
	// Keep leaves the cluster running after the suite (E2E_KEEP=1; 0 or unset deletes it).
	Keep bool
	// Artifacts is where cluster logs are exported on failure (E2E_ARTIFACTS, default e2e/_artifacts).
	Artifacts string
	// Root is the repository root (holds kind-config.yaml and examples/).
	Root string
	// Images are loaded into the cluster before the overlay is applied.
	Images []string
	// ReadThroughOff applies the kind overlay without the Apache rule that sends missing uploads to the
	// read-through (E2E_READ_THROUGH=off): the negative control of feature 09, whose burst must then find
	// misses.
	ReadThroughOff bool
	// Timeout bounds every wait for the cluster or the workloads (E2E_WAIT_TIMEOUT, default 5m).
	Timeout time.Duration
}

// The example's fixed names that the cluster steps and Kube depend on (the contract between
// examples/wordpress and the kit).
const (
	Namespace        = "wordpress"
	WordPress        = "wordpress" // the Deployment of the WordPress replicas
	AppContainer     = "wordpress" // WordPress's container in it (filesync is its native sidecar)
	GCSDeployment    = "fake-gcs-server"
	PubSubDeployment = "pubsub-emulator"
	MariaDB          = "mariadb" // a StatefulSet
)

// LoadConfig reads the environment the Makefile passes (hack/up.sh, hack/e2e.sh), falling back to
// hack/versions.env for the image names; a bad value is an error that names its variable.
func LoadConfig() (Config, error) {
	var c Config
	var err error
	if c.Root, err = harness.RepoRoot("."); err != nil {
		return c, err
	}
	pins, err := harness.LoadPins(c.Root)
	if err != nil {
		return c, err
	}
	e := harness.NewEnv(pins)
	c.Cluster = e.String("E2E_CLUSTER", "filesync-e2e")
	c.NodeImage = e.String("E2E_NODE_IMAGE", "")
	c.Kind = e.String("E2E_KIND", "kind")
	c.Keep = e.Bool("E2E_KEEP")
	c.Images = []string{e.Required("FILESYNC_IMAGE"), e.Required("FAKE_GCS_IMAGE"), e.Required("WORDPRESS_IMAGE"),
		e.Required("MARIADB_IMAGE"), e.Required("PUBSUB_EMULATOR_IMAGE")}
	c.Artifacts = e.String("E2E_ARTIFACTS", filepath.Join(c.Root, "e2e", "_artifacts"))
	c.Timeout = e.Duration("E2E_WAIT_TIMEOUT", 5*time.Minute)
	switch rt := e.String("E2E_READ_THROUGH", "on"); rt {
	case "on":
	case "off":
		c.ReadThroughOff = true
	default:
		return c, fmt.Errorf("E2E_READ_THROUGH=%q: want on or off", rt)
	}
	return c, e.Err()
}
