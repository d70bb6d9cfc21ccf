package utilization

import "github.com/prometheus/client_golang/prometheus"

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
