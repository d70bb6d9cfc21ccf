// Package conditions sets status conditions the way every Berth controller does:
// observedGeneration on each condition, transition times kept when the status does
// not change, and messages bounded.
package conditions

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// maxMessage keeps messages well within the API's 32 KiB limit.
const maxMessage = 4096

// Set adds or updates the condition typ in conds.
func Set(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: Truncate(msg), ObservedGeneration: generation,
	})
}

// True reports whether condition typ is present with status True.
func True(conds []metav1.Condition, typ string) bool {
	return meta.IsStatusConditionTrue(conds, typ)
}

// Truncate shortens a message to the length Berth puts in conditions and Events.
func Truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}

// Apply builds the server-side-apply form of a condition for a writer that shares the
// conditions list with others (each owns its own condition types). The transition
// time is kept from existing when the status does not change.
func Apply(existing []metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, msg string, now time.Time) *metav1ac.ConditionApplyConfiguration {
	transition := metav1.NewTime(now)
	if old := meta.FindStatusCondition(existing, typ); old != nil && old.Status == status {
		transition = old.LastTransitionTime
	}
	return metav1ac.Condition().
		WithType(typ).WithStatus(status).WithReason(reason).WithMessage(Truncate(msg)).
		WithObservedGeneration(generation).WithLastTransitionTime(transition)
}

// Count writes n and the noun that goes with it ("1 task", "3 tasks"), for the
// messages of conditions and events.
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
