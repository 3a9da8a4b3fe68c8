package harness

import (
	"context"
	"errors"
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

func TestEnvLists(t *testing.T) {
	vars := map[string]string{"SIZES": "2000, 20000", "DELAYS": "20ms,50ms", "BAD_SIZES": "2000,,3", "BAD_DELAYS": "20"}
	e := NewEnvFrom(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if got := e.IntList("SIZES", nil); len(got) != 2 || got[0] != 2000 || got[1] != 20000 {
		t.Errorf("IntList(SIZES) = %v", got)
	}
	if got := e.DurationList("DELAYS", nil); len(got) != 2 || got[0] != 20*time.Millisecond || got[1] != 50*time.Millisecond {
		t.Errorf("DurationList(DELAYS) = %v", got)
	}
	if got := e.IntList("UNSET", []int{7}); len(got) != 1 || got[0] != 7 {
		t.Errorf("IntList(UNSET) = %v, want the default", got)
	}
	if e.Err() != nil {
		t.Fatalf("good lists: %v", e.Err())
	}
	if got := e.IntList("BAD_SIZES", []int{1}); len(got) != 1 || got[0] != 1 {
		t.Errorf("IntList(BAD_SIZES) = %v, want the default back", got)
	}
	e.DurationList("BAD_DELAYS", nil)
	err := e.Err()
	for _, want := range []string{`BAD_SIZES="2000,,3"`, `BAD_DELAYS="20"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
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
x_total{op="b",note="other"} 4
# TYPE x_ready gauge
x_ready 1
# TYPE x_seconds histogram
x_seconds_bucket{le="1"} 2
x_seconds_bucket{le="+Inf"} 3
x_seconds_sum 2.5
x_seconds_count 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("x_total"); got != 9 {
		t.Errorf("Sum(x_total) = %v, want 9", got)
	}
	if got := m.ByLabel("x_total", "op"); len(got) != 2 || got["a"] != 2 || got["b"] != 7 {
		t.Errorf("ByLabel(x_total, op) = %v, want a=2 b=7", got)
	}
	if got := m.Sum("x_seconds"); got != 3 {
		t.Errorf("Sum(x_seconds) = %v, want the histogram's count 3", got)
	}
	if got := m.SumWhere("x_total", "op", "b"); got != 7 {
		t.Errorf(`SumWhere(x_total, op="b") = %v, want 7`, got)
	}
	if got := m.SumWhere("x_total", "op", "c"); got != 0 {
		t.Errorf(`SumWhere(x_total, op="c") = %v, want 0`, got)
	}
	if !m.Has("x_ready") || m.Has("x") || m.Sum("x") != 0 {
		t.Errorf("Has(x_ready) = %v, Has(x) = %v, Sum(x) = %v", m.Has("x_ready"), m.Has("x"), m.Sum("x"))
	}
}

// A step that panics fails with an error naming the panic, and the context the earlier steps built is
// kept, so that the suite's Finish can still export the logs and delete the cluster.
func TestProtectTurnsAPanicIntoAnErrorAndKeepsTheContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "cluster")
	out, err := Protect(ctx, func(ctx context.Context) (context.Context, error) {
		var steps []string
		return ctx, errors.New(steps[len(steps)]) // an index out of range: a runtime panic
	})
	if err == nil || !strings.Contains(err.Error(), "panic: runtime error: index out of range") {
		t.Fatalf("err = %v, want the panic", err)
	}
	if out == nil || out.Value(key{}) != "cluster" {
		t.Fatalf("the context given was not returned: %v", out)
	}
	want := errors.New("step failed")
	next := context.WithValue(ctx, key{}, "next")
	if out, err := Protect(ctx, func(context.Context) (context.Context, error) { return next, want }); !errors.Is(err, want) || out != next {
		t.Fatalf("a step's own result is not passed through: %v, %v", out, err)
	}
}
