//go:build e2e

package suite

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Config is what the suite reads from its environment, once, in TestMain.
type Config struct {
	// Cluster is the kind cluster name (E2E_CLUSTER, default filesync-e2e).
	Cluster string
	// NodeImage overrides kind's node image (E2E_NODE_IMAGE; empty: kind's default).
	NodeImage string
	// Kind is the kind binary (E2E_KIND, default "kind" from PATH).
	Kind string
	// Keep leaves the cluster running after the suite (E2E_KEEP=1).
	Keep bool
	// Artifacts is where cluster logs are exported on failure (E2E_ARTIFACTS, default e2e/_artifacts).
	Artifacts string
	// Root is the repository root (holds kind-config.yaml and examples/).
	Root string
	// Images are loaded into the cluster before the overlay is applied.
	Images []string
	// PropagationBound is the stated upper bound for a change to reach every replica and the bucket
	// (E2E_PROPAGATION_BOUND, default 30s).
	PropagationBound time.Duration
	// Timeout bounds every wait for the cluster or the workloads (E2E_WAIT_TIMEOUT, default 5m).
	Timeout time.Duration
}

// The example's fixed names (the contract between the manifests and the suite).
const (
	namespace      = "wordpress"
	deploymentName = "wordpress"
	appContainer   = "wordpress"
	syncContainer  = "filesync"
	gcsDeployment  = "fake-gcs-server"
	mariadbName    = "mariadb"
	bucket         = "wordpress-media"
	remotePrefix   = "wp-content/"
	wpContent      = "/var/www/html/wp-content"
	siteHost       = "localhost:8080"
	metricsPort    = 8090
	httpPort       = 80
	gcsPort        = 4443
	replicas       = 3
)

func loadConfig() (Config, error) {
	c := Config{
		Cluster:   getenv("E2E_CLUSTER", "filesync-e2e"),
		NodeImage: os.Getenv("E2E_NODE_IMAGE"),
		Kind:      getenv("E2E_KIND", "kind"),
		Keep:      os.Getenv("E2E_KEEP") == "1",
		Images: []string{
			getenv("FILESYNC_IMAGE", "kind.local/filesync:dev"),
			getenv("FAKE_GCS_IMAGE", "kind.local/fake-gcs-server:1.56.1"),
			getenv("WORDPRESS_IMAGE", "kind.local/wordpress:6-apache"),
			getenv("MARIADB_IMAGE", "kind.local/mariadb:10.11"),
		},
	}
	var err error
	if c.Root, err = repoRoot(); err != nil {
		return c, err
	}
	c.Artifacts = getenv("E2E_ARTIFACTS", filepath.Join(c.Root, "e2e", "_artifacts"))
	if c.PropagationBound, err = time.ParseDuration(getenv("E2E_PROPAGATION_BOUND", "30s")); err != nil {
		return c, fmt.Errorf("E2E_PROPAGATION_BOUND: %w", err)
	}
	if c.Timeout, err = time.ParseDuration(getenv("E2E_WAIT_TIMEOUT", "5m")); err != nil {
		return c, fmt.Errorf("E2E_WAIT_TIMEOUT: %w", err)
	}
	return c, nil
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// repoRoot walks up from the working directory to the directory holding go.work and kind-config.yaml.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "kind-config.yaml")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no kind-config.yaml and go.work above %s", dir)
		}
	}
}
