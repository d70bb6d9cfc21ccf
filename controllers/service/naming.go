package service

import (
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Task names are `<service>-<deployment>-<slot>-<attempt>`: deterministic, so a
// restarted manager with a stale cache, or a second manager, computes the same name
// and collides on AlreadyExists instead of creating an extra task.

// LabelSlot is the slot of a service task: an ordinal for REPLICA services, a hash of
// the instance name for DAEMON services. With the deployment ID it makes task names
// deterministic.
const LabelSlot = "ecs.berth.dev/slot"

// newTasks builds n tasks of the primary deployment with deterministic names.
func (s *state) newTasks(n int) []*ecsv1alpha1.Task {
	if n <= 0 {
		return nil
	}
	attempts := s.nextAttempts()
	instanceOf := map[string]string{}
	for _, inst := range s.eligible {
		instanceOf[slotOfInstance(inst)] = inst
	}
	slots := s.freeSlots(n)
	out := make([]*ecsv1alpha1.Task, 0, len(slots))
	for _, slot := range slots {
		out = append(out, s.buildTask(slot, attempts[slot], instanceOf[slot]))
	}
	return out
}

// taskName is the name of a task of a service's deployment in a slot.
func taskName(service, deploymentID, slot string, attempt int) string {
	return fmt.Sprintf("%s-%s-%s-%d", service, deploymentID, slot, attempt)
}

// attemptOf is the attempt number a task name ends with.
func attemptOf(name string) (int, bool) {
	a, err := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
	return a, err == nil
}

// nextAttempts is, per slot of the primary deployment, the attempt number its next
// task takes: one more than any task of that slot still stored.
func (s *state) nextAttempts() map[string]int {
	attempts := map[string]int{}
	for _, t := range s.tasks {
		if t.Labels[ecsv1alpha1.LabelDeployment] != s.primary.ID {
			continue
		}
		slot := t.Labels[LabelSlot]
		if a, ok := attemptOf(t.Name); ok && a+1 > attempts[slot] {
			attempts[slot] = a + 1
		}
	}
	return attempts
}

// freeSlots picks up to n slots no live primary task holds: the lowest ordinals for
// REPLICA services, the eligible instances without a task for DAEMON services.
func (s *state) freeSlots(n int) []string {
	stopped := make(map[string]bool, len(s.stopped))
	for _, name := range s.stopped {
		stopped[name] = true
	}
	taken := map[string]bool{}
	for _, lt := range s.live {
		if lt.plan.Primary && !lt.plan.StopNow && !stopped[lt.task.Name] {
			taken[lt.task.Labels[LabelSlot]] = true
		}
	}
	var slots []string
	if s.svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
		for _, inst := range s.eligible {
			if slot := slotOfInstance(inst); !taken[slot] && len(slots) < n {
				slots = append(slots, slot)
			}
		}
		return slots
	}
	for i := 0; len(slots) < n; i++ {
		if slot := strconv.Itoa(i); !taken[slot] {
			slots = append(slots, slot)
		}
	}
	return slots
}

// buildTask is the task of the primary deployment in a slot. A DAEMON task also names
// its instance (daemonInstance) in a memberOf constraint.
func (s *state) buildTask(slot string, attempt int, daemonInstance string) *ecsv1alpha1.Task {
	svc := s.svc
	t := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{
			Name:      taskName(svc.Name, s.primary.ID, slot, attempt),
			Namespace: svc.Namespace,
			Labels: map[string]string{
				ecsv1alpha1.LabelService:    svc.Name,
				ecsv1alpha1.LabelDeployment: s.primary.ID,
				LabelSlot:                   slot,
			},
			Annotations:     map[string]string{ecsv1alpha1.AnnotationServiceGeneration: strconv.FormatInt(svc.Generation, 10)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))},
		},
		Spec: ecsv1alpha1.TaskSpec{
			Cluster:              svc.Spec.Cluster,
			TaskDefinition:       s.primary.TaskDefinition,
			DesiredStatus:        ecsv1alpha1.DesiredRunning,
			Group:                "service:" + svc.Name,
			StartedBy:            "ecs-svc/" + s.primary.ID,
			PlacementConstraints: svc.Spec.PlacementConstraints,
			PlacementStrategy:    svc.Spec.PlacementStrategy,
			// ECS Exec follows the service's setting at the task's start (it is
			// immutable on the task, as in ECS).
			EnableExecuteCommand: svc.Spec.EnableExecuteCommand,
		},
	}
	// The deployment's pinned image digests (versionConsistency, digests.go).
	t.Spec.ImageDigests = append([]ecsv1alpha1.ContainerImageDigest(nil), s.primary.ImageDigests...)
	if daemonInstance != "" {
		// The scheduler still checks that the task fits; the constraint pins where.
		t.Spec.PlacementConstraints = append(append([]ecsv1alpha1.PlacementConstraint(nil), t.Spec.PlacementConstraints...),
			ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "instanceId == " + daemonInstance})
	}
	return t
}
