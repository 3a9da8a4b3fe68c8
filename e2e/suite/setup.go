//go:build e2e

package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
	"sigs.k8s.io/e2e-framework/support"
	"sigs.k8s.io/e2e-framework/support/kind"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/manifests"
)

// State is what the setup hands to the features (through the context).
type State struct {
	Config    Config
	Kube      *Kube
	WordPress *WordPress
	Bucket    Bucket
}

type stateKey struct{}

// StateFrom returns the suite's State from a feature's context.
func StateFrom(ctx context.Context) *State {
	s, _ := ctx.Value(stateKey{}).(*State)
	return s
}

// Outcome remembers whether anything failed, so Finish knows whether to export the cluster's logs.
type Outcome struct{ failed atomic.Bool }

// Fail records a failure.
func (o *Outcome) Fail() { o.failed.Store(true) }

// Failed reports whether anything failed.
func (o *Outcome) Failed() bool { return o.failed.Load() }

// Guard wraps setup steps so that an error or a panic (harness.Protect) marks the outcome failed and keeps
// the context the steps before built, for FinishSteps.
func (o *Outcome) Guard(fns ...env.Func) []env.Func {
	out := make([]env.Func, 0, len(fns))
	for _, fn := range fns {
		out = append(out, func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			ctx, err := harness.Protect(ctx, func(ctx context.Context) (context.Context, error) { return fn(ctx, c) })
			if err != nil {
				o.Fail()
			}
			return ctx, err
		})
	}
	return out
}

// SetupSteps is the suite's setup, in order: the cluster steps, then WordPress installed.
func SetupSteps(cfg Config, existed bool, log *slog.Logger) []env.Func {
	return append(ClusterSteps(cfg, existed, log), timed(log, "install wordpress", setUpWordPress(cfg, log)))
}

// ClusterSteps bring up the example on kind, the same for the suite and `make up` (e2e/cmd/cluster):
// pre-flight checks, the cluster created from kind-config.yaml (or reused: existed, see ReuseCluster), the
// system pods and storage waited for, the images loaded, the kind overlay applied, the example waited for.
func ClusterSteps(cfg Config, existed bool, log *slog.Logger) []env.Func {
	steps := []env.Func{
		timed(log, "pre-flight checks", preflight(cfg, existed)),
		timed(log, "create cluster", createCluster(cfg)),
		timed(log, "wait for system pods and storage", waitForSystem(cfg)),
	}
	for _, img := range cfg.Images {
		steps = append(steps, timed(log, "load "+img, envfuncs.LoadImageToCluster(cfg.Cluster, img)))
	}
	return append(steps,
		timed(log, "apply kind overlay", applyKustomization(filepath.Join(cfg.Root, "examples", "wordpress", "overlays", "kind"), cfg.ReadThroughOff)),
		timed(log, "wait for the example", waitForExample(cfg)),
	)
}

// SystemSteps connect to the cluster (creating it from kind-config.yaml if it does not exist) and wait for
// its system pods and storage: what hack/airgap's smoke test needs of a cluster it created itself.
func SystemSteps(cfg Config, log *slog.Logger) []env.Func {
	return []env.Func{
		timed(log, "connect to cluster", createCluster(cfg)),
		timed(log, "wait for system pods and storage", waitForSystem(cfg)),
	}
}

// createCluster creates the kind cluster from kind-config.yaml, or connects to it when it exists.
func createCluster(cfg Config) env.Func {
	opts := []support.ClusterOpts{kind.WithPath(cfg.Kind)}
	if cfg.NodeImage != "" {
		opts = append(opts, kind.WithImage(cfg.NodeImage))
	}
	return envfuncs.CreateClusterWithConfig(kind.NewProvider(), cfg.Cluster, filepath.Join(cfg.Root, "kind-config.yaml"), opts...)
}

