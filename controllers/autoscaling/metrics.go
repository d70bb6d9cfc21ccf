package autoscaling

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Where the policies' values come from.
//
// The predefined metrics are the service's status.utilization, which the manager's
// utilization controller refreshes about once a minute: a figure counts while its
// measuredAt is within staleAfter of now and at least one running task was measured.
//
// A customized metric is read from a prometheus.Gatherer, the manager's own
// registry (what its /metrics endpoint serves): the series of metricName that carry
// every label of the selector, combined by the statistic. A gauge (or an untyped
// metric) is used as it is; a counter as its per-second rate since the previous
// reading, per series, so the first reading of a counter has no value. A histogram
// or summary is named by its _count or _sum series, which are counters. No object
// event says that such a metric changed, so a service with customized metrics is
// read on a timer: at most once per evaluation interval (a reconcile in between,
// e.g. after the auto scaler's own write, reuses the last reading and its time),
// which also spaces a counter's rate over at least one interval.

// reading is a policy's metric value, or why there is none.
type reading struct {
	value float64
	ok    bool
	// at is when the value was measured: measuredAt, or when the registry was read.
	at time.Time
	// why explains a missing value, for the ScalingActive condition.
	why string
}

func missing(format string, args ...any) reading {
	return reading{why: fmt.Sprintf(format, args...)}
}

// predefinedReading is a predefined metric's value from a service's utilization.
func predefinedReading(u *ecsv1alpha1.Utilization, m ecsv1alpha1.PredefinedMetric, now time.Time, staleAfter time.Duration) reading {
	if u == nil || u.MeasuredAt == nil {
		return missing("no utilization measured yet")
	}
	at := u.MeasuredAt.Time
	if now.Sub(at) > staleAfter {
		return missing("utilization measured at %s, more than %s ago", at.UTC().Format(time.RFC3339), staleAfter)
	}
	if u.Tasks == 0 {
		return missing("no running task to measure")
	}
	var pct *int32
	switch m {
	case ecsv1alpha1.MetricServiceCPU:
		if pct = u.CPUUtilization; pct == nil {
			return missing("no cpuUtilization: the tasks reserve no CPU units")
		}
	case ecsv1alpha1.MetricServiceMemory:
		if pct = u.MemoryUtilization; pct == nil {
			return missing("no memoryUtilization: the tasks reserve no memory")
		}
	default:
		return missing("unknown predefined metric %q", m)
	}
	return reading{value: float64(*pct), ok: true, at: at}
}

// customSource reads customized metrics and keeps, per service, the last reading of
// each metric and its counters' previous values. It is shared by the reconciler's
// workers.
type customSource struct {
	gatherer prometheus.Gatherer
	interval time.Duration

	mu       sync.Mutex
	services map[types.NamespacedName]map[string]*customMemory // by metricKey
}

// customMemory is what the source remembers of one customized metric of a service.
type customMemory struct {
	last     reading
	counters map[string]counterSample // by series labels
}

type counterSample struct {
	value float64
	at    time.Time
}

func newCustomSource(g prometheus.Gatherer, interval time.Duration) *customSource {
	return &customSource{gatherer: g, interval: interval, services: map[types.NamespacedName]map[string]*customMemory{}}
}

// read returns the readings of the service's customized metrics (by metricKey) and
// when they are due to be read again. It gathers the registry once, and only when
// a metric's last reading is an interval old (or it has none).
func (s *customSource) read(svc types.NamespacedName, metrics []*ecsv1alpha1.CustomizedMetric, now time.Time) (map[string]reading, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.services[svc]
	mem := make(map[string]*customMemory, len(metrics))
	var families []*dto.MetricFamily
	var gatherErr error
	gathered := false
	out := make(map[string]reading, len(metrics))
	due := now.Add(s.interval)
	for _, m := range metrics {
		key := metricKey(m)
		cm := old[key]
		if cm == nil {
			cm = &customMemory{}
		}
		mem[key] = cm
		if cm.last.at.IsZero() || !now.Before(cm.last.at.Add(s.interval)) {
			if !gathered {
				families, gatherErr = s.gatherer.Gather()
				gathered = true
			}
			cm.last = cm.evaluate(families, gatherErr, m, now)
		}
		out[key] = cm.last
		due = earliest(due, cm.last.at.Add(s.interval))
	}
	s.services[svc] = mem // drops the metrics the policies no longer name
	return out, due
}

// forget drops what the source remembers of a service.
func (s *customSource) forget(svc types.NamespacedName) {
	s.mu.Lock()
	delete(s.services, svc)
	s.mu.Unlock()
}

