package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestNewTasks: new tasks take the lowest free slots (REPLICA) or the eligible
// instances without a task (DAEMON), one more attempt than any stored task of their
// slot, and names built from those, so two managers compute the same names.
func TestNewTasks(t *testing.T) {
	replica := testobj.Service("ns", "web", "web", 4).Obj()
	daemon := testobj.Service("ns", "web", "web", 0).Daemon().Obj()
	daemon.Spec.PlacementConstraints = []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:zone == a"}}
	i1, i2, i3 := slotOfInstance("i-1"), slotOfInstance("i-2"), slotOfInstance("i-3")
	tests := []struct {
		name     string
		svc      *ecsv1alpha1.Service
		eligible []string
		tasks    []*ecsv1alpha1.Task
		// stopNow names live tasks judged to stop; stoppedNow those this pass stopped.
		stopNow, stoppedNow []string
		n                   int
		want                []string
	}{
		{
			name: "lowest free ordinals",
			svc:  replica,
			tasks: []*ecsv1alpha1.Task{
				task("web-dnew-0-0", primaryID, slot("0")), task("web-dnew-2-0", primaryID, slot("2")),
			},
			n:    2,
			want: []string{"web-dnew-1-0", "web-dnew-3-0"},
		},
		{
			name: "the next attempt after every stored task of the slot",
			svc:  replica,
			tasks: []*ecsv1alpha1.Task{
				task("web-dnew-0-3", primaryID, slot("0"), stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now)),
				task("web-dnew-0-1", primaryID, slot("0"), stoppedWith(ecsv1alpha1.StopEssentialContainerExited, now)),
				task("web-dold-0-7", oldID, slot("0"), running(ecsv1alpha1.HealthHealthy, now)), // another deployment's count
			},
			n:    1,
			want: []string{"web-dnew-0-4"},
		},
		{
			name:       "slots of tasks stopping now are free again",
			svc:        replica,
			tasks:      []*ecsv1alpha1.Task{task("web-dnew-0-0", primaryID, slot("0")), task("web-dnew-1-0", primaryID, slot("1"))},
			stopNow:    []string{"web-dnew-0-0"},
			stoppedNow: []string{"web-dnew-1-0"},
			n:          2,
			want:       []string{"web-dnew-0-1", "web-dnew-1-1"},
		},
		{
			name:  "an old deployment's task holds no slot",
			svc:   replica,
			tasks: []*ecsv1alpha1.Task{task("web-dold-0-0", oldID, slot("0"))},
			n:     1,
			want:  []string{"web-dnew-0-0"},
		},
		{
			name:     "daemon: the eligible instances without a task",
			svc:      daemon,
			eligible: []string{"i-1", "i-2", "i-3"},
			tasks:    []*ecsv1alpha1.Task{task("web-dnew-"+i2+"-0", primaryID, slot(i2))},
			n:        5, // never more than the free instances
			want:     []string{"web-dnew-" + i1 + "-0", "web-dnew-" + i3 + "-0"},
		},
		{name: "none", svc: replica, n: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc.DeepCopy(), nil, tc.tasks...)
			s.eligible = tc.eligible
			stopNow := map[string]bool{}
			for _, n := range tc.stopNow {
				stopNow[n] = true
			}
			for _, tk := range tc.tasks {
				if tk.Status.LastStatus != ecsv1alpha1.TaskStopped {
					lt := s.liveTask(tk, nil)
					lt.plan.StopNow = stopNow[tk.Name]
					s.live = append(s.live, lt)
				}
			}
			s.stopped = tc.stoppedNow
			var got []string
			for _, nt := range s.newTasks(tc.n) {
				got = append(got, nt.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("new task names (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildTask: a new task is owned by its service, labelled with its service,
// deployment and slot, pinned to the deployment's revision; a DAEMON task adds a
// memberOf constraint for its instance without touching the service's constraints.
func TestBuildTask(t *testing.T) {
	svc := testobj.Service("ns", "web", "web", 0).Daemon().Obj()
	svc.Spec.PlacementConstraints = []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:zone == a"}}
	svc.Spec.EnableExecuteCommand = true
	s := newTestState(svc, nil)
	got := s.buildTask("i1234", 2, "i-1")

	if got.Name != "web-dnew-i1234-2" {
		t.Errorf("name %s", got.Name)
	}
	wantLabels := map[string]string{ecsv1alpha1.LabelService: "web", ecsv1alpha1.LabelDeployment: primaryID, LabelSlot: "i1234"}
	if diff := cmp.Diff(wantLabels, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantConstraints := []ecsv1alpha1.PlacementConstraint{
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:zone == a"},
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "instanceId == i-1"},
	}
	if diff := cmp.Diff(wantConstraints, got.Spec.PlacementConstraints); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if len(svc.Spec.PlacementConstraints) != 1 {
		t.Errorf("the service's constraints changed: %v", svc.Spec.PlacementConstraints)
	}
	if got.Spec.TaskDefinition != "web:2" || got.Spec.StartedBy != "ecs-svc/"+primaryID || got.Spec.Group != "service:web" ||
		!got.Spec.EnableExecuteCommand {
		t.Errorf("spec %+v", got.Spec)
	}
	if ref := got.OwnerReferences; len(ref) != 1 || ref[0].UID != svc.UID || ref[0].Controller == nil || !*ref[0].Controller {
		t.Errorf("owner references %+v, want the service as controller", ref)
	}
}
