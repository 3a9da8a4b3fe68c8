//go:build e2e

package suite

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// The sidecars' settings in the kind overlay that make them list the bucket: the reconcile (the loop's poll
// with notifications on) and the local full rescan, whose pass lists the bucket too until the change-driven
// engine lands. Both tick from the sidecar's start.
const (
	reconcileInterval = 10 * time.Minute // --reconcile-interval's default
	rescanInterval    = 5 * time.Minute  // --rescan-interval's default
)

// With bucket notifications (the kind overlay) a replica lists the bucket at start and at its reconciles
// only, while files still reach every replica within the bound; a restarted Pub/Sub emulator (which loses
// every subscription) is survived: each replica creates its subscription again and lists once, and nothing
// written meanwhile is lost.
func TestNotificationsReplaceListing(t *testing.T) {
	var pods []corev1.Pod
	var written []string
	f := features.New("notifications").
		Assess("files propagate within the bound while no replica lists the bucket", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			st := StateFrom(ctx)
			pods = readyReplicas(ctx, t, st, replicas)
			start, before := time.Now(), scrapeAll(ctx, t, st, pods)
			for _, p := range pods {
				if before[p.Name].Sum("filesync_notify_subscribed") != 1 {
					t.Fatalf("%s is not subscribed to bucket notifications (filesync_notify_subscribed 0)", p.Name)
				}
			}
			dir := "uploads/e2e/" + harness.RandomName("notified")
			for i := range replicas { // each replica writes one file; the others get it by notification
				rel := fmt.Sprintf("%s/from-%d.bin", dir, i)
				order := append([]corev1.Pod{pods[i]}, append(append([]corev1.Pod{}, pods[:i]...), pods[i+1:]...)...)
				took, err := writeAndAwait(ctx, t, st, order, rel, harness.RandomBytes(24<<10))
				logArrivals(t, "notified propagation from "+pods[i].Name, took)
				if err != nil {
					t.Fatal(err)
				}
				written = append(written, rel)
			}
			after := scrapeAll(ctx, t, st, pods)
			for _, p := range pods {
				lists := listings(after[p.Name]) - listings(before[p.Name])
				applied := after[p.Name].Sum("filesync_notify_events_applied_total") - before[p.Name].Sum("filesync_notify_events_applied_total")
				allowed := scheduledListings(p, start, time.Now())
				t.Logf("MEASURED notifications %s: %v list requests in %.1fs (%d scheduled), %v notifications applied",
					p.Name, lists, time.Since(start).Seconds(), allowed, applied)
				if lists > float64(allowed) {
					t.Errorf("%s listed the bucket %v times while files propagated; only %d reconcile/rescan listings were due", p.Name, lists, allowed)
				}
				if applied < replicas-1 {
					t.Errorf("%s applied %v notifications, want at least %d (one per file another replica wrote)", p.Name, applied, replicas-1)
				}
			}
			return ctx
		}).
		Assess("a restarted Pub/Sub emulator is survived", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			st := StateFrom(ctx)
			pods = readyReplicas(ctx, t, st, replicas)
			before := scrapeAll(ctx, t, st, pods)
			restarted := time.Now()
			if _, err := st.Kube.DeletePods(ctx, pubsubDeploy); err != nil {
				t.Fatal(err)
			}
			if err := st.Kube.WaitRollout(ctx, pubsubDeploy, st.Config.Timeout); err != nil {
				t.Fatal(err)
			}
			// Written before any replica has its subscription back: its notification is lost, the reconcile
			// listing after the new subscription finds it.
			rel := "uploads/e2e/" + harness.RandomName("meanwhile") + "/lost-notification.bin"
			took, err := writeAndAwait(ctx, t, st, pods, rel, harness.RandomBytes(24<<10))
			logArrivals(t, "propagation across the emulator's restart", took)
			if err != nil {
				t.Fatal(err)
			}
			// Each replica creates its subscription again, then lists the bucket (the reconcile its loop runs
			// in its next pass: a moment after the recreation is counted).
			var after map[string]harness.Metrics
			err = wait.For(func(ctx context.Context) (bool, error) {
				after = scrapeAll(ctx, t, st, pods)
				for _, p := range pods {
					if recreations(after[p.Name]) <= recreations(before[p.Name]) || listings(after[p.Name]) <= listings(before[p.Name]) {
						return false, nil
					}
				}
				return true, nil
			}, wait.WithContext(ctx), wait.WithTimeout(time.Minute), wait.WithInterval(time.Second))
			for _, p := range pods {
				switch {
				case recreations(after[p.Name]) <= recreations(before[p.Name]):
					t.Errorf("%s did not create its subscription again within a minute", p.Name)
				case listings(after[p.Name]) <= listings(before[p.Name]):
					t.Errorf("%s created its subscription again but did not list the bucket within a minute", p.Name)
				}
			}
			if err != nil {
				t.FailNow()
			}
			t.Logf("MEASURED emulator restart: every replica subscribed again and listed the bucket within %.1fs", time.Since(restarted).Seconds())
			for _, p := range pods {
				for _, f := range append(written, rel) {
					if _, ok, err := st.Kube.ReadFile(ctx, p.Name, f); err != nil || !ok {
						t.Errorf("%s: %s is missing after the emulator's restart (%v)", p.Name, f, err)
					}
				}
			}
			// And notifications flow again.
			rel = "uploads/e2e/" + harness.RandomName("after") + "/notified-again.bin"
			if _, err := writeAndAwait(ctx, t, st, pods, rel, harness.RandomBytes(24<<10)); err != nil {
				t.Fatal(err)
			}
			return ctx
		}).
		Feature()
	testenv.Test(t, f)
}

func scrapeAll(ctx context.Context, t *testing.T, st *State, pods []corev1.Pod) map[string]harness.Metrics {
	t.Helper()
	out := map[string]harness.Metrics{}
	for _, p := range pods {
		m, err := scrapeMetrics(ctx, st.Kube, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Name] = m
	}
	return out
}

func listings(m harness.Metrics) float64 {
	return m.SumWhere("filesync_gcs_requests_total", "op", "list")
}

func recreations(m harness.Metrics) float64 {
	return m.Sum("filesync_notify_subscription_recreations_total")
}

// scheduledListings counts the reconcile and rescan ticks of pod's sidecar between from and to (with a
// little slack at both ends): each lists the bucket once (a page per 1,000 objects; the example has fewer).
func scheduledListings(p corev1.Pod, from, to time.Time) int {
	started, ok := containerStarted(p, syncContainer)
	if !ok {
		return 0
	}
	n := 0
	for _, every := range []time.Duration{reconcileInterval, rescanInterval} {
		for tick := started.Add(every); tick.Before(to.Add(5 * time.Second)); tick = tick.Add(every) {
			if tick.After(from.Add(-5 * time.Second)) {
				n++
			}
		}
	}
	return n
}
