package taskrules

import (
	"unicode/utf8"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// MaxReason is the API's bound on a task's stoppedReason, spec.stopReason and a
// container's reason.
const MaxReason = 1024

// TruncateReason cuts s to MaxReason bytes, on a rune boundary, marking the cut.
func TruncateReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	cut := MaxReason - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Reasons as ECS words them. Runbooks and tools match on them, so every writer uses
// these.
const (
	// StoppedReasonEssentialExited is the stoppedReason of EssentialContainerExited.
	StoppedReasonEssentialExited = "Essential container in task exited"
	// StopReasonUnhealthy is the reason the service scheduler gives a task it stops for
	// failing its health checks; the circuit breaker counts such tasks as failed.
	StopReasonUnhealthy = "Task failed container health checks"
	// ContainerReasonOOM is a container's reason when the kernel killed it for
	// exceeding its memory limit: ECS's words, whose prefix (OutOfMemoryError) tools
	// and runbooks match.
	ContainerReasonOOM = "OutOfMemoryError: Container killed due to memory usage"
)

// DefaultStoppedReason is the stoppedReason of a stop the control plane asked for
// without a reason (spec.stopReason empty), by stop code.
func DefaultStoppedReason(code ecsv1alpha1.StopCode) string {
	switch code {
	case ecsv1alpha1.StopUserInitiated:
		return "Task stopped by user"
	case ecsv1alpha1.StopServiceSchedulerInitiated:
		return "Task stopped by the service scheduler"
	case ecsv1alpha1.StopInstanceUnreachable:
		return "Container instance was unreachable"
	case ecsv1alpha1.StopTerminationNotice:
		return "Container instance is terminating"
	}
	return ""
}
