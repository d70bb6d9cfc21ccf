package usage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestBurstIsOneReconcile: 5,000 tasks of one cluster created and then started, each
// changing the cluster's counts, reach the controller's queue (controller-runtime's
// default queue) as one request, so they cost one recount and one status write.
func TestBurstIsOneReconcile(t *testing.T) {
	const tasks, window = 5000, 500 * time.Millisecond
	tr := NewTracker()
	q := priorityqueue.New[reconcile.Request]("usage-test")
	defer q.ShutDown()
	if err := tr.ClusterChanges(window).Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range tasks {
		tr.OnAdd(task("a", fmt.Sprint("t", i), "web", resolved(1)), false)
	}
	for i := range tasks {
		tr.OnUpdate(nil, task("a", fmt.Sprint("t", i), "web", resolved(1), last(ecsv1alpha1.TaskRunning)))
	}
	if took := time.Since(start); took >= window {
		t.Fatalf("the burst took %s, longer than the window %s: this test cannot tell coalescing apart", took, window)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("%d requests ready before the window passed, want 0", n)
	}
	req, _ := q.Get() // blocks until the window passes
	q.Done(req)
	if req.Name != "c1" {
		t.Errorf("request %s, want the cluster c1", req)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d more requests after the burst's one, want 0", n)
	}
	if waited := time.Since(start); waited < window {
		t.Errorf("the request was ready after %s, before the window %s", waited, window)
	}
	if got := tr.Cluster("c1"); got != (ClusterTasks{Running: tasks}) {
		t.Errorf("counts %+v, want %d running", got, tasks)
	}
}
