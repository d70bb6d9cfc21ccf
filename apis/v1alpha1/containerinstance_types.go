package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerInstance condition types and reasons.
const (
	// InstanceConditionConnected is True while the agent renews its Lease, timed on
	// the manager's clock.
	InstanceConditionConnected = "Connected"
	// InstanceConditionRuntimeReady is True while the agent reaches its container
	// runtime (containerd).
	InstanceConditionRuntimeReady = "RuntimeReady"

	ReasonLeaseRenewed  = "LeaseRenewed"
	ReasonLeaseExpired  = "LeaseExpired"
	ReasonRuntimeUp     = "RuntimeUp"
	ReasonRuntimeDown   = "RuntimeDown"
	ReasonAwaitingAgent = "AwaitingAgent"
)

// InstanceStatusValue is the scheduling state of an instance.
// +kubebuilder:validation:Enum=REGISTERING;ACTIVE;DRAINING;INACTIVE
// +kubebuilder:validation:MaxLength=11
type InstanceStatusValue string

const (
	// InstanceRegistering: the agent created the object but has not reported
	// resources yet.
	InstanceRegistering InstanceStatusValue = "REGISTERING"
	// InstanceActive instances receive new tasks.
	InstanceActive InstanceStatusValue = "ACTIVE"
	// InstanceDraining instances receive no new tasks; their service tasks move away.
	InstanceDraining InstanceStatusValue = "DRAINING"
	// InstanceInactive instances are deregistered.
	InstanceInactive InstanceStatusValue = "INACTIVE"
)

// AddressType is the kind of an instance address.
// +kubebuilder:validation:Enum=InternalIP;ExternalIP;Hostname
// +kubebuilder:validation:MaxLength=10
type AddressType string

const (
	AddressInternalIP AddressType = "InternalIP"
	AddressExternalIP AddressType = "ExternalIP"
	AddressHostname   AddressType = "Hostname"
)

// InstanceAddress is an address at which the instance is reachable.
type InstanceAddress struct {
	// type of the address: InternalIP, ExternalIP or Hostname.
	// +required
	Type AddressType `json:"type"`

	// address itself.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address"`
}

// Resources are amounts an instance offers or has left.
type Resources struct {
	// cpu units (1024 per core).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Cpu int64 `json:"cpu"`

	// memory in MiB.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Memory int64 `json:"memory"`

	// ports (tcp) that are reserved or in use and so not available to tasks.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	Ports []int32 `json:"ports,omitempty"`

	// udpPorts that are reserved or in use.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	UDPPorts []int32 `json:"udpPorts,omitempty"`

	// gpus are the instance's GPUs by ID (ECS's GPU resource, a string set):
	// registered lists every GPU the agent found or was told of, remaining those no
	// task on the instance is assigned.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	GPUs []string `json:"gpus,omitempty"`
}

// VersionInfo reports the software on an instance.
type VersionInfo struct {
	// agentVersion is the Berth agent's version.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	AgentVersion string `json:"agentVersion,omitempty"`

	// containerdVersion is the container runtime's version.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ContainerdVersion string `json:"containerdVersion,omitempty"`

	// kernelVersion of the instance.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	KernelVersion string `json:"kernelVersion,omitempty"`
}

// ContainerInstanceSpec is what the operator and the agent declare about an instance.
type ContainerInstanceSpec struct {
	// cluster the instance belongs to. Immutable: re-register to move an instance.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable"
	Cluster string `json:"cluster"`

	// draining stops new placements on the instance and moves its service tasks
	// elsewhere within each service's deployment bounds (ECS's DRAINING state).
	// Standalone tasks are left alone.
	// +optional
	Draining bool `json:"draining,omitempty"`

	// attributes set by the operator (ECS's custom attributes). They override
	// attributes of the same name reported by the agent.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Attributes []Attribute `json:"attributes,omitempty"`
}

