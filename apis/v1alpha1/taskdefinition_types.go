package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TaskDefinition condition types and reasons.
const (
	// TaskDefinitionConditionRevisioned is True once the current spec is stored as an
	// immutable revision (status.latestRevision).
	TaskDefinitionConditionRevisioned = "Revisioned"
	// TaskDefinitionConditionRolledOut is True when every Service that follows the
	// family (spec.taskDefinition is the bare family, the latest revision; services
	// pinned to `family:N` do not follow) has a PRIMARY deployment of
	// status.latestRevision that COMPLETED. Its observedGeneration is the generation
	// whose registered revision it was computed against, so `kubectl apply -f td.yaml
	// && kubectl wait td/NAME --for=condition=RolledOut` never returns on the state
	// from before the change.
	TaskDefinitionConditionRolledOut = "RolledOut"
	// TaskDefinitionConditionHonoured is True when Berth acts on every field the spec
	// sets. It is False, naming each field, when the spec keeps ECS fields that have
	// no effect here (IAM roles, Fargate-only settings): such a definition is
	// accepted, so that ECS task definitions apply as they are, but the user learns
	// what is ignored. The same list is returned as a warning when it is applied.
	TaskDefinitionConditionHonoured = "Honoured"

	ReasonRevisionCreated = "RevisionCreated"
	ReasonRevisionCurrent = "RevisionCurrent"

	// RolledOut reasons.
	//
	// ReasonRolloutCompleted: every following Service completed the latest revision.
	ReasonRolloutCompleted = "RolloutCompleted"
	// ReasonNoServices: no Service follows the family.
	ReasonNoServices = "NoServices"
	// ReasonRolloutInProgress: a following Service has not completed a deployment of
	// the latest revision yet (not started, or in progress).
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonRolloutFailed: a following Service's deployment of the latest revision
	// failed (the circuit breaker tripped, rolled back or not).
	ReasonRolloutFailed = "RolloutFailed"
	// ReasonRevisionPending: the current spec is not registered as a revision (yet),
	// so no rollout of it can be judged.
	ReasonRevisionPending = "RevisionPending"

	// Honoured reasons.
	//
	// ReasonAllFieldsHonoured: every field set has an effect.
	ReasonAllFieldsHonoured = "AllFieldsHonoured"
	// ReasonFieldsNotHonoured: the message lists the fields kept without effect.
	ReasonFieldsNotHonoured = "FieldsNotHonoured"
)

// NetworkMode is the networking of a task's containers.
// +kubebuilder:validation:Enum=bridge;host;awsvpc;none
// +kubebuilder:validation:MaxLength=6
type NetworkMode string

const (
	// NetworkModeBridge gives the task its own network namespace on a bridge, with
	// port mappings published on the instance (hostPort 0 picks a free port).
	NetworkModeBridge NetworkMode = "bridge"
	// NetworkModeHost shares the instance's network namespace.
	NetworkModeHost NetworkMode = "host"
	// NetworkModeNone gives the task a network namespace with only loopback.
	NetworkModeNone NetworkMode = "none"
	// NetworkModeAWSVPC gives the task its own network namespace and address on the
	// instance's task network (ECS gives it an elastic network interface): its
	// containers share it, and their ports are reached at the task's address and
	// container port, without host port mappings.
	NetworkModeAWSVPC NetworkMode = "awsvpc"
)

// TransportProtocol is tcp or udp.
// +kubebuilder:validation:Enum=tcp;udp
// +kubebuilder:validation:MaxLength=3
type TransportProtocol string

const (
	ProtocolTCP TransportProtocol = "tcp"
	ProtocolUDP TransportProtocol = "udp"
)

// DependencyCondition is what a container waits for in a dependency.
// +kubebuilder:validation:Enum=START;COMPLETE;SUCCESS;HEALTHY
// +kubebuilder:validation:MaxLength=8
type DependencyCondition string

const (
	// DependencyStart waits until the dependency has started.
	DependencyStart DependencyCondition = "START"
	// DependencyComplete waits until the dependency has exited, whatever its code.
	DependencyComplete DependencyCondition = "COMPLETE"
	// DependencySuccess waits until the dependency has exited with code 0.
	DependencySuccess DependencyCondition = "SUCCESS"
	// DependencyHealthy waits until the dependency's health check passes.
	DependencyHealthy DependencyCondition = "HEALTHY"
)

// RevisionStatus is ACTIVE or INACTIVE.
// +kubebuilder:validation:Enum=ACTIVE;INACTIVE
// +kubebuilder:validation:MaxLength=8
type RevisionStatus string

const (
	// RevisionActive revisions are the latest one or still used by a Service or Task.
	RevisionActive RevisionStatus = "ACTIVE"
	// RevisionInactive revisions are superseded and unused; they are kept, and still
	// resolve, up to spec.revisionHistoryLimit, oldest deleted first.
	RevisionInactive RevisionStatus = "INACTIVE"
)

// The image rule is the distribution reference grammar (domain[:port]/path[:tag][@digest])
// written without backslashes so it survives marker and CEL quoting. Lengths are bounded
// by MaxLength so the regex stays cheap for CEL's cost estimator.

