package taskrules

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// StopPatch is the write that asks a task to stop: a merge patch of only desiredStatus
// STOPPED, the stop code and the reason (cut to MaxReason), so it needs no read of the
// task first and leaves every other field, and its field owner, alone. The ECS API's
// StopTask, the service scheduler, the console and `berth down` all stop tasks with it.
func StopPatch(code ecsv1alpha1.StopCode, reason string) client.Patch {
	return stopPatch(code, reason, false)
}

// StopAndDeletePatch is StopPatch with deleteWhenStopped: the task's agent deletes it
// once its containers have stopped (DeletedWhenStopped), instead of reporting
// STOPPED. The service scheduler stops with it the tasks its stopped-task history
// would not keep.
func StopAndDeletePatch(code ecsv1alpha1.StopCode, reason string) client.Patch {
	return stopPatch(code, reason, true)
}

func stopPatch(code ecsv1alpha1.StopCode, reason string, deleteWhenStopped bool) client.Patch {
	spec := map[string]any{"desiredStatus": ecsv1alpha1.DesiredStopped, "stopCode": code, "stopReason": TruncateReason(reason)}
	if deleteWhenStopped {
		spec["deleteWhenStopped"] = true
	}
	raw, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		panic(err) // strings and a bool only: cannot fail
	}
	return client.RawPatch(types.MergePatchType, raw)
}

// DeletedWhenStopped reports whether the agent ends task t, once its containers have
// stopped, by deleting it rather than by reporting STOPPED. The agent's admission
// policy (config/admission) lets an agent delete exactly these tasks, and only its
// own.
func DeletedWhenStopped(t *ecsv1alpha1.Task) bool {
	return t.Spec.DeleteWhenStopped && t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped
}
