// Package suite is the end-to-end specification of filesync on a kind cluster running the WordPress example
// (examples/wordpress/overlays/kind): three WordPress replicas, each with filesync as a native sidecar syncing
// wp-content with a fake-gcs-server bucket.
//
// The suite is built only with the e2e build tag and is driven by `make e2e` (hack/e2e.sh):
//
//	cd e2e && go test -tags e2e -count=1 -v -timeout 60m ./suite/...
//
// TestMain creates the cluster from the repository's kind-config.yaml, loads the images, applies the kind
// overlay with kustomize in-process, installs WordPress and creates an application password. Each feature
// file reads as one clause of the specification. Environment: see config.go.
package suite
