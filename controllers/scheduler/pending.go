package scheduler

import (
	"time"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

// applyGrace is how long a task whose TaskDefinition does not exist at all waits
// quietly for it before it is reported RevisionNotFound. `kubectl apply -f dir/` and
// GitOps tools create a directory's objects one at a time in file order, and
// task-*.yaml sorts before taskdefinition-*.yaml: the task is there first, by design
// of the tool, and a Warning for it would be noise. When the TaskDefinition comes,
// its registration wakes the task (unplacedOfFamily); if it never comes, the next
// retry after the grace reports it.
const applyGrace = 10 * time.Second

// mayBeRegistered tells whether a task whose revision does not resolve waits quietly
// rather than being reported: its TaskDefinition (nil when it does not exist) is
// about to register the revision, or does not exist yet and the task was created
// less than applyGrace ago.
func mayBeRegistered(td *ecsv1alpha1.TaskDefinition, taskCreated, now time.Time) bool {
	if td == nil {
		return now.Sub(taskCreated) < applyGrace
	}
	return revision.RegistrationPending(td)
}
