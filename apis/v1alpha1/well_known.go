package v1alpha1

import "strconv"

// Well-known names shared by the manager, the agent and users' tooling. They are part
// of the API: changing one is a breaking change.

const (
	// LabelFamily is on every revision (ControllerRevision) of a task definition.
	LabelFamily = "ecs.berth.dev/family"
	// LabelRevision is the revision number of a ControllerRevision.
	LabelRevision = "ecs.berth.dev/revision"
	// LabelService is on every task a Service created; its value is the Service name.
	LabelService = "ecs.berth.dev/service"
	// LabelDeployment is on every task a Service created; its value is the
	// deployment's ID.
	LabelDeployment = "ecs.berth.dev/deployment"

	// AnnotationECSName is the name an object was given through the ECS API when ECS
	// allows it but Kubernetes does not (MyService, my_family): the object is named
	// KubeName of it, and the API answers with this name.
	AnnotationECSName = "ecs.berth.dev/ecs-name"
	// AnnotationTags are an object's ECS tags set through the ECS API (TagResource,
	// or tags on create), as a JSON list of {key, value}: ECS's keys allow characters
	// that label keys do not. A TaskDefinition's registered tags are spec.tags.
	AnnotationTags = "ecs.berth.dev/tags"
	// AnnotationHash is the content hash of a revision (ControllerRevision).
	AnnotationHash = "ecs.berth.dev/hash"
	// AnnotationDeregistered lists, on a TaskDefinition, the revisions deregistered
	// through the ECS API (DeregisterTaskDefinition) and those whose deletion was asked
	// for (DeleteTaskDefinitions), as a JSON list of {revision, deregisteredAt,
	// deleteRequestedAt}. The TaskDefinition controller and the API read it through
	// internal/revision (Deregistrations), so they agree on what it means.
	AnnotationDeregistered = "ecs.berth.dev/deregistered"
	// AnnotationRegistrations keeps, on a TaskDefinition, what the ECS API needs to
	// describe a registered content exactly as it was sent (the secret ARNs the spec
	// holds as Secret names, the members the apiserver defaulted, who registered it),
	// as a JSON object keyed by the content hash. Only the API reads it.
	AnnotationRegistrations = "ecs.berth.dev/registrations"
	// AnnotationServiceGeneration is on every task a Service created: the Service's
	// metadata.generation the creating manager planned from. A manager whose cached
	// Service is older than a task's knows its cache is behind another manager's.
	AnnotationServiceGeneration = "ecs.berth.dev/service-generation"
	// AnnotationTaskDefinitionRevision is the revision the scheduler resolved a task's
	// family reference (spec.taskDefinition without ":N") to, written in the same write
	// as the binding so that placing a task costs one write. The agent reports it in
	// status.taskDefinitionRevision; read it through revision.OfTask.
	AnnotationTaskDefinitionRevision = "ecs.berth.dev/task-definition-revision"

	// NodeLeaseNamespace holds one Lease per container instance, named after it,
	// renewed by the instance's agent.
	NodeLeaseNamespace = "berth-node-lease"

	// FieldManagerManager is the server-side apply field manager of the manager's
	// controllers.
	FieldManagerManager = "berth-manager"
	// FieldManagerScheduler is the field manager of the manager's scheduler, separate
	// from FieldManagerManager because server-side apply removes the fields a manager
	// owns but leaves out of its next apply: each writer applies its whole part.
	FieldManagerScheduler = "berth-scheduler"
	// FieldManagerAgent is the server-side apply field manager of agents (real or
	// hollow) for the fields they own.
	FieldManagerAgent = "berth-agent"
	// FieldManagerUtilization is the field manager of the manager's utilization
	// writer: status.utilization of Services, TaskDefinitions and Clusters, and
	// nothing else.
	FieldManagerUtilization = "berth-utilization"
	// FieldManagerAutoScaler is the field manager of the manager's service auto
	// scaler: spec.desiredCount through the scale subresource.
	FieldManagerAutoScaler = "berth-autoscaler"

	// TaskFieldContainerInstance and TaskFieldCluster are the Task's selectable
	// fields: agents list and watch only their own tasks with
	// `spec.containerInstance=<name>`.
	TaskFieldContainerInstance = "spec.containerInstance"
	TaskFieldCluster           = "spec.cluster"

	// Built-in attributes every agent reports, as ECS spells them. Placement matches
	// a task definition's runtimePlatform against the first two.
	AttributeOSType           = "ecs.os-type"
	AttributeCPUArchitecture  = "ecs.cpu-architecture"
	AttributeAvailabilityZone = "ecs.availability-zone"
	AttributeInstanceType     = "ecs.instance-type"
)

// CPUArchitectureAttribute is the ecs.cpu-architecture value of a Go GOARCH, as ECS
// writes it (x86_64, arm64).
func CPUArchitectureAttribute(goarch string) string {
	if goarch == "amd64" {
		return "x86_64"
	}
	return goarch
}

// Attributes are the instance attributes a runtime platform requires (ecs.os-type,
// ecs.cpu-architecture), as the agents report them.
func (p *RuntimePlatform) Attributes() map[string]string {
	out := map[string]string{}
	if p == nil {
		return out
	}
	switch p.OperatingSystemFamily {
	case OSFamilyLinux:
		out[AttributeOSType] = "linux"
	}
	switch p.CpuArchitecture {
	case CPUArchitectureX8664:
		out[AttributeCPUArchitecture] = CPUArchitectureAttribute("amd64")
	case CPUArchitectureARM64:
		out[AttributeCPUArchitecture] = CPUArchitectureAttribute("arm64")
	}
	return out
}

// RevisionName is the name of the ControllerRevision holding revision n of a family.
func RevisionName(family string, n int32) string {
	return family + "-rev" + strconv.FormatInt(int64(n), 10)
}
