package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service condition types and reasons.
const (
	// ServiceConditionSteady is True when the PRIMARY deployment runs desiredCount
	// healthy tasks and no other deployment has tasks left (ECS's "steady state").
	ServiceConditionSteady = "Steady"
	// ServiceConditionRolloutComplete is True when the latest deployment COMPLETED,
	// False while it is IN_PROGRESS or after it FAILED. `kubectl wait
	// --for=condition=RolloutComplete` waits for a rollout.
	ServiceConditionRolloutComplete = "RolloutComplete"
	// ServiceConditionTasksPlaced is False while the service needs tasks that no
	// container instance has room for (reason Unplaceable, with the count of
	// instances each reason excluded), True otherwise (reason Placed). The service
	// creates no task it cannot place: the shortfall counts in pendingCount and
	// unplacedCount, and the tasks are created as room appears.
	ServiceConditionTasksPlaced = "TasksPlaced"

	ReasonDeploymentInProgress   = "DeploymentInProgress"
	ReasonDeploymentCompleted    = "DeploymentCompleted"
	ReasonDeploymentFailed       = "DeploymentFailed"
	ReasonCircuitBreakerRollback = "CircuitBreakerRollback"
	ReasonTasksPending           = "TasksPending"
)

// SchedulingStrategy says how a Service decides how many tasks to run.
// +kubebuilder:validation:Enum=REPLICA;DAEMON
// +kubebuilder:validation:MaxLength=7
type SchedulingStrategy string

const (
	// SchedulingReplica keeps desiredCount tasks.
	SchedulingReplica SchedulingStrategy = "REPLICA"
	// SchedulingDaemon keeps one task on every ACTIVE instance that satisfies the
	// placement constraints.
	SchedulingDaemon SchedulingStrategy = "DAEMON"
)

// DeploymentStatus is the role of a deployment in a Service.
// +kubebuilder:validation:Enum=PRIMARY;ACTIVE;INACTIVE
// +kubebuilder:validation:MaxLength=8
type DeploymentStatus string

const (
	// DeploymentPrimary is the most recent deployment: the one being rolled out.
	DeploymentPrimary DeploymentStatus = "PRIMARY"
	// DeploymentActive is an older deployment that still has tasks.
	DeploymentActive DeploymentStatus = "ACTIVE"
	// DeploymentInactive is a deployment that has been fully replaced.
	DeploymentInactive DeploymentStatus = "INACTIVE"
)

// RolloutState is the progress of a deployment.
// +kubebuilder:validation:Enum=IN_PROGRESS;COMPLETED;FAILED
// +kubebuilder:validation:MaxLength=11
type RolloutState string

const (
	RolloutInProgress RolloutState = "IN_PROGRESS"
	RolloutCompleted  RolloutState = "COMPLETED"
	RolloutFailed     RolloutState = "FAILED"
)

// DeploymentCircuitBreaker fails a deployment whose tasks keep failing.
type DeploymentCircuitBreaker struct {
	// enable turns the circuit breaker on: the deployment FAILS after
	// max(3, min(200, ceil(desiredCount / 2))) of its tasks fail to reach RUNNING
	// (and HEALTHY, when the task has health checks).
	// +required
	Enable bool `json:"enable"`

	// rollback returns the service to the last COMPLETED deployment when the
	// circuit breaker trips.
	// +required
	Rollback bool `json:"rollback"`
}

// DeploymentConfiguration bounds a rolling deployment.
type DeploymentConfiguration struct {
	// minimumHealthyPercent of desiredCount (rounded up) that must stay RUNNING and
	// healthy during a deployment (0-100, default 100).
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinimumHealthyPercent *int32 `json:"minimumHealthyPercent,omitempty"`

	// maximumPercent of desiredCount (rounded down) that may be RUNNING or PENDING
	// during a deployment (at least 100 for REPLICA services, default 200).
	// +optional
	// +kubebuilder:default=200
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaximumPercent *int32 `json:"maximumPercent,omitempty"`

	// deploymentCircuitBreaker fails, and optionally rolls back, a deployment whose
	// tasks keep failing.
	// +optional
	DeploymentCircuitBreaker *DeploymentCircuitBreaker `json:"deploymentCircuitBreaker,omitempty"`
}

// LoadBalancer publishes a container port of the service's tasks as the endpoints of
// a core Kubernetes Service.
type LoadBalancer struct {
	// serviceName is a core v1 Service in the same namespace, usually without a
	// selector; Berth writes its EndpointSlices.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	ServiceName string `json:"serviceName"`

	// containerName is the container whose port is published.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName"`

	// containerPort is the port of that container, one of its portMappings.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort"`
}

