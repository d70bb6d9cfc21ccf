package hollow

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/taskstatus"
)

// Condition reasons of the agent's Running and Stopped conditions (apis/v1alpha1
// declares only the manager's).
const (
	reasonStarted = "Started"
	reasonStopped = "Stopped"
)

// Exit codes and messages of simulated containers.
const (
	// exitSIGTERM is a container stopped by SIGTERM (128 + 15), as a real agent
	// stopping a running task reports.
	exitSIGTERM = 143
	// exitSimulatedFailure is the exit code of a container with a FailImages image.
	exitSimulatedFailure = 1

	reasonSimulatedFailure = "hollow: simulated failure"
	// stoppedReasonEssentialExited is ECS's stoppedReason for EssentialContainerExited.
	stoppedReasonEssentialExited = "Essential container in task exited"
)

// runtimeID is a simulated container's ID: unique per task and container, as a real
// agent's containerd IDs.
func runtimeID(task types.UID, container string) string {
	return "hollow://" + string(task) + "/" + container
}

func matchesAny(image string, substrings []string) bool {
	for _, s := range substrings {
		if strings.Contains(image, s) {
			return true
		}
	}
	return false
}

func hasHealthCheck(c *ecsv1alpha1.ContainerDefinition) bool {
	return c.HealthCheck != nil && len(c.HealthCheck.Command) > 0 && c.HealthCheck.Command[0] != "NONE"
}

// startPlan is what starting a task's containers leads to.
type startPlan struct {
	containers []ecsv1alpha1.ContainerStatus
	health     ecsv1alpha1.HealthStatus
	// failed is true when an essential container exited at once (FailImages): the task
	// stops with EssentialContainerExited instead of running.
	failed bool
}

// planStart simulates starting the containers of a revision with their published
// ports. A container whose image matches FailImages exits with code 1 (an essential
// one fails the task; a non-essential one just exits, as in ECS); UnhealthyImages
// report UNHEALTHY. The task's health is UNHEALTHY when an essential container is,
// else HEALTHY when any container has a health check, else UNKNOWN.
func planStart(cfg *Config, uid types.UID, spec *ecsv1alpha1.TaskDefinitionSpec, bindings []plannedBinding) startPlan {
	p := startPlan{health: ecsv1alpha1.HealthUnknown}
	anyCheck, unhealthy := false, false
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		essential := c.Essential == nil || *c.Essential
		cs := ecsv1alpha1.ContainerStatus{
			Name:         c.Name,
			RuntimeID:    runtimeID(uid, c.Name),
			LastStatus:   ecsv1alpha1.ContainerRunning,
			HealthStatus: ecsv1alpha1.HealthUnknown,
		}
		if hasHealthCheck(c) {
			anyCheck = true
			cs.HealthStatus = ecsv1alpha1.HealthHealthy
		}
		if matchesAny(c.Image, cfg.UnhealthyImages) {
			cs.HealthStatus = ecsv1alpha1.HealthUnhealthy
			unhealthy = unhealthy || essential
		}
		for _, b := range bindings {
			if b.container == c.Name {
				cs.NetworkBindings = append(cs.NetworkBindings, b.binding)
			}
		}
		if matchesAny(c.Image, cfg.FailImages) {
			cs.LastStatus = ecsv1alpha1.ContainerStopped
			cs.HealthStatus = ecsv1alpha1.HealthUnknown
			cs.ExitCode = ptr.To[int32](exitSimulatedFailure)
			cs.Reason = reasonSimulatedFailure
			cs.NetworkBindings = nil
			p.failed = p.failed || essential
		}
		p.containers = append(p.containers, cs)
	}
	switch {
	case unhealthy:
		p.health = ecsv1alpha1.HealthUnhealthy
	case anyCheck:
		p.health = ecsv1alpha1.HealthHealthy
	}
	return p
}

// stoppedContainers is the final state of containers that were started: running
// ones were stopped with SIGTERM, stopped ones keep their exit, pending ones never ran.
func stoppedContainers(cs []ecsv1alpha1.ContainerStatus) []ecsv1alpha1.ContainerStatus {
	out := make([]ecsv1alpha1.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		s := ecsv1alpha1.ContainerStatus{
			Name:         c.Name,
			RuntimeID:    c.RuntimeID,
			ImageDigest:  c.ImageDigest,
			LastStatus:   ecsv1alpha1.ContainerStopped,
			HealthStatus: ecsv1alpha1.HealthUnknown,
			ExitCode:     c.ExitCode,
			Reason:       c.Reason,
			RestartCount: c.RestartCount,
		}
		switch c.LastStatus {
		case ecsv1alpha1.ContainerStopped:
		case ecsv1alpha1.ContainerRunning:
			s.ExitCode = ptr.To[int32](exitSIGTERM)
		default:
			s.ExitCode = ptr.To[int32](0)
		}
		out = append(out, s)
	}
	return out
}

