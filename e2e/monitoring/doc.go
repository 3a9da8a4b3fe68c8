// Package monitoring tests the kit's monitoring Component (manifests/components/filesync-monitoring): the
// alerting rules parse and fire on the series they are meant for, every dashboard query is valid PromQL,
// and the Component renders with the example overlays. That every metric named exists is checked in the
// sidecar module (sidecar/internal/metrics/monitoring_test.go), against the real registry.
//
// A module of its own: github.com/prometheus/prometheus brings a large dependency graph (and newer
// prometheus/client_golang and common than the e2e module uses); kept here, it cannot move the e2e
// module's versions.
package monitoring
