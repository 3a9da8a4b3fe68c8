// Package cluster brings up the WordPress example (examples/wordpress/overlays/kind) on a kind cluster, in
// one way for `make up` (e2e/cmd/cluster) and the e2e suite (e2e/suite): Steps are the pre-flight checks, the
// cluster created from the repository's kind-config.yaml (or reused, see Reuse), its system pods and storage
// waited for, the images loaded, the overlay applied as e2e/manifests renders and checks it
// (manifests.Build), the example waited for; FinishSteps export the logs after a failure and delete the
// cluster. Kube reaches the example's pods through the API server (exec, port-forward, rollouts).
//
// Like the suite it is built only with the e2e build tag, which keeps client-go and e2e-framework out of
// `make test`'s build. Environment: see Config.
package cluster
