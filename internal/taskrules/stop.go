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
	raw, err := json.Marshal(map[string]any{"spec": map[string]any{
		"desiredStatus": ecsv1alpha1.DesiredStopped, "stopCode": code, "stopReason": TruncateReason(reason),
	}})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return client.RawPatch(types.MergePatchType, raw)
}
