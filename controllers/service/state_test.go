package service

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/events"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestEmit: Events about the status wait for the status write; Events about tasks
// already created or stopped are emitted even when the status write fails, since
// the next pass, which sees those tasks, would not announce them again.
func TestEmit(t *testing.T) {
	tests := []struct {
		statusWritten bool
		want          []string
	}{
		{statusWritten: true, want: []string{"Normal DeploymentCompleted", "Normal TasksStarted", "Warning DeploymentFailed"}},
		{statusWritten: false, want: []string{"Normal TasksStarted"}},
	}
	for _, tc := range tests {
		s := newState(&ecsv1alpha1.Service{}, time.Now())
		s.event(false, ecsv1alpha1.ReasonDeploymentCompleted, "Deploy", "completed")
		s.writtenEvent("TasksStarted", "Scale", "has started 1 tasks: a")
		s.event(true, ecsv1alpha1.ReasonDeploymentFailed, "Deploy", "failed")
		rec := events.NewFakeRecorder(10)
		s.emit(rec, tc.statusWritten)
		close(rec.Events)
		var got []string
		for e := range rec.Events { // "<type> <reason> <note>"
			f := strings.Fields(e)
			got = append(got, f[0]+" "+f[1])
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("statusWritten=%v: events (-want +got):\n%s", tc.statusWritten, diff)
		}
	}
}
