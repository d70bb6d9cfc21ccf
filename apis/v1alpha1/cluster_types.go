package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster condition types and reasons.
const (
	// ClusterConditionDeletionBlocked is True while a deleted Cluster waits for its
	// instances and services to go; the message says what remains.
	ClusterConditionDeletionBlocked = "DeletionBlocked"

	ReasonResourcesRemain = "ResourcesRemain"

	// ReasonContainerPolicyViolation: a task definition revision asks for more than
	// its cluster's container policy allows. It is the reason of a Service's
	// Accepted=False and of a Task's Placed=False, and the agent's stoppedReason of a
	// task it refuses to start says it too; the message lists every offending field.
	ReasonContainerPolicyViolation = "ContainerPolicyViolation"
)

// ContainerPolicyLevel is how much a task may ask of its instance, named after
// Kubernetes' Pod Security Standards levels.
//
// +kubebuilder:validation:Enum=privileged;baseline;restricted
type ContainerPolicyLevel string

const (
	// ContainerPolicyPrivileged allows anything a task definition can express,
	// including running without the default seccomp profile (seccomp=unconfined, or
	// a privileged container).
	ContainerPolicyPrivileged ContainerPolicyLevel = "privileged"
	// ContainerPolicyBaseline refuses known privilege escalations: privileged
	// containers, the host's network, PID and IPC namespaces, host path volumes,
	// capabilities beyond Docker's default set, and unconfined seccomp or AppArmor
	// profiles; every container runs under the runtime's default seccomp profile.
	ContainerPolicyBaseline ContainerPolicyLevel = "baseline"
	// ContainerPolicyRestricted is baseline plus hardening: containers drop ALL
	// capabilities (adding back only NET_BIND_SERVICE), never run as root, and run
	// with no-new-privileges, so a setuid binary cannot give them root.
	ContainerPolicyRestricted ContainerPolicyLevel = "restricted"
)

// DefaultContainerPolicyLevel applies to a Cluster that sets no level and to a
// cluster that has no Cluster object.
const DefaultContainerPolicyLevel = ContainerPolicyBaseline

// ContainerPolicy limits what the task definitions run in a cluster may ask for.
type ContainerPolicy struct {
	// level is privileged (anything), baseline (default: no privileged containers,
	// host namespaces, host path volumes, extra capabilities or unconfined seccomp
	// and AppArmor profiles; the runtime's default seccomp profile always applies)
	// or restricted (baseline, plus drop ALL capabilities, never run as root, and
	// no-new-privileges on every container). Services and
	// Tasks whose revision exceeds it are not started; tasks already running keep
	// running when it is tightened. See docs/container-policy.md.
	// +optional
	// +kubebuilder:default=baseline
	Level ContainerPolicyLevel `json:"level,omitempty"`
}

// ClusterFinalizer holds a deleted Cluster until no instance or service uses it.
const ClusterFinalizer = "ecs.berth.dev/cluster-in-use"

// ClusterSpec holds cluster-wide settings.
type ClusterSpec struct {
	// instanceUnreachableGracePeriodSeconds is the default for Services: how long
	// tasks on an instance that stopped heartbeating are kept before they are
	// replaced elsewhere (default 300).
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	InstanceUnreachableGracePeriodSeconds *int32 `json:"instanceUnreachableGracePeriodSeconds,omitempty"`

	// stoppedTaskRetentionSeconds is how long stopped tasks stay visible before they
	// are deleted (default 86400, a day; ECS keeps about an hour). Each service keeps
	// at least its most recent stopped task regardless.
	// +optional
	// +kubebuilder:default=86400
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	StoppedTaskRetentionSeconds *int32 `json:"stoppedTaskRetentionSeconds,omitempty"`

	// containerPolicy limits what the tasks of the cluster may ask of their
	// instances (privileged containers, host namespaces and paths, capabilities,
	// running as root, unconfined seccomp and AppArmor) and how their containers are
	// confined; the default level is baseline.
	// +optional
	// +kubebuilder:default={}
	ContainerPolicy *ContainerPolicy `json:"containerPolicy,omitempty"`
}

// EffectiveContainerPolicyLevel is the level that applies to the tasks of cluster c;
// nil (no Cluster object) and an unset level mean DefaultContainerPolicyLevel.
func EffectiveContainerPolicyLevel(c *Cluster) ContainerPolicyLevel {
	if c == nil || c.Spec.ContainerPolicy == nil || c.Spec.ContainerPolicy.Level == "" {
		return DefaultContainerPolicyLevel
	}
	return c.Spec.ContainerPolicy.Level
}

// ClusterStatus counts what runs in the cluster.
type ClusterStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// registeredContainerInstancesCount of instances registered in the cluster.
	// +optional
	RegisteredContainerInstancesCount int32 `json:"registeredContainerInstancesCount"`

	// activeServicesCount of services in the cluster.
	// +optional
	ActiveServicesCount int32 `json:"activeServicesCount"`

	// runningTasksCount of tasks RUNNING in the cluster.
	// +optional
	RunningTasksCount int32 `json:"runningTasksCount"`

	// pendingTasksCount of tasks not yet RUNNING in the cluster.
	// +optional
	PendingTasksCount int32 `json:"pendingTasksCount"`

	// utilization is the cluster's CPU and memory utilization and reservation and
	// its capacity provider reservation, refreshed about once a minute.
	// +optional
	Utilization *ClusterUtilization `json:"utilization,omitempty"`

	// conditions: DeletionBlocked, CapacityAvailable.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Cluster is a pool of container instances. Tasks and Services in any namespace name
// it in spec.cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ecsc;ecscluster,categories=ecs
// +kubebuilder:printcolumn:name="Instances",type=integer,JSONPath=`.status.registeredContainerInstancesCount`
// +kubebuilder:printcolumn:name="Services",type=integer,JSONPath=`.status.activeServicesCount`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningTasksCount`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingTasksCount`
// +kubebuilder:printcolumn:name="CPU%",type=integer,JSONPath=`.status.utilization.cpuUtilization`
// +kubebuilder:printcolumn:name="MEM%",type=integer,JSONPath=`.status.utilization.memoryUtilization`
// +kubebuilder:printcolumn:name="Capacity%",type=integer,JSONPath=`.status.utilization.capacityProviderReservation`,description="CapacityProviderReservation"
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.containerPolicy.level`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds cluster-wide settings.
	// +optional
	// +kubebuilder:default={}
	Spec ClusterSpec `json:"spec,omitempty"`

	// status counts what runs in the cluster.
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
//
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
