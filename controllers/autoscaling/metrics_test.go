package autoscaling

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestPredefinedReading(t *testing.T) {
	measured := func(ago time.Duration, tasks int32, cpu, mem *int32) *ecsv1alpha1.Utilization {
		return &ecsv1alpha1.Utilization{CPUUtilization: cpu, MemoryUtilization: mem, Tasks: tasks, MeasuredAt: &metav1.Time{Time: now.Add(-ago)}}
	}
	tests := []struct {
		name    string
		u       *ecsv1alpha1.Utilization
		metric  ecsv1alpha1.PredefinedMetric
		want    float64
		wantWhy string // "" for a value
	}{
		{name: "cpu", u: measured(time.Minute, 2, ptr.To[int32](92), ptr.To[int32](40)), metric: ecsv1alpha1.MetricServiceCPU, want: 92},
		{name: "memory", u: measured(time.Minute, 2, ptr.To[int32](92), ptr.To[int32](40)), metric: ecsv1alpha1.MetricServiceMemory, want: 40},
		{name: "CPU above 100 (CPU units are a share)", u: measured(0, 1, ptr.To[int32](250), nil), metric: ecsv1alpha1.MetricServiceCPU, want: 250},
		{name: "exactly staleAfter old still counts", u: measured(3*time.Minute, 2, ptr.To[int32](10), nil), metric: ecsv1alpha1.MetricServiceCPU, want: 10},
		{name: "never measured", metric: ecsv1alpha1.MetricServiceCPU, wantWhy: "no utilization measured yet"},
		{name: "no measuredAt", u: &ecsv1alpha1.Utilization{CPUUtilization: ptr.To[int32](1), Tasks: 1}, metric: ecsv1alpha1.MetricServiceCPU,
			wantWhy: "no utilization measured yet"},
		{name: "stale", u: measured(3*time.Minute+time.Second, 2, ptr.To[int32](92), nil), metric: ecsv1alpha1.MetricServiceCPU,
			wantWhy: "utilization measured at 2025-06-01T11:56:59Z, more than 3m0s ago"},
		{name: "no running task", u: measured(time.Minute, 0, nil, nil), metric: ecsv1alpha1.MetricServiceCPU, wantWhy: "no running task to measure"},
		{name: "no CPU reserved", u: measured(time.Minute, 2, nil, ptr.To[int32](40)), metric: ecsv1alpha1.MetricServiceCPU,
			wantWhy: "no cpuUtilization: the tasks reserve no CPU units"},
		{name: "no memory reserved", u: measured(time.Minute, 2, ptr.To[int32](40), nil), metric: ecsv1alpha1.MetricServiceMemory,
			wantWhy: "no memoryUtilization: the tasks reserve no memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := predefinedReading(tc.u, tc.metric, now, 3*time.Minute)
			want := reading{why: tc.wantWhy}
			if tc.wantWhy == "" {
				want = reading{value: tc.want, ok: true, at: tc.u.MeasuredAt.Time}
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(reading{})); diff != "" {
				t.Errorf("predefinedReading (-want +got):\n%s", diff)
			}
		})
	}
}

// testRegistry is a registry with a gauge, a counter and a histogram of two series
// each, as an application's instrumentation registers them.
func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "queue_depth", Help: "h"}, []string{"queue", "zone"})
	depth.WithLabelValues("jobs", "a").Set(10)
	depth.WithLabelValues("jobs", "b").Set(30)
	depth.WithLabelValues("mail", "a").Set(1000)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"path"})
	requests.WithLabelValues("/").Add(5)
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latency_seconds", Help: "h"}, []string{"path"})
	latency.WithLabelValues("/").Observe(0.5)
	latency.WithLabelValues("/").Observe(1.5)
	reg.MustRegister(depth, requests, latency)
	return reg
}

