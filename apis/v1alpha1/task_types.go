package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Task condition types and reasons.
const (
	// TaskConditionPlaced is True once the task is bound to a container instance;
	// False with reason Unplaceable (and per-reason instance counts in the message)
	// while no instance fits.
	TaskConditionPlaced = "Placed"
	// TaskConditionRunning is True while lastStatus is RUNNING. `kubectl wait
	// --for=condition=Running task/NAME` waits for a task to start.
	TaskConditionRunning = "Running"
	// TaskConditionStopped is True once lastStatus is STOPPED.
	TaskConditionStopped = "Stopped"

	ReasonPlaced      = "Placed"
	ReasonUnplaceable = "Unplaceable"
	ReasonStarting    = "Starting"
)

// TaskStatusValue is a step of the ECS task lifecycle.
// +kubebuilder:validation:Enum=PROVISIONING;PENDING;ACTIVATING;RUNNING;DEACTIVATING;STOPPING;DEPROVISIONING;STOPPED
// +kubebuilder:validation:MaxLength=14
type TaskStatusValue string

const (
	TaskProvisioning   TaskStatusValue = "PROVISIONING"
	TaskPending        TaskStatusValue = "PENDING"
	TaskActivating     TaskStatusValue = "ACTIVATING"
	TaskRunning        TaskStatusValue = "RUNNING"
	TaskDeactivating   TaskStatusValue = "DEACTIVATING"
	TaskStopping       TaskStatusValue = "STOPPING"
	TaskDeprovisioning TaskStatusValue = "DEPROVISIONING"
	TaskStopped        TaskStatusValue = "STOPPED"
)

// TaskLifecycle is the order of the lifecycle; lastStatus never moves backwards in it.
var TaskLifecycle = []TaskStatusValue{
	TaskProvisioning, TaskPending, TaskActivating, TaskRunning,
	TaskDeactivating, TaskStopping, TaskDeprovisioning, TaskStopped,
}

// Index is the position of s in TaskLifecycle, or -1 for an unknown value.
func (s TaskStatusValue) Index() int {
	for i, v := range TaskLifecycle {
		if v == s {
			return i
		}
	}
	return -1
}

// DesiredStatus is what the control plane wants of a task.
// +kubebuilder:validation:Enum=RUNNING;STOPPED
// +kubebuilder:validation:MaxLength=7
type DesiredStatus string

const (
	DesiredRunning DesiredStatus = "RUNNING"
	DesiredStopped DesiredStatus = "STOPPED"
)

// HealthStatus is the result of health checks.
// +kubebuilder:validation:Enum=HEALTHY;UNHEALTHY;UNKNOWN
// +kubebuilder:validation:MaxLength=9
type HealthStatus string

const (
	HealthHealthy   HealthStatus = "HEALTHY"
	HealthUnhealthy HealthStatus = "UNHEALTHY"
	HealthUnknown   HealthStatus = "UNKNOWN"
)

// StopCode says why a task stopped.
// +kubebuilder:validation:Enum=TaskFailedToStart;EssentialContainerExited;UserInitiated;ServiceSchedulerInitiated;InstanceUnreachable;TerminationNotice
// +kubebuilder:validation:MaxLength=25
type StopCode string

const (
	StopTaskFailedToStart         StopCode = "TaskFailedToStart"
	StopEssentialContainerExited  StopCode = "EssentialContainerExited"
	StopUserInitiated             StopCode = "UserInitiated"
	StopServiceSchedulerInitiated StopCode = "ServiceSchedulerInitiated"
	StopInstanceUnreachable       StopCode = "InstanceUnreachable"
	StopTerminationNotice         StopCode = "TerminationNotice"
)

// ContainerStatusValue is the state of one container.
// +kubebuilder:validation:Enum=PENDING;RUNNING;STOPPED
// +kubebuilder:validation:MaxLength=7
type ContainerStatusValue string

const (
	ContainerPending ContainerStatusValue = "PENDING"
	ContainerRunning ContainerStatusValue = "RUNNING"
	ContainerStopped ContainerStatusValue = "STOPPED"
)

// ContainerOverride changes one container of the task definition for this task only.
type ContainerOverride struct {
	// name of the container to override.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// command replaces the container's command.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=8192
	Command []string `json:"command,omitempty"`

	// environment variables added to, or replacing, the container's.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Environment []KeyValuePair `json:"environment,omitempty"`

	// cpu units replacing the container's.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=196608
	Cpu *int32 `json:"cpu,omitempty"`

	// memory hard limit in MiB replacing the container's.
	// +optional
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=4194304
	Memory *int32 `json:"memory,omitempty"`

	// memoryReservation in MiB replacing the container's.
	// +optional
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=4194304
	MemoryReservation *int32 `json:"memoryReservation,omitempty"`
}

