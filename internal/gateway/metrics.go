package gateway

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// requests counts the gateway's answers on the manager's /metrics: a rise of 403s is
// an agent asking for what its tasks do not need (a misconfiguration, or a machine
// to look at).
var requests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "berth_gateway_requests_total",
	Help: "Requests to the agents' read gateway, by route (secrets, configmaps, tasks, taskdefinitions, clusters, controllerrevisions, other) and HTTP status code.",
}, []string{"route", "code"})

func init() { metrics.Registry.MustRegister(requests) }

// counted records the status code h answers with under route.
func counted(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	}
}

// statusWriter remembers the status code written; it flushes, for watches.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
