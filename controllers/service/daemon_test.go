package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/test/testobj"
)

// TestEligibleInstances: a DAEMON service runs on the ACTIVE, connected instances that
// satisfy its memberOf constraints, in a fixed order.
func TestEligibleInstances(t *testing.T) {
	registering := func(ci *ecsv1alpha1.ContainerInstance) { ci.Status.RegisteredResources = nil }
	tests := []struct {
		name        string
		constraints []ecsv1alpha1.PlacementConstraint
		instances   []*ecsv1alpha1.ContainerInstance
		want        []string
	}{
		{
			name: "only ACTIVE and connected, sorted",
			instances: []*ecsv1alpha1.ContainerInstance{
				instance("i-c"), instance("i-a"), instance("draining", draining), instance("registering", registering),
				instance("quiet", disconnectedAt(now)),
			},
			want: []string{"i-a", "i-c"},
		},
		{
			name:        "memberOf constraints",
			constraints: []ecsv1alpha1.PlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:zone == a"}},
			instances:   []*ecsv1alpha1.ContainerInstance{instance("i-1", attribute("zone", "a")), instance("i-2", attribute("zone", "b")), instance("i-3")},
			want:        []string{"i-1"},
		},
		{
			name: "none",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(testobj.Service("ns", "web", "web", 0).Daemon().Obj(), tc.instances)
			cs, err := placement.ParseConstraints(tc.constraints)
			if err != nil {
				t.Fatal(err)
			}
			s.constraints = cs
			if diff := cmp.Diff(tc.want, s.eligibleInstances()); diff != "" {
				t.Errorf("eligible instances (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJudgeDaemonTask: one primary task per eligible instance. A task whose instance
// no longer qualifies is stopped (unless its instance is unreachable, which its grace
// period decides), and so is a second primary task on one instance; an old
// deployment's task or one being replaced holds no slot.
func TestJudgeDaemonTask(t *testing.T) {
	i1, i2 := slotOfInstance("i-1"), slotOfInstance("i-2")
	tests := []struct {
		name      string
		instances []*ecsv1alpha1.ContainerInstance
		eligible  []string
		// tasks are judged in order, sharing the slots.
		tasks []*ecsv1alpha1.Task
		// replace marks tasks already to be replaced (a DRAINING instance).
		replace map[string]bool
		// want are the reasons of the tasks stopped at once.
		want map[string]string
	}{
		{
			name:      "one task per instance",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-1"), instance("i-2")},
			eligible:  []string{"i-1", "i-2"},
			tasks:     []*ecsv1alpha1.Task{task("a", primaryID, slot(i1), on("i-1")), task("b", primaryID, slot(i2), on("i-2"))},
		},
		{
			name:      "a second primary task on one instance",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-1")},
			eligible:  []string{"i-1"},
			tasks:     []*ecsv1alpha1.Task{task("a", primaryID, slot(i1), on("i-1")), task("b", primaryID, slot(i1))},
			want:      map[string]string{"b": "A second daemon task on one instance"},
		},
		{
			name:      "an old deployment's task holds no slot",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-1")},
			eligible:  []string{"i-1"},
			tasks:     []*ecsv1alpha1.Task{task("old", oldID, slot(i1), on("i-1")), task("new", primaryID, slot(i1), on("i-1"))},
		},
		{
			name:      "a task being replaced holds no slot",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-1")},
			eligible:  []string{"i-1"},
			tasks:     []*ecsv1alpha1.Task{task("a", primaryID, slot(i1), on("i-1")), task("b", primaryID, slot(i1))},
			replace:   map[string]bool{"a": true},
		},
		{
			name:      "the instance no longer matches",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-1"), instance("i-2")},
			eligible:  []string{"i-1"},
			tasks:     []*ecsv1alpha1.Task{task("a", primaryID, slot(i2), on("i-2")), task("old", oldID, slot(i2), on("i-2"))},
			want: map[string]string{
				"a":   "The instance no longer matches the daemon service",
				"old": "The instance no longer matches the daemon service",
			},
		},
		{
			name:      "an unreachable instance is left to its grace period",
			instances: []*ecsv1alpha1.ContainerInstance{instance("i-2", disconnectedAt(now))},
			tasks:     []*ecsv1alpha1.Task{task("a", primaryID, slot(i2), on("i-2"))},
		},
		{
			name:     "an unplaced task for an instance that left",
			eligible: []string{"i-1"},
			tasks:    []*ecsv1alpha1.Task{task("a", primaryID, slot(i2))},
			want:     map[string]string{"a": "The instance no longer matches the daemon service"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(testobj.Service("ns", "web", "web", 0).Daemon().Obj(), tc.instances, tc.tasks...)
			slots := newDaemonSlots(tc.eligible)
			got := map[string]string{}
			for _, tk := range tc.tasks {
				lt := s.liveTask(tk, nil)
				lt.plan.Replace = tc.replace[tk.Name]
				s.judgeDaemonTask(&lt, slots)
				if lt.plan.StopNow {
					got[tk.Name] = lt.stopReason
					if lt.stopCode != ecsv1alpha1.StopServiceSchedulerInitiated {
						t.Errorf("%s: stop code %s, want %s", tk.Name, lt.stopCode, ecsv1alpha1.StopServiceSchedulerInitiated)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpEmptyMaps); diff != "" {
				t.Errorf("stopped (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSlotOfInstance: a DAEMON slot is short and stable, whatever the instance name's
// length, and differs between instances.
func TestSlotOfInstance(t *testing.T) {
	long := "i-" + string(make([]byte, 300))
	if a, b := slotOfInstance(long), slotOfInstance(long); a != b || len(a) != 9 {
		t.Errorf("slotOfInstance = %q and %q, want one 9-character slot", a, b)
	}
	if slotOfInstance("i-1") == slotOfInstance("i-2") {
		t.Error("two instances share a slot")
	}
}
