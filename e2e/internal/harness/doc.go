// Package harness is what the kit's Go tests share: the repository root and its pins (hack/versions.env),
// environment parsing that names the variable it rejects, a JSON API client for fake-gcs-server, Prometheus
// metrics read with expfmt, kind-config.yaml, random test data, and Protect (a setup step's panic as an
// error). The e2e suite and its cluster steps (e2e/internal/cluster), the testcontainers lane
// (e2e/integration), the manifest tests (e2e/manifests) and the bench (e2e/bench) use it.
package harness
