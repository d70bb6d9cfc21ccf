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

	// AnnotationHash is the content hash of a revision (ControllerRevision).
	AnnotationHash = "ecs.berth.dev/hash"

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

	// TaskFieldContainerInstance and TaskFieldCluster are the Task's selectable
	// fields: agents list and watch only their own tasks with
	// `spec.containerInstance=<name>`.
	TaskFieldContainerInstance = "spec.containerInstance"
	TaskFieldCluster           = "spec.cluster"
)

// RevisionName is the name of the ControllerRevision holding revision n of a family.
func RevisionName(family string, n int32) string {
	return family + "-rev" + strconv.FormatInt(int64(n), 10)
}
