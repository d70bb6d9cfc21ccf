package scheduler

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/event"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestPlacedNote(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]int
		want string
	}{
		{name: "one task", in: map[string]int{"worker-1": 1}, want: "Placed 1 task on 1 container instance: worker-1 (1)"},
		{name: "busiest first, then by name", in: map[string]int{"b": 2, "a": 2, "c": 5},
			want: "Placed 9 tasks on 3 container instances: c (5), a (2), b (2)"},
		{name: "only the five busiest named", in: map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 9},
			want: "Placed 15 tasks on 7 container instances: g (9), a (1), b (1), c (1), d (1) and 2 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := placedNote(tc.in); got != tc.want {
				t.Errorf("placedNote = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlacedBatchTakesOnce(t *testing.T) {
	var b placedBatch
	b.add("default", "worker-1")
	b.add("default", "worker-1")
	b.add("edge", "pi-1")
	got := b.take()
	if got["default"]["worker-1"] != 2 || got["edge"]["pi-1"] != 1 || len(got) != 2 {
		t.Errorf("take = %v", got)
	}
	if again := b.take(); len(again) != 0 {
		t.Errorf("second take = %v, want nothing", again)
	}
}

func TestRevisionsChanged(t *testing.T) {
	td := func(latest int32, revisions int, utilization bool) *ecsv1alpha1.TaskDefinition {
		o := &ecsv1alpha1.TaskDefinition{}
		o.Status.LatestRevision = latest
		o.Status.Revisions = make([]ecsv1alpha1.TaskDefinitionRevision, revisions)
		if utilization {
			o.Status.Utilization = &ecsv1alpha1.Utilization{}
		}
		return o
	}
	for _, tc := range []struct {
		name     string
		old, new *ecsv1alpha1.TaskDefinition
		want     bool
	}{
		{name: "a revision registered", old: td(1, 1, false), new: td(2, 2, false), want: true},
		{name: "an old revision pruned", old: td(3, 3, false), new: td(3, 2, false), want: true},
		{name: "a utilization write", old: td(2, 2, false), new: td(2, 2, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := revisionsChanged().Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("passes = %v, want %v", got, tc.want)
			}
		})
	}
}