// neverRanContainers is the final state of the containers of a task stopped before
// it started.
func neverRanContainers(spec *ecsv1alpha1.TaskDefinitionSpec) []ecsv1alpha1.ContainerStatus {
	out := make([]ecsv1alpha1.ContainerStatus, 0, len(spec.ContainerDefinitions))
	for _, c := range spec.ContainerDefinitions {
		out = append(out, ecsv1alpha1.ContainerStatus{
			Name:         c.Name,
			LastStatus:   ecsv1alpha1.ContainerStopped,
			HealthStatus: ecsv1alpha1.HealthUnknown,
			ExitCode:     ptr.To[int32](0),
		})
	}
	return out
}

// condition builds one of the agent's task conditions; lastTransitionTime stays that
// of the current condition when its status does not change, so re-applying the same
// status is a no-op.
func condition(task *ecsv1alpha1.Task, typ string, status metav1.ConditionStatus, reason, message string, at metav1.Time) *metav1ac.ConditionApplyConfiguration {
	if old := meta.FindStatusCondition(task.Status.Conditions, typ); old != nil && old.Status == status {
		at = old.LastTransitionTime
	}
	return metav1ac.Condition().
		WithType(typ).
		WithStatus(status).
		WithReason(reason).
		WithMessage(conditions.Truncate(message)).
		WithLastTransitionTime(at).
		WithObservedGeneration(task.Generation)
}

// baseStatus holds the fields every agent write of a task repeats: with server-side
// apply, a field the agent wrote before and leaves out is removed.
func baseStatus(task *ecsv1alpha1.Task, revision int32, startedAt *metav1.Time) *ecsac.TaskStatusApplyConfiguration {
	st := ecsac.TaskStatus()
	// A revision the manager resolved is repeated with the same value (it is
	// immutable); the agent resolves it only for tasks that reach it unresolved.
	if task.Status.TaskDefinitionRevision > 0 {
		revision = task.Status.TaskDefinitionRevision
	}
	if revision > 0 {
		st.WithTaskDefinitionRevision(revision)
	}
	// createdAt is the manager's when it set one; the agent then repeats it rather
	// than contend for it with another value.
	if task.Status.CreatedAt != nil {
		st.WithCreatedAt(*task.Status.CreatedAt)
	} else {
		st.WithCreatedAt(task.CreationTimestamp)
	}
	if startedAt != nil {
		st.WithStartedAt(*startedAt)
	}
	return st
}

// runningStatus is the agent's status of a task that reached RUNNING: one write takes
// it there from whatever the control plane wrote before.
func runningStatus(task *ecsv1alpha1.Task, revision int32, startedAt metav1.Time, p startPlan) *ecsac.TaskStatusApplyConfiguration {
	st := baseStatus(task, revision, &startedAt).
		WithLastStatus(ecsv1alpha1.TaskRunning).
		WithHealthStatus(p.health)
	for i := range p.containers {
		st.WithContainers(taskstatus.Container(&p.containers[i]))
	}
	return st.WithConditions(
		condition(task, ecsv1alpha1.TaskConditionRunning, metav1.ConditionTrue, reasonStarted, "hollow: containers started", startedAt),
	)
}

// stopOutcome says how and why a task stopped.
type stopOutcome struct {
	code   ecsv1alpha1.StopCode
	reason string
	// at is when the task stopped (stoppingAt and stoppedAt: a simulated stop is
	// instant).
	at         metav1.Time
	startedAt  *metav1.Time
	revision   int32
	containers []ecsv1alpha1.ContainerStatus
}

// stoppedStatus is the agent's status of a task that reached STOPPED.
func stoppedStatus(task *ecsv1alpha1.Task, o stopOutcome) *ecsac.TaskStatusApplyConfiguration {
	st := baseStatus(task, o.revision, o.startedAt).
		WithLastStatus(ecsv1alpha1.TaskStopped).
		WithHealthStatus(ecsv1alpha1.HealthUnknown).
		WithStoppingAt(o.at).
		WithStoppedAt(o.at).
		WithStopCode(o.code)
	if o.reason != "" {
		st.WithStoppedReason(truncate(o.reason, maxStoppedReason))
	}
	for i := range o.containers {
		st.WithContainers(taskstatus.Container(&o.containers[i]))
	}
	message := o.reason
	if message == "" {
		message = string(o.code)
	}
	return st.WithConditions(
		condition(task, ecsv1alpha1.TaskConditionRunning, metav1.ConditionFalse, reasonStopped, message, o.at),
		condition(task, ecsv1alpha1.TaskConditionStopped, metav1.ConditionTrue, string(o.code), message, o.at),
	)
}

// userStop is the outcome the control plane asked for with desiredStatus STOPPED.
func userStop(task *ecsv1alpha1.Task) (ecsv1alpha1.StopCode, string) {
	code := task.Spec.StopCode
	if code == "" {
		code = ecsv1alpha1.StopUserInitiated
	}
	return code, task.Spec.StopReason
}

// maxStoppedReason is the API's bound on stoppedReason and a container's reason.
const maxStoppedReason = 1024

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
