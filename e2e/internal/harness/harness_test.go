package harness

import (
	"strings"
	"testing"
	"time"
)

func TestEnvRejectsBadValuesByName(t *testing.T) {
	vars := map[string]string{"RUNS": "five", "IDLE": "60", "KEEP": "yes", "OK": "3"}
	e := NewEnvFrom(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if got := e.Int("OK", 1); got != 3 {
		t.Errorf("Int(OK) = %d, want 3", got)
	}
	if got := e.Int("UNSET", 7); got != 7 {
		t.Errorf("Int(UNSET) = %d, want the default 7", got)
	}
	e.Int("RUNS", 5)
	e.Duration("IDLE", time.Minute)
	e.Bool("KEEP")
	e.Required("MISSING")
	err := e.Err()
	if err == nil {
		t.Fatal("no error for RUNS=five, IDLE=60, KEEP=yes and MISSING unset")
	}
	for _, want := range []string{`RUNS="five"`, `IDLE="60"`, `KEEP="yes"`, "MISSING is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestPinsOfTheRepository(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	pins, err := LoadPins(root)
	if err != nil {
		t.Fatal(err)
	}
	tag := pins["FAKE_GCS_TAG"]
	if tag == "" || pins["FAKE_GCS_VERSION"] != "v"+tag || pins["FAKE_GCS_IMAGE"] != "kind.local/fake-gcs-server:"+tag {
		t.Errorf("fake-gcs-server pins do not follow FAKE_GCS_TAG=%q: %q, %q", tag, pins["FAKE_GCS_VERSION"], pins["FAKE_GCS_IMAGE"])
	}
}

func TestMetricsSumEverySeriesOfAFamily(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# TYPE x_total counter
x_total{op="a"} 2
x_total{op="b",note="with space"} 3
# TYPE x_ready gauge
x_ready 1
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("x_total"); got != 5 {
		t.Errorf("Sum(x_total) = %v, want 5", got)
	}
	if got := m.SumWhere("x_total", "op", "b"); got != 3 {
		t.Errorf(`SumWhere(x_total, op="b") = %v, want 3`, got)
	}
	if got := m.SumWhere("x_total", "op", "c"); got != 0 {
		t.Errorf(`SumWhere(x_total, op="c") = %v, want 0`, got)
	}
	if !m.Has("x_ready") || m.Has("x") || m.Sum("x") != 0 {
		t.Errorf("Has(x_ready) = %v, Has(x) = %v, Sum(x) = %v", m.Has("x_ready"), m.Has("x"), m.Sum("x"))
	}
}
