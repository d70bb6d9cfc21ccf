package service

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// judgment is what classification decided about one live task.
type judgment struct {
	StopNow, Replace bool
	Code             ecsv1alpha1.StopCode
	Reason           string
	RequeueAfter     time.Duration
}

func judged(s *state, lt liveTask) judgment {
	return judgment{StopNow: lt.plan.StopNow, Replace: lt.plan.Replace, Code: lt.stopCode, Reason: lt.stopReason, RequeueAfter: s.requeueAfter}
}

// TestJudgeInstance: tasks on an instance that is gone, unreachable past the grace
// period or DRAINING are stopped or replaced; within the grace period the service
// comes back when it ends.
func TestJudgeInstance(t *testing.T) {
	const grace = 5 * time.Minute
	tests := []struct {
		name     string
		instance *ecsv1alpha1.ContainerInstance // nil: not registered
		task     *ecsv1alpha1.Task
		want     judgment
	}{
		{
			name: "unplaced task: nothing to judge",
			task: task("t", primaryID),
		},
		{
			name:     "connected ACTIVE instance",
			instance: instance("i-1"),
			task:     task("t", primaryID, on("i-1"), running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
		},
		{
			name: "deregistered instance: stop at once",
			task: task("t", primaryID, on("i-1"), running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
			want: judgment{StopNow: true, Code: ecsv1alpha1.StopInstanceUnreachable, Reason: "Container instance i-1 was deregistered"},
		},
		{
			name:     "unreachable within the grace period: come back when it ends",
			instance: instance("i-1", disconnectedAt(now.Add(-2*time.Minute))),
			task:     task("t", primaryID, on("i-1"), running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
			want:     judgment{RequeueAfter: 3 * time.Minute},
		},
		{
			name:     "unreachable past the grace period: stop",
			instance: instance("i-1", disconnectedAt(now.Add(-10*time.Minute))),
			task:     task("t", primaryID, on("i-1"), running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
			want: judgment{StopNow: true, Code: ecsv1alpha1.StopInstanceUnreachable,
				Reason: "Container instance i-1 stopped heartbeating 10m0s ago"},
		},
		{
			name:     "unreachable exactly at the end of the grace period: stop",
			instance: instance("i-1", disconnectedAt(now.Add(-grace))),
			task:     task("t", primaryID, on("i-1")),
			want: judgment{StopNow: true, Code: ecsv1alpha1.StopInstanceUnreachable,
				Reason: "Container instance i-1 stopped heartbeating 5m0s ago"},
		},
		{
			name:     "pending on a DRAINING instance: stop at once",
			instance: instance("i-1", draining),
			task:     task("t", primaryID, on("i-1")),
			want:     judgment{StopNow: true, Code: ecsv1alpha1.StopServiceSchedulerInitiated, Reason: "Container instance i-1 is DRAINING"},
		},
		{
			name:     "running on a DRAINING instance: replace within the bounds",
			instance: instance("i-1", draining),
			task:     task("t", primaryID, on("i-1"), running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
			want:     judgment{Replace: true, Reason: "Container instance i-1 is DRAINING"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var instances []*ecsv1alpha1.ContainerInstance
			if tc.instance != nil {
				instances = append(instances, tc.instance)
			}
			s := newTestState(nil, instances, tc.task)
			lt := s.liveTask(tc.task, nil)
			s.judgeInstance(&lt, grace)
			if diff := cmp.Diff(tc.want, judged(s, lt)); diff != "" {
				t.Errorf("judgment (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJudgeHealth: a task failing its health checks is stopped once the grace period
// from its start has passed, and not before.
func TestJudgeHealth(t *testing.T) {
	const grace = time.Minute
	tests := []struct {
		name string
		task *ecsv1alpha1.Task
		// already marks the task stopped by an earlier judgment.
		already bool
		want    judgment
	}{
		{
			name: "healthy",
			task: task("t", primaryID, running(ecsv1alpha1.HealthHealthy, now.Add(-time.Hour))),
		},
		{
			name: "unhealthy within the grace period: come back when it ends",
			task: task("t", primaryID, running(ecsv1alpha1.HealthUnhealthy, now.Add(-20*time.Second))),
			want: judgment{RequeueAfter: 40 * time.Second},
		},
		{
			name: "unhealthy past the grace period: stop, as the circuit breaker counts",
			task: task("t", primaryID, running(ecsv1alpha1.HealthUnhealthy, now.Add(-2*time.Minute))),
			want: judgment{StopNow: true, Code: ecsv1alpha1.StopServiceSchedulerInitiated, Reason: unhealthyStopReason},
		},
		{
			name: "no start time: the grace period runs from creation",
			task: task("t", primaryID, running(ecsv1alpha1.HealthUnhealthy, now), func(t *ecsv1alpha1.Task) { t.Status.StartedAt = nil }),
			want: judgment{StopNow: true, Code: ecsv1alpha1.StopServiceSchedulerInitiated, Reason: unhealthyStopReason},
		},
		{
			name:    "already stopped for its instance: keeps that reason",
			task:    task("t", primaryID, running(ecsv1alpha1.HealthUnhealthy, now.Add(-time.Hour))),
			already: true,
			want:    judgment{StopNow: true, Code: ecsv1alpha1.StopInstanceUnreachable, Reason: "gone"},
		},
		{
			name: "UNHEALTHY but not RUNNING: not judged",
			task: task("t", primaryID, func(t *ecsv1alpha1.Task) { t.Status.HealthStatus = ecsv1alpha1.HealthUnhealthy }),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(nil, nil, tc.task)
			lt := s.liveTask(tc.task, nil)
			if tc.already {
				lt.stopNow(ecsv1alpha1.StopInstanceUnreachable, "gone")
			}
			s.judgeHealth(&lt, grace)
			if diff := cmp.Diff(tc.want, judged(s, lt)); diff != "" {
				t.Errorf("judgment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name            string
		task            *ecsv1alpha1.Task
		essentialChecks bool
		want            deployment.Health
	}{
		{"pending", task("t", primaryID), false, deployment.Pending},
		{"running, no essential checks", task("t", primaryID, running(ecsv1alpha1.HealthUnknown, now)), false, deployment.Healthy},
		{"running, essential check not passed yet", task("t", primaryID, running(ecsv1alpha1.HealthUnknown, now)), true, deployment.Unhealthy},
		{"running and healthy", task("t", primaryID, running(ecsv1alpha1.HealthHealthy, now)), true, deployment.Healthy},
		{"running and unhealthy", task("t", primaryID, running(ecsv1alpha1.HealthUnhealthy, now)), false, deployment.Unhealthy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := health(tc.task, tc.essentialChecks); got != tc.want {
				t.Errorf("health = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnreachableGrace(t *testing.T) {
	cluster := &ecsv1alpha1.Cluster{Spec: ecsv1alpha1.ClusterSpec{InstanceUnreachableGracePeriodSeconds: ptr.To[int32](60)}}
	tests := []struct {
		name    string
		svc     *ecsv1alpha1.Service
		cluster *ecsv1alpha1.Cluster
		want    time.Duration
	}{
		{"the service's", testobj.Service("ns", "web", "web", 1).UnreachableGrace(30).Obj(), cluster, 30 * time.Second},
		{"the cluster's", testobj.Service("ns", "web", "web", 1).Obj(), cluster, time.Minute},
		{"no Cluster object: the default", testobj.Service("ns", "web", "web", 1).Obj(), nil, defaultUnreachableGrace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc, nil)
			s.cluster = tc.cluster
			if got := s.unreachableGrace(); got != tc.want {
				t.Errorf("unreachableGrace = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestClassifyTasks: only tasks that count are live; RUNNING alone is healthy only for
// a revision without essential health checks (per deployment); the desired count is
// desiredCount, or the eligible instances of a DAEMON service.
func TestClassifyTasks(t *testing.T) {
	checked := testobj.TaskDefinition("ns", "web").Container("app", "web:2").HealthCheck("true").Obj()
	unchecked := testobj.TaskDefinition("ns", "web").Container("app", "web:1").Obj()
	rev1, err := revision.Snapshot(unchecked, 1)
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := revision.Snapshot(checked, 2)
	if err != nil {
		t.Fatal(err)
	}
	rev1.UID, rev2.UID = "rev1", "rev2" // the resolver caches by UID; the fake client sets none
	r := &Reconciler{Resolver: revision.NewResolver(fakeClient(t, rev1, rev2))}

	type live struct {
		Name    string
		Primary bool
		Health  deployment.Health
	}
	tests := []struct {
		name        string
		svc         *ecsv1alpha1.Service
		instances   []*ecsv1alpha1.ContainerInstance
		tasks       []*ecsv1alpha1.Task
		wantDesired int32
		wantLive    []live
	}{
		{
			name: "replica service",
			svc:  testobj.Service("ns", "web", "web", 3).Obj(),
			tasks: []*ecsv1alpha1.Task{
				task("new-unknown", primaryID, running(ecsv1alpha1.HealthUnknown, now)),
				task("new-healthy", primaryID, running(ecsv1alpha1.HealthHealthy, now)),
				task("old-unknown", oldID, running(ecsv1alpha1.HealthUnknown, now)),
				task("pending", primaryID),
				task("stopping", primaryID, running(ecsv1alpha1.HealthHealthy, now), stopRequested("Scaling in")),
				task("stopped", oldID, stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now)),
			},
			wantDesired: 3,
			wantLive: []live{
				{Name: "new-unknown", Primary: true, Health: deployment.Unhealthy}, // web:2 has an essential check
				{Name: "new-healthy", Primary: true, Health: deployment.Healthy},
				{Name: "old-unknown", Health: deployment.Healthy}, // web:1 has none
				{Name: "pending", Primary: true, Health: deployment.Pending},
			},
		},
		{
			name:        "daemon service",
			svc:         testobj.Service("ns", "web", "web", 0).Daemon().Obj(),
			instances:   []*ecsv1alpha1.ContainerInstance{instance("i-1"), instance("i-2"), instance("i-3", draining)},
			wantDesired: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc, tc.instances, tc.tasks...)
			if err := r.classifyTasks(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			var got []live
			for _, lt := range s.live {
				got = append(got, live{Name: lt.task.Name, Primary: lt.plan.Primary, Health: lt.plan.Health})
			}
			if diff := cmp.Diff(tc.wantLive, got); diff != "" {
				t.Errorf("live tasks (-want +got):\n%s", diff)
			}
			if s.desired != tc.wantDesired {
				t.Errorf("desired = %d, want %d", s.desired, tc.wantDesired)
			}
		})
	}
}

// TestDisconnectedSince: the manager's Connected transition, else the creation time.
func TestDisconnectedSince(t *testing.T) {
	at := now.Add(-3 * time.Minute)
	if got := disconnectedSince(instance("i", disconnectedAt(at))); !got.Equal(at) {
		t.Errorf("disconnectedSince = %v, want %v", got, at)
	}
	never := instance("i", func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.AgentConnected = false })
	if got := disconnectedSince(never); !got.Equal(never.CreationTimestamp.Time) {
		t.Errorf("disconnectedSince of an instance never connected = %v, want its creation %v", got, never.CreationTimestamp)
	}
}
