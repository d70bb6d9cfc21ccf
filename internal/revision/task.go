package revision

import (
	"strconv"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// OfTask is the revision a task runs, 0 while it is not known: the one its agent
// reported (status.taskDefinitionRevision), else the one the scheduler resolved at
// binding (AnnotationTaskDefinitionRevision), else its pinned reference's.
func OfTask(t *ecsv1alpha1.Task) int32 {
	if n := t.Status.TaskDefinitionRevision; n > 0 {
		return n
	}
	if v, ok := t.Annotations[ecsv1alpha1.AnnotationTaskDefinitionRevision]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
			return int32(n)
		}
	}
	if ref, err := ParseRef(t.Spec.TaskDefinition); err == nil && ref.Pinned() {
		return ref.Revision
	}
	return 0
}

// TaskRef is the task's reference with the revision it runs filled in when known.
func TaskRef(t *ecsv1alpha1.Task) (Ref, error) {
	ref, err := ParseRef(t.Spec.TaskDefinition)
	if err != nil {
		return ref, err
	}
	if n := OfTask(t); n > 0 {
		ref.Revision = n
	}
	return ref, nil
}
