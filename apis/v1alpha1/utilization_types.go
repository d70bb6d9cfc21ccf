package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster capacity condition and its reasons.
const (
	// ClusterConditionCapacityAvailable is True while the cluster's instances have
	// room for every task it runs and waits to run (capacityProviderReservation at
	// most 100 and no task unplaceable), False when it needs more capacity.
	ClusterConditionCapacityAvailable = "CapacityAvailable"

	// ReasonCapacityFits: every task fits and the reservation is at most 100%.
	ReasonCapacityFits = "CapacityFits"
	// ReasonTasksUnplaceable: tasks wait because no instance has room for them.
	ReasonTasksUnplaceable = "TasksUnplaceable"
	// ReasonCapacityExceeded: the tasks need more than the instances registered.
	ReasonCapacityExceeded = "CapacityExceeded"
	// ReasonNotMeasured: no instance has reported since the manager started.
	ReasonNotMeasured = "NotMeasured"
)

// Utilization is ECS's CPUUtilization and MemoryUtilization of a group of tasks (a
// service, or a task definition family): what the group's running tasks used over
// the last measurement window, in percent of what they reserve. CPU may exceed 100
// (CPU units are a share, not a limit, unless the task sets a task-level cpu).
// Written by the manager about once a minute (--utilization-interval).
type Utilization struct {
	// cpuUtilization is the tasks' CPU use in percent of their reserved CPU units;
	// absent when they reserve none.
	// +optional
	CPUUtilization *int32 `json:"cpuUtilization,omitempty"`

	// memoryUtilization is the tasks' memory use (working set) in percent of their
	// reserved memory; absent when they reserve none.
	// +optional
	MemoryUtilization *int32 `json:"memoryUtilization,omitempty"`

	// cpuUsed is the tasks' average CPU use over the window, in CPU units (1024 per
	// core).
	// +optional
	CPUUsed int64 `json:"cpuUsed"`

	// cpuReserved is the CPU units the tasks reserve.
	// +optional
	CPUReserved int64 `json:"cpuReserved"`

	// memoryUsed is the tasks' average memory use over the window, in MiB.
	// +optional
	MemoryUsed int64 `json:"memoryUsed"`

	// memoryReserved is the memory the tasks reserve, in MiB.
	// +optional
	MemoryReserved int64 `json:"memoryReserved"`

	// tasks is how many running tasks were measured.
	// +optional
	Tasks int32 `json:"tasks"`

	// measuredAt is the end of the newest measurement window the figures include.
	// +optional
	MeasuredAt *metav1.Time `json:"measuredAt,omitempty"`
}

// ClusterUtilization is a cluster's ECS metrics: CPUUtilization and
// MemoryUtilization (the tasks' use in percent of what the instances registered),
// CPUReservation and MemoryReservation (what placed tasks reserve, in percent of the
// same), and CapacityProviderReservation (what every task needs, placed or waiting
// for room, in percent of what the instances have).
type ClusterUtilization struct {
	Utilization `json:",inline"`

	// cpuReservation is the CPU units placed tasks reserve, in percent of the CPU
	// units the cluster's ACTIVE instances registered.
	// +optional
	CPUReservation *int32 `json:"cpuReservation,omitempty"`

	// memoryReservation is the memory placed tasks reserve, in percent of the
	// memory the cluster's ACTIVE instances registered.
	// +optional
	MemoryReservation *int32 `json:"memoryReservation,omitempty"`

	// capacityProviderReservation is the capacity every task of the cluster needs
	// (placed, or waiting because nothing has room) in percent of the capacity of
	// its ACTIVE instances, by whichever of CPU and memory is scarcer: above 100 the
	// cluster needs more instances, well below it it could do with fewer. 200 when
	// tasks wait and no instance is registered; 100 when there is neither.
	// +optional
	CapacityProviderReservation int32 `json:"capacityProviderReservation"`

	// unplaceableTasks counts the tasks that wait because no instance has room for
	// them (Placed=False).
	// +optional
	UnplaceableTasks int32 `json:"unplaceableTasks"`

	// registeredCPU and registeredMemory are the CPU units and MiB the cluster's
	// ACTIVE instances registered.
	// +optional
	RegisteredCPU int64 `json:"registeredCPU"`
	// +optional
	RegisteredMemory int64 `json:"registeredMemory"`

	// instances is how many ACTIVE instances the figures count.
	// +optional
	Instances int32 `json:"instances"`
}

// InstanceUtilization is what an agent measured of its tasks over one window,
// grouped by namespace, service and task definition family. The manager adds the
// groups of every instance up into Service, TaskDefinition and Cluster status.
type InstanceUtilization struct {
	// windowStart and windowEnd bound the measurement window.
	// +required
	WindowStart metav1.Time `json:"windowStart"`
	// +required
	WindowEnd metav1.Time `json:"windowEnd"`

	// groups are the running tasks' use and reservations, one entry per namespace,
	// service and family.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	Groups []UtilizationGroup `json:"groups,omitempty"`
}

// UtilizationGroup is the measurement of the tasks of one namespace, service and
// family on an instance.
type UtilizationGroup struct {
	// namespace of the tasks.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// service that started the tasks; empty for standalone tasks.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Service string `json:"service,omitempty"`

	// family is the tasks' task definition family.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Family string `json:"family"`

	// tasks is how many running tasks were measured.
	// +required
	Tasks int32 `json:"tasks"`

	// cpuUsed is their average CPU use over the window, in CPU units.
	// +optional
	CPUUsed int64 `json:"cpuUsed"`

	// cpuReserved is the CPU units they reserve.
	// +optional
	CPUReserved int64 `json:"cpuReserved"`

	// memoryUsed is their average working set over the window, in MiB.
	// +optional
	MemoryUsed int64 `json:"memoryUsed"`

	// memoryReserved is the memory they reserve, in MiB.
	// +optional
	MemoryReserved int64 `json:"memoryReserved"`
}