// ContainerDefinition describes one container of a task.
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || !has(self.memoryReservation) || self.memoryReservation <= self.memory",message="memoryReservation must not exceed memory",fieldPath=".memoryReservation"
// +kubebuilder:validation:XValidation:rule="!has(self.dependsOn) || self.dependsOn.all(d, d.containerName != self.name)",message="a container cannot depend on itself",fieldPath=".dependsOn"
// +kubebuilder:validation:XValidation:rule="!has(self.volumesFrom) || self.volumesFrom.all(v, v.sourceContainer != self.name)",message="a container cannot take volumes from itself",fieldPath=".volumesFrom"
// +kubebuilder:validation:XValidation:rule="!has(self.portMappings) || self.portMappings.all(p1, !has(p1.hostPort) || p1.hostPort == 0 || self.portMappings.exists_one(p2, has(p2.hostPort) && p2.hostPort == p1.hostPort && p2.protocol == p1.protocol))",message="two port mappings use the same hostPort and protocol",fieldPath=".portMappings"
// +kubebuilder:validation:XValidation:rule="!has(self.portMappings) || self.portMappings.all(r, size(r.containerPortRange) == 0 || self.portMappings.all(p, p == r || p.protocol != r.protocol || (size(p.containerPortRange) == 0 ? (p.containerPort < int(r.containerPortRange.find('^[0-9]+')) || p.containerPort > int(r.containerPortRange.find('[0-9]+$'))) : (int(p.containerPortRange.find('[0-9]+$')) < int(r.containerPortRange.find('^[0-9]+')) || int(p.containerPortRange.find('^[0-9]+')) > int(r.containerPortRange.find('[0-9]+$'))))))",message="a container port is in two port mappings of the same protocol: containerPortRange overlaps another mapping",fieldPath=".portMappings"
type ContainerDefinition struct {
	// name of the container, unique within the task. Letters, digits, hyphens and
	// underscores, starting with a letter or digit; at most 63 characters because it
	// becomes part of runtime identifiers and labels.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`
	Name string `json:"name"`

	// image to run, as a registry reference: `[registry[:port]/]repository[:tag][@digest]`.
	// Without a registry, images come from the instance's default registry.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^((([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])([.]([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(:[0-9]+)?/)?[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*)*)(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$')`,message="image must be a valid image reference such as registry.example:5000/team/app:1.2 (lowercase repository, optional tag and digest)"
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^[a-zA-Z0-9_-]*[A-Z][a-zA-Z0-9_-]*/')`,message="image repository must be lowercase: a first component without '.' or ':' (such as Team/app) is part of the repository, not a registry"
	Image string `json:"image"`

	// repositoryCredentials names a Secret of type kubernetes.io/dockerconfigjson in
	// the task's namespace used to pull a private image.
	// +optional
	RepositoryCredentials *RepositoryCredentials `json:"repositoryCredentials,omitempty"`

	// entryPoint replaces the image's ENTRYPOINT.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	EntryPoint []string `json:"entryPoint,omitempty"`

	// command replaces the image's CMD.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=8192
	Command []string `json:"command,omitempty"`

	// environment variables set in the container.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Environment []KeyValuePair `json:"environment,omitempty"`

	// environmentFiles load variables from every key of a ConfigMap or Secret in the
	// task's namespace; environment and secrets take precedence over them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	EnvironmentFiles []EnvironmentFile `json:"environmentFiles,omitempty"`

	// secrets are environment variables whose values come from a Secret or ConfigMap
	// key. Values are read by the agent when the container is created and are never
	// logged, labelled or reported in status.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Secrets []SecretVariable `json:"secrets,omitempty"`

	// workingDirectory is the directory commands run in.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	WorkingDirectory string `json:"workingDirectory,omitempty"`

	// user to run as: `user`, `uid`, `user:group`, `uid:gid`, `user:gid` or `uid:group`.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]*)?$`
	User string `json:"user,omitempty"`

	// cpu units reserved for the container (1024 = one vCPU), used for placement and
	// as cgroup CPU shares.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=196608
	Cpu int32 `json:"cpu,omitempty"`

	// memory is the hard limit in MiB; the container is OOM-killed above it. Used for
	// placement.
	// +optional
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=4194304
	Memory *int32 `json:"memory,omitempty"`

	// memoryReservation is the soft limit in MiB, used for placement when memory is
	// not set.
	// +optional
	// +kubebuilder:validation:Minimum=6
	// +kubebuilder:validation:Maximum=4194304
	MemoryReservation *int32 `json:"memoryReservation,omitempty"`

	// essential containers stop the whole task when they exit. At least one container
	// of a task must be essential.
	// +optional
	// +kubebuilder:default=true
	Essential *bool `json:"essential,omitempty"`

	// portMappings the container listens on.
	// +optional
	// +listType=map
	// +listMapKey=containerPort
	// +listMapKey=protocol
	// +listMapKey=containerPortRange
	// +kubebuilder:validation:MaxItems=50
	PortMappings []PortMapping `json:"portMappings,omitempty"`

	// healthCheck run inside the container.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// dependsOn lists containers that must reach a condition before this one starts.
	// +optional
	// +listType=map
	// +listMapKey=containerName
	// +kubebuilder:validation:MaxItems=10
	DependsOn []ContainerDependency `json:"dependsOn,omitempty"`

	// startTimeout is how long, in seconds, containers that depend on this one wait,
	// from its start, for it to reach their COMPLETE, SUCCESS or HEALTHY condition
	// before they give up (and the task fails to start), as in ECS: the timeout
	// belongs to the container depended on. Unset, they wait as long as it takes.
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=600
	StartTimeout *int32 `json:"startTimeout,omitempty"`

	// stopTimeout is how long, in seconds, the container has to exit after SIGTERM
	// before it is killed with SIGKILL.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	StopTimeout *int32 `json:"stopTimeout,omitempty"`

	// versionConsistency enabled (the default, as in ECS) runs every task of a
	// service deployment on the image digest the deployment's first task resolved
	// the tag to, even if the tag moves meanwhile; disabled resolves the tag again
	// for each task. Standalone tasks resolve it each time either way.
	// +optional
	// +kubebuilder:validation:Enum=enabled;disabled
	VersionConsistency VersionConsistency `json:"versionConsistency,omitempty"`

	// restartPolicy restarts the container in place when it exits, without stopping
	// the task.
	// +optional
	RestartPolicy *ContainerRestartPolicy `json:"restartPolicy,omitempty"`

	// mountPoints mount task volumes into the container.
	// +optional
	// +listType=map
	// +listMapKey=containerPath
	// +kubebuilder:validation:MaxItems=20
	MountPoints []MountPoint `json:"mountPoints,omitempty"`

	// volumesFrom mounts every mount point of another container of the task.
	// +optional
	// +listType=map
	// +listMapKey=sourceContainer
	// +kubebuilder:validation:MaxItems=10
	VolumesFrom []VolumeFrom `json:"volumesFrom,omitempty"`

	// readonlyRootFilesystem mounts the image's root filesystem read-only.
	// +optional
	ReadonlyRootFilesystem bool `json:"readonlyRootFilesystem,omitempty"`

	// privileged gives the container every capability and access to host devices.
	// +optional
	Privileged bool `json:"privileged,omitempty"`

	// linuxParameters are Linux-specific settings.
	// +optional
	LinuxParameters *LinuxParameters `json:"linuxParameters,omitempty"`

	// ulimits set resource limits (setrlimit) in the container.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Ulimits []Ulimit `json:"ulimits,omitempty"`

	// logConfiguration selects where the container's output goes.
	// +optional
	LogConfiguration *LogConfiguration `json:"logConfiguration,omitempty"`

	// hostname of the container (bridge and none network modes; ECS refuses it in
	// awsvpc mode, and host mode has the instance's). It is also in the container's
	// /etc/hosts.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`
	Hostname string `json:"hostname,omitempty"`

	// links name other containers of the task, as `name` or `name:alias` (bridge
	// mode only, as in ECS). The linked names resolve to the linked container from
	// this one, and a linked container starts first. In Berth's bridge mode a task's
	// containers share one network namespace, so the names resolve to 127.0.0.1.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_-]*(:[a-zA-Z0-9][-a-zA-Z0-9_.]*)?$`
	Links []string `json:"links,omitempty"`

	// dnsServers replace the instance's name servers in the container's
	// /etc/resolv.conf (IPv4 or IPv6 addresses; not in awsvpc or host mode, as in ECS).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="dnsServers entries must be IP addresses"
	DnsServers []string `json:"dnsServers,omitempty"`

	// dnsSearchDomains are the search domains of the container's /etc/resolv.conf
	// (not in awsvpc or host mode, as in ECS).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=6
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`
	DnsSearchDomains []string `json:"dnsSearchDomains,omitempty"`

	// extraHosts are added to the container's /etc/hosts (not in awsvpc or host
	// mode, as in ECS).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	ExtraHosts []HostEntry `json:"extraHosts,omitempty"`

	// systemControls set namespaced kernel parameters in the container, as Docker's
	// --sysctl: net.* (not in host network mode, where they would change the
	// instance), the IPC ones (kernel.msg*, kernel.sem, kernel.shm*; not with ipcMode
	// host) and fs.mqueue.*.
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=32
	SystemControls []SystemControl `json:"systemControls,omitempty"`

	// dockerSecurityOptions, as Docker's --security-opt: no-new-privileges,
	// seccomp=unconfined and apparmor:PROFILE (on instances with AppArmor).
	// Every container runs under the runtime's default seccomp profile (Docker's)
	// unless it is privileged or sets seccomp=unconfined, which only clusters at
	// container policy level privileged allow: baseline and restricted refuse
	// seccomp=unconfined and apparmor:unconfined. Level restricted sets
	// no-new-privileges on every container. SELinux labels and credential specs
	// are refused.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:XValidation:rule="self in ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=true', 'seccomp=unconfined', 'seccomp:unconfined'] || self.matches('^apparmor[:=][A-Za-z0-9_./-]+$')",message="supported security options are no-new-privileges, seccomp=unconfined and apparmor:PROFILE; SELinux labels (label:) and credential specs (credentialspec:) are not supported"
	DockerSecurityOptions []string `json:"dockerSecurityOptions,omitempty"`

	// disableNetworking gives the container a network namespace of its own with
	// only loopback, whatever the task's network mode.
	// +optional
	DisableNetworking bool `json:"disableNetworking,omitempty"`

	// resourceRequirements are what the container needs besides cpu and memory, as
	// in ECS: type GPU with value the number of GPUs. The scheduler places the task
	// on an instance with that many GPUs no other task holds and records which ones
	// in the task's spec.gpuAssignments; the agent exposes them to the container
	// (NVIDIA_VISIBLE_DEVICES and the instance's device nodes). Type
	// InferenceAccelerator needs Amazon Elastic Inference and is refused.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=2
	ResourceRequirements []ResourceRequirement `json:"resourceRequirements,omitempty"`

	// interactive keeps the container's standard input open, as Docker's OpenStdin
	// (docker run -i): a process reading it (cat, sh) waits for input instead of
	// ending at once on end-of-file.
	// +optional
	Interactive bool `json:"interactive,omitempty"`

	// pseudoTerminal gives the container a terminal (Docker's Tty, docker run -t):
	// its standard streams are a pseudo-terminal, whose output still goes to the
	// container's log.
	// +optional
	PseudoTerminal bool `json:"pseudoTerminal,omitempty"`

	// dockerLabels are set on the container in the runtime, as Docker labels are.
	// Keys starting with berth.dev/ or ecs.berth.dev/ are Berth's own and refused.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('berth.dev/') && !k.startsWith('ecs.berth.dev/'))",message="dockerLabels keys starting with berth.dev/ or ecs.berth.dev/ are reserved for Berth"
	DockerLabels map[string]string `json:"dockerLabels,omitempty"`
}

// ResourceRequirementType is a kind of resource a container asks for besides cpu and
// memory.
// +kubebuilder:validation:Enum=GPU;InferenceAccelerator
type ResourceRequirementType string

const (
	// ResourceGPU asks for whole GPUs of the instance; the value is their number.
	ResourceGPU ResourceRequirementType = "GPU"
	// ResourceInferenceAccelerator names an Elastic Inference accelerator, which
	// exists only on AWS. It is in the enum so that the refusal can say why.
	ResourceInferenceAccelerator ResourceRequirementType = "InferenceAccelerator"
)

// MaxGPUsPerContainer bounds a GPU requirement's value: more than any machine holds.
const MaxGPUsPerContainer = 64

// ResourceRequirement is one resource a container needs (ECS's ResourceRequirement).
// +kubebuilder:validation:XValidation:rule="self.type != 'InferenceAccelerator'",message="type InferenceAccelerator needs Amazon Elastic Inference, which exists only on AWS",fieldPath=".type"
// +kubebuilder:validation:XValidation:rule="self.type != 'GPU' || (self.value.matches('^[1-9][0-9]?$') && int(self.value) <= 64)",message="value of a GPU requirement is the number of GPUs, a whole number from 1 to 64",fieldPath=".value"
type ResourceRequirement struct {
	// type of the resource: GPU.
	// +required
	Type ResourceRequirementType `json:"type"`

	// value is how much of it: for GPU, the number of GPUs ("1" to "64").
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value"`
}

