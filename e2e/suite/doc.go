// Package suite is the end-to-end specification of filesync on a kind cluster running the WordPress example
// (examples/wordpress/overlays/kind): three WordPress replicas, each with filesync as a native sidecar syncing
// wp-content with a fake-gcs-server bucket.
//
// The suite is built only with the e2e build tag and is driven by `make e2e` (hack/e2e.sh):
//
//	cd e2e && go test -tags e2e -count=1 -v -timeout 60m ./suite/...
//
// TestMain brings the example up with the cluster steps `make up` runs too (e2e/internal/cluster: checks the
// images and the host ports, creates the cluster from the repository's kind-config.yaml, loads the images,
// applies the kind overlay exactly as e2e/manifests renders and checks it), then installs WordPress and
// creates an application password (setup.go). Each feature file reads as one clause of the specification.
// Environment: cluster.Config and config.go.
package suite