// FinishSteps exports the cluster's logs if anything failed, then deletes the cluster unless it is to be
// kept (E2E_KEEP=1) or existed before the suite started.
func FinishSteps(cfg Config, existed bool, outcome *Outcome, log *slog.Logger) []env.Func {
	return []env.Func{
		func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			if !outcome.Failed() {
				return ctx, nil
			}
			dest := filepath.Join(cfg.Artifacts, time.Now().UTC().Format("20060102-150405"))
			if err := os.MkdirAll(cfg.Artifacts, 0o755); err != nil {
				return ctx, fmt.Errorf("artifacts dir: %w", err)
			}
			log.Info("exporting cluster logs", "dest", dest)
			return envfuncs.ExportClusterLogs(cfg.Cluster, dest)(ctx, c)
		},
		func(ctx context.Context, c *envconf.Config) (context.Context, error) {
			switch {
			case cfg.Keep:
				log.Info("keeping the cluster (E2E_KEEP=1)", "cluster", cfg.Cluster, "context", "kind-"+cfg.Cluster)
				return ctx, nil
			case existed:
				log.Info("leaving the cluster that existed before the suite", "cluster", cfg.Cluster)
				return ctx, nil
			}
			return timed(log, "delete cluster", envfuncs.DestroyCluster(cfg.Cluster))(ctx, c)
		},
	}
}

// ReuseCluster reports whether kind already has a usable cluster of that name. A cluster whose node
// containers stopped (dockerd restarted, machine rebooted) is listed by kind but cannot be reused: it is
// deleted, so that the setup creates it anew.
func ReuseCluster(ctx context.Context, cfg Config, log *slog.Logger) (bool, error) {
	out, err := exec.CommandContext(ctx, cfg.Kind, "get", "clusters").Output()
	if err != nil {
		return false, fmt.Errorf("%s get clusters: %w", cfg.Kind, err)
	}
	if !slices.Contains(strings.Fields(string(out)), cfg.Cluster) {
		return false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if exec.CommandContext(rctx, "kubectl", "--context", "kind-"+cfg.Cluster, "--request-timeout=10s",
		"get", "--raw", "/readyz").Run() == nil {
		return true, nil
	}
	log.Info("kind cluster exists but its API server does not answer: deleting it", "cluster", cfg.Cluster)
	if out, err := exec.CommandContext(ctx, cfg.Kind, "delete", "cluster", "--name", cfg.Cluster).CombinedOutput(); err != nil {
		return false, fmt.Errorf("%s delete cluster %s: %w: %s", cfg.Kind, cfg.Cluster, err, out)
	}
	return false, nil
}

// preflight fails fast, before anything is created: every image must be in the local Docker store (it is
// loaded, never pulled), and a cluster to be created needs the host ports kind-config.yaml maps (a cluster
// holding them makes `kind create` fail late, after starting the node).
func preflight(cfg Config, existed bool) env.Func {
	return func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		var errs []error
		for _, img := range cfg.Images {
			if err := exec.CommandContext(ctx, "docker", "image", "inspect", img).Run(); err != nil {
				errs = append(errs, fmt.Errorf("image %s not found: run 'make images'", img))
			}
		}
		if !existed {
			kc, err := harness.ReadKindConfig(filepath.Join(cfg.Root, "kind-config.yaml"))
			if err != nil {
				return ctx, err
			}
			for _, port := range kc.HostPorts() {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
				if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					_ = conn.Close()
					errs = append(errs, fmt.Errorf("%s is in use (another kind cluster from kind-config.yaml? "+
						"'kind get clusters'; delete it with CLUSTER=<name> make down)", addr))
				}
			}
		}
		return ctx, errors.Join(errs...)
	}
}

func timed(log *slog.Logger, what string, fn env.Func) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		start := time.Now()
		ctx, err := fn(ctx, c)
		if err != nil {
			log.Error("setup step failed", "step", what, "after", time.Since(start).Round(time.Millisecond), "err", err)
			return ctx, fmt.Errorf("%s: %w", what, err)
		}
		log.Info("setup step done", "step", what, "took", time.Since(start).Round(time.Millisecond))
		return ctx, nil
	}
}

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
					if !podReady(p) {
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

// applyKustomization server-side applies every object manifests.Build renders for dir (the very rendering
// the manifest tests check), so re-running against a kept cluster converges.
// With withoutReadThrough (the negative control of feature 09) the WordPress container does not mount the
// Apache rule that sends missing uploads to the read-through.
func applyKustomization(dir string, withoutReadThrough bool) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		rm, err := manifests.Build(dir)
		if err != nil {
			return ctx, err
		}
		cl := c.Client().Resources().GetControllerRuntimeClient()
		for _, res := range rm.Resources() {
			m, err := res.Map()
			if err != nil {
				return ctx, fmt.Errorf("%s: %w", res.CurId(), err)
			}
			if withoutReadThrough && res.GetKind() == "Deployment" && res.GetName() == deploymentName {
				if err := dropMount(m, appContainer, readThroughConf); err != nil {
					return ctx, err
				}
			}
			data, err := json.Marshal(m)
			if err != nil {
				return ctx, fmt.Errorf("%s: %w", res.CurId(), err)
			}
			u := &unstructured.Unstructured{Object: m}
			err = cl.Patch(ctx, u, client.RawPatch(types.ApplyPatchType, data), client.FieldOwner("filesync-e2e"), client.ForceOwnership)
			if err != nil {
				return ctx, fmt.Errorf("apply %s: %w", res.CurId(), err)
			}
		}
		return ctx, nil
	}
}

