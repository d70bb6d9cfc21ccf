package revision

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

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

func TestMayBeRegistered(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	pending := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Generation: 2},
		Status: ecsv1alpha1.TaskDefinitionStatus{ObservedGeneration: 1}}
	registered := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Generation: 2},
		Status: ecsv1alpha1.TaskDefinitionStatus{ObservedGeneration: 2}}
	for _, tc := range []struct {
		name string
		td   *ecsv1alpha1.TaskDefinition
		age  time.Duration
		want bool
	}{
		{"no TaskDefinition yet, referrer just applied", nil, time.Second, true},
		{"no TaskDefinition after the grace", nil, ApplyGrace, false},
		{"TaskDefinition registering", pending, time.Hour, true},
		{"TaskDefinition registered, revision missing", registered, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MayBeRegistered(tc.td, now.Add(-tc.age), now); got != tc.want {
				t.Errorf("MayBeRegistered = %v, want %v", got, tc.want)
			}
		})
	}
}
