package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/test/testobj"
)

// TestFailed: what the circuit breaker (and the launch backoff) count as a failure.
func TestFailed(t *testing.T) {
	tests := []struct {
		name string
		task *ecsv1alpha1.Task
		want bool
	}{
		{"failed to start", task("t", primaryID, stoppedWith(ecsv1alpha1.StopTaskFailedToStart, now)), true},
		{"essential container exited", task("t", primaryID, stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now)), true},
		{"stopped for failing health checks, not stopped yet", task("t", primaryID, stopRequested(unhealthyStopReason)), true},
		{"scaled in", task("t", primaryID, stoppedWith(ecsv1alpha1.StopServiceSchedulerInitiated, now)), false},
		{"stopped by the user", task("t", primaryID, stoppedWith(ecsv1alpha1.StopUserInitiated, now)), false},
		{"instance unreachable", task("t", primaryID, stoppedWith(ecsv1alpha1.StopInstanceUnreachable, now)), false},
		{"running", task("t", primaryID, running(ecsv1alpha1.HealthHealthy, now)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := failed(tc.task); got != tc.want {
				t.Errorf("failed = %t, want %t", got, tc.want)
			}
		})
	}
}

// failures are n failed tasks of deployment dep.
func failures(dep string, n int) []*ecsv1alpha1.Task {
	var out []*ecsv1alpha1.Task
	for i := range n {
		out = append(out, task(dep+"-failed-"+string(rune('a'+i)), dep, stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now.Add(-time.Duration(i)*time.Minute))))
	}
	return out
}

// TestJudgeDeployments: the circuit breaker trips at its threshold and, with rollback,
// makes the newest completed deployment PRIMARY again; a deployment whose desired
// tasks are all healthy completes; a drained older deployment becomes INACTIVE.
func TestJudgeDeployments(t *testing.T) {
	type dep struct {
		ID     string
		Status ecsv1alpha1.DeploymentStatus
		State  ecsv1alpha1.RolloutState
		Failed int32
	}
	healthyPrimaries := func(n int) []*ecsv1alpha1.Task {
		var out []*ecsv1alpha1.Task
		for i := range n {
			out = append(out, task("ok-"+string(rune('a'+i)), primaryID, running(ecsv1alpha1.HealthHealthy, now)))
		}
		return out
	}
	tests := []struct {
		name        string
		svc         *ecsv1alpha1.Service
		tasks       []*ecsv1alpha1.Task
		wantPrimary string
		wantDeps    []dep
		wantEvents  []string
	}{
		{
			name:        "below the threshold (3 for 3 tasks)",
			svc:         testobj.Service("ns", "web", "web", 3).CircuitBreaker(true).Obj(),
			tasks:       append(failures(primaryID, 2), task("old-1", oldID, running(ecsv1alpha1.HealthHealthy, now))),
			wantPrimary: primaryID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 2},
				{oldID, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted, 0},
			},
		},
		{
			name: "trips and rolls back; the failed deployment's tasks become old ones",
			svc:  testobj.Service("ns", "web", "web", 3).CircuitBreaker(true).Obj(),
			tasks: append(failures(primaryID, 3), task("old-1", oldID, running(ecsv1alpha1.HealthHealthy, now)),
				task("new-1", primaryID, running(ecsv1alpha1.HealthUnhealthy, now))),
			wantPrimary: oldID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutFailed, 3},
				{oldID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 0},
			},
			wantEvents: []string{ecsv1alpha1.ReasonDeploymentFailed, ecsv1alpha1.ReasonCircuitBreakerRollback},
		},
		{
			name:        "trips and rolls back; a failed deployment without tasks is INACTIVE",
			svc:         testobj.Service("ns", "web", "web", 3).CircuitBreaker(true).Obj(),
			tasks:       append(failures(primaryID, 3), task("old-1", oldID, running(ecsv1alpha1.HealthHealthy, now))),
			wantPrimary: oldID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed, 3},
				{oldID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 0},
			},
			wantEvents: []string{ecsv1alpha1.ReasonDeploymentFailed, ecsv1alpha1.ReasonCircuitBreakerRollback},
		},
		{
			name:        "trips without rollback: the failed deployment stays PRIMARY",
			svc:         testobj.Service("ns", "web", "web", 3).CircuitBreaker(false).Obj(),
			tasks:       failures(primaryID, 3),
			wantPrimary: primaryID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutFailed, 3},
				{oldID, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted, 0},
			},
			wantEvents: []string{ecsv1alpha1.ReasonDeploymentFailed},
		},
		{
			name:        "the threshold grows with the desired count (5 for 10 tasks)",
			svc:         testobj.Service("ns", "web", "web", 10).CircuitBreaker(true).Obj(),
			tasks:       append(failures(primaryID, 4), task("old-1", oldID, running(ecsv1alpha1.HealthHealthy, now))),
			wantPrimary: primaryID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 4},
				{oldID, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted, 0},
			},
		},
		{
			name:        "no circuit breaker: failures are only counted",
			svc:         testobj.Service("ns", "web", "web", 3).Obj(),
			tasks:       append(failures(primaryID, 5), task("old-1", oldID, running(ecsv1alpha1.HealthHealthy, now))),
			wantPrimary: primaryID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 5},
				{oldID, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted, 0},
			},
		},
		{
			name:        "completes once every desired task is healthy and the old ones are gone",
			svc:         testobj.Service("ns", "web", "web", 3).CircuitBreaker(true).Obj(),
			tasks:       healthyPrimaries(3),
			wantPrimary: primaryID,
			wantDeps: []dep{
				{primaryID, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted, 0},
				{oldID, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted, 0},
			},
			wantEvents: []string{ecsv1alpha1.ReasonDeploymentCompleted},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc, nil, tc.tasks...)
			for _, tk := range tc.tasks {
				if tk.Status.LastStatus != ecsv1alpha1.TaskStopped {
					s.live = append(s.live, s.liveTask(tk, nil))
				}
			}
			if err := (&Reconciler{}).judgeDeployments(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			var got []dep
			for _, d := range s.svc.Status.Deployments {
				got = append(got, dep{d.ID, d.Status, d.RolloutState, d.FailedTasks})
			}
			if diff := cmp.Diff(tc.wantDeps, got); diff != "" {
				t.Errorf("deployments (-want +got):\n%s", diff)
			}
			if s.primary.ID != tc.wantPrimary {
				t.Errorf("primary = %s, want %s", s.primary.ID, tc.wantPrimary)
			}
			var events []string
			for _, e := range s.events {
				events = append(events, e.reason)
			}
			if diff := cmp.Diff(tc.wantEvents, events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// After a rollback the failed deployment's tasks are old tasks to retire.
			for _, lt := range s.live {
				if want := lt.deployment == s.primary.ID; lt.plan.Primary != want {
					t.Errorf("task %s primary = %t, want %t", lt.task.Name, lt.plan.Primary, want)
				}
			}
		})
	}
}