// ContainerInstanceStatus is the observed state of an instance. The agent writes
// registeredResources, remainingResources, counts, attributes, addresses, versionInfo
// and RuntimeReady; the manager writes status, agentConnected and Connected.
type ContainerInstanceStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// status is REGISTERING, ACTIVE, DRAINING or INACTIVE.
	// +optional
	Status InstanceStatusValue `json:"status,omitempty"`

	// agentConnected is true while the agent's Lease is being renewed.
	// +optional
	AgentConnected bool `json:"agentConnected"`

	// registeredResources the instance offers to tasks: cores x 1024 cpu units,
	// memory minus the agent's reservation, and ports reserved for the host.
	// +optional
	RegisteredResources *Resources `json:"registeredResources,omitempty"`

	// remainingResources after the tasks placed on the instance.
	// +optional
	RemainingResources *Resources `json:"remainingResources,omitempty"`

	// runningTasksCount of tasks RUNNING on the instance.
	// +optional
	RunningTasksCount int32 `json:"runningTasksCount"`

	// pendingTasksCount of tasks placed on the instance but not yet RUNNING.
	// +optional
	PendingTasksCount int32 `json:"pendingTasksCount"`

	// attributes reported by the agent: ecs.os-type, ecs.cpu-architecture,
	// ecs.availability-zone, and those from its configuration.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Attributes []Attribute `json:"attributes,omitempty"`

	// addresses of the instance; published host ports are reached on them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Addresses []InstanceAddress `json:"addresses,omitempty"`

	// versionInfo of the agent and runtime.
	// +optional
	VersionInfo *VersionInfo `json:"versionInfo,omitempty"`

	// volumes are the shared Docker volumes (dockerVolumeConfiguration scope
	// shared) on the instance, by namespace and name: they outlive their tasks, so
	// the operator sees here what the instance keeps (see docs/taskdefinitions.md
	// for removing one).
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1024
	Volumes []InstanceVolume `json:"volumes,omitempty"`

	// streamingEndpoint is where the agent serves exec and container logs to
	// authenticated callers (see StreamingEndpoint). Empty while the agent runs
	// without its streaming server.
	// +optional
	StreamingEndpoint *StreamingEndpoint `json:"streamingEndpoint,omitempty"`

	// utilization is what the agent measured of its running tasks over its last
	// window (about a minute), grouped by namespace, service and family.
	// +optional
	Utilization *InstanceUtilization `json:"utilization,omitempty"`

	// registeredAt is when the agent first registered the instance.
	// +optional
	RegisteredAt *metav1.Time `json:"registeredAt,omitempty"`

	// conditions: Connected, RuntimeReady, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StreamingEndpoint is the agent's authenticated HTTPS server for exec and logs.
// The agent generates its serving certificate at start and publishes it here, so a
// client that can read the ContainerInstance through the apiserver can verify the
// agent without a PKI of its own (trust rides on the apiserver's).
type StreamingEndpoint struct {
	// url of the server, https://host:port.
	// +required
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="url must be https://"
	URL string `json:"url"`

	// caBundle is the PEM certificate(s) that the server's certificate chains to.
	// +required
	// +kubebuilder:validation:MaxLength=16384
	CABundle string `json:"caBundle"`
}

// InstanceVolume is a shared Docker volume kept on an instance.
type InstanceVolume struct {
	// namespace of the tasks that share the volume: volumes are shared within a
	// namespace only.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the volume, as the task definitions' volumes name it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// driver of the volume (local).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Driver string `json:"driver,omitempty"`

	// type is the driverOpts type it was created with: tmpfs, none (a bind mount),
	// or empty (a directory of the agent's state directory).
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Type string `json:"type,omitempty"`

	// createdAt is when the agent created it.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
}

// ContainerInstance is a machine running the Berth agent, registered in a cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ci;eci,categories=ecs
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.status`
// +kubebuilder:printcolumn:name="Connected",type=boolean,JSONPath=`.status.agentConnected`
// +kubebuilder:printcolumn:name="CPU Left",type=integer,JSONPath=`.status.remainingResources.cpu`
// +kubebuilder:printcolumn:name="Memory Left",type=integer,JSONPath=`.status.remainingResources.memory`,description="MiB"
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningTasksCount`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingTasksCount`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ContainerInstance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the operator and agent declare about the instance.
	// +required
	Spec ContainerInstanceSpec `json:"spec"`

	// status is the observed state of the instance.
	// +optional
	Status ContainerInstanceStatus `json:"status,omitempty"`
}

// ContainerInstanceList is a list of ContainerInstances.
//
// +kubebuilder:object:root=true
type ContainerInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ContainerInstance `json:"items"`
}