// readThroughConf is where the read-through Component mounts its Apache rule.
const readThroughConf = "/etc/apache2/conf-enabled/zz-filesync-read-through.conf"

// dropMount removes container's volume mount at mountPath from a Deployment's map form (as kustomize gives
// it: plain maps and slices, ints that the unstructured helpers would refuse).
func dropMount(obj map[string]any, container, mountPath string) error {
	dig := func(m map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			m, _ = m[k].(map[string]any)
		}
		return m
	}
	containers, _ := dig(obj, "spec", "template", "spec")["containers"].([]any)
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		if cm["name"] != container {
			continue
		}
		mounts, _ := cm["volumeMounts"].([]any)
		for i, vm := range mounts {
			if v, _ := vm.(map[string]any); v["mountPath"] == mountPath {
				cm["volumeMounts"] = append(mounts[:i:i], mounts[i+1:]...)
				return nil
			}
		}
	}
	return fmt.Errorf("negative control: container %s mounts nothing at %s", container, mountPath)
}

// waitForExample waits for MariaDB, the Pub/Sub emulator, fake-gcs-server and every WordPress replica to be
// Ready.
func waitForExample(cfg Config) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		k, err := newKube(c.Client().RESTConfig())
		if err != nil {
			return ctx, err
		}
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: mariadbName, Namespace: namespace}}
		stsReady := func(obj k8s.Object) bool {
			s := obj.(*appsv1.StatefulSet)
			return s.Spec.Replicas != nil && s.Status.ObservedGeneration >= s.Generation &&
				s.Status.ReadyReplicas == *s.Spec.Replicas
		}
		if err := wait.For(conditions.New(k.res).ResourceMatch(sts, stsReady), wait.WithContext(ctx),
			wait.WithTimeout(cfg.Timeout), wait.WithInterval(2*time.Second)); err != nil {
			return ctx, fmt.Errorf("statefulset %s ready: %w", mariadbName, err)
		}
		for _, d := range []string{pubsubDeploy, gcsDeployment, deploymentName} {
			if err := k.WaitRollout(ctx, d, cfg.Timeout); err != nil {
				return ctx, err
			}
		}
		return ctx, nil
	}
}

// setUpWordPress installs WordPress through its install form (unless installed), creates an application
// password for the REST API, and stores the suite's State in the context.
func setUpWordPress(cfg Config, log *slog.Logger) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		k, err := newKube(c.Client().RESTConfig())
		if err != nil {
			return ctx, err
		}
		pods, err := k.Replicas(ctx)
		if err != nil {
			return ctx, err
		}
		if len(pods) == 0 {
			return ctx, errors.New("no ready wordpress replica")
		}
		const user = "admin"
		password := harness.RandomName("pw") + harness.RandomName("x")
		installed, err := installWordPress(ctx, k, pods[0].Name, user, password)
		if err != nil {
			return ctx, err
		}
		if installed {
			log.Info("wordpress installed", "url", "http://"+siteHost, "user", user, "password", password)
		} else {
			log.Info("wordpress was already installed")
		}
		appPassword, err := createAppPassword(ctx, k, pods[0].Name, user)
		if err != nil {
			return ctx, err
		}
		st := &State{
			Config:    cfg,
			Kube:      k,
			WordPress: &WordPress{k: k, user: user, appPassword: appPassword},
			Bucket:    newBucket(k),
		}
		return context.WithValue(ctx, stateKey{}, st), nil
	}
}
