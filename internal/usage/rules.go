package usage

import (
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
)

// Phase is how a task counts in its cluster's status.
type Phase int

const (
	// PhaseOther counts in neither runningTasksCount nor pendingTasksCount.
	PhaseOther Phase = iota
	// PhaseRunning counts in runningTasksCount.
	PhaseRunning
	// PhasePending counts in pendingTasksCount.
	PhasePending
)

// PhaseOf says whether a task counts as running, pending or neither. Running is
// lastStatus RUNNING whatever is desired (a task being stopped still runs); pending
// is a task meant to run that has not started yet.
func PhaseOf(t *ecsv1alpha1.Task) Phase {
	switch t.Status.LastStatus {
	case ecsv1alpha1.TaskRunning:
		return PhaseRunning
	case "", ecsv1alpha1.TaskProvisioning, ecsv1alpha1.TaskPending, ecsv1alpha1.TaskActivating:
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredRunning {
			return PhasePending
		}
	}
	return PhaseOther
}

// RevisionInUse is the revision of its family a task keeps ACTIVE, or 0 for none: a
// task that is not STOPPED uses the revision it runs (revision.OfTask: reported by
// its agent, resolved at binding, or pinned by its reference, `web:3`). An
// unresolved `web` reference uses no revision yet.
func RevisionInUse(t *ecsv1alpha1.Task) int32 {
	if !index.TaskInUse(t) {
		return 0
	}
	return revision.OfTask(t)
}
