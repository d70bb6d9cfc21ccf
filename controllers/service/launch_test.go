package service

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestLaunchBackoff: the primary deployment launches freely until it has three recent
// failures, then waits 5 s after the latest, doubling per failure up to 5 minutes;
// failures older than 15 minutes, other deployments' and other stops do not count.
func TestLaunchBackoff(t *testing.T) {
	failedAt := func(name, dep string, ago time.Duration) *ecsv1alpha1.Task {
		return task(name, dep, stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now.Add(-ago)))
	}
	recent := func(n int) []*ecsv1alpha1.Task { // the latest a minute ago
		var out []*ecsv1alpha1.Task
		for i := range n {
			out = append(out, failedAt(fmt.Sprintf("f%d", i), primaryID, time.Minute+time.Duration(i)*time.Second))
		}
		return out
	}
	latest := now.Add(-time.Minute)
	tests := []struct {
		name  string
		tasks []*ecsv1alpha1.Task
		want  time.Time // zero: launch at once
	}{
		{name: "no failures"},
		{name: "two failures are free", tasks: recent(2)},
		{name: "the third waits 5s", tasks: recent(3), want: latest.Add(5 * time.Second)},
		{name: "the fourth 10s", tasks: recent(4), want: latest.Add(10 * time.Second)},
		{name: "the sixth 40s", tasks: recent(6), want: latest.Add(40 * time.Second)},
		{name: "capped at 5 minutes", tasks: recent(40), want: latest.Add(5 * time.Minute)},
		{
			name:  "failures older than the window do not count",
			tasks: append(recent(2), failedAt("stale-1", primaryID, 20*time.Minute), failedAt("stale-2", primaryID, 16*time.Minute)),
		},
		{
			name:  "another deployment's failures do not count",
			tasks: append(recent(2), failedAt("old-1", oldID, time.Second), failedAt("old-2", oldID, time.Second)),
		},
		{
			name: "stops that are not failures do not count",
			tasks: append(recent(2),
				task("scaled-in", primaryID, stoppedWith(ecsv1alpha1.StopServiceSchedulerInitiated, now)),
				task("by-user", primaryID, stoppedWith(ecsv1alpha1.StopUserInitiated, now))),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(nil, nil, tc.tasks...)
			if got := s.launchBackoff(); !got.Equal(tc.want) {
				t.Errorf("launchBackoff = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLaunchBackoffKeep: collection keeps exactly as many recent failures as the
// backoff can tell apart.
func TestLaunchBackoffKeep(t *testing.T) {
	keep := int(launchBackoffKeep())
	if got := launchBackoffDelay(keep); got != launchBackoffMax {
		t.Errorf("delay after %d failures = %v, want the maximum %v", keep, got, launchBackoffMax)
	}
	if got := launchBackoffDelay(keep - 1); got >= launchBackoffMax {
		t.Errorf("delay after %d failures = %v, want less than the maximum: keep is larger than needed", keep-1, got)
	}
}

// TestSlowStartBatch: creates run in batches of 1, 2, 4, ...; a failed create ends the
// launch after its batch, and every create of that batch that succeeded is reported.
func TestSlowStartBatch(t *testing.T) {
	tasks := make([]*ecsv1alpha1.Task, 10)
	for i := range tasks {
		tasks[i] = task(fmt.Sprintf("t%d", i), primaryID)
	}
	tests := []struct {
		name        string
		failAt      int // -1: none
		wantCalls   int
		wantCreated []string
	}{
		{name: "all", failAt: -1, wantCalls: 10, wantCreated: []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"}},
		{name: "the first fails: one call", failAt: 0, wantCalls: 1},
		{name: "in the second batch (t1, t2)", failAt: 1, wantCalls: 3, wantCreated: []string{"t0", "t2"}},
		{name: "in the third batch (t3 to t6)", failAt: 4, wantCalls: 7, wantCreated: []string{"t0", "t1", "t2", "t3", "t5", "t6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			created, err := slowStartBatch(tasks, func(tk *ecsv1alpha1.Task) error {
				mu.Lock()
				calls++
				mu.Unlock()
				if tk.Name == fmt.Sprintf("t%d", tc.failAt) {
					return errors.New("quota exceeded")
				}
				return nil
			})
			if (err != nil) != (tc.failAt >= 0) {
				t.Errorf("error %v, want one: %t", err, tc.failAt >= 0)
			}
			if calls != tc.wantCalls {
				t.Errorf("%d creates, want %d", calls, tc.wantCalls)
			}
			sort.Strings(created)
			if diff := cmp.Diff(tc.wantCreated, created); diff != "" {
				t.Errorf("created (-want +got):\n%s", diff)
			}
		})
	}
}