// SystemControl is one kernel parameter.
type SystemControl struct {
	// namespace is the parameter's name, for example net.core.somaxconn.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('net.') || self.startsWith('fs.mqueue.') || self in ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']",message="only namespaced kernel parameters can be set, as Docker allows: net.*, kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced and fs.mqueue.*"
	Namespace string `json:"namespace"`

	// value to write.
	// +required
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// HostEntry is one line of /etc/hosts.
type HostEntry struct {
	// hostname to resolve.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`
	Hostname string `json:"hostname"`

	// ipAddress it resolves to.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="ipAddress must be an IP address"
	IPAddress string `json:"ipAddress"`
}

// RepositoryCredentials names the pull secret of a private image.
type RepositoryCredentials struct {
	// credentialsParameter is the name of a Secret of type
	// kubernetes.io/dockerconfigjson in the task's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	CredentialsParameter string `json:"credentialsParameter"`
}

// EnvironmentFileType is where an environment file comes from.
// +kubebuilder:validation:Enum=configMap;secret
// +kubebuilder:validation:MaxLength=9
type EnvironmentFileType string

const (
	EnvironmentFileConfigMap EnvironmentFileType = "configMap"
	EnvironmentFileSecret    EnvironmentFileType = "secret"
)

// EnvironmentFile loads every key of a ConfigMap or Secret as environment variables.
type EnvironmentFile struct {
	// type of the source: configMap or secret.
	// +required
	Type EnvironmentFileType `json:"type"`

	// value is the name of the ConfigMap or Secret in the task's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Value string `json:"value"`
}

// SecretVariable is an environment variable whose value comes from a key of a Secret
// or ConfigMap.
type SecretVariable struct {
	// name of the environment variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Name string `json:"name"`

	// valueFrom selects the key the value is read from.
	// +required
	ValueFrom SecretValueSource `json:"valueFrom"`
}

// SecretValueSource selects exactly one key of a Secret or a ConfigMap.
// +kubebuilder:validation:XValidation:rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",message="exactly one of secretKeyRef and configMapKeyRef must be set"
type SecretValueSource struct {
	// secretKeyRef selects a key of a Secret in the task's namespace.
	// +optional
	SecretKeyRef *KeySelector `json:"secretKeyRef,omitempty"`

	// configMapKeyRef selects a key of a ConfigMap in the task's namespace.
	// +optional
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
}

// KeySelector names an object in the task's namespace and one of its keys.
type KeySelector struct {
	// name of the Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key within it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// PortMapping publishes a container port, or a range of them (containerPortRange).
// +kubebuilder:validation:XValidation:rule="size(self.containerPortRange) == 0 || self.containerPort == 0",message="containerPortRange replaces containerPort: set one of them, not both",fieldPath=".containerPortRange"
// +kubebuilder:validation:XValidation:rule="size(self.containerPortRange) != 0 || self.containerPort >= 1",message="containerPort must be from 1 to 65535 (or containerPortRange set instead)",fieldPath=".containerPort"
// +kubebuilder:validation:XValidation:rule="size(self.containerPortRange) == 0 || !has(self.hostPort)",message="hostPort cannot be set with containerPortRange: bridge mode picks the host ports, awsvpc mode publishes none",fieldPath=".hostPort"
// +kubebuilder:validation:XValidation:rule="size(self.containerPortRange) == 0 || (int(self.containerPortRange.find('^[0-9]+')) < int(self.containerPortRange.find('[0-9]+$')) && int(self.containerPortRange.find('[0-9]+$')) <= 65535)",message="containerPortRange must be first-last with first < last <= 65535",fieldPath=".containerPortRange"
type PortMapping struct {
	// containerPort the application listens on (1-65535). Leave it unset (0) with
	// containerPortRange.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort"`

	// containerPortRange publishes the container ports first-last ("8000-8010"),
	// instead of containerPort, in bridge and awsvpc network modes, as in ECS. In
	// bridge mode the agent publishes them on as many consecutive host ports of the
	// instance's ephemeral range, reported as the binding's hostPortRange; in awsvpc
	// mode they are reached at the task's address. hostPort is not set with it.
	// Empty (the default, so that it can key the list) means containerPort.
	// +optional
	// +kubebuilder:default=""
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]{0,4}-[1-9][0-9]{0,4})?$`
	ContainerPortRange string `json:"containerPortRange,omitempty"`

	// hostPort on the instance. 0 or unset in bridge mode picks a free port from the
	// instance's ephemeral range; in host and awsvpc modes it must be unset, 0 or equal
	// containerPort (awsvpc publishes nothing on the instance: the port is reached at
	// the task's own address).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	HostPort *int32 `json:"hostPort,omitempty"`

	// protocol of the port: tcp (default) or udp.
	// +optional
	// +kubebuilder:default=tcp
	Protocol TransportProtocol `json:"protocol,omitempty"`

	// name of the mapping, used by load balancer configuration.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// appProtocol is the application protocol spoken on the port: http, http2 or
	// grpc. It becomes the appProtocol of the port in EndpointSlices (as ECS passes
	// it to Service Connect).
	// +optional
	AppProtocol AppProtocol `json:"appProtocol,omitempty"`
}

// AppProtocol is the application protocol of a port mapping.
// +kubebuilder:validation:Enum=http;http2;grpc
// +kubebuilder:validation:MaxLength=5
type AppProtocol string

const (
	AppProtocolHTTP  AppProtocol = "http"
	AppProtocolHTTP2 AppProtocol = "http2"
	AppProtocolGRPC  AppProtocol = "grpc"
)

// HealthCheck is a command run inside the container to decide its health.
// +kubebuilder:validation:XValidation:rule="self.command[0] in ['CMD', 'CMD-SHELL', 'NONE']",message="command must start with CMD or CMD-SHELL (or be [NONE])",fieldPath=".command"
// +kubebuilder:validation:XValidation:rule="self.command[0] == 'NONE' || size(self.command) >= 2",message="command needs an executable after CMD or CMD-SHELL",fieldPath=".command"
type HealthCheck struct {
	// command is ["CMD", "exe", "arg", ...] to run an executable or
	// ["CMD-SHELL", "shell command"] to run through /bin/sh. Exit code 0 is healthy.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`

	// interval between checks, in seconds (5-300).
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=300
	Interval *int32 `json:"interval,omitempty"`

	// timeout of one check, in seconds (2-60).
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=60
	Timeout *int32 `json:"timeout,omitempty"`

	// retries is how many consecutive failures make the container UNHEALTHY (1-10).
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Retries *int32 `json:"retries,omitempty"`

	// startPeriod is a grace period, in seconds (0-300), during which failures do not
	// count against retries.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=300
	StartPeriod *int32 `json:"startPeriod,omitempty"`
}

