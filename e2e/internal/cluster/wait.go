//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

// waitForSystem waits until the node is Ready, every pod of kube-system and local-path-storage is Ready
// (CoreDNS and kube-proxy included: `kind create --wait` covers only the node) and a default StorageClass
// exists (MariaDB's PVC needs it).
func waitForSystem(cfg Config) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		r := c.Client().Resources()
		opts := []wait.Option{wait.WithContext(ctx), wait.WithTimeout(cfg.Timeout), wait.WithInterval(2 * time.Second)}
		nodeReady := func(obj k8s.Object) bool {
			for _, cond := range obj.(*corev1.Node).Status.Conditions {
				if cond.Type == corev1.NodeReady {
					return cond.Status == corev1.ConditionTrue
				}
			}
			return false
		}
		if err := wait.For(conditions.New(r).ResourcesMatch(&corev1.NodeList{}, nodeReady), opts...); err != nil {
			return ctx, fmt.Errorf("nodes ready: %w", err)
		}
		allReady := func(ns string, atLeast map[string]int) func(context.Context) (bool, error) {
			return func(ctx context.Context) (bool, error) {
				var pods corev1.PodList
				if err := r.WithNamespace(ns).List(ctx, &pods); err != nil {
					return false, nil
				}
				seen := map[string]int{}
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodSucceeded {
						continue
					}
					if !PodReady(p) {
						return false, nil
					}
					seen[p.Labels["k8s-app"]]++
				}
				for app, n := range atLeast {
					if seen[app] < n {
						return false, nil
					}
				}
				return true, nil
			}
		}
		if err := wait.For(allReady("kube-system", map[string]int{"kube-dns": 1, "kube-proxy": 1}), opts...); err != nil {
			return ctx, fmt.Errorf("kube-system pods ready (coredns, kube-proxy): %w", err)
		}
		if err := wait.For(allReady("local-path-storage", nil), opts...); err != nil {
			return ctx, fmt.Errorf("local-path-storage pods ready: %w", err)
		}
		hasDefault := func(ctx context.Context) (bool, error) {
			var scs storagev1.StorageClassList
			if err := r.List(ctx, &scs); err != nil {
				return false, nil
			}
			for _, sc := range scs.Items {
				if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
					return true, nil
				}
			}
			return false, nil
		}
		if err := wait.For(hasDefault, opts...); err != nil {
			return ctx, fmt.Errorf("default storage class: %w", err)
		}
		// the default ServiceAccount is created asynchronously; pods cannot be created before it exists
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}}
		if err := wait.For(conditions.New(r).ResourceMatch(sa, func(k8s.Object) bool { return true }), opts...); err != nil {
			return ctx, fmt.Errorf("default service account: %w", err)
		}
		return ctx, nil
	}
}

// waitForExample waits for MariaDB, the Pub/Sub emulator, fake-gcs-server and every WordPress replica to be
// Ready.
func waitForExample(cfg Config) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		k, err := NewKube(c.Client().RESTConfig())
		if err != nil {
			return ctx, err
		}
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: MariaDB, Namespace: Namespace}}
		stsReady := func(obj k8s.Object) bool {
			s := obj.(*appsv1.StatefulSet)
			return s.Spec.Replicas != nil && s.Status.ObservedGeneration >= s.Generation &&
				s.Status.ReadyReplicas == *s.Spec.Replicas
		}
		if err := wait.For(conditions.New(k.res).ResourceMatch(sts, stsReady), wait.WithContext(ctx),
			wait.WithTimeout(cfg.Timeout), wait.WithInterval(2*time.Second)); err != nil {
			return ctx, fmt.Errorf("statefulset %s ready: %w", MariaDB, err)
		}
		for _, d := range []string{PubSubDeployment, GCSDeployment, WordPress} {
			if err := k.WaitRollout(ctx, d, cfg.Timeout); err != nil {
				return ctx, err
			}
		}
		return ctx, nil
	}
}
