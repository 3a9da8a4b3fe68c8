package harness

import (
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a /metrics endpoint in the Prometheus text format, by metric family name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics reads the Prometheus text exposition format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return Metrics(fams), nil
}

// Has reports whether the scrape holds a sample of the family name.
func (m Metrics) Has(name string) bool {
	f, ok := m[name]
	return ok && len(f.GetMetric()) > 0
}

// Sum adds up the values of every series of the family name (counters, gauges and untyped samples; a
// histogram counts its observations; 0 when the family is absent).
func (m Metrics) Sum(name string) float64 { return m.SumWhere(name, "", "") }

// SumWhere is Sum over the series whose label has value (every series when label is "").
func (m Metrics) SumWhere(name, label, value string) float64 {
	var total float64
	for _, s := range m[name].GetMetric() {
		if label != "" && !hasLabel(s, label, value) {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		case s.Histogram != nil:
			total += float64(s.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func hasLabel(s *dto.Metric, label, value string) bool {
	for _, l := range s.GetLabel() {
		if l.GetName() == label {
			return l.GetValue() == value
		}
	}
	return false
}

// ByLabel returns the family name's values by the value of one label, each the Sum of the series that
// carry it (a series without the label counts under ""). Histograms count their observations.
func (m Metrics) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m[name].GetMetric() {
		key := ""
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		out[key] += Metrics{name: &dto.MetricFamily{Metric: []*dto.Metric{s}}}.Sum(name)
	}
	return out
}
