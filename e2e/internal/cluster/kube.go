//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
)

// Kube reaches the example's pods: exec into containers and port-forward to them. Both go through the API
// server, so a specific replica can be addressed (the Service would pick one at random).
type Kube struct {
	rc  *rest.Config
	cs  kubernetes.Interface
	res *resources.Resources
}

// NewKube connects to the cluster of rc.
func NewKube(rc *rest.Config) (*Kube, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	res, err := resources.New(rc)
	if err != nil {
		return nil, fmt.Errorf("resources client: %w", err)
	}
	return &Kube{rc: rc, cs: cs, res: res}, nil
}

// Exec runs cmd in a container of a pod in the example's namespace, feeding stdin (if not nil), and returns
// its stdout. A non-zero exit is an error that carries stderr.
func (k *Kube) Exec(ctx context.Context, pod, container string, stdin []byte, cmd ...string) ([]byte, error) {
	req := k.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(Namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   cmd,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(k.rc, http.MethodPost, req.URL())
	if err != nil {
		return nil, fmt.Errorf("exec in %s/%s: %w", pod, container, err)
	}
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}
	if stdin != nil {
		opts.Stdin = bytes.NewReader(stdin)
	}
	if err := ex.StreamWithContext(ctx, opts); err != nil {
		return stdout.Bytes(), fmt.Errorf("exec %q in %s/%s: %w: %s", strings.Join(cmd, " "), pod, container, err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Do sends req to port of pod through a fresh port-forward and returns the status code and the whole body.
// req.URL's scheme and host are replaced; its Host header is kept (set it to the site's host for WordPress).
func (k *Kube) Do(ctx context.Context, pod string, port int, req *http.Request) (int, []byte, error) {
	local, stop, err := k.Forward(ctx, pod, port)
	if err != nil {
		return 0, nil, err
	}
	defer stop()
	req = req.Clone(ctx)
	if req.Host == PlaceholderHost {
		req.Host = ""
	}
	req.URL.Scheme = "http"
	req.URL.Host = fmt.Sprintf("127.0.0.1:%d", local)
	client := &http.Client{
		Timeout: time.Minute,
		// WordPress answers some requests with redirects to its canonical host, which is not this tunnel.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s:%d: %w", req.Method, req.URL.Path, pod, port, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read %s on %s:%d: %w", req.URL.Path, pod, port, err)
	}
	return resp.StatusCode, body, nil
}

// PlaceholderHost stands for the tunnel's address in request URLs built before the tunnel exists.
const PlaceholderHost = "placeholder"

// Get is Do for a GET of path (with query) with the given Host header.
func (k *Kube) Get(ctx context.Context, pod string, port int, host, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+PlaceholderHost+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("request %s: %w", path, err)
	}
	if host != "" {
		req.Host = host
	}
	return k.Do(ctx, pod, port, req)
}

// Forward opens a port-forward to port of pod on 127.0.0.1 and returns the local port and the function that
// closes it.
func (k *Kube) Forward(ctx context.Context, pod string, port int) (uint16, func(), error) {
	transport, upgrader, err := spdy.RoundTripperFor(k.rc)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward transport: %w", err)
	}
	url := k.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(Namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	stopCh, readyCh := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)},
		stopCh, readyCh, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward %s:%d: %w", pod, port, err)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- fw.ForwardPorts() }()
	select {
	case <-readyCh:
	case err := <-errCh:
		return 0, nil, fmt.Errorf("port-forward %s:%d: %w", pod, port, err)
	case <-ctx.Done():
		close(stopCh)
		return 0, nil, fmt.Errorf("port-forward %s:%d: %w", pod, port, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil {
		close(stopCh)
		return 0, nil, fmt.Errorf("port-forward %s:%d: local port: %w", pod, port, err)
	}
	if len(ports) != 1 {
		close(stopCh)
		return 0, nil, fmt.Errorf("port-forward %s:%d: %d local ports, want 1", pod, port, len(ports))
	}
	return ports[0].Local, func() { close(stopCh) }, nil
}

// Replicas returns the running, Ready, not terminating pods of the WordPress Deployment, sorted by name.
func (k *Kube) Replicas(ctx context.Context) ([]corev1.Pod, error) {
	return k.PodsOf(ctx, WordPress, func(p corev1.Pod) bool {
		return p.DeletionTimestamp == nil && PodReady(p)
	})
}

// PodsOf returns the pods of deployment that keep accepts, sorted by name.
func (k *Kube) PodsOf(ctx context.Context, deployment string, keep func(corev1.Pod) bool) ([]corev1.Pod, error) {
	var d appsv1.Deployment
	if err := k.res.Get(ctx, deployment, Namespace, &d); err != nil {
		return nil, fmt.Errorf("get deployment %s: %w", deployment, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s selector: %w", deployment, err)
	}
	var pods corev1.PodList
	if err := k.res.WithNamespace(Namespace).List(ctx, &pods, resources.WithLabelSelector(sel.String())); err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", deployment, err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if keep(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PodReady reports whether p's Ready condition is true.
func PodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitRollout waits until deployment has exactly its desired number of pods, all updated and Ready, and no
// pod left terminating (so that "the replicas" is a well-defined set).
func (k *Kube) WaitRollout(ctx context.Context, deployment string, timeout time.Duration) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: deployment, Namespace: Namespace}}
	complete := func(obj k8s.Object) bool {
		d := obj.(*appsv1.Deployment)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.Replicas == want && s.UpdatedReplicas == want &&
			s.ReadyReplicas == want && s.AvailableReplicas == want
	}
	err := wait.For(conditions.New(k.res).ResourceMatch(d, complete), wait.WithContext(ctx),
		wait.WithTimeout(timeout), wait.WithInterval(time.Second))
	if err != nil {
		return fmt.Errorf("deployment %s rollout: %w", deployment, err)
	}
	err = wait.For(func(ctx context.Context) (bool, error) {
		all, err := k.PodsOf(ctx, deployment, func(corev1.Pod) bool { return true })
		if err != nil {
			return false, nil
		}
		for _, p := range all {
			if p.DeletionTimestamp != nil || !PodReady(p) {
				return false, nil
			}
		}
		return len(all) == int(*d.Spec.Replicas), nil
	}, wait.WithContext(ctx), wait.WithTimeout(timeout), wait.WithInterval(time.Second))
	if err != nil {
		return fmt.Errorf("deployment %s pods settle: %w", deployment, err)
	}
	return nil
}

// Scale sets the WordPress Deployment's replicas and waits until exactly n pods are Ready (n=0: until every
// pod is gone, so every filesync has flushed and exited).
func (k *Kube) Scale(ctx context.Context, n int32, timeout time.Duration) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: WordPress, Namespace: Namespace}}
	patch := k8s.Patch{PatchType: "application/merge-patch+json", Data: fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)}
	if err := k.res.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("scale %s to %d: %w", WordPress, n, err)
	}
	if n > 0 {
		return k.WaitRollout(ctx, WordPress, timeout)
	}
	err := wait.For(func(ctx context.Context) (bool, error) {
		all, err := k.PodsOf(ctx, WordPress, func(corev1.Pod) bool { return true })
		return err == nil && len(all) == 0, nil
	}, wait.WithContext(ctx), wait.WithTimeout(timeout), wait.WithInterval(time.Second))
	if err != nil {
		return fmt.Errorf("scale %s to 0: pods still present: %w", WordPress, err)
	}
	return nil
}