// evaluate reads m from families at now. gatherErr is the registry's error, which
// may come with usable families (one failing collector does not hide the others).
func (cm *customMemory) evaluate(families []*dto.MetricFamily, gatherErr error, m *ecsv1alpha1.CustomizedMetric, now time.Time) reading {
	r := reading{at: now}
	found, err := selectSeries(families, m.MetricName, m.Labels)
	if err != nil {
		if gatherErr != nil {
			err = fmt.Errorf("%w (gathering the registry: %w)", err, gatherErr)
		}
		r.why = err.Error()
		return r
	}
	values := make([]float64, 0, len(found.series))
	if found.counter {
		prev := cm.counters
		cm.counters = make(map[string]counterSample, len(found.series))
		for _, s := range found.series {
			cm.counters[s.labels] = counterSample{value: s.value, at: now}
			if p, ok := prev[s.labels]; ok && now.After(p.at) {
				delta := s.value - p.value
				if delta < 0 { // the counter was reset: it counted s.value since
					delta = s.value
				}
				values = append(values, delta/now.Sub(p.at).Seconds())
			}
		}
		if len(values) == 0 {
			r.why = fmt.Sprintf("counter %s read once: its rate needs a second reading", m.MetricName)
			return r
		}
	} else {
		for _, s := range found.series {
			values = append(values, s.value)
		}
	}
	v := combine(m.Statistic, values)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.why = fmt.Sprintf("%s is %v", m.MetricName, v)
		return r
	}
	r.value, r.ok = v, true
	return r
}

// series is one selected time series: its sorted labels and its value.
type series struct {
	labels string
	value  float64
}

// selection is the series a customized metric selects and whether they count.
type selection struct {
	series  []series
	counter bool
}

// selectSeries finds name's series that carry every label of want. A name ending
// in _count or _sum that is not a family itself selects those series of a histogram
// or summary.
func selectSeries(families []*dto.MetricFamily, name string, want map[string]string) (selection, error) {
	family, field := findFamily(families, name)
	if family == nil {
		return selection{}, fmt.Errorf("no metric %s on the manager's registry", name)
	}
	var sel selection
	switch family.GetType() {
	case dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
	case dto.MetricType_COUNTER:
		sel.counter = true
	case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
		if field == "" {
			return selection{}, fmt.Errorf("metric %s is a %s: name its %s_count or %s_sum series",
				name, strings.ToLower(family.GetType().String()), name, name)
		}
		sel.counter = true
	default:
		return selection{}, fmt.Errorf("metric %s is a %s, which the auto scaler cannot use", name, family.GetType())
	}
	for _, m := range family.GetMetric() {
		if !hasLabels(m.GetLabel(), want) {
			continue
		}
		sel.series = append(sel.series, series{labels: labelKey(m.GetLabel()), value: sampleValue(m, field)})
	}
	if len(sel.series) == 0 {
		return selection{}, fmt.Errorf("no series of %s has the labels %s", name, formatLabels(want))
	}
	return sel, nil
}

// findFamily is the family of name, or of the histogram or summary whose _count or
// _sum series name is (field says which).
func findFamily(families []*dto.MetricFamily, name string) (*dto.MetricFamily, string) {
	byName := func(n string) *dto.MetricFamily {
		i := slices.IndexFunc(families, func(f *dto.MetricFamily) bool { return f.GetName() == n })
		if i < 0 {
			return nil
		}
		return families[i]
	}
	if f := byName(name); f != nil {
		return f, ""
	}
	for _, field := range []string{"_count", "_sum"} {
		base, ok := strings.CutSuffix(name, field)
		if !ok {
			continue
		}
		if f := byName(base); f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
			return f, field
		}
	}
	return nil, ""
}

func sampleValue(m *dto.Metric, field string) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	case m.GetHistogram() != nil && field == "_count":
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetHistogram() != nil:
		return m.GetHistogram().GetSampleSum()
	case m.GetSummary() != nil && field == "_count":
		return float64(m.GetSummary().GetSampleCount())
	case m.GetSummary() != nil:
		return m.GetSummary().GetSampleSum()
	}
	return 0
}

func hasLabels(labels []*dto.LabelPair, want map[string]string) bool {
	for k, v := range want {
		i := slices.IndexFunc(labels, func(l *dto.LabelPair) bool { return l.GetName() == k })
		if i < 0 || labels[i].GetValue() != v {
			return false
		}
	}
	return true
}

func labelKey(labels []*dto.LabelPair) string {
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func formatLabels(want map[string]string) string {
	parts := make([]string, 0, len(want))
	for k, v := range want {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// metricKey identifies a customized metric by everything that selects its value,
// so a policy whose metric changes starts afresh.
func metricKey(m *ecsv1alpha1.CustomizedMetric) string {
	return m.MetricName + formatLabels(m.Labels) + string(m.Statistic)
}

// combine is the statistic of values (Average when unset).
func combine(stat ecsv1alpha1.MetricStatistic, values []float64) float64 {
	switch stat {
	case ecsv1alpha1.StatisticSum:
		var sum float64
		for _, v := range values {
			sum += v
		}
		return sum
	case ecsv1alpha1.StatisticMaximum:
		return slices.Max(values)
	case ecsv1alpha1.StatisticMinimum:
		return slices.Min(values)
	default:
		var sum float64
		for _, v := range values {
			sum += v
		}
		return sum / float64(len(values))
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// roundValue keeps three decimals of a value for status and messages.
func roundValue(v float64) float64 {
	return math.Round(v*1000) / 1000
}