// ContainerDependency makes a container wait for another one.
type ContainerDependency struct {
	// containerName of the container depended on, in the same task.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName"`

	// condition the dependency must reach: START, COMPLETE, SUCCESS or HEALTHY
	// (which requires the dependency to have a healthCheck).
	// +required
	Condition DependencyCondition `json:"condition"`
}

// ContainerRestartPolicy restarts a container in place when it exits.
type ContainerRestartPolicy struct {
	// enabled turns restarts on.
	// +required
	Enabled bool `json:"enabled"`

	// ignoredExitCodes are exit codes that do not trigger a restart.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	IgnoredExitCodes []int32 `json:"ignoredExitCodes,omitempty"`

	// restartAttemptPeriod, in seconds (60-1800), is how long a container must run
	// before it may be restarted again, which stops crash loops.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=1800
	RestartAttemptPeriod *int32 `json:"restartAttemptPeriod,omitempty"`
}

// MountPoint mounts a task volume into a container.
type MountPoint struct {
	// sourceVolume is the name of a volume in the task definition's volumes.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	SourceVolume string `json:"sourceVolume"`

	// containerPath is the absolute path in the container.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	ContainerPath string `json:"containerPath"`

	// readOnly mounts the volume read-only.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// VolumeFrom mounts the volumes of another container.
type VolumeFrom struct {
	// sourceContainer is the container whose mount points are mounted.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	SourceContainer string `json:"sourceContainer"`

	// readOnly mounts them read-only.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// LinuxParameters are Linux-specific container settings.
type LinuxParameters struct {
	// capabilities added to or dropped from the default set.
	// +optional
	Capabilities *KernelCapabilities `json:"capabilities,omitempty"`

	// initProcessEnabled runs a small init process as PID 1 that reaps zombies and
	// forwards signals.
	// +optional
	InitProcessEnabled bool `json:"initProcessEnabled,omitempty"`

	// devices of the instance exposed in the container.
	// +optional
	// +listType=map
	// +listMapKey=hostPath
	// +kubebuilder:validation:MaxItems=32
	Devices []Device `json:"devices,omitempty"`

	// sharedMemorySize is the size of /dev/shm in MiB (Docker's default is 64).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	SharedMemorySize *int32 `json:"sharedMemorySize,omitempty"`

	// tmpfs mounts in the container.
	// +optional
	// +listType=map
	// +listMapKey=containerPath
	// +kubebuilder:validation:MaxItems=16
	Tmpfs []Tmpfs `json:"tmpfs,omitempty"`

	// maxSwap is how much swap, in MiB, the container may use on top of its memory
	// limit (0: none, the default without it). It needs a memory limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4194304
	MaxSwap *int32 `json:"maxSwap,omitempty"`

	// swappiness is the kernel's tendency to swap the container's memory (0-100).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Swappiness *int32 `json:"swappiness,omitempty"`
}

// DevicePermission is an access a container has to a device.
// +kubebuilder:validation:Enum=read;write;mknod
// +kubebuilder:validation:MaxLength=5
type DevicePermission string

// Device is a device of the instance exposed in the container.
type Device struct {
	// hostPath of the device, for example /dev/fuse.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/dev/`
	HostPath string `json:"hostPath"`

	// containerPath where it appears (default: hostPath).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	ContainerPath string `json:"containerPath,omitempty"`

	// permissions of the container on it (default: read, write and mknod).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	Permissions []DevicePermission `json:"permissions,omitempty"`
}

// Tmpfs is a tmpfs mount.
type Tmpfs struct {
	// containerPath where it is mounted.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	ContainerPath string `json:"containerPath"`

	// size limit in MiB.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	Size int32 `json:"size"`

	// mountOptions, as ECS lists them (ro, noexec, mode=1777, uid=1000, ...).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^(defaults|ro|rw|suid|nosuid|dev|nodev|exec|noexec|sync|async|dirsync|remount|mand|nomand|atime|noatime|diratime|nodiratime|bind|rbind|unbindable|runbindable|private|rprivate|shared|rshared|slave|rslave|relatime|norelatime|strictatime|nostrictatime|mode=[0-7]{3,4}|uid=[0-9]+|gid=[0-9]+|nr_inodes=[0-9]+[kmg]?|nr_blocks=[0-9]+[kmg]?|mpol=[a-z:0-9,-]+)$`
	MountOptions []string `json:"mountOptions,omitempty"`
}

// Capability is a Linux capability name without the CAP_ prefix, or ALL.
// +kubebuilder:validation:MinLength=2
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^[A-Z][A-Z_]*$`
type Capability string

// KernelCapabilities adds and drops Linux capabilities.
type KernelCapabilities struct {
	// add these capabilities, for example NET_ADMIN.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Add []Capability `json:"add,omitempty"`

	// drop these capabilities; ALL drops every one.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Drop []Capability `json:"drop,omitempty"`
}

// UlimitName is a resource limit name.
// +kubebuilder:validation:Enum=core;cpu;data;fsize;locks;memlock;msgqueue;nice;nofile;nproc;rss;rtprio;rttime;sigpending;stack
// +kubebuilder:validation:MaxLength=10
type UlimitName string

// Ulimit is one resource limit.
// +kubebuilder:validation:XValidation:rule="self.softLimit <= self.hardLimit",message="softLimit must not exceed hardLimit",fieldPath=".softLimit"
type Ulimit struct {
	// name of the limit, for example nofile.
	// +required
	Name UlimitName `json:"name"`

	// softLimit is the value the process starts with.
	// +required
	// +kubebuilder:validation:Minimum=0
	SoftLimit int64 `json:"softLimit"`

	// hardLimit is the ceiling the process may raise its soft limit to.
	// +required
	// +kubebuilder:validation:Minimum=0
	HardLimit int64 `json:"hardLimit"`
}

// LogDriver selects how container output is kept.
// +kubebuilder:validation:Enum=json-file;awslogs;none
// +kubebuilder:validation:MaxLength=9
type LogDriver string

const (
	// LogDriverJSONFile writes output to rotated files on the instance, readable
	// through the agent's HTTP endpoint.
	LogDriverJSONFile LogDriver = "json-file"
	// LogDriverNone discards output.
	LogDriverNone LogDriver = "none"
	// LogDriverAWSLogs is accepted so that ECS task definitions apply as they are:
	// output is written as json-file writes it (rotated files on the instance, the
	// agent's logs endpoint), and the task's status names the awslogs group and
	// stream (awslogs-group, awslogs-stream-prefix/container/task-id) so that a user
	// finds it as in CloudWatch.
	LogDriverAWSLogs LogDriver = "awslogs"
)

// LogConfiguration selects where a container's output goes.
type LogConfiguration struct {
	// logDriver is json-file (default), awslogs (kept on the instance as json-file
	// keeps it) or none.
	// +optional
	// +kubebuilder:default=json-file
	LogDriver LogDriver `json:"logDriver,omitempty"`

	// options of the driver: max-size (for example 10m) and max-file (for example 3)
	// for json-file and awslogs; awslogs-group, awslogs-region,
	// awslogs-stream-prefix, awslogs-create-group, awslogs-datetime-format,
	// awslogs-multiline-pattern and mode for awslogs (kept and shown).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Options map[string]string `json:"options,omitempty"`

	// secretOptions are driver options whose values come from a Secret or ConfigMap
	// key, resolved like the container's secrets.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	SecretOptions []SecretVariable `json:"secretOptions,omitempty"`
}

// Volume is a volume that containers of the task can mount.
//
// +kubebuilder:validation:XValidation:rule="!has(self.dockerVolumeConfiguration) || !has(self.host) || !has(self.host.sourcePath)",message="host.sourcePath and dockerVolumeConfiguration cannot be set together: a volume is either a path of the instance or a Docker volume",fieldPath=".dockerVolumeConfiguration"
type Volume struct {
	// name of the volume, referenced by mountPoints.sourceVolume. A shared Docker
	// volume is found by this name on the instance.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`
	Name string `json:"name"`

	// host mounts a path of the instance (sourcePath). Without sourcePath (ECS's
	// `host: {}`, a Docker-managed volume), and without host and
	// dockerVolumeConfiguration, the volume is task-scoped scratch space that is
	// created with the task and removed with it.
	// +optional
	Host *HostVolume `json:"host,omitempty"`

	// dockerVolumeConfiguration is a Docker volume of the local driver, scoped to
	// the task or shared by the tasks of the instance.
	// +optional
	DockerVolumeConfiguration *DockerVolumeConfiguration `json:"dockerVolumeConfiguration,omitempty"`
}

// HostVolume is a path on the instance.
type HostVolume struct {
	// sourcePath is the absolute path on the instance. Unset, the volume is a
	// task-scoped scratch directory (ECS's Docker-managed host volume).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	SourcePath string `json:"sourcePath,omitempty"`
}

// DockerVolumeScope is the lifetime of a Docker volume.
// +kubebuilder:validation:Enum=task;shared
// +kubebuilder:validation:MaxLength=6
type DockerVolumeScope string

const (
	// DockerVolumeScopeTask volumes are created when the task starts and removed
	// when it is cleaned up (the default).
	DockerVolumeScopeTask DockerVolumeScope = "task"
	// DockerVolumeScopeShared volumes outlive the task and are reused, by name, by
	// later tasks of the same namespace on the same instance.
	DockerVolumeScopeShared DockerVolumeScope = "shared"
)

// DockerVolumeDriverLocal is the one volume driver on containerd: Docker's local
// driver's behaviour, implemented by the agent.
const DockerVolumeDriverLocal = "local"

// DockerVolumeConfiguration is ECS's Docker volume. Berth implements Docker's local
// driver on the instance (containerd has no volume plugins): a directory of the
// agent's state directory, a tmpfs (driverOpts type tmpfs) or a bind mount of an
// instance path (type none, o bind).
type DockerVolumeConfiguration struct {
	// scope is task (default: created with the task, removed with it) or shared
	// (kept after the task, reused by name by later tasks of the namespace on the
	// instance).
	// +optional
	Scope DockerVolumeScope `json:"scope,omitempty"`

	// autoprovision creates a shared volume that does not exist yet. Without it a
	// missing shared volume fails the task. Only used with scope shared, as in ECS.
	// +optional
	Autoprovision bool `json:"autoprovision,omitempty"`

	// driver is the volume driver: local (the default) only. Docker volume plugins
	// (rexray, ...) need Docker's plugin API, which containerd does not have.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == 'local'",message="driver must be local: Berth runs containers on containerd, which has no Docker volume plugins"
	Driver string `json:"driver,omitempty"`

	// driverOpts are the local driver's options, as Docker takes them: none (a
	// directory on the instance), type tmpfs (with o such as size=64m,mode=1777),
	// or type none, o bind, device /path (a bind mount of an instance path).
	// +optional
	DriverOpts *LocalDriverOpts `json:"driverOpts,omitempty"`

	// labels of the volume. A shared volume that exists must have the same labels
	// and driverOpts when autoprovision is set, as ECS checks.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Labels map[string]string `json:"labels,omitempty"`
}

// LocalDriverOpts are the options of Docker's local volume driver (ECS's driverOpts
// map, with the keys that driver takes), as mount(8) takes them.
//
// +kubebuilder:validation:XValidation:rule="has(self.type) || (!has(self.o) && !has(self.device))",message="driverOpts o and device need a type (tmpfs, or none for a bind mount)"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'none' || (has(self.device) && self.device.startsWith('/') && has(self.o) && self.o.matches('^(r?bind|ro|rw)(,(r?bind|ro|rw))*$') && self.o.matches('(^|,)r?bind(,|$)'))",message="driverOpts type none is a bind mount: it needs o=bind (or rbind, with ro or rw) and device, an absolute path of the instance"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'tmpfs' || !has(self.device) || self.device == 'tmpfs'",message="driverOpts device of a tmpfs must be tmpfs (or unset)",fieldPath=".device"
type LocalDriverOpts struct {
	// type is the file system: tmpfs, or none with o bind (a bind mount of device).
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self in ['tmpfs', 'none']",message="driverOpts type must be tmpfs, or none with o=bind and device (a bind mount of an instance path): other file systems need mounts the agent does not make; mount them on the instance and bind them"
	Type string `json:"type,omitempty"`

	// o are the mount options, comma-separated: a tmpfs' size=64m, mode=1777,
	// noexec, ...; a bind mount's bind or rbind, with ro or rw.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	O string `json:"o,omitempty"`

	// device is what is mounted: tmpfs, or the instance path of a bind mount.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Device string `json:"device,omitempty"`
}

// VersionConsistency tells whether a service deployment pins its containers' image
// digests.
// +kubebuilder:validation:MaxLength=8
type VersionConsistency string

const (
	// VersionConsistencyEnabled pins the digest (ECS's default).
	VersionConsistencyEnabled VersionConsistency = "enabled"
	// VersionConsistencyDisabled resolves the tag for each task.
	VersionConsistencyDisabled VersionConsistency = "disabled"
)

// NamespaceMode is the sharing of the PID or IPC namespace.
// +kubebuilder:validation:Enum=host;task;none
// +kubebuilder:validation:MaxLength=4
type NamespaceMode string

const (
	// NamespaceModeHost shares the instance's namespace.
	NamespaceModeHost NamespaceMode = "host"
	// NamespaceModeTask shares one namespace among the containers of the task.
	NamespaceModeTask NamespaceMode = "task"
	// NamespaceModeNone gives each container a private IPC namespace without
	// /dev/shm (ipcMode only, as Docker's "none").
	NamespaceModeNone NamespaceMode = "none"
)

// TaskDefinitionSpec is a family of containers. Every change of it (except
// revisionHistoryLimit) becomes a new immutable revision.
//
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.exists(c, c.essential)",message="at least one container must be essential",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="has(self.memory) || self.containerDefinitions.all(c, has(c.memory) || has(c.memoryReservation))",message="every container needs memory or memoryReservation when the task sets no memory",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || type(self.memory) != int || self.containerDefinitions.map(c, has(c.memory) ? c.memory : 0).sum() <= self.memory",message="task memory is smaller than the sum of the containers' memory limits",fieldPath=".memory"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, self.containerDefinitions.exists(x, x.name == d.containerName)))",message="dependsOn names a container that is not in containerDefinitions",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, d.condition != 'HEALTHY' || self.containerDefinitions.exists(x, x.name == d.containerName && has(x.healthCheck) && x.healthCheck.command[0] != 'NONE')))",message="a HEALTHY dependency needs a container with a healthCheck (other than [NONE])",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.volumesFrom) || c.volumesFrom.all(v, self.containerDefinitions.exists(x, x.name == v.sourceContainer)))",message="volumesFrom names a container that is not in containerDefinitions",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.mountPoints) || c.mountPoints.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.sourceVolume)))",message="a mountPoint's sourceVolume is not declared in volumes",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c1, !has(c1.portMappings) || self.containerDefinitions.all(c2, c1.name == c2.name || !has(c2.portMappings) || !sets.intersects(c1.portMappings.filter(p, has(p.hostPort) && p.hostPort > 0).map(p, p.protocol == 'udp' ? p.hostPort + 65536 : p.hostPort), c2.portMappings.filter(p, has(p.hostPort) && p.hostPort > 0).map(p, p.protocol == 'udp' ? p.hostPort + 65536 : p.hostPort))))",message="two containers publish the same hostPort and protocol",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!(self.networkMode in ['host', 'awsvpc']) || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, !has(p.hostPort) || p.hostPort == 0 || p.hostPort == p.containerPort))",message="in host and awsvpc network modes hostPort must be unset or equal containerPort",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!(self.networkMode in ['host', 'awsvpc']) || self.containerDefinitions.all(c1, !has(c1.portMappings) || self.containerDefinitions.all(c2, c1.name == c2.name || !has(c2.portMappings) || !sets.intersects(c1.portMappings.filter(p, p.containerPort > 0).map(p, p.protocol == 'udp' ? p.containerPort + 65536 : p.containerPort), c2.portMappings.filter(p, p.containerPort > 0).map(p, p.protocol == 'udp' ? p.containerPort + 65536 : p.containerPort))))",message="in host and awsvpc network modes two containers cannot use the same containerPort and protocol (they share one address)",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.networkMode != 'none' || self.containerDefinitions.all(c, !has(c.portMappings))",message="network mode none cannot publish portMappings",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.networkMode != 'host' || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, size(p.containerPortRange) == 0))",message="containerPortRange works in bridge and awsvpc network modes only, as in ECS",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.networkMode != 'host' || self.containerDefinitions.all(c, !has(c.systemControls) || c.systemControls.all(s, !s.namespace.startsWith('net.')))",message="net.* systemControls would change the instance's own network in host network mode",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!has(self.ipcMode) || self.ipcMode != 'host' || self.containerDefinitions.all(c, !has(c.systemControls) || c.systemControls.all(s, !s.namespace.startsWith('kernel.') && !s.namespace.startsWith('fs.mqueue.')))",message="IPC systemControls (kernel.*, fs.mqueue.*) would change the instance's own IPC namespace with ipcMode host",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.linuxParameters) || !has(c.linuxParameters.maxSwap) || c.linuxParameters.maxSwap == 0 || has(c.memory) || has(self.memory))",message="linuxParameters.maxSwap needs a memory limit (the container's memory or the task's)",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.networkMode == 'bridge' || self.containerDefinitions.all(c, !has(c.links))",message="links work in bridge network mode only, as in ECS",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="self.containerDefinitions.all(c, !has(c.links) || c.links.all(l, l.split(':')[0] != c.name && self.containerDefinitions.exists(x, x.name == l.split(':')[0])))",message="links name another container of the task definition",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!(self.networkMode in ['awsvpc', 'host']) || self.containerDefinitions.all(c, !has(c.hostname))",message="hostname is not supported in awsvpc and host network modes, as in ECS",fieldPath=".containerDefinitions"
// +kubebuilder:validation:XValidation:rule="!(self.networkMode in ['awsvpc', 'host']) || self.containerDefinitions.all(c, !has(c.dnsServers) && !has(c.dnsSearchDomains) && !has(c.extraHosts))",message="dnsServers, dnsSearchDomains and extraHosts are not supported in awsvpc and host network modes, as in ECS",fieldPath=".containerDefinitions"
type TaskDefinitionSpec struct {
	// containerDefinitions are the containers of the task (1-10, as in ECS).
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	ContainerDefinitions []ContainerDefinition `json:"containerDefinitions"`

	// cpu for the whole task, in any of ECS's forms: CPU units as a number or a
	// string (1024, "1024"; 1024 units = one vCPU) or vCPUs ("1 vCPU", "0.5 vcpu").
	// 128-196608 units. A hard cgroup quota shared by its containers, and the amount
	// placement reserves when set. CPUUnits gives the normalised value.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=24
	// +kubebuilder:validation:XValidation:rule=`type(self) == int || self.matches('^\\s*([0-9]+|[0-9]*[.][0-9]+)\\s*([vV][cC][pP][uU])?\\s*$')`,message=`cpu must be CPU units (1024 or "1024") or vCPUs ("1 vCPU", "0.5 vcpu")`
	// +kubebuilder:validation:XValidation:rule=`type(self) == int ? (self >= 128 && self <= 196608) : (!self.matches('^\\s*([0-9]+|[0-9]*[.][0-9]+)\\s*([vV][cC][pP][uU])?\\s*$') || (double(self.find('[0-9]*[.]?[0-9]+')) * (self.lowerAscii().contains('vcpu') ? 1024.0 : 1.0) >= 128.0 && double(self.find('[0-9]*[.]?[0-9]+')) * (self.lowerAscii().contains('vcpu') ? 1024.0 : 1.0) <= 196608.0))`,message="cpu must be between 128 and 196608 units (0.125 to 192 vCPU)"
	Cpu *intstr.IntOrString `json:"cpu,omitempty"`

	// memory for the whole task, in any of ECS's forms: MiB as a number or a string
	// (512, "512") or GB ("2 GB", "0.5GB"; 1 GB = 1024 MiB). 6-4194304 MiB. A hard
	// limit shared by its containers, and the amount placement reserves when set.
	// MemoryMiB gives the normalised value.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=24
	// +kubebuilder:validation:XValidation:rule=`type(self) == int || self.matches('^\\s*([0-9]+|[0-9]*[.][0-9]+)\\s*([gG][bB]|[gG][iI][bB]|[mM][bB]|[mM][iI][bB])?\\s*$')`,message=`memory must be MiB (512 or "512") or GB ("2 GB", "0.5GB")`
	// +kubebuilder:validation:XValidation:rule=`type(self) == int ? (self >= 6 && self <= 4194304) : (!self.matches('^\\s*([0-9]+|[0-9]*[.][0-9]+)\\s*([gG][bB]|[gG][iI][bB]|[mM][bB]|[mM][iI][bB])?\\s*$') || (double(self.find('[0-9]*[.]?[0-9]+')) * (self.lowerAscii().contains('g') ? 1024.0 : 1.0) >= 6.0 && double(self.find('[0-9]*[.]?[0-9]+')) * (self.lowerAscii().contains('g') ? 1024.0 : 1.0) <= 4194304.0))`,message="memory must be between 6 MiB and 4194304 MiB (4096 GB)"
	Memory *intstr.IntOrString `json:"memory,omitempty"`

	// requiresCompatibilities are the launch types the definition was written for
	// (EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES). Berth runs every task on its
	// container instances; the list is kept so that ECS definitions apply as they
	// are and ECS clients read back what they registered.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	RequiresCompatibilities []Compatibility `json:"requiresCompatibilities,omitempty"`

	// runtimePlatform is the operating system and CPU architecture the task's images
	// need. It is a placement requirement: tasks run only on instances whose
	// ecs.os-type and ecs.cpu-architecture attributes match.
	// +optional
	RuntimePlatform *RuntimePlatform `json:"runtimePlatform,omitempty"`

	// taskRoleArn is the IAM role of the task's containers in ECS. Kept, without
	// effect: there is no IAM here (condition Honoured names it).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	TaskRoleArn string `json:"taskRoleArn,omitempty"`

	// executionRoleArn is the IAM role ECS's agent pulls images and reads secrets
	// with. Kept, without effect: Berth pulls with repositoryCredentials and reads
	// secrets from Kubernetes Secrets (condition Honoured names it).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	ExecutionRoleArn string `json:"executionRoleArn,omitempty"`

	// ephemeralStorage is Fargate's task storage size. Kept, without effect: tasks
	// use the instance's disk (condition Honoured names it).
	// +optional
	EphemeralStorage *EphemeralStorage `json:"ephemeralStorage,omitempty"`

	// tags are ECS's key-value tags of the task definition (ListTagsForResource reads
	// them back); labels and annotations are Kubernetes' own.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=50
	Tags []Tag `json:"tags,omitempty"`

	// networkMode is bridge (default), host, awsvpc or none.
	// +optional
	// +kubebuilder:default=bridge
	NetworkMode NetworkMode `json:"networkMode,omitempty"`

	// pidMode host shares the instance's process namespace; task shares one
	// namespace among the task's containers (held by a pause process the agent runs,
	// as ECS's agent does); unset gives each container its own. none is for ipcMode
	// only, as in ECS.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self != 'none'",message="pidMode none is not valid (ECS allows host and task): use host or task, or leave pidMode unset"
	PidMode NamespaceMode `json:"pidMode,omitempty"`

	// ipcMode host shares the instance's IPC namespace; task shares one among the
	// task's containers, SysV IPC and /dev/shm alike (held by a pause process, as
	// ECS's agent does with Docker's shareable IPC); none gives each container a
	// private one without /dev/shm; unset gives each container its own.
	// +optional
	IpcMode NamespaceMode `json:"ipcMode,omitempty"`

	// volumes the containers can mount.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Volumes []Volume `json:"volumes,omitempty"`

	// placementConstraints every instance running this task must satisfy (memberOf
	// only, as in ECS).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	PlacementConstraints []TaskDefinitionPlacementConstraint `json:"placementConstraints,omitempty"`

	// revisionHistoryLimit is how many INACTIVE revisions are kept (default 10).
	// Changing it does not create a revision.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// TaskDefinitionRevision describes one stored revision.
type TaskDefinitionRevision struct {
	// revision number, starting at 1 and never reused.
	// +required
	// +kubebuilder:validation:Minimum=1
	Revision int32 `json:"revision"`

	// hash of the revision's content; re-applying an identical spec matches it and
	// creates no revision.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash"`

	// status is ACTIVE or INACTIVE.
	// +required
	Status RevisionStatus `json:"status"`

	// createdAt is when the revision was registered.
	// +required
	CreatedAt metav1.Time `json:"createdAt"`
}

// TaskDefinitionStatus is the observed state of a TaskDefinition.
type TaskDefinitionStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// latestRevision is the revision of the current spec, and the highest number
	// ever issued for this family.
	// +optional
	LatestRevision int32 `json:"latestRevision,omitempty"`

	// revisions kept, newest first.
	// +optional
	// +listType=map
	// +listMapKey=revision
	// +kubebuilder:validation:MaxItems=1100
	Revisions []TaskDefinitionRevision `json:"revisions,omitempty"`

	// utilization is the CPUUtilization and MemoryUtilization of the family's
	// running tasks in every cluster, refreshed about once a minute.
	// +optional
	Utilization *Utilization `json:"utilization,omitempty"`

	// conditions: Accepted (the spec passed the checks the schema cannot do),
	// Revisioned (the current spec is stored as latestRevision), RolledOut (every
	// Service following the family completed a deployment of latestRevision) and
	// Honoured (every field set has an effect; False names those kept without one).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TaskDefinition is a family of task definitions (the object's name is the ECS
// family). Each change of its spec is registered as a new immutable revision that
// Services and Tasks reference as `family` (latest) or `family:N`.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=td;taskdef,categories=ecs
// +kubebuilder:printcolumn:name="Latest",type=integer,JSONPath=`.status.latestRevision`,description="Latest revision"
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.networkMode`
// +kubebuilder:printcolumn:name="CPU%",type=integer,JSONPath=`.status.utilization.cpuUtilization`,priority=1
// +kubebuilder:printcolumn:name="MEM%",type=integer,JSONPath=`.status.utilization.memoryUtilization`,priority=1
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="RolledOut",type=string,JSONPath=`.status.conditions[?(@.type=="RolledOut")].status`
// +kubebuilder:printcolumn:name="Honoured",type=string,JSONPath=`.status.conditions[?(@.type=="Honoured")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 200",message="metadata.name: a task definition family name is at most 200 characters"
type TaskDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired task definition.
	// +required
	Spec TaskDefinitionSpec `json:"spec"`

	// status lists the revisions registered for this family.
	// +optional
	Status TaskDefinitionStatus `json:"status,omitempty"`
}

// TaskDefinitionList is a list of TaskDefinitions.
//
// +kubebuilder:object:root=true
type TaskDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TaskDefinition `json:"items"`
}
