package monitoring

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

// A firing case, in the spirit of `promtool test rules`: synthetic series (promqltest's load notation, one
// sample a minute), the time the rule group is evaluated up to (every minute from 0, as Prometheus does),
// and the pods the alert must be firing for then. An empty fire is a case where it must stay silent.
type firing struct {
	name   string
	series string
	at     time.Duration
	fire   []string
}

// The pods a series belongs to, as the PodMonitor labels them.
const (
	a = `namespace="wordpress", pod="wordpress-a"`
	b = `namespace="wordpress", pod="wordpress-b"`
)

var cases = map[string][]firing{
	"FilesyncReplicaNotReady": {
		{"restoring for 20 minutes", `filesync_ready{` + a + `} 0x20
			filesync_ready{` + b + `} 0x3 1x17`, 20 * time.Minute, []string{"wordpress-a"}},
		{"a 10-minute restore is normal", `filesync_ready{` + a + `} 0x10 1x10`, 20 * time.Minute, nil},
	},
	"FilesyncNoSuccessfulPass": {
		// last success stays at t=60s while the clock runs on: 16 minutes later it has been 15+ minutes.
		{"stuck since minute 1", `filesync_ready{` + a + `} 1x20
			filesync_last_success_timestamp_seconds{` + a + `} 60x20
			filesync_ready{` + b + `} 1x20
			filesync_last_success_timestamp_seconds{` + b + `} 0+60x20`, 17 * time.Minute, []string{"wordpress-a"}},
		{"not ready yet: the restore alert speaks", `filesync_ready{` + a + `} 0x20
			filesync_last_success_timestamp_seconds{` + a + `} 0x20`, 20 * time.Minute, nil},
	},
	"FilesyncDeleteGuardTripped": {
		{"deletes withheld for 2 minutes", `filesync_delete_blocked{` + a + `} 0 0 1 1 1
			filesync_delete_blocked{` + b + `} 0x4`, 4 * time.Minute, []string{"wordpress-a"}},
		{"cleared in the next pass", `filesync_delete_blocked{` + a + `} 0 1 0 0 0`, 4 * time.Minute, nil},
	},
	"FilesyncSideWiped": {
		{"local side wiped", `filesync_wipes_total{` + a + `, side="local"} 0 0 1 1
			filesync_wipes_total{` + a + `, side="remote"} 0x3`, 3 * time.Minute, []string{"wordpress-a"}},
		{"an hour ago", `filesync_wipes_total{` + a + `, side="local"} 0 1x70`, 70 * time.Minute, nil},
	},
	"FilesyncConflicts": {
		{"two conflicts", `filesync_conflicts_total{` + a + `} 0 0 2 2
			filesync_conflicts_total{` + b + `} 0x3`, 3 * time.Minute, []string{"wordpress-a"}},
		{"none", `filesync_conflicts_total{` + a + `} 0x30`, 30 * time.Minute, nil},
	},
	"FilesyncErrorsRising": {
		// 30 upload errors a minute (one stuck file, retried every 2s pass) for 25 minutes.
		{"a stuck upload", `filesync_errors_total{` + a + `, op="upload"} 0+30x25
			filesync_errors_total{` + b + `, op="upload"} 0x25`, 25 * time.Minute, []string{"wordpress-a"}},
		{"a blip of 5 errors", `filesync_errors_total{` + a + `, op="list"} 0 5x25`, 25 * time.Minute, nil},
	},
	"FilesyncPendingUploadsNotDraining": {
		{"never zero for 25 minutes", `filesync_pending_uploads{` + a + `} 3x25
			filesync_pending_uploads{` + b + `} 3 0 5 0 2 0x20`, 25 * time.Minute, []string{"wordpress-a"}},
		{"busy but draining", `filesync_pending_uploads{` + a + `} 4 4 4 0 4 4 4 0 4 4 4 0 4 4 4 0 4 4 4 0 4 4 4 0 4 4`, 25 * time.Minute, nil},
	},
}

// TestAlertsFire evaluates every alert of the PrometheusRule, as Prometheus would, on series made for it:
// each must fire for the pod in trouble and only for it, and stay silent in the look-alike case. Every alert
// must have cases.
func TestAlertsFire(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	seen := map[string]bool{}
	for _, g := range ruleGroups(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			seen[r.Alert] = true
			cs := cases[r.Alert]
			if len(cs) < 2 {
				t.Errorf("%s: needs a firing and a silent case", r.Alert)
			}
			for _, c := range cs {
				t.Run(r.Alert+"/"+c.name, func(t *testing.T) {
					expr, err := p.ParseExpr(r.Expr)
					if err != nil {
						t.Fatal(err)
					}
					storage := promqltest.LoadedStorage(t, "load 1m\n\t"+c.series)
					engine := promqltest.NewTestEngine(t, false, 0, 100000)
					rule := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
						labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", false, nil)
					query := rules.EngineQueryFunc(engine, storage)
					for ts := time.Duration(0); ts <= c.at; ts += time.Minute {
						if _, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(ts), query, nil, 0); err != nil {
							t.Fatalf("eval at %v: %v", ts, err)
						}
					}
					var got []string
					for _, al := range rule.ActiveAlerts() {
						if al.State == rules.StateFiring {
							got = append(got, al.Labels.Get("pod"))
							if al.Labels.Get("severity") == "" || al.Annotations.Get("summary") == "" {
								t.Errorf("firing alert lacks severity or summary: %v %v", al.Labels, al.Annotations)
							}
						}
					}
					slices.Sort(got)
					if !slices.Equal(got, c.fire) {
						t.Fatalf("firing for %v at %v, want %v", got, c.at, c.fire)
					}
				})
			}
		}
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("cases for %s, which is not in the PrometheusRule", name)
		}
	}
}
