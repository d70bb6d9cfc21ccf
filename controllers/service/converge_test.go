package service

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// TestStopFor: a planned stop carries the judgment's code and reason, else says
// whether it scales in or replaces.
func TestStopFor(t *testing.T) {
	type stop struct {
		Code   ecsv1alpha1.StopCode
		Reason string
	}
	tests := []struct {
		name string
		lt   liveTask
		want stop
	}{
		{"judged", liveTask{stopCode: ecsv1alpha1.StopInstanceUnreachable, stopReason: "gone", plan: deployment.Task{Primary: true}},
			stop{ecsv1alpha1.StopInstanceUnreachable, "gone"}},
		{"replaced off a DRAINING instance", liveTask{stopReason: "Container instance i-1 is DRAINING", plan: deployment.Task{Primary: true, Replace: true}},
			stop{ecsv1alpha1.StopServiceSchedulerInitiated, "Container instance i-1 is DRAINING"}},
		{"scale in", liveTask{plan: deployment.Task{Primary: true}},
			stop{ecsv1alpha1.StopServiceSchedulerInitiated, "Scaling in: the service needs fewer tasks"}},
		{"an old deployment's task", liveTask{plan: deployment.Task{}},
			stop{ecsv1alpha1.StopServiceSchedulerInitiated, "Replaced by deployment " + primaryID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := stopFor(&tc.lt, primaryID)
			if diff := cmp.Diff(tc.want, stop{code, reason}); diff != "" {
				t.Errorf("stop (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanInput: the planner gets the service's bounds (ECS's defaults when unset),
// the live tasks, and is frozen once the primary deployment failed.
func TestPlanInput(t *testing.T) {
	unset := testobj.Service("ns", "web", "web", 4).Obj()
	unset.Spec.DeploymentConfiguration.MinimumHealthyPercent, unset.Spec.DeploymentConfiguration.MaximumPercent = nil, nil
	tests := []struct {
		name   string
		svc    *ecsv1alpha1.Service
		failed bool
		want   deployment.Input
	}{
		{"bounds", testobj.Service("ns", "web", "web", 4).Bounds(50, 150).Obj(), false,
			deployment.Input{Desired: 4, MinimumHealthyPercent: 50, MaximumPercent: 150}},
		{"ECS's defaults", unset, false, deployment.Input{Desired: 4, MinimumHealthyPercent: 100, MaximumPercent: 200}},
		{"failed", testobj.Service("ns", "web", "web", 4).Obj(), true,
			deployment.Input{Desired: 4, MinimumHealthyPercent: 100, MaximumPercent: 200, Frozen: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc, nil)
			if tc.failed {
				s.primary.RolloutState = ecsv1alpha1.RolloutFailed
			}
			s.live = []liveTask{{plan: deployment.Task{Name: "a", Primary: true}}}
			tc.want.Tasks = []deployment.Task{{Name: "a", Primary: true}}
			if diff := cmp.Diff(tc.want, s.planInput()); diff != "" {
				t.Errorf("planner input (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParallel: every write runs even after one failed, the caller learns which were
// made, and writes a cancelled context kept from running count as not made.
func TestParallel(t *testing.T) {
	boom := errors.New("boom")
	done, err := parallel(context.Background(), 5, func(i int) error {
		if i == 1 || i == 3 {
			return boom
		}
		return nil
	})
	if diff := cmp.Diff([]bool{true, false, true, false, true}, done); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done, err = parallel(ctx, 3, func(int) error { return nil })
	if err == nil || done[0] && done[1] && done[2] {
		t.Errorf("with a cancelled context: done %v, error %v; want writes not made and an error", done, err)
	}
}

// TestConvergeStopsAndStarts: the plan's stops are written with their reasons and the
// starts are created with deterministic names; both are expected, so the next pass on
// a cache that has not caught up writes nothing.
func TestConvergeStopsAndStarts(t *testing.T) {
	ctx := context.Background()
	svc := testobj.Service("ns", "web", "web", 2).Obj()
	svc.UID = "svc-uid"
	old := task("web-dold-0-0", oldID, slot("0"), running(ecsv1alpha1.HealthHealthy, now), ownedBy(svc))
	stale := task("web-dnew-0-0", primaryID, slot("0"), ownedBy(svc), on("gone")) // on a deregistered instance
	td := testobj.TaskDefinition("ns", "web").Container("app", "web:2").Obj()
	c := fakeClient(t, svc, old, stale, td)
	r := &Reconciler{Client: c, Expectations: expectations.New(), Resolver: revision.NewResolver(c)}

	pass := func() *state {
		s := newTestState(svc.DeepCopy(), nil, old, stale)
		s.primary.TaskDefinition = "web"
		if err := r.classifyTasks(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := r.converge(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := pass()
	// The stale task goes at once; two new tasks start (maximumPercent 200 leaves room),
	// slot 0's next attempt and slot 1; the old task waits for them to be healthy.
	if diff := cmp.Diff([]string{"web-dnew-0-0"}, s.stopped); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web-dnew-0-1", "web-dnew-1-0"}, s.started, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	var got ecsv1alpha1.Task
	if err := c.Get(ctx, client.ObjectKeyFromObject(stale), &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped || got.Spec.StopCode != ecsv1alpha1.StopInstanceUnreachable ||
		got.Spec.StopReason != "Container instance gone was deregistered" {
		t.Errorf("stale task spec %+v, want stopped as InstanceUnreachable", got.Spec)
	}

	// The same (stale) view again: the expectations hold the writes back.
	s = pass()
	if len(s.stopped)+len(s.started) != 0 || s.requeueAfter == 0 {
		t.Errorf("second pass on a stale cache stopped %v, started %v, requeue %v; want nothing and a requeue", s.stopped, s.started, s.requeueAfter)
	}
}

// TestConvergeWaitsForANewerService: tasks another manager created from a newer
// generation of the Service than the cached one hold the pass back (it would scale
// in to the old count); tasks of the cached generation or older do not.
func TestConvergeWaitsForANewerService(t *testing.T) {
	generation := func(g string) func(*ecsv1alpha1.Task) {
		return func(t *ecsv1alpha1.Task) {
			t.Annotations = map[string]string{ecsv1alpha1.AnnotationServiceGeneration: g}
		}
	}
	tests := []struct {
		name       string
		generation string
		wantStops  int // scaling in from 2 to 1
	}{
		{"a newer generation's task", "3", 0},
		{"the cached generation's task", "2", 1},
		{"an older generation's task", "1", 1},
		{"no annotation (created before the fence)", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			svc := testobj.Service("ns", "web", "web", 1).Obj()
			svc.UID, svc.Generation = "svc-uid", 2
			first := task("web-dnew-0-0", primaryID, slot("0"), running(ecsv1alpha1.HealthHealthy, now), ownedBy(svc))
			second := task("web-dnew-1-0", primaryID, slot("1"), running(ecsv1alpha1.HealthHealthy, now), ownedBy(svc), generation(tc.generation))
			c := fakeClient(t, svc, first, second)
			r := &Reconciler{Client: c, Expectations: expectations.New(), Resolver: revision.NewResolver(c)}
			s := newTestState(svc.DeepCopy(), nil, first, second)
			if err := r.classifyTasks(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := r.converge(ctx, s); err != nil {
				t.Fatal(err)
			}
			if len(s.stopped) != tc.wantStops || len(s.started) != 0 {
				t.Errorf("stopped %v and started %v, want %d stops and no start", s.stopped, s.started, tc.wantStops)
			}
			if tc.wantStops == 0 && s.requeueAfter == 0 {
				t.Error("a pass held back by a newer task did not requeue")
			}
		})
	}
}

// TestNewTasksCarryTheServiceGeneration: the fence other managers read.
func TestNewTasksCarryTheServiceGeneration(t *testing.T) {
	svc := testobj.Service("ns", "web", "web", 1).Obj()
	svc.Generation = 7
	s := newTestState(svc, nil)
	tasks := s.newTasks(1)
	if len(tasks) != 1 || tasks[0].Annotations[ecsv1alpha1.AnnotationServiceGeneration] != "7" {
		t.Fatalf("new tasks %+v, want one annotated with generation 7", tasks)
	}
}