// TaskOverrides change the task definition for one task.
type TaskOverrides struct {
	// containerOverrides per container.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	ContainerOverrides []ContainerOverride `json:"containerOverrides,omitempty"`

	// cpu units for the whole task, replacing the task definition's.
	// +optional
	// +kubebuilder:validation:Minimum=128
	// +kubebuilder:validation:Maximum=196608
	Cpu *int32 `json:"cpu,omitempty"`

	// memory in MiB for the whole task, replacing the task definition's.
	// +optional
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=4194304
	Memory *int32 `json:"memory,omitempty"`
}

// TaskSpec is the desired state of a Task. Creating a Task is ECS's RunTask; naming
// containerInstance at creation is StartTask; setting desiredStatus to STOPPED is
// StopTask.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.containerInstance) || (has(self.containerInstance) && self.containerInstance == oldSelf.containerInstance)",message="containerInstance cannot change once the task is placed",fieldPath=".containerInstance"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.gpuAssignments) || (has(self.gpuAssignments) && self.gpuAssignments == oldSelf.gpuAssignments)",message="gpuAssignments cannot change once set",fieldPath=".gpuAssignments"
// +kubebuilder:validation:XValidation:rule="!has(self.gpuAssignments) || has(self.containerInstance)",message="gpuAssignments are set together with containerInstance: they are GPUs of that instance",fieldPath=".gpuAssignments"
// +kubebuilder:validation:XValidation:rule="self.desiredStatus == 'STOPPED' || (!has(self.stopCode) && !has(self.stopReason))",message="stopCode and stopReason are only set with desiredStatus STOPPED",fieldPath=".stopCode"
// +kubebuilder:validation:XValidation:rule="!has(self.stopCode) || self.stopCode in ['UserInitiated', 'ServiceSchedulerInitiated', 'InstanceUnreachable', 'TerminationNotice']",message="stopCode set on the spec must be UserInitiated, ServiceSchedulerInitiated, InstanceUnreachable or TerminationNotice",fieldPath=".stopCode"
// +kubebuilder:validation:XValidation:rule="!has(self.deleteWhenStopped) || !self.deleteWhenStopped || self.desiredStatus == 'STOPPED'",message="deleteWhenStopped is only set with desiredStatus STOPPED",fieldPath=".deleteWhenStopped"
type TaskSpec struct {
	// cluster the task runs in (default "default"). Immutable.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable"
	Cluster string `json:"cluster,omitempty"`

	// taskDefinition to run: `family` (the latest revision when the task is placed)
	// or `family:N`. Immutable; the resolved revision is status.taskDefinitionRevision.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=264
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[1-9][0-9]{0,8})?$')`,message="taskDefinition must be family or family:N with N >= 1 (family is a TaskDefinition name)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="taskDefinition is immutable"
	TaskDefinition string `json:"taskDefinition"`

	// containerInstance the task is bound to. Set by the scheduler, or at creation to
	// start the task on a chosen instance; it cannot change once set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ContainerInstance string `json:"containerInstance,omitempty"`

	// desiredStatus is RUNNING (default) or STOPPED. A stopped task cannot be started
	// again: run a new one.
	// +optional
	// +kubebuilder:default=RUNNING
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'STOPPED' || self == 'STOPPED'",message="a task with desiredStatus STOPPED cannot be started again"
	DesiredStatus DesiredStatus `json:"desiredStatus,omitempty"`

	// stopCode says who stopped the task; unset with desiredStatus STOPPED means
	// UserInitiated.
	// +optional
	StopCode StopCode `json:"stopCode,omitempty"`

	// stopReason is a free-text reason for stopping the task.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	StopReason string `json:"stopReason,omitempty"`

	// deleteWhenStopped asks the task's agent to delete the task once its containers
	// have stopped, instead of reporting it STOPPED. The service scheduler sets it,
	// with desiredStatus STOPPED, on the tasks it stops that its stopped-task history
	// would not keep (stoppedTaskHistoryLimit), and on every task of a deleted
	// Service: a status write that would be deleted right after is not made. A task
	// whose agent is gone is still stopped and collected by the manager.
	// +optional
	DeleteWhenStopped bool `json:"deleteWhenStopped,omitempty"`

	// group of related tasks, for example `service:web`; distinctInstance and spread
	// work within a group. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="group is immutable"
	Group string `json:"group,omitempty"`

	// startedBy records who started the task, for example a Service's deployment.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="startedBy is immutable"
	StartedBy string `json:"startedBy,omitempty"`

	// overrides change the task definition for this task only. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="overrides are immutable"
	Overrides *TaskOverrides `json:"overrides,omitempty"`

	// placementConstraints for this task, in addition to the task definition's.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="placementConstraints are immutable"
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`

	// placementStrategy for this task, applied in list order (at most 5).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="placementStrategy is immutable"
	PlacementStrategy []PlacementStrategy `json:"placementStrategy,omitempty"`

	// enableExecuteCommand lets identities with the `exec` verb on
	// tasks.ecs.berth.dev run commands in the task's containers (ECS Exec: `berth
	// exec` and the console's terminal). Without it the agent refuses every exec, as
	// ECS does. Immutable, as in ECS: it is fixed when the task starts.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="enableExecuteCommand is immutable"
	EnableExecuteCommand bool `json:"enableExecuteCommand,omitempty"`

	// gpuAssignments are the GPUs of the task's instance that each container asking
	// for GPUs (resourceRequirements type GPU) uses, by ID, as ECS records a
	// container's gpuIds. The scheduler writes them together with containerInstance;
	// a task bound at creation must carry them itself. Immutable once set.
	// +optional
	// +listType=map
	// +listMapKey=containerName
	// +kubebuilder:validation:MaxItems=10
	GPUAssignments []GPUAssignment `json:"gpuAssignments,omitempty"`

	// imageDigests pin containers' images to digests: the service controller sets
	// them on the tasks of a deployment whose first task resolved its images
	// (versionConsistency), and the agent runs that digest of the container's
	// image. Immutable.
	// +optional
	// +listType=map
	// +listMapKey=containerName
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="imageDigests is immutable"
	ImageDigests []ContainerImageDigest `json:"imageDigests,omitempty"`
}

