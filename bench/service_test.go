package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestRolloutTrackerOldTaskGone: an old task is gone once it reports STOPPED or once
// it is deleted (watchObjects marks a deleted one), as its agent deletes a task the
// service does not keep without a STOPPED report; the old tasks' timeline says when
// each was asked to stop and when it went.
func TestRolloutTrackerOldTaskGone(t *testing.T) {
	running := func(name, rev string) *ecsv1alpha1.Task {
		task := testobj.Task("ns", name, rev).Obj()
		task.Status.LastStatus = ecsv1alpha1.TaskRunning
		return task
	}
	tr := newRolloutTracker(1, "web:1", "web:2")
	now := time.Now()
	oldA, oldB := running("old-a", "web:1"), running("old-b", "web:1")
	tr.observe(oldA, now)
	tr.observe(oldB, now)
	tr.observe(running("new", "web:2"), now)

	oldA.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
	tr.observe(oldA, now.Add(time.Second))
	oldA.Status.LastStatus = ecsv1alpha1.TaskStopped
	tr.observe(oldA, now.Add(2*time.Second))
	select {
	case <-tr.done:
		t.Fatalf("done with old-b still running: %s", tr.progress())
	default:
	}
	oldB.DeletionTimestamp = &metav1.Time{Time: now}
	tr.observe(oldB, now.Add(4*time.Second))
	select {
	case <-tr.done:
	default:
		t.Fatalf("not done once old-b was deleted: %s", tr.progress())
	}

	// old-a was asked to stop at 1 s and gone at 2 s; old-b, deleted without a
	// stop, both at 4 s.
	want := "asked to stop (2) 25% by 1 s, 50% by 1 s, 90% by 1 s, 100% by 4 s; gone (2) 25% by 2 s, 50% by 2 s, 90% by 2 s, 100% by 4 s"
	if got := tr.oldTimeline(now); got != want {
		t.Errorf("old timeline:\n got %s\nwant %s", got, want)
	}
}

// TestWritesFigure: Lease renewals are listed apart and not counted; refused writes
// are counted (each cost the apiserver a request) and listed as well.
func TestWritesFigure(t *testing.T) {
	requests := requestReading{
		byVerb:    map[string]float64{"POST tasks": 100, "APPLY tasks/status": 100, "PATCH services/status": 10, "PUT leases": 50, "GET tasks": 7},
		conflicts: map[string]float64{"services/status": 2},
	}
	got := writesFigure(requests, 100, "ScaleOut", "note", Baseline{}).Values
	want := map[string]float64{
		"Value": 2.1, "tasks": 1, "tasks/status": 1, "services/status": 0.1, "leases (not counted)": 0.5,
		"refused with a conflict (409, counted)": 0.02,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("writesFigure values (-want +got):\n%s", diff)
	}
}
