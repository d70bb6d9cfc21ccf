package autoscaling

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The auto scaler's Prometheus series, on controller-runtime's registry (the
// manager's /metrics).
var (
	desiredCapacity = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "berth_service_autoscaling_desired_capacity",
		Help: "Tasks the service's target tracking policies ask for now, within its minCapacity and maxCapacity.",
	}, []string{"namespace", "service"})
	actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_service_autoscaling_actions_total",
		Help: "Changes of desiredCount the auto scaler made (ScaledOut, ScaledIn and ScaledToRange Events), by direction: out or in.",
	}, []string{"namespace", "service", "direction"})
)

func init() {
	metrics.Registry.MustRegister(desiredCapacity, actions)
}

// Descriptors are every series the auto scaler may send: the chart's alert rules
// and dashboard are checked against them.
func Descriptors() []*prometheus.Desc {
	ch := make(chan *prometheus.Desc, 2)
	desiredCapacity.Describe(ch)
	actions.Describe(ch)
	close(ch)
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// forgetSeries drops a service's series when it is deleted or no longer auto scaled.
func forgetSeries(namespace, name string) {
	desiredCapacity.DeleteLabelValues(namespace, name)
	actions.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "service": name})
}