// ContainerImageDigest is the digest one container's image is pinned to.
type ContainerImageDigest struct {
	// containerName is the container's name in the task definition.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName"`

	// digest of the image, as sha256:<64 hex digits>.
	// +required
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^sha256:[a-f0-9]{64}$`
	Digest string `json:"digest"`
}

// GPUAssignment is the GPUs one container of a task uses.
type GPUAssignment struct {
	// containerName is the container of the task definition.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName"`

	// gpuIds are GPU IDs the instance registered (status.registeredResources.gpus).
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	GPUIDs []string `json:"gpuIds"`
}

// NetworkBinding is a container port published on the instance.
type NetworkBinding struct {
	// bindIP is the instance address the port is bound to.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BindIP string `json:"bindIP,omitempty"`

	// containerPort inside the container; unset for a containerPortRange.
	// +optional
	ContainerPort int32 `json:"containerPort,omitempty"`

	// hostPort on the instance; unset for a containerPortRange.
	// +optional
	HostPort int32 `json:"hostPort,omitempty"`

	// containerPortRange is the mapping's containerPortRange, first-last.
	// +optional
	// +kubebuilder:validation:MaxLength=11
	ContainerPortRange string `json:"containerPortRange,omitempty"`

	// hostPortRange is where a containerPortRange is published on the instance: as
	// many consecutive ports, in the same order.
	// +optional
	// +kubebuilder:validation:MaxLength=11
	HostPortRange string `json:"hostPortRange,omitempty"`

	// protocol of the port.
	// +required
	Protocol TransportProtocol `json:"protocol"`
}

// ContainerStatus is the observed state of one container of a task.
type ContainerStatus struct {
	// name of the container.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// runtimeId is the container's ID in the instance's container runtime.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RuntimeID string `json:"runtimeId,omitempty"`

	// imageDigest is the digest of the image that was pulled.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ImageDigest string `json:"imageDigest,omitempty"`

	// lastStatus is PENDING, RUNNING or STOPPED.
	// +optional
	LastStatus ContainerStatusValue `json:"lastStatus,omitempty"`

	// healthStatus from the container's health check; UNKNOWN without one.
	// +optional
	HealthStatus HealthStatus `json:"healthStatus,omitempty"`

	// exitCode of the container's last exit.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// reason for the container's state, with ECS's prefixes: for example
	// "OutOfMemoryError: Container killed due to memory usage", or
	// "CannotPullContainerError: " and the registry's message.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// restartCount is how many times the restart policy restarted the container.
	// +optional
	RestartCount int32 `json:"restartCount,omitempty"`

	// networkBindings published for the container.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	NetworkBindings []NetworkBinding `json:"networkBindings,omitempty"`

	// networkInterfaces of the container in awsvpc network mode: the task's own
	// address, shared by its containers, where their container ports are reached.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=4
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces,omitempty"`

	// awsLogs is where ECS would have written the output of a container whose
	// logDriver is awslogs: its log group and stream. Berth keeps the output on the
	// instance (the agent's logs endpoint serves it, as for json-file); these names
	// let a user find it as in CloudWatch.
	// +optional
	AWSLogs *AWSLogStream `json:"awsLogs,omitempty"`
}

