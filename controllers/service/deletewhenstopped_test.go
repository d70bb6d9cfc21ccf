package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

func TestDeletedWhenStopped(t *testing.T) {
	history := deployment.History{Retention: time.Hour, Limit: 2, KeepNewest: true}
	planned := func(names ...string) []liveTask {
		var out []liveTask
		for _, n := range names {
			out = append(out, liveTask{task: &ecsv1alpha1.Task{}})
			out[len(out)-1].task.Name = n
		}
		return out
	}
	judged := func(name string, code ecsv1alpha1.StopCode, reason string) liveTask {
		lt := planned(name)[0]
		lt.stopNow(code, reason)
		return lt
	}
	tests := []struct {
		name    string
		history deployment.History
		live    []liveTask
		recent  int
		want    []string
	}{
		{name: "fewer planned stops than the limit: every one reports STOPPED", history: history, live: planned("a", "b")},
		{name: "beyond the limit: the most urgent are deleted, the last kept", history: history,
			live: planned("a", "b", "c", "d", "e"), want: []string{"a", "b", "c"}},
		{name: "judged stops always report STOPPED and do not count", history: history,
			live: append(planned("a", "b", "c"),
				judged("sick", ecsv1alpha1.StopServiceSchedulerInitiated, unhealthyStopReason),
				judged("lost", ecsv1alpha1.StopInstanceUnreachable, "Container instance i-1 was deregistered")),
			want: []string{"a"}},
		{name: "recent kept stops leave room for fewer", history: history,
			live: planned("a", "b", "c"), recent: 1, want: []string{"a", "b"}},
		{name: "the window's kept stops already made: all deleted", history: history,
			live: planned("a", "b", "c"), recent: 2, want: []string{"a", "b", "c"}},
		{name: "no limit: all kept until the retention period ends", history: deployment.History{Retention: time.Hour},
			live: planned("a", "b", "c"), recent: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			byName := map[string]*liveTask{}
			var stops []string
			for i := range tc.live {
				byName[tc.live[i].task.Name] = &tc.live[i]
				stops = append(stops, tc.live[i].task.Name)
			}
			got := deletedWhenStopped(stops, byName, tc.history, tc.recent)
			var names []string
			for _, n := range stops {
				if got[n] {
					names = append(names, n)
				}
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("deleted when stopped (-want +got):\n%s", diff)
			}
		})
	}
	// A 5,000-task rollout's pass of 500 stops under the default history.
	var stops []string
	byName := map[string]*liveTask{}
	for i := range 500 {
		lt := planned(fmt.Sprintf("web-%03d", i))[0]
		byName[lt.task.Name] = &lt
		stops = append(stops, lt.task.Name)
	}
	h := deployment.History{Retention: time.Hour, Limit: defaultStoppedTaskHistoryLimit, KeepNewest: true}
	if got := len(deletedWhenStopped(stops, byName, h, 0)); got != 500-defaultStoppedTaskHistoryLimit {
		t.Errorf("a pass of 500 planned stops: %d deleted when stopped, want %d", got, 500-defaultStoppedTaskHistoryLimit)
	}
}

func TestRecentKeptStops(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	task := func(desired ecsv1alpha1.DesiredStatus, marked bool, last ecsv1alpha1.TaskStatusValue, stoppedAgo time.Duration) *ecsv1alpha1.Task {
		tk := &ecsv1alpha1.Task{}
		tk.Spec.DesiredStatus, tk.Spec.DeleteWhenStopped, tk.Status.LastStatus = desired, marked, last
		if last == ecsv1alpha1.TaskStopped {
			tk.Status.StoppedAt = &metav1.Time{Time: now.Add(-stoppedAgo)}
		}
		return tk
	}
	deleting := task(ecsv1alpha1.DesiredStopped, false, ecsv1alpha1.TaskStopped, time.Second)
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	for _, tc := range []struct {
		name string
		task *ecsv1alpha1.Task
		want int
	}{
		{name: "running", task: task(ecsv1alpha1.DesiredRunning, false, ecsv1alpha1.TaskRunning, 0)},
		{name: "stopping, kept", task: task(ecsv1alpha1.DesiredStopped, false, ecsv1alpha1.TaskRunning, 0), want: 1},
		{name: "stopping, deleted when stopped", task: task(ecsv1alpha1.DesiredStopped, true, ecsv1alpha1.TaskRunning, 0)},
		{name: "stopped within the window", task: task(ecsv1alpha1.DesiredStopped, false, ecsv1alpha1.TaskStopped, 59*time.Second), want: 1},
		{name: "stopped a window ago", task: task(ecsv1alpha1.DesiredStopped, false, ecsv1alpha1.TaskStopped, deployment.KeptStopsWindow)},
		{name: "failed on its own (desired RUNNING)", task: task(ecsv1alpha1.DesiredRunning, false, ecsv1alpha1.TaskStopped, time.Second)},
		{name: "being deleted", task: deleting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := recentKeptStops([]*ecsv1alpha1.Task{tc.task}, now); got != tc.want {
				t.Errorf("recentKeptStops = %d, want %d", got, tc.want)
			}
		})
	}
}
