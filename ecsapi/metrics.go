package ecsapi

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics of `berth api`, served on GET /metrics beside the API:
//
//	berth_ecs_api_requests_total{action, code}            counter
//	berth_ecs_api_request_duration_seconds{action}         histogram
//
// code is "OK" or the ECS error type answered, so refused signatures
// (InvalidSignatureException, UnrecognizedClientException) and denials
// (AccessDeniedException) are visible per action.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_ecs_api_requests_total",
			Help: "ECS API calls answered, by action and by ECS error type (OK when it succeeded).",
		}, []string{"action", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_ecs_api_request_duration_seconds",
			Help:    "Time to answer an ECS API call, by action.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"action"}),
	}
	m.registry.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(action, code string, took time.Duration) {
	if action == "" {
		action = "unknown"
	}
	m.requests.WithLabelValues(action, code).Inc()
	m.duration.WithLabelValues(action).Observe(took.Seconds())
}

// Handler serves the metrics.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