// AWSLogStream names an awslogs container's log stream as ECS names it.
type AWSLogStream struct {
	// group is the awslogs-group option.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Group string `json:"group,omitempty"`

	// stream is awslogs-stream-prefix/container-name/task-id with a prefix, or the
	// container's runtime ID without one (ECS's names).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Stream string `json:"stream,omitempty"`

	// region is the awslogs-region option.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`
}

// NetworkInterface is a task's address in awsvpc network mode (ECS's elastic
// network interface; here an interface on the instance's task network).
type NetworkInterface struct {
	// privateIpv4Address is the task's IPv4 address.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	PrivateIPv4Address string `json:"privateIpv4Address,omitempty"`
}

// TaskStatus is the observed state of a Task. The manager writes the placement facts
// (taskDefinitionRevision, createdAt, the Placed condition); the agent on the task's
// instance writes the runtime facts (lastStatus and everything after it).
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.taskDefinitionRevision) || (has(self.taskDefinitionRevision) && self.taskDefinitionRevision == oldSelf.taskDefinitionRevision)",message="taskDefinitionRevision cannot change once resolved",fieldPath=".taskDefinitionRevision"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.lastStatus) || has(self.lastStatus)",message="lastStatus cannot be removed",fieldPath=".lastStatus"
type TaskStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// taskDefinitionRevision is the revision the task runs, resolved from
	// spec.taskDefinition when the task was placed. Later edits of the TaskDefinition
	// never change a task.
	// +optional
	// +kubebuilder:validation:Minimum=1
	TaskDefinitionRevision int32 `json:"taskDefinitionRevision,omitempty"`

	// lastStatus walks PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING,
	// STOPPING, DEPROVISIONING, STOPPED and never moves backwards.
	// +optional
	// +kubebuilder:validation:XValidation:rule="{'PROVISIONING': 0, 'PENDING': 1, 'ACTIVATING': 2, 'RUNNING': 3, 'DEACTIVATING': 4, 'STOPPING': 5, 'DEPROVISIONING': 6, 'STOPPED': 7}[self] >= {'PROVISIONING': 0, 'PENDING': 1, 'ACTIVATING': 2, 'RUNNING': 3, 'DEACTIVATING': 4, 'STOPPING': 5, 'DEPROVISIONING': 6, 'STOPPED': 7}[oldSelf]",message="lastStatus cannot move backwards"
	LastStatus TaskStatusValue `json:"lastStatus,omitempty"`

	// healthStatus is HEALTHY when every container with a health check is healthy,
	// UNHEALTHY when an essential one is not, UNKNOWN otherwise.
	// +optional
	HealthStatus HealthStatus `json:"healthStatus,omitempty"`

	// containers of the task and their states.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	Containers []ContainerStatus `json:"containers,omitempty"`

	// createdAt is when the task was accepted by the control plane.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// pullStartedAt is when the first image pull started.
	// +optional
	PullStartedAt *metav1.Time `json:"pullStartedAt,omitempty"`
	// pullStoppedAt is when the last image pull finished.
	// +optional
	PullStoppedAt *metav1.Time `json:"pullStoppedAt,omitempty"`
	// startedAt is when the task reached RUNNING.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// stoppingAt is when the task began stopping.
	// +optional
	StoppingAt *metav1.Time `json:"stoppingAt,omitempty"`
	// stoppedAt is when the task reached STOPPED.
	// +optional
	StoppedAt *metav1.Time `json:"stoppedAt,omitempty"`

	// stopCode says why the task stopped.
	// +optional
	StopCode StopCode `json:"stopCode,omitempty"`

	// stoppedReason is a human-readable reason the task stopped.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	StoppedReason string `json:"stoppedReason,omitempty"`

	// conditions: Placed, Running, Stopped.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Task is one running copy of a task definition revision on one container instance.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=etask;ecstask,categories=ecs
// +kubebuilder:selectablefield:JSONPath=`.spec.containerInstance`
// +kubebuilder:selectablefield:JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Task Definition",type=string,JSONPath=`.spec.taskDefinition`,priority=1
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.taskDefinitionRevision`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.lastStatus`
// +kubebuilder:printcolumn:name="Desired",type=string,JSONPath=`.spec.desiredStatus`,priority=1
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.healthStatus`
// +kubebuilder:printcolumn:name="Instance",type=string,JSONPath=`.spec.containerInstance`
// +kubebuilder:printcolumn:name="Stop Code",type=string,JSONPath=`.status.stopCode`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the task.
	// +required
	Spec TaskSpec `json:"spec"`

	// status is the observed state of the task.
	// +optional
	Status TaskStatus `json:"status,omitempty"`
}

// TaskList is a list of Tasks.
//
// +kubebuilder:object:root=true
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Task `json:"items"`
}
