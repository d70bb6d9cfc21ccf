package controlplane

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestServiceCreatesOnlyWhatFits: a desiredCount far above the cluster's room creates
// only the tasks that fit, each created already bound (no binding write); the
// shortfall shows in pendingCount, unplacedCount, TasksPlaced=False with the reason,
// one Warning, and the cluster's unplaceable count; room that appears is filled; and
// scaling back settles at once.
func TestServiceCreatesOnlyWhatFits(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns, CPU: 1024, Memory: 512})
	waitConnected(t, agents.Names()...)

	// Every task the service ever creates, seen through a watch.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	var created, createdUnbound atomic.Int32
	go func() {
		for ev := range w.ResultChan() {
			if task, ok := ev.Object.(*ecsv1alpha1.Task); ok && ev.Type == watch.Added {
				created.Add(1)
				if task.Spec.ContainerInstance == "" {
					createdUnbound.Add(1)
				}
			}
		}
	}()
	defer w.Stop()

	create(t, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}},
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 5000).Cluster(cluster).Obj())

	// Room for 8: 4 per instance by CPU and memory.
	waitShort(t, ns, 8, 4992)
	if err := hasUnplaceableWarning(ns, "web", "insufficient"); err != nil {
		t.Error(err)
	}
	waitFor(t, time.Minute, "the cluster counts the 4992 tasks the service could not place", func() error {
		var c ecsv1alpha1.Cluster
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: cluster}, &c); err != nil {
			return err
		}
		if u := c.Status.Utilization; u == nil || u.UnplaceableTasks != 4992 {
			return fmt.Errorf("cluster utilization %+v", u)
		}
		return nil
	})

	// Room appears: a third instance joins, and the service fills it.
	more := startHollow(t, hollow.Config{Cluster: cluster, Instances: 1, NamePrefix: ns + "-more", CPU: 1024, Memory: 512})
	waitConnected(t, more.Names()...)
	waitShort(t, ns, 12, 4988)

	scale(t, ns, "web", 3)
	steady(t, ns, "web", 3, "web:1")
	svc := getService(t, ns, "web")
	if c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("TasksPlaced after scaling in: %+v", c)
	}
	if svc.Status.UnplacedCount != 0 {
		t.Errorf("unplacedCount %d after scaling in, want 0", svc.Status.UnplacedCount)
	}
	if n := created.Load(); n != 12 {
		t.Errorf("the service created %d tasks, want the 12 that fit", n)
	}
	if n := createdUnbound.Load(); n != 0 {
		t.Errorf("%d tasks were created unbound, want every one created placed", n)
	}
	for _, task := range listTasks(t, ns) {
		for _, mf := range task.ManagedFields {
			if mf.Manager == ecsv1alpha1.FieldManagerScheduler {
				t.Errorf("task %s has a write by the scheduler (%s %s): a service task is created bound", task.Name, mf.Operation, mf.Subresource)
			}
		}
		if c := meta.FindStatusCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c == nil || c.Status != metav1.ConditionTrue ||
			!strings.Contains(c.Message, task.Spec.ContainerInstance) {
			t.Errorf("task %s: Placed condition %+v, want True naming %s", task.Name, c, task.Spec.ContainerInstance)
		}
	}
}

// waitShort waits until the service runs running tasks and says it could not place
// unplaced more, with no other task than those running.
func waitShort(t *testing.T, ns string, running, unplaced int32) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("%d tasks running and %d not placed", running, unplaced), func() error {
		svc := getService(t, ns, "web")
		st := svc.Status
		c := meta.FindStatusCondition(st.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced)
		if st.RunningCount != running || st.UnplacedCount != unplaced || st.PendingCount != unplaced {
			return fmt.Errorf("running %d pending %d unplaced %d; conditions %s", st.RunningCount, st.PendingCount, st.UnplacedCount, describe(st.Conditions))
		}
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonUnplaceable ||
			!strings.HasPrefix(c.Message, fmt.Sprintf("%d tasks not placed: ", unplaced)) {
			return fmt.Errorf("TasksPlaced %+v", c)
		}
		if tasks := listTasks(t, ns); len(tasks) != int(running) {
			return fmt.Errorf("%d tasks exist, want %d", len(tasks), running)
		}
		return nil
	})
}

// hasUnplaceableWarning finds exactly one Unplaceable Warning about the service whose
// note contains note.
func hasUnplaceableWarning(ns, name, note string) error {
	found, err := warningNotes(context.Background(), ns, "Service", name, ecsv1alpha1.ReasonUnplaceable)
	if err != nil {
		return err
	}
	if len(found) != 1 || !strings.Contains(found[0], note) {
		return fmt.Errorf("Unplaceable Warnings about service %s: %q, want one naming %q", name, found, note)
	}
	return nil
}
