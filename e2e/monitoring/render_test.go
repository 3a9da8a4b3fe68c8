package monitoring

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"testing"

	"go.yaml.in/yaml/v3"
)

// object is the part of a rendered resource these checks read.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"podMetricsEndpoints"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				InitContainers []struct {
					Name  string `yaml:"name"`
					Ports []struct {
						Name string `yaml:"name"`
					} `yaml:"ports"`
				} `yaml:"initContainers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// kustomize renders dir with `kubectl kustomize`, what a user runs.
func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is needed to render the overlays:", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestComponentRendersWithOverlays: each example overlay plus the monitoring Component (testdata/, as
// docs/monitoring.md tells a user to add it) renders, and the PodMonitor selects exactly the pods that run
// the sidecar, on its metrics port.
func TestComponentRendersWithOverlays(t *testing.T) {
	for _, overlay := range []string{"kind", "gke"} {
		t.Run(overlay, func(t *testing.T) {
			byKind := map[string][]object{}
			for _, o := range kustomize(t, "testdata/"+overlay) {
				byKind[o.Kind] = append(byKind[o.Kind], o)
			}
			for _, k := range []string{"PodMonitor", "PrometheusRule"} {
				if len(byKind[k]) != 1 || byKind[k][0].Metadata.Namespace != "wordpress" {
					t.Fatalf("want one %s in namespace wordpress, got %+v", k, byKind[k])
				}
			}
			pm := byKind["PodMonitor"][0]
			if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "filesync" ||
				pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
				t.Errorf("PodMonitor endpoints: %+v", pm.Spec.PodMetricsEndpoints)
			}
			var dashboard bool
			for _, cm := range byKind["ConfigMap"] {
				if cm.Metadata.Name == "filesync-dashboard" {
					dashboard = cm.Metadata.Labels["grafana_dashboard"] == "1" && cm.Data["filesync.json"] != ""
				}
			}
			if !dashboard {
				t.Error(`no ConfigMap filesync-dashboard labelled grafana_dashboard: "1" with filesync.json`)
			}
			selected := 0
			for _, d := range byKind["Deployment"] {
				sidecar := false
				for _, c := range d.Spec.Template.Spec.InitContainers {
					for _, p := range c.Ports {
						sidecar = sidecar || (c.Name == "filesync" && p.Name == "filesync")
					}
				}
				matches := true
				for k, v := range pm.Spec.Selector.MatchLabels {
					matches = matches && d.Spec.Template.Metadata.Labels[k] == v
				}
				if matches != sidecar {
					t.Errorf("Deployment %s: runs the sidecar %v, selected by the PodMonitor %v", d.Metadata.Name, sidecar, matches)
				}
				if matches {
					selected++
				}
			}
			if selected == 0 {
				t.Error("the PodMonitor selects no Deployment's pods")
			}
		})
	}
}
