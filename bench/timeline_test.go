package bench

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestDescribeTimeline(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 700_000_000, time.UTC)
	at := func(s int) metav1.Time {
		return metav1.NewTime(start.Truncate(time.Second).Add(time.Duration(s) * time.Second))
	}
	task := func(created int, started int) ecsv1alpha1.Task {
		t := ecsv1alpha1.Task{}
		t.CreationTimestamp = at(created)
		if started >= 0 {
			s, r := at(started), at(started+1)
			t.Status.StartedAt = &s
			// The agent's report a second after the start; other managers' entries
			// and the agent's own spec writes are not reports.
			t.ManagedFields = []metav1.ManagedFieldsEntry{
				{Manager: ecsv1alpha1.FieldManagerManager, Time: &r},
				{Manager: ecsv1alpha1.FieldManagerAgent, Time: &r},
				{Manager: ecsv1alpha1.FieldManagerAgent, Subresource: "status", Time: &r},
			}
		}
		return t
	}
	for _, tc := range []struct {
		name  string
		tasks []ecsv1alpha1.Task
		end   time.Duration
		want  string
	}{{
		name: "none",
		want: "timeline: no tasks",
	}, {
		name:  "four tasks, one not started",
		tasks: []ecsv1alpha1.Task{task(3, 5), task(0, 1), task(1, 2), task(2, -1)},
		end:   7 * time.Second,
		want:  "timeline of 4 tasks (whole seconds after the phase began, so ±1 s): created 25% by 0 s, 50% by 1 s, 90% by 2 s, 100% by 3 s; started (3) 25% by 1 s, 50% by 1 s, 90% by 2 s, 100% by 5 s; reported by their agents (3) 25% by 2 s, 50% by 2 s, 90% by 3 s, 100% by 6 s; the phase was seen to end 1.7 s after the last of these",
	}, {
		name:  "ten tasks",
		tasks: []ecsv1alpha1.Task{task(0, 1), task(0, 1), task(1, 2), task(1, 2), task(2, 3), task(2, 3), task(3, 4), task(3, 4), task(4, 5), task(9, 12)},
		end:   12 * time.Second,
		want:  "timeline of 10 tasks (whole seconds after the phase began, so ±1 s): created 25% by 0 s, 50% by 2 s, 90% by 4 s, 100% by 9 s; started (10) 25% by 1 s, 50% by 3 s, 90% by 5 s, 100% by 12 s; reported by their agents (10) 25% by 2 s, 50% by 4 s, 90% by 6 s, 100% by 13 s; the phase was seen to end -0.3 s after the last of these",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeTimeline(tc.tasks, start, start.Add(tc.end)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