// ServiceSpec is the desired state of a Service.
//
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'REPLICA' || has(self.desiredCount) || has(self.autoScaling)",message="desiredCount is required for a REPLICA service without autoScaling",fieldPath=".desiredCount"
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'DAEMON' || !has(self.autoScaling)",message="a DAEMON service runs one task per instance and cannot be auto scaled",fieldPath=".autoScaling"
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'DAEMON' || !has(self.desiredCount)",message="a DAEMON service runs one task per instance and takes no desiredCount",fieldPath=".desiredCount"
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'REPLICA' || !has(self.deploymentConfiguration.maximumPercent) || self.deploymentConfiguration.maximumPercent >= 100",message="maximumPercent must be at least 100 for a REPLICA service",fieldPath=".deploymentConfiguration.maximumPercent"
// +kubebuilder:validation:XValidation:rule="!has(self.deploymentConfiguration.maximumPercent) || !has(self.deploymentConfiguration.minimumHealthyPercent) || self.deploymentConfiguration.maximumPercent >= self.deploymentConfiguration.minimumHealthyPercent",message="maximumPercent must not be below minimumHealthyPercent",fieldPath=".deploymentConfiguration.maximumPercent"
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'DAEMON' || !has(self.placementStrategy)",message="a DAEMON service takes no placementStrategy",fieldPath=".placementStrategy"
type ServiceSpec struct {
	// cluster whose instances run the tasks (default "default"). Immutable.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable"
	Cluster string `json:"cluster,omitempty"`

	// taskDefinition to run: `family` for the latest revision, or `family:N` to pin
	// revision N. Changing it (or the revision `family` resolves to) starts a
	// deployment.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=264
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[1-9][0-9]{0,8})?$')`,message="taskDefinition must be family or family:N with N >= 1 (family is a TaskDefinition name)"
	TaskDefinition string `json:"taskDefinition"`

	// desiredCount is the number of tasks a REPLICA service keeps running; it is the
	// scale subresource, so `kubectl scale` and autoscalers set it. Not allowed for
	// DAEMON services.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	DesiredCount *int32 `json:"desiredCount,omitempty"`

	// autoScaling is ECS Service Auto Scaling: the manager keeps desiredCount
	// between minCapacity and maxCapacity and moves it by target tracking policies
	// on the service's CPU or memory utilization or a Prometheus metric. Leave
	// desiredCount out of manifests that set it (the auto scaler owns it; a missing
	// desiredCount starts at minCapacity). Only for REPLICA services.
	// +optional
	AutoScaling *ServiceAutoScaling `json:"autoScaling,omitempty"`

	// schedulingStrategy is REPLICA (default) or DAEMON. Immutable.
	// +optional
	// +kubebuilder:default=REPLICA
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="schedulingStrategy is immutable"
	SchedulingStrategy SchedulingStrategy `json:"schedulingStrategy,omitempty"`

	// deploymentConfiguration bounds rolling deployments.
	// +optional
	// +kubebuilder:default={}
	DeploymentConfiguration DeploymentConfiguration `json:"deploymentConfiguration,omitempty"`

	// placementConstraints every instance running a task of this service must
	// satisfy, in addition to the task definition's.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`

	// placementStrategy orders candidate instances, applied in list order (at most 5).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	PlacementStrategy []PlacementStrategy `json:"placementStrategy,omitempty"`

	// loadBalancers publish a container port of every RUNNING and healthy task as
	// endpoints of a core Service.
	// +optional
	// +listType=map
	// +listMapKey=serviceName
	// +listMapKey=containerName
	// +listMapKey=containerPort
	// +kubebuilder:validation:MaxItems=5
	LoadBalancers []LoadBalancer `json:"loadBalancers,omitempty"`

	// healthCheckGracePeriodSeconds is how long after a task starts its failing health
	// checks are ignored by the deployment logic.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	HealthCheckGracePeriodSeconds *int32 `json:"healthCheckGracePeriodSeconds,omitempty"`

	// forceNewDeployment is an opaque token: changing it starts a deployment that
	// replaces every task even when the task definition is unchanged (set it to a
	// timestamp, as `kubectl rollout restart` does for Deployments).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ForceNewDeployment string `json:"forceNewDeployment,omitempty"`

	// enableExecuteCommand is copied to every task the service starts (see
	// TaskSpec.enableExecuteCommand). As in ECS, changing it does not replace running
	// tasks: set forceNewDeployment as well to apply it to them.
	// +optional
	EnableExecuteCommand bool `json:"enableExecuteCommand,omitempty"`

	// instanceUnreachableGracePeriodSeconds is how long tasks on an instance that
	// stopped heartbeating are kept before they are replaced elsewhere. Unset uses the
	// cluster's default.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	InstanceUnreachableGracePeriodSeconds *int32 `json:"instanceUnreachableGracePeriodSeconds,omitempty"`

	// stoppedTaskHistoryLimit is how many stopped tasks of this service are kept for
	// inspection (default 20), the newest first; the service's failures its decisions
	// still count are kept besides. A burst of stops (a rollout, a large scale-in)
	// keeps at most this many a minute: the service marks the rest deleteWhenStopped
	// and their agents delete them once stopped. Kept tasks are deleted once past the
	// cluster's retention period.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	StoppedTaskHistoryLimit *int32 `json:"stoppedTaskHistoryLimit,omitempty"`
}

