package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestChangeCounter: a change that touches status.utilization only (and the
// bookkeeping metadata every write changes) counts as utilization's; any other
// change, with or without a utilization change, counts as other; objects seen while
// seeding and first seen afterwards are the reference, not changes.
func TestChangeCounter(t *testing.T) {
	at := func(sec int64) *metav1.Time { return &metav1.Time{Time: time.Unix(sec, 0)} }
	svc := func(rv string, running int32, measured *metav1.Time) client.Object {
		s := &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: rv,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: rv}}}}
		s.Status.RunningCount = running
		if measured != nil {
			s.Status.Utilization = &ecsv1alpha1.Utilization{Tasks: running, MeasuredAt: measured}
		}
		return s
	}
	ci := func(rv string, end int64) client.Object {
		c := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "i-0", ResourceVersion: rv}}
		c.Status.Utilization = &ecsv1alpha1.InstanceUtilization{WindowEnd: metav1.Unix(end, 0)}
		return c
	}
	tests := []struct {
		name        string
		seed, after []client.Object
		want        map[string][2]int // kind -> utilization only, other
	}{
		{"utilization only", []client.Object{svc("1", 3, at(10))}, []client.Object{svc("2", 3, at(15)), svc("3", 3, at(20))},
			map[string][2]int{"Service": {2, 0}}},
		{"first utilization", []client.Object{svc("1", 3, nil)}, []client.Object{svc("2", 3, at(15))},
			map[string][2]int{"Service": {1, 0}}},
		{"another field too", []client.Object{svc("1", 3, at(10))}, []client.Object{svc("2", 4, at(15)), svc("3", 5, at(15))},
			map[string][2]int{"Service": {0, 2}}},
		{"listed without type meta, watched with", []client.Object{svc("1", 3, at(10))}, []client.Object{withKind(svc("2", 3, at(15)))},
			map[string][2]int{"Service": {1, 0}}},
		{"first seen after the seed", nil, []client.Object{svc("2", 3, at(15)), svc("3", 3, at(20))},
			map[string][2]int{"Service": {1, 0}}},
		{"instances apart from services", []client.Object{ci("1", 5), svc("1", 3, at(10))}, []client.Object{ci("2", 10), ci("3", 15), svc("2", 3, at(20))},
			map[string][2]int{"ContainerInstance": {2, 0}, "Service": {1, 0}}},
		{"other kinds ignored", []client.Object{&ecsv1alpha1.Task{}}, []client.Object{&ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "2"}}},
			map[string][2]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChangeCounter()
			c.seeding = true
			for _, o := range tt.seed {
				c.observe(o, time.Time{})
			}
			c.seeding = false
			for _, o := range tt.after {
				c.observe(o, time.Time{})
			}
			got := map[string][2]int{}
			for kind, n := range c.utilization {
				got[kind] = [2]int{n, got[kind][1]}
			}
			for kind, n := range c.rest {
				got[kind] = [2]int{got[kind][0], n}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUtilizationFigures: writes per window from a phase's counter differences, the
// utilization resources in the total and the rest apart; phase B is compared with A
// both per window and per 1,000 tasks.
func TestUtilizationFigures(t *testing.T) {
	u := &utilizationRun{instances: 100, window: 5 * time.Second, windows: 6}
	a := newUtilizationPhase("A", 1000, map[string]float64{
		"containerinstances/status": 600, "services/status": 60, "taskdefinitions/status": 12, "clusters/status": 6, "leases": 60,
	}, 6)
	b := newUtilizationPhase("B", 4000, map[string]float64{
		"containerinstances/status": 600, "services/status": 54, "taskdefinitions/status": 12, "clusters/status": 6, "leases": 60, "tasks/status": 6,
	}, 6)
	got := map[string]map[string]float64{}
	for _, f := range u.figures(a, b) {
		got[f.Name+" value"] = f.Values
		got[f.Name+" ratio"] = f.Ratios()
	}
	want := map[string]map[string]float64{
		"PerMinuteA value": {"Value": 113, "containerinstances/status": 100, "services/status": 10, "taskdefinitions/status": 2,
			"clusters/status": 1, "leases (not counted)": 10},
		"PerMinuteA ratio": {"Value": 1, "containerinstances/status": 1, "services/status": 1, "taskdefinitions/status": 1, "clusters/status": 1},
		"PerMinuteB value": {"Value": 112, "containerinstances/status": 100, "services/status": 9, "taskdefinitions/status": 2,
			"clusters/status": 1, "leases (not counted)": 10, "tasks/status (not counted)": 1},
		"PerMinuteB ratio": {"Value": 112.0 / 113, "containerinstances/status": 1, "services/status": 0.9, "taskdefinitions/status": 1,
			"clusters/status": 1, "leases (not counted)": 1},
		"Per1000TasksA value": {"Value": 113, "containerinstances/status": 100, "services/status": 10, "taskdefinitions/status": 2,
			"clusters/status": 1, "leases (not counted)": 10},
		"Per1000TasksA ratio": {"Value": 1, "containerinstances/status": 1, "services/status": 1, "taskdefinitions/status": 1, "clusters/status": 1},
		"Per1000TasksB value": {"Value": 28, "containerinstances/status": 25, "services/status": 2.25, "taskdefinitions/status": 0.5,
			"clusters/status": 0.25, "leases (not counted)": 2.5, "tasks/status (not counted)": 0.25},
		"Per1000TasksB ratio": {"Value": 28.0 / 113, "containerinstances/status": 0.25, "services/status": 0.225, "taskdefinitions/status": 0.25,
			"clusters/status": 0.25, "leases (not counted)": 0.25},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}

func withKind(o client.Object) client.Object {
	o.GetObjectKind().SetGroupVersionKind(ecsv1alpha1.GroupVersion.WithKind("Service"))
	return o
}
