package scheduler

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

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
		{"no TaskDefinition yet, task just applied", nil, time.Second, true},
		{"no TaskDefinition after the grace", nil, applyGrace, false},
		{"TaskDefinition registering", pending, time.Hour, true},
		{"TaskDefinition registered, revision missing", registered, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayBeRegistered(tc.td, now.Add(-tc.age), now); got != tc.want {
				t.Errorf("mayBeRegistered = %v, want %v", got, tc.want)
			}
		})
	}
}
