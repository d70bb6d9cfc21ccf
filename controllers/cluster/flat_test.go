package cluster

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/internal/usage/usagetest"
	"github.com/berthdev/berth/test/testobj"
)

// eventCost is what one task event costs the controller: the objects its pass lists,
// by list type, and the tracker's allocations for the event.
type eventCost struct {
	Visited map[string]int
	Allocs  float64
}

// costOfATaskStart builds a cluster of two instances, one service and n pending
// tasks, then starts one task and measures what that event costs.
func costOfATaskStart(t *testing.T, n int) eventCost {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
		&ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "i1"}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "c"}},
		&ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: "i2"}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "c"}},
		testobj.Service("ns", "web", "web", 1).Cluster("c").Obj(),
	}
	tr := usage.NewTracker()
	tasks := usagetest.Tasks(tr, n, "ns", "c", "")
	for _, task := range tasks {
		objs = append(objs, task)
	}
	c := usagetest.Counting(usagetest.FakeClient(t, []client.Object{&ecsv1alpha1.Cluster{}}, objs...))
	r := &Reconciler{Client: c, Recorder: events.NewFakeRecorder(10), Usage: tr}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "c"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	c.Visited()

	// The event: the agent reports one task RUNNING.
	started := tasks[0].DeepCopy()
	started.Status.LastStatus = ecsv1alpha1.TaskRunning
	tr.OnUpdate(tasks[0], started)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	visited := c.Visited()
	var got ecsv1alpha1.Cluster
	if err := c.Get(ctx, req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.RunningTasksCount != 1 || got.Status.PendingTasksCount != int32(n-1) {
		t.Errorf("with %d tasks: running %d, pending %d; want 1 and %d", n, got.Status.RunningTasksCount, got.Status.PendingTasksCount, n-1)
	}
	// The tracker's side of an event, measured as allocations: a map grown with the
	// tasks would show here.
	allocs := testing.AllocsPerRun(100, func() {
		tr.OnUpdate(tasks[0], started)
		tr.OnUpdate(started, tasks[0])
	})
	return eventCost{Visited: visited, Allocs: allocs}
}

// TestPerEventWorkIsFlat: with ten times the tasks in the cluster, a task event costs
// the same: the pass lists the cluster's instances and services and no task.
func TestPerEventWorkIsFlat(t *testing.T) {
	few, many := costOfATaskStart(t, 300), costOfATaskStart(t, 3000)
	usagetest.CheckFlat(t, few, many, many.Visited,
		map[string]int{"*v1alpha1.ContainerInstanceList": 2, "*v1alpha1.ServiceList": 1})
}
