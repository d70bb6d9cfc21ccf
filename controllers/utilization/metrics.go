package utilization

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// The manager's utilization and capacity series, computed when Prometheus scrapes
// from the same in-memory sums status is written from (so a scrape costs no request
// to the apiserver), and the service counts from the informer cache.
var (
	serviceLabels = []string{"cluster", "namespace", "service"}
	familyLabels  = []string{"namespace", "task_definition_family"}
	clusterLabels = []string{"cluster"}

	serviceCPUDesc = prometheus.NewDesc("berth_service_cpu_utilization_percent",
		"ECS CPUUtilization of the service: its running tasks' CPU use in percent of the CPU units they reserve, over the last window.", serviceLabels, nil)
	serviceMemoryDesc = prometheus.NewDesc("berth_service_memory_utilization_percent",
		"ECS MemoryUtilization of the service: its running tasks' working set in percent of the memory they reserve, over the last window.", serviceLabels, nil)
	serviceTasksDesc = prometheus.NewDesc("berth_service_tasks",
		"Tasks of the service by state: desired, running (RUNNING) and pending (placed or starting).", append(append([]string{}, serviceLabels...), "state"), nil)
	serviceDeploymentsDesc = prometheus.NewDesc("berth_service_deployments",
		"Deployments of the service by status (PRIMARY, ACTIVE) and rolloutState (IN_PROGRESS, COMPLETED, FAILED).", append(append([]string{}, serviceLabels...), "status", "rollout_state"), nil)
	familyCPUDesc = prometheus.NewDesc("berth_task_definition_cpu_utilization_percent",
		"CPUUtilization of the task definition family's running tasks in every cluster.", familyLabels, nil)
	familyMemoryDesc = prometheus.NewDesc("berth_task_definition_memory_utilization_percent",
		"MemoryUtilization of the task definition family's running tasks in every cluster.", familyLabels, nil)
	clusterCPUDesc = prometheus.NewDesc("berth_cluster_cpu_utilization_percent",
		"ECS CPUUtilization of the cluster: its tasks' CPU use in percent of the CPU units its ACTIVE instances registered.", clusterLabels, nil)
	clusterMemoryDesc = prometheus.NewDesc("berth_cluster_memory_utilization_percent",
		"ECS MemoryUtilization of the cluster: its tasks' working set in percent of the memory its ACTIVE instances registered.", clusterLabels, nil)
	clusterCPUReservationDesc = prometheus.NewDesc("berth_cluster_cpu_reservation_percent",
		"ECS CPUReservation: CPU units reserved by placed tasks in percent of those the ACTIVE instances registered.", clusterLabels, nil)
	clusterMemoryReservationDesc = prometheus.NewDesc("berth_cluster_memory_reservation_percent",
		"ECS MemoryReservation: memory reserved by placed tasks in percent of what the ACTIVE instances registered.", clusterLabels, nil)
	clusterCPRDesc = prometheus.NewDesc("berth_cluster_capacity_provider_reservation_percent",
		"ECS CapacityProviderReservation: capacity every task needs, placed or unplaceable, in percent of the ACTIVE instances' capacity; above 100 the cluster needs more instances.", clusterLabels, nil)
	clusterUnplaceableDesc = prometheus.NewDesc("berth_cluster_unplaceable_tasks",
		"Tasks that wait because no instance of the cluster has room for them (Placed=False).", clusterLabels, nil)
	clusterInstancesDesc = prometheus.NewDesc("berth_cluster_instances",
		"ACTIVE container instances of the cluster.", clusterLabels, nil)
)

// Descriptors are every series the utilization collector may send: the chart's
// alert rules and dashboard are checked against them.
func Descriptors() []*prometheus.Desc {
	return []*prometheus.Desc{
		serviceCPUDesc, serviceMemoryDesc, serviceTasksDesc, serviceDeploymentsDesc,
		familyCPUDesc, familyMemoryDesc,
		clusterCPUDesc, clusterMemoryDesc, clusterCPUReservationDesc, clusterMemoryReservationDesc,
		clusterCPRDesc, clusterUnplaceableDesc, clusterInstancesDesc,
	}
}

// Collector sends the utilization and capacity series at scrape time.
type Collector struct {
	agg      *Aggregator
	services client.Reader
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector reads sums from agg and Services from services (the manager's cache).
func NewCollector(agg *Aggregator, services client.Reader) *Collector {
	return &Collector{agg: agg, services: services}
}

// Describe sends Descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range Descriptors() {
		ch <- d
	}
}

// Collect sends the current values. Percent series are left out where there is
// nothing to divide by (no reservation, no registered capacity), rather than sent
// as a misleading 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.agg.Snapshot()
	for cluster, services := range s.Services {
		for k, t := range services {
			u := t.Status()
			optional(ch, serviceCPUDesc, u.CPUUtilization, cluster, k.Namespace, k.Name)
			optional(ch, serviceMemoryDesc, u.MemoryUtilization, cluster, k.Namespace, k.Name)
		}
	}
	for k, t := range s.Families {
		u := t.Status()
		optional(ch, familyCPUDesc, u.CPUUtilization, k.Namespace, k.Name)
		optional(ch, familyMemoryDesc, u.MemoryUtilization, k.Namespace, k.Name)
	}
	for name, cs := range s.Clusters {
		u := cs.Capacity.ClusterStatus(cs.Totals)
		optional(ch, clusterCPUDesc, u.CPUUtilization, name)
		optional(ch, clusterMemoryDesc, u.MemoryUtilization, name)
		optional(ch, clusterCPUReservationDesc, u.CPUReservation, name)
		optional(ch, clusterMemoryReservationDesc, u.MemoryReservation, name)
		gauge(ch, clusterCPRDesc, float64(u.CapacityProviderReservation), name)
		gauge(ch, clusterUnplaceableDesc, float64(u.UnplaceableTasks), name)
		gauge(ch, clusterInstancesDesc, float64(u.Instances), name)
	}
	c.collectServices(ch)
}

// collectServices sends the task counts and deployments of every Service, from
// the cache (a list of the informer's store: no request to the apiserver).
func (c *Collector) collectServices(ch chan<- prometheus.Metric) {
	var list ecsv1alpha1.ServiceList
	if err := c.services.List(context.Background(), &list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	for i := range list.Items {
		svc := &list.Items[i]
		labels := []string{svc.Spec.Cluster, svc.Namespace, svc.Name}
		st := &svc.Status
		for state, n := range map[string]int32{"desired": st.DesiredCount, "running": st.RunningCount, "pending": st.PendingCount} {
			gauge(ch, serviceTasksDesc, float64(n), append(labels, state)...)
		}
		counts := map[[2]string]int{}
		for _, d := range st.Deployments {
			counts[[2]string{string(d.Status), string(d.RolloutState)}]++
		}
		for k, n := range counts {
			gauge(ch, serviceDeploymentsDesc, float64(n), append(labels, k[0], k[1])...)
		}
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func optional(ch chan<- prometheus.Metric, d *prometheus.Desc, v *int32, labels ...string) {
	if v != nil {
		gauge(ch, d, float64(*v), labels...)
	}
}
