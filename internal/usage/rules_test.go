package usage

import (
	"testing"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestPhaseOf(t *testing.T) {
	for _, tc := range []struct {
		last    ecsv1alpha1.TaskStatusValue
		desired ecsv1alpha1.DesiredStatus
		want    Phase
	}{
		{"", ecsv1alpha1.DesiredRunning, PhasePending},
		{ecsv1alpha1.TaskProvisioning, ecsv1alpha1.DesiredRunning, PhasePending},
		{ecsv1alpha1.TaskPending, ecsv1alpha1.DesiredRunning, PhasePending},
		{ecsv1alpha1.TaskActivating, ecsv1alpha1.DesiredRunning, PhasePending},
		{ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredRunning, PhaseRunning},
		{ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredStopped, PhaseRunning},
		{ecsv1alpha1.TaskPending, ecsv1alpha1.DesiredStopped, PhaseOther},
		{"", ecsv1alpha1.DesiredStopped, PhaseOther},
		{ecsv1alpha1.TaskDeactivating, ecsv1alpha1.DesiredStopped, PhaseOther},
		{ecsv1alpha1.TaskStopped, ecsv1alpha1.DesiredRunning, PhaseOther},
	} {
		task := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{DesiredStatus: tc.desired}, Status: ecsv1alpha1.TaskStatus{LastStatus: tc.last}}
		if got := PhaseOf(task); got != tc.want {
			t.Errorf("PhaseOf(last %q, desired %q) = %v, want %v", tc.last, tc.desired, got, tc.want)
		}
	}
}

func TestRevisionInUse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ref      string
		resolved int32
		last     ecsv1alpha1.TaskStatusValue
		want     int32
	}{
		{name: "unresolved family reference", ref: "web", want: 0},
		{name: "resolved family reference", ref: "web", resolved: 4, want: 4},
		{name: "pinned before resolution", ref: "web:2", want: 2},
		{name: "pinned and resolved", ref: "web:2", resolved: 2, last: ecsv1alpha1.TaskRunning, want: 2},
		{name: "stopping still uses it", ref: "web", resolved: 4, last: ecsv1alpha1.TaskDeactivating, want: 4},
		{name: "stopped", ref: "web", resolved: 4, last: ecsv1alpha1.TaskStopped, want: 0},
		{name: "stopped pinned", ref: "web:2", last: ecsv1alpha1.TaskStopped, want: 0},
		{name: "invalid reference", ref: "web:x", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &ecsv1alpha1.Task{
				Spec:   ecsv1alpha1.TaskSpec{TaskDefinition: tc.ref},
				Status: ecsv1alpha1.TaskStatus{TaskDefinitionRevision: tc.resolved, LastStatus: tc.last},
			}
			if got := RevisionInUse(task); got != tc.want {
				t.Errorf("RevisionInUse = %d, want %d", got, tc.want)
			}
		})
	}
}
