package bench

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Latencies say where a write's time goes, to name a bottleneck: waiting for the
// manager's client-side rate limiter (its QPS and burst), or at the apiserver.

var enableClientMetrics sync.Once

// enableClientLatencies turns on client-go's opt-in request and rate limiter latency
// histograms, which controller-runtime keeps in its registry. They cover every client
// of this process: the manager's (the only ones with a rate limiter) and the
// harness's.
func enableClientLatencies() {
	enableClientMetrics.Do(func() {
		ctrlmetrics.RegisterRESTClientMetrics(ctrlmetrics.MetricRequestLatency, ctrlmetrics.MetricRateLimiterLatency)
	})
}

// sumCount is the sum and count of a histogram.
type sumCount struct{ sum, count float64 }

// latencySnapshot holds histogram totals to subtract: the client side by name, the
// apiserver's writes by resource (tasks, leases).
type latencySnapshot struct {
	client map[string]sumCount
	server map[string]sumCount
}

func (l *lab) latencies(ctx context.Context) latencySnapshot {
	s := latencySnapshot{client: map[string]sumCount{}, server: map[string]sumCount{}}
	if families, err := ctrlmetrics.Registry.Gather(); err == nil {
		for _, f := range families {
			name := f.GetName()
			if name != "rest_client_rate_limiter_duration_seconds" && name != "rest_client_request_duration_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				h := m.GetHistogram()
				sc := s.client[name]
				sc.sum += h.GetSampleSum()
				sc.count += float64(h.GetSampleCount())
				s.client[name] = sc
			}
		}
	}
	if raw, err := apiserverMetrics(ctx, l.env.Config); err == nil {
		s.server = parseWriteDurations(raw)
	}
	return s
}

func apiserverMetrics(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	return string(raw), err
}

// parseWriteDurations sums apiserver_request_duration_seconds of the mutating
// requests on tasks (with tasks/status) and on leases, by resource.
func parseWriteDurations(text string) map[string]sumCount {
	out := map[string]sumCount{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var isSum bool
		switch {
		case strings.HasPrefix(line, "apiserver_request_duration_seconds_sum{"):
			isSum = true
		case strings.HasPrefix(line, "apiserver_request_duration_seconds_count{"):
		default:
			continue
		}
		open, closing := strings.Index(line, "{"), strings.LastIndex(line, "}")
		labels := parseLabels(line[open+1 : closing])
		if labels["resource"] != "tasks" && labels["resource"] != "leases" {
			continue
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[closing+1:]), 64)
		if err != nil {
			continue
		}
		key := labels["resource"]
		c := out[key]
		if isSum {
			c.sum += v
		} else {
			c.count += v
		}
		out[key] = c
	}
	return out
}

// latencyContext turns two snapshots into context items: mean milliseconds per
// request over the interval, of the manager's wait for its client-side rate limiter
// (the harness's clients have none; the apiserver metrics reader's waits are
// negligible), and of the apiserver's handling of task writes.
func latencyContext(metric string, before, after latencySnapshot, withManager bool) []Context {
	mean := func(b, a sumCount) (float64, bool) {
		n := a.count - b.count
		if n <= 0 {
			return 0, false
		}
		return (a.sum - b.sum) / n * 1000, true
	}
	var out []Context
	add := func(name string, b, a sumCount) {
		if v, ok := mean(b, a); ok {
			out = append(out, Context{Metric: metric, Name: name, Unit: "ms", Values: map[string]float64{"Value": v}})
		}
	}
	if withManager {
		add("manager client rate-limiter wait per request", before.client["rest_client_rate_limiter_duration_seconds"], after.client["rest_client_rate_limiter_duration_seconds"])
	}
	add("apiserver latency of task writes", before.server["tasks"], after.server["tasks"])
	add("apiserver latency of Lease writes", before.server["leases"], after.server["leases"])
	return out
}