// TestRollbackTarget: a failed deployment rolls back to the newest COMPLETED one.
func TestRollbackTarget(t *testing.T) {
	d := func(id string, state ecsv1alpha1.RolloutState, age time.Duration) ecsv1alpha1.Deployment {
		return ecsv1alpha1.Deployment{ID: id, RolloutState: state, CreatedAt: metav1.NewTime(now.Add(-age))}
	}
	tests := []struct {
		name        string
		deployments []ecsv1alpha1.Deployment
		want        string // "" for none
	}{
		{"the newest completed", []ecsv1alpha1.Deployment{
			d("failed", ecsv1alpha1.RolloutFailed, 0), d("c-old", ecsv1alpha1.RolloutCompleted, 3*time.Hour),
			d("c-new", ecsv1alpha1.RolloutCompleted, time.Hour), d("in-progress", ecsv1alpha1.RolloutInProgress, 30*time.Minute),
		}, "c-new"},
		{"never an older failed one", []ecsv1alpha1.Deployment{
			d("failed", ecsv1alpha1.RolloutFailed, 0), d("failed-before", ecsv1alpha1.RolloutFailed, time.Hour),
		}, ""},
		{"never itself, even when it once completed", []ecsv1alpha1.Deployment{d("failed", ecsv1alpha1.RolloutCompleted, 0)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if back := rollbackTarget(tc.deployments, "failed"); back != nil {
				got = back.ID
			}
			if got != tc.want {
				t.Errorf("rollbackTarget = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTripWithoutAnythingToRollBackTo: the deployment stays failed and says so.
func TestTripWithoutAnythingToRollBackTo(t *testing.T) {
	svc := testobj.Service("ns", "web", "web", 3).CircuitBreaker(true).Obj()
	svc.Status.Deployments = []ecsv1alpha1.Deployment{{ID: primaryID, Status: ecsv1alpha1.DeploymentPrimary, RolloutState: ecsv1alpha1.RolloutInProgress}}
	s := newTestState(svc, nil, failures(primaryID, 3)...)
	if err := (&Reconciler{}).judgeDeployments(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if s.primary.ID != primaryID || s.primary.RolloutState != ecsv1alpha1.RolloutFailed {
		t.Errorf("primary %s %s, want %s FAILED", s.primary.ID, s.primary.RolloutState, primaryID)
	}
	if n := len(s.events); n != 2 || !strings.Contains(s.events[1].note, "no completed deployment to roll back to") {
		t.Errorf("events %+v, want DeploymentFailed and a rollback Event saying there is nothing to roll back to", s.events)
	}
}

func TestRolloutDone(t *testing.T) {
	healthy := deployment.Task{Primary: true, Health: deployment.Healthy}
	tests := []struct {
		name    string
		desired int32
		live    []deployment.Task
		want    bool
	}{
		{"all healthy", 2, []deployment.Task{healthy, healthy}, true},
		{"one short", 2, []deployment.Task{healthy}, false},
		{"an old task left", 1, []deployment.Task{healthy, {Health: deployment.Healthy}}, false},
		{"one not healthy yet", 2, []deployment.Task{healthy, {Primary: true, Health: deployment.Unhealthy}}, false},
		{"one to replace", 1, []deployment.Task{{Primary: true, Health: deployment.Healthy, Replace: true}}, false},
		{"scaled to zero", 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(nil, nil)
			s.desired = tc.desired
			for _, p := range tc.live {
				s.live = append(s.live, liveTask{plan: p})
			}
			if got := s.rolloutDone(); got != tc.want {
				t.Errorf("rolloutDone = %t, want %t", got, tc.want)
			}
		})
	}
}
