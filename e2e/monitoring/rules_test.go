package monitoring

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

const (
	componentDir = "../../manifests/components/filesync-monitoring"
	runbookDoc   = "../../docs/monitoring.md"
)

// ruleGroups reads the PrometheusRule and parses its spec as a Prometheus rule file (what `promtool check
// rules` does): unknown fields, bad durations, invalid PromQL and bad templates are errors.
func ruleGroups(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(componentDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Spec       yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml is %s %s", obj.APIVersion, obj.Kind)
	}
	spec, err := yaml.Marshal(&obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

func TestRulesParse(t *testing.T) {
	groups := ruleGroups(t)
	doc, err := os.ReadFile(runbookDoc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			for _, k := range []string{"summary", "runbook"} {
				if r.Annotations[k] == "" {
					t.Errorf("%s has no %s annotation", r.Alert, k)
				}
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s has no severity label", r.Alert)
			}
			if want := "docs/monitoring.md#" + strings.ToLower(r.Alert); r.Annotations["runbook"] != want {
				t.Errorf("%s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], want)
			}
			if !bytes.Contains(doc, []byte("\n### "+r.Alert+"\n")) {
				t.Errorf("docs/monitoring.md has no runbook section \"### %s\"", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts")
	}
}

// grafanaVars stands in for the dashboard's template variables, so its queries parse as plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "2m", "$namespace", "wordpress", "$pod", ".*")

func TestDashboardQueriesParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(componentDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Targets     []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard has uid %q and %d panels", d.UID, len(d.Panels))
	}
	p := parser.NewParser(parser.Options{})
	leftover := regexp.MustCompile(`\$\w+`)
	for _, panel := range d.Panels {
		if panel.Description == "" {
			t.Errorf("panel %q has no description", panel.Title)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, tg := range panel.Targets {
			q := grafanaVars.Replace(tg.Expr)
			if v := leftover.FindString(q); v != "" {
				t.Errorf("panel %q: unknown variable %s in %s", panel.Title, v, tg.Expr)
				continue
			}
			if _, err := p.ParseExpr(q); err != nil {
				t.Errorf("panel %q: %s: %v", panel.Title, tg.Expr, err)
			}
		}
	}
}

// TestDashboardFileIsTheConfigMap: the importable file and the ConfigMap the Grafana sidecar loads are the
// same JSON (the ConfigMap is generated from it).
func TestDashboardFileIsTheConfigMap(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(componentDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("filesync.json=dashboard.json")) || !bytes.Contains(b, []byte(`grafana_dashboard: "1"`)) {
		t.Fatal("the Component no longer generates the dashboard ConfigMap from dashboard.json with grafana_dashboard: \"1\"")
	}
}
