// Package manifests renders what the kit deploys and checks it: the Kustomize trees (manifests/, the
// component, examples/wordpress overlays) with the kustomize API (krusty), decoded strictly into typed
// Kubernetes objects; `kubectl kustomize` for comparison; and the Tiltfile, executed with stand-ins for Tilt's
// builtins. Its tests check that every overlay, the Tiltfile and the scripts agree with hack/versions.env.
// The e2e suite applies exactly what Build renders.
package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered resource, decoded into its k8s.io/api type (Value is a pointer, e.g.
// *appsv1.Deployment).
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Value      any
}

// Manifest is a rendered kustomization: its objects in output order and the YAML stream they came from.
type Manifest struct {
	Objects []Object
	YAML    []byte
}

// kinds are the types the kit's manifests may contain. Anything else is an error: a typo in apiVersion or
// kind must fail a test, not slip through undecoded.
var kinds = map[string]func() any{
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/PersistentVolumeClaim":               func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	// Config Connector (configconnector.go).
	"pubsub.cnrm.cloud.google.com/v1beta1/PubSubTopic":          func() any { return new(PubSubTopic) },
	"storage.cnrm.cloud.google.com/v1beta1/StorageNotification": func() any { return new(StorageNotification) },
	"iam.cnrm.cloud.google.com/v1beta1/IAMPolicyMember":         func() any { return new(IAMPolicyMember) },
	"iam.cnrm.cloud.google.com/v1beta1/IAMCustomRole":           func() any { return new(IAMCustomRole) },
}

// Build runs kustomize (the krusty API, with the same defaults as `kubectl kustomize`: load restrictions
// on, no plugins, objects in the legacy order) on dir.
func Build(dir string) (resmap.ResMap, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return m, nil
}

// Render builds dir and decodes every resource strictly: unknown kinds and unknown fields are errors.
func Render(dir string) (*Manifest, error) {
	m, err := Build(dir)
	if err != nil {
		return nil, err
	}
	y, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	out := &Manifest{YAML: y}
	var errs []error
	for _, r := range m.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err))
			continue
		}
		o, err := decode(j)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err))
			continue
		}
		out.Objects = append(out.Objects, o)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("decode %s: %w", dir, err)
	}
	return out, nil
}

// decode turns one resource's JSON into its typed object, rejecting unknown fields and trailing data.
func decode(j []byte) (Object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(j, &tm); err != nil {
		return Object{}, fmt.Errorf("read type: %w", err)
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return Object{}, fmt.Errorf("unexpected kind %s/%s", tm.APIVersion, tm.Kind)
	}
	v := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Object{}, fmt.Errorf("strict decode: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Object{}, errors.New("strict decode: trailing data")
	}
	return Object{
		APIVersion: tm.APIVersion,
		Kind:       tm.Kind,
		Name:       tm.Metadata.Name,
		Namespace:  tm.Metadata.Namespace,
		Value:      v,
	}, nil
}

// All returns every object of type T (e.g. All[appsv1.Deployment](m)).
func All[T any](m *Manifest) []*T {
	var out []*T
	for _, o := range m.Objects {
		if v, ok := o.Value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// Get returns the object of type T with that name, or nil.
func Get[T any](m *Manifest, name string) *T {
	for _, o := range m.Objects {
		if v, ok := o.Value.(*T); ok && o.Name == name {
			return v
		}
	}
	return nil
}