// Deployment is one revision of a Service being rolled out or replaced.
type Deployment struct {
	// id of the deployment, stable for its lifetime; task names derive from it.
	// +required
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id"`

	// status is PRIMARY (the newest), ACTIVE (older, still has tasks) or INACTIVE.
	// +required
	Status DeploymentStatus `json:"status"`

	// taskDefinition is the resolved revision, `family:N`.
	// +required
	// +kubebuilder:validation:MaxLength=264
	TaskDefinition string `json:"taskDefinition"`

	// desiredCount of tasks this deployment aims for.
	// +optional
	DesiredCount int32 `json:"desiredCount"`

	// pendingCount of tasks placed or starting.
	// +optional
	PendingCount int32 `json:"pendingCount"`

	// runningCount of tasks RUNNING.
	// +optional
	RunningCount int32 `json:"runningCount"`

	// failedTasks counts tasks that stopped before becoming RUNNING (and HEALTHY);
	// the circuit breaker compares it with its threshold.
	// +optional
	FailedTasks int32 `json:"failedTasks"`

	// rolloutState is IN_PROGRESS, COMPLETED or FAILED.
	// +required
	RolloutState RolloutState `json:"rolloutState"`

	// rolloutStateReason says why the deployment is in its state.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	RolloutStateReason string `json:"rolloutStateReason,omitempty"`

	// createdAt is when the deployment started.
	// +required
	CreatedAt metav1.Time `json:"createdAt"`

	// updatedAt is when the deployment last changed.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`

	// imageDigests are the image digests the deployment's tasks run
	// (versionConsistency): recorded from the first task that reported each
	// container's digest, and given to every task the deployment starts after.
	// +optional
	// +listType=map
	// +listMapKey=containerName
	// +kubebuilder:validation:MaxItems=10
	ImageDigests []ContainerImageDigest `json:"imageDigests,omitempty"`
}

// ServiceStatus is the observed state of a Service.
type ServiceStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// desiredCount the service currently aims for (for DAEMON services, the number
	// of matching instances).
	// +optional
	DesiredCount int32 `json:"desiredCount"`

	// runningCount of the service's tasks that are RUNNING.
	// +optional
	RunningCount int32 `json:"runningCount"`

	// pendingCount of the service's tasks placed or starting, and of those it needs
	// but has no room to place (unplacedCount), as ECS counts them.
	// +optional
	PendingCount int32 `json:"pendingCount"`

	// unplacedCount is how many tasks the service needs that no container instance
	// has room for: they are not created until room appears (TasksPlaced says why).
	// A Berth addition; included in pendingCount.
	// +optional
	UnplacedCount int32 `json:"unplacedCount,omitempty"`

	// taskDefinition is the resolved revision of the PRIMARY deployment, `family:N`.
	// +optional
	// +kubebuilder:validation:MaxLength=264
	TaskDefinition string `json:"taskDefinition,omitempty"`

	// rolloutState of the PRIMARY deployment.
	// +optional
	RolloutState RolloutState `json:"rolloutState,omitempty"`

	// selector is the label selector of the service's tasks, for the scale
	// subresource and autoscalers.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Selector string `json:"selector,omitempty"`

	// deployments of the service, PRIMARY first.
	// +optional
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=32
	Deployments []Deployment `json:"deployments,omitempty"`

	// utilization is the service's CPUUtilization and MemoryUtilization, refreshed
	// about once a minute from its running tasks.
	// +optional
	Utilization *Utilization `json:"utilization,omitempty"`

	// autoScaling is what the auto scaler last measured and did.
	// +optional
	AutoScaling *AutoScalingStatus `json:"autoScaling,omitempty"`

	// conditions: Accepted, Steady, RolloutComplete.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Service keeps a number of tasks of a task definition running on a cluster and rolls
// out new revisions. Its short name is esvc, because `kubectl get svc` and `kubectl get
// services` mean core Services.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.desiredCount,statuspath=.status.runningCount,selectorpath=.status.selector
// +kubebuilder:resource:shortName=esvc;ecsservice,categories=ecs
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,priority=1
// +kubebuilder:printcolumn:name="Task Definition",type=string,JSONPath=`.status.taskDefinition`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredCount`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningCount`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingCount`
// +kubebuilder:printcolumn:name="CPU%",type=integer,JSONPath=`.status.utilization.cpuUtilization`
// +kubebuilder:printcolumn:name="MEM%",type=integer,JSONPath=`.status.utilization.memoryUtilization`
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.rolloutState`
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.schedulingStrategy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name: a service name is at most 52 characters, because it prefixes its tasks' names and labels"
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the service.
	// +required
	Spec ServiceSpec `json:"spec"`

	// status is the observed state of the service.
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// ServiceList is a list of Services.
//
// +kubebuilder:object:root=true
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Service `json:"items"`
}