// TestCustomizedMetricSelection: a first reading of each kind of metric from a real
// registry, selected by labels and combined by statistic.
func TestCustomizedMetricSelection(t *testing.T) {
	reg := testRegistry(t)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		metric ecsv1alpha1.CustomizedMetric
		want   float64
		// wantWhy is the start of the reason there is no value, "" for a value.
		wantWhy string
	}{
		{name: "gauge, average of the series with the labels",
			metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "jobs"}}, want: 20},
		{name: "sum", metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "jobs"}, Statistic: ecsv1alpha1.StatisticSum}, want: 40},
		{name: "maximum", metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Statistic: ecsv1alpha1.StatisticMaximum}, want: 1000},
		{name: "minimum", metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Statistic: ecsv1alpha1.StatisticMinimum}, want: 10},
		{name: "every label must match exactly",
			metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "jobs", "zone": "b"}}, want: 30},
		{name: "no series with the labels",
			metric:  ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "job"}},
			wantWhy: `no series of queue_depth has the labels {queue="job"}`},
		{name: "a label the series lack", metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"region": "x"}},
			wantWhy: `no series of queue_depth has the labels {region="x"}`},
		{name: "unknown metric", metric: ecsv1alpha1.CustomizedMetric{MetricName: "queue_length"}, wantWhy: "no metric queue_length on the manager's registry"},
		{name: "a counter's first reading has no rate", metric: ecsv1alpha1.CustomizedMetric{MetricName: "requests_total"},
			wantWhy: "counter requests_total read once"},
		{name: "a histogram by its own name", metric: ecsv1alpha1.CustomizedMetric{MetricName: "latency_seconds"},
			wantWhy: "metric latency_seconds is a histogram: name its latency_seconds_count or latency_seconds_sum series"},
		{name: "a histogram's _count is a counter", metric: ecsv1alpha1.CustomizedMetric{MetricName: "latency_seconds_count"},
			wantWhy: "counter latency_seconds_count read once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := (&customMemory{}).evaluate(families, nil, &tc.metric, now)
			if got.at != now {
				t.Errorf("reading at %s, want %s", got.at, now)
			}
			if tc.wantWhy != "" {
				if got.ok || !strings.HasPrefix(got.why, tc.wantWhy) {
					t.Errorf("reading %+v, want no value because %q", got, tc.wantWhy)
				}
				return
			}
			if !got.ok || got.value != tc.want {
				t.Errorf("reading %+v, want %v", got, tc.want)
			}
		})
	}
}

// counterGatherer serves one counter family with series a and b, whose values the
// test sets, and counts its gathers.
type counterGatherer struct {
	a, b    float64
	gathers int
}

func (g *counterGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.gathers++
	series := func(path string, v float64) *dto.Metric {
		return &dto.Metric{Label: []*dto.LabelPair{{Name: ptr.To("path"), Value: ptr.To(path)}}, Counter: &dto.Counter{Value: ptr.To(v)}}
	}
	return []*dto.MetricFamily{{Name: ptr.To("hits_total"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{series("/a", g.a), series("/b", g.b)}}}, nil
}

// TestCounterRateBetweenEvaluations: a counter's value is its per-second rate
// between two readings an evaluation interval apart, summed over its series; a
// reconcile in between reuses the last reading without gathering; a reset counts
// from zero.
func TestCounterRateBetweenEvaluations(t *testing.T) {
	g := &counterGatherer{}
	src := newCustomSource(g, time.Minute)
	svc := types.NamespacedName{Namespace: "ns", Name: "web"}
	metric := &ecsv1alpha1.CustomizedMetric{MetricName: "hits_total", Statistic: ecsv1alpha1.StatisticSum}
	key := metricKey(metric)

	steps := []struct {
		name  string
		after time.Duration // since the first step
		a, b  float64
		// want is the rate, or -1 for no value.
		want        float64
		wantAt      time.Duration
		wantDue     time.Duration
		wantGathers int
	}{
		{name: "first reading", a: 100, b: 0, want: -1, wantAt: 0, wantDue: time.Minute, wantGathers: 1},
		{name: "within the interval: the last reading, not gathered", after: 30 * time.Second, a: 160, b: 60, want: -1, wantAt: 0, wantDue: time.Minute, wantGathers: 1},
		{name: "an interval later: the rate", after: time.Minute, a: 700, b: 60, want: 11, wantAt: time.Minute, wantDue: 2 * time.Minute, wantGathers: 2},
		{name: "a reset counter counts from zero", after: 2 * time.Minute, a: 120, b: 120, want: 3, wantAt: 2 * time.Minute, wantDue: 3 * time.Minute, wantGathers: 3},
	}
	for _, s := range steps {
		g.a, g.b = s.a, s.b
		at := now.Add(s.after)
		got, due := src.read(svc, []*ecsv1alpha1.CustomizedMetric{metric}, at)
		r := got[key]
		if s.want < 0 && r.ok || s.want >= 0 && (!r.ok || r.value != s.want) {
			t.Errorf("%s: reading %+v, want %v", s.name, r, s.want)
		}
		if !r.at.Equal(now.Add(s.wantAt)) {
			t.Errorf("%s: reading at %s, want %s", s.name, r.at, now.Add(s.wantAt))
		}
		if !due.Equal(now.Add(s.wantDue)) {
			t.Errorf("%s: due %s, want %s", s.name, due, now.Add(s.wantDue))
		}
		if g.gathers != s.wantGathers {
			t.Errorf("%s: %d gathers, want %d", s.name, g.gathers, s.wantGathers)
		}
	}

	// A metric the policies no longer name is forgotten: naming it again starts
	// afresh, with no rate.
	other := &ecsv1alpha1.CustomizedMetric{MetricName: "hits_total", Labels: map[string]string{"path": "/a"}}
	src.read(svc, []*ecsv1alpha1.CustomizedMetric{other}, now.Add(3*time.Minute))
	got, _ := src.read(svc, []*ecsv1alpha1.CustomizedMetric{metric}, now.Add(3*time.Minute))
	if r := got[key]; r.ok {
		t.Errorf("a forgotten counter has a rate: %+v", r)
	}
}