// DeletePods deletes the pods of deployment (its ReplicaSet makes new ones) and returns their names.
func (k *Kube) DeletePods(ctx context.Context, deployment string) ([]string, error) {
	pods, err := k.PodsOf(ctx, deployment, func(corev1.Pod) bool { return true })
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, p := range pods {
		if err := k.cs.CoreV1().Pods(Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return deleted, fmt.Errorf("delete pod %s: %w", p.Name, err)
		}
		deleted = append(deleted, p.Name)
	}
	return deleted, nil
}

// DeletePod deletes pod (its ReplicaSet makes a new one).
func (k *Kube) DeletePod(ctx context.Context, pod string) error {
	if err := k.res.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: Namespace}}); err != nil {
		return fmt.Errorf("delete pod %s: %w", pod, err)
	}
	return nil
}

// SetContainerConfig sets keys of the ConfigMap that container of deployment takes its environment from
// (envFrom; the Component's generated `filesync-<hash>`), for the pods made from now on. It returns a
// function that puts the old values back (removing the keys that were not there).
func (k *Kube) SetContainerConfig(ctx context.Context, deployment, container string, kv map[string]string) (func(context.Context) error, error) {
	d, err := k.cs.AppsV1().Deployments(Namespace).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", deployment, err)
	}
	name := ""
	for _, c := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
		if c.Name != container {
			continue
		}
		for _, src := range c.EnvFrom {
			if src.ConfigMapRef != nil {
				name = src.ConfigMapRef.Name
			}
		}
	}
	if name == "" {
		return nil, fmt.Errorf("deployment %s: container %s takes no ConfigMap with envFrom", deployment, container)
	}
	cms := k.cs.CoreV1().ConfigMaps(Namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("configmap %s: %w", name, err)
	}
	old := map[string]*string{}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	for key, v := range kv {
		if was, ok := cm.Data[key]; ok {
			old[key] = &was
		} else {
			old[key] = nil
		}
		cm.Data[key] = v
	}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("update configmap %s: %w", name, err)
	}
	return func(ctx context.Context) error {
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("configmap %s: %w", name, err)
		}
		for key, was := range old {
			if was == nil {
				delete(cm.Data, key)
			} else {
				cm.Data[key] = *was
			}
		}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("restore configmap %s: %w", name, err)
		}
		return nil
	}, nil
}
