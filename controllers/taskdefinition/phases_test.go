package taskdefinition

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
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

func TestRegistrationPending(t *testing.T) {
	td := func(generation, observed int64, accepted *metav1.Condition) *ecsv1alpha1.TaskDefinition {
		out := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: generation}}
		out.Status.ObservedGeneration = observed
		if accepted != nil {
			out.Status.Conditions = []metav1.Condition{*accepted}
		}
		return out
	}
	accepted := func(status metav1.ConditionStatus, generation int64) *metav1.Condition {
		return &metav1.Condition{Type: ecsv1alpha1.ConditionAccepted, Status: status, ObservedGeneration: generation}
	}
	tests := []struct {
		name string
		td   *ecsv1alpha1.TaskDefinition
		want bool
	}{
		{name: "just created", td: td(1, 0, nil), want: true},
		{name: "registered", td: td(1, 1, accepted(metav1.ConditionTrue, 1))},
		{name: "changed, not registered yet", td: td(2, 1, accepted(metav1.ConditionTrue, 1)), want: true},
		{name: "invalid spec", td: td(1, 0, accepted(metav1.ConditionFalse, 1))},
		{name: "invalid before, changed since", td: td(2, 0, accepted(metav1.ConditionFalse, 1)), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RegistrationPending(tc.td); got != tc.want {
				t.Errorf("RegistrationPending = %v, want %v", got, tc.want)
			}
		})
	}
}
