package taskdefinition

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/internal/usage/usagetest"
	"github.com/berthdev/berth/test/testobj"
)

// costOfATaskStop registers two revisions of web, runs n tasks of revision 1, then
// stops one of them and returns the objects the pass after that event lists.
func costOfATaskStop(t *testing.T, n int) map[string]int {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		testobj.TaskDefinition("ns", "web").Container("app", "demo:1").Obj(),
		testobj.Service("ns", "web", "web", int32(n)).Obj(),
	}
	tr := usage.NewTracker()
	tasks := usagetest.Tasks(tr, n, "ns", "", ecsv1alpha1.TaskRunning)
	for _, task := range tasks {
		objs = append(objs, task)
	}
	c := usagetest.Counting(usagetest.FakeClient(t, []client.Object{&ecsv1alpha1.TaskDefinition{}}, objs...))
	r := &Reconciler{Client: c, Recorder: events.NewFakeRecorder(10), Usage: tr}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "web"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	var td ecsv1alpha1.TaskDefinition
	if err := c.Get(ctx, req.NamespacedName, &td); err != nil {
		t.Fatal(err)
	}
	td.Spec.ContainerDefinitions[0].Image = "demo:2"
	if err := c.Update(ctx, &td); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	c.Visited()

	// The event: one task of revision 1 stops.
	stopped := tasks[0].DeepCopy()
	stopped.Status.LastStatus = ecsv1alpha1.TaskStopped
	tr.OnUpdate(tasks[0], stopped)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	visited := c.Visited()
	if err := c.Get(ctx, req.NamespacedName, &td); err != nil {
		t.Fatal(err)
	}
	var got []ecsv1alpha1.RevisionStatus
	for _, rev := range td.Status.Revisions {
		got = append(got, rev.Status)
	}
	// Revision 1 stays ACTIVE while its other tasks run (for n > 1).
	if diff := cmp.Diff([]ecsv1alpha1.RevisionStatus{ecsv1alpha1.RevisionActive, ecsv1alpha1.RevisionActive}, got); diff != "" {
		t.Errorf("with %d tasks, revision statuses newest first (-want +got):\n%s", n, diff)
	}
	return visited
}

// TestPerEventWorkIsFlat: with ten times the tasks of the family, a task event costs
// the same pass: the family's revisions and services are listed, no task is.
func TestPerEventWorkIsFlat(t *testing.T) {
	few, many := costOfATaskStop(t, 300), costOfATaskStop(t, 3000)
	usagetest.CheckFlat(t, few, many, many,
		map[string]int{"*v1.ControllerRevisionList": 2, "*v1alpha1.ServiceList": 1})
}
