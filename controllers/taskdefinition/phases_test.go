package taskdefinition

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNewlyRejected: the InvalidSpec Event is for the moment a spec becomes invalid
// (or invalid for another reason), not for every reconcile of an invalid spec.
func TestNewlyRejected(t *testing.T) {
	cond := func(status metav1.ConditionStatus, msg string) *metav1.Condition {
		return &metav1.Condition{Type: "Accepted", Status: status, Message: msg}
	}
	tests := []struct {
		name     string
		was, now *metav1.Condition
		want     bool
	}{
		{name: "valid stays valid", was: cond(metav1.ConditionTrue, "ok"), now: cond(metav1.ConditionTrue, "ok")},
		{name: "first reconcile, valid", now: cond(metav1.ConditionTrue, "ok")},
		{name: "first reconcile, invalid", now: cond(metav1.ConditionFalse, "bad"), want: true},
		{name: "becomes invalid", was: cond(metav1.ConditionTrue, "ok"), now: cond(metav1.ConditionFalse, "bad"), want: true},
		{name: "invalid for another reason", was: cond(metav1.ConditionFalse, "bad"), now: cond(metav1.ConditionFalse, "worse"), want: true},
		{name: "still invalid for the same reason", was: cond(metav1.ConditionFalse, "bad"), now: cond(metav1.ConditionFalse, "bad")},
		{name: "fixed", was: cond(metav1.ConditionFalse, "bad"), now: cond(metav1.ConditionTrue, "ok")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newlyRejected(tc.was, tc.now); got != tc.want {
				t.Errorf("newlyRejected = %v, want %v", got, tc.want)
			}
		})
	}
}
