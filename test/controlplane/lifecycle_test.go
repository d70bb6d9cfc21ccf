package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/test/testobj"
)

func drain(t *testing.T, instance string) {
	t.Helper()
	ci := &ecsv1alpha1.ContainerInstance{}
	ci.Name = instance
	if err := env.Client.Patch(context.Background(), ci, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"draining":true}}`))); err != nil {
		t.Fatal(err)
	}
}

// TestDrainingMovesServiceTasksWithinBounds: RUNNING service tasks on a DRAINING
// instance are replaced elsewhere without going below the minimum, and standalone
// tasks are left alone.
func TestDrainingMovesServiceTasksWithinBounds(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns, RunningDelay: 300 * time.Millisecond})
	waitConnected(t, agents.Names()...)
	drained, other := agents.Names()[0], agents.Names()[1]
	const desired, minPct, maxPct = 4, 100, 150
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", desired).Cluster(cluster).Bounds(minPct, maxPct).Strategy(ecsv1alpha1.PlacementStrategySpread, "instanceId").Obj(),
		testobj.Task(ns, "standalone", "web").Cluster(cluster).On(drained).Obj(),
	)
	steady(t, ns, "web", desired, "web:1")
	violations, _ := watchBounds(t, ns, "web", int(deployment.MinHealthy(desired, minPct)), int(deployment.MaxTotal(desired, maxPct)))

	drain(t, drained)
	waitFor(t, 60*time.Second, "service tasks moved off the drained instance", func() error {
		live := liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}))
		for _, task := range live {
			if task.Spec.ContainerInstance == drained {
				return fmt.Errorf("%s still on %s", task.Name, drained)
			}
		}
		if len(live) != desired {
			return fmt.Errorf("%d live tasks", len(live))
		}
		return nil
	})
	steady(t, ns, "web", desired, "web:1")
	if v := violations(); len(v) > 0 {
		t.Errorf("bounds violated while draining: %v", v)
	}
	if n := agents.RunningTasks(other); n != desired {
		t.Errorf("%d tasks on %s, want %d", n, other, desired)
	}
	if task := getTask(t, ns, "standalone"); task.Spec.DesiredStatus != ecsv1alpha1.DesiredRunning || task.Status.LastStatus != ecsv1alpha1.TaskRunning {
		t.Errorf("standalone task on the drained instance was touched: desired %s, last %s", task.Spec.DesiredStatus, task.Status.LastStatus)
	}
}

// TestDeletingServiceStopsTasksFirst: a deleted Service stays while its tasks are
// still running on a connected instance, asks them to stop, and goes away once they
// stopped. The agent is paused (within its heartbeat grace) so the wait is visible.
func TestDeletingServiceStopsTasksFirst(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 1, NamePrefix: ns, LeaseInterval: 200 * time.Millisecond})
	inst := agents.Names()[0]
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 3).Cluster(cluster).Obj(),
	)
	steady(t, ns, "web", 3, "web:1")
	if err := agents.Disconnect(inst); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), getService(t, ns, "web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "tasks asked to stop", func() error {
		for _, task := range listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}) {
			if task.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped || task.Spec.StopCode != ecsv1alpha1.StopServiceSchedulerInitiated {
				return fmt.Errorf("%s: desired %s, stopCode %q", task.Name, task.Spec.DesiredStatus, task.Spec.StopCode)
			}
		}
		return nil
	})
	// The tasks still run and their agent is (for the manager) still connected.
	if svc := getService(t, ns, "web"); svc.DeletionTimestamp == nil {
		t.Fatal("service not being deleted")
	}
	if n := agents.RunningTasks(inst); n != 3 {
		t.Fatalf("%d tasks running while the agent is paused, want 3", n)
	}
	if err := agents.Reconnect(inst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "service gone", func() error {
		var s ecsv1alpha1.Service
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &s)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("service still exists (err %w)", err)
	})
	if n := agents.RunningTasks(inst); n != 0 {
		t.Errorf("%d containers still run after the service was deleted", n)
	}
}

// TestStoppedTasksCollectedAfterRetention: stopped tasks are deleted after the
// cluster's retention period, except the service's most recent one.
func TestStoppedTasksCollectedAfterRetention(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 1, NamePrefix: ns})
	c := &ecsv1alpha1.Cluster{Spec: ecsv1alpha1.ClusterSpec{StoppedTaskRetentionSeconds: ptr.To[int32](2)}}
	c.Name = cluster
	create(t, c,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 3).Cluster(cluster).Obj(),
		testobj.Task(ns, "oneoff", "web").Cluster(cluster).Obj(),
	)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), c) })
	steady(t, ns, "web", 3, "web:1")
	scale(t, ns, "web", 0)
	stop := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"desiredStatus":"STOPPED"}}`))
	oneoff := &ecsv1alpha1.Task{}
	oneoff.Namespace, oneoff.Name = ns, "oneoff"
	if err := env.Client.Patch(context.Background(), oneoff, stop); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "stopped tasks collected", func() error {
		all := listTasks(t, ns)
		if len(all) != 1 {
			return fmt.Errorf("%d tasks left, want the service's most recent stopped one:\n%s", len(all), describeTasks(all))
		}
		if all[0].Labels[ecsv1alpha1.LabelService] != "web" || all[0].Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("kept %s (%s)", all[0].Name, all[0].Status.LastStatus)
		}
		return nil
	})
}

// TestServiceWaitsForItsTaskDefinition: a Service naming a family that does not exist
// says so on its Accepted condition, and converges once the family is registered.
func TestServiceWaitsForItsTaskDefinition(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 1, NamePrefix: ns})
	create(t, testobj.Service(ns, "web", "later", 2).Cluster(cluster).Obj())
	waitFor(t, 30*time.Second, "Accepted=False", func() error {
		svc := getService(t, ns, "web")
		for _, c := range svc.Status.Conditions {
			if c.Type == ecsv1alpha1.ConditionAccepted && c.Reason == ecsv1alpha1.ReasonRevisionNotFound &&
				strings.Contains(c.Message, `spec.taskDefinition: task definition later not found`) {
				return nil
			}
		}
		return fmt.Errorf("conditions: %s", describe(svc.Status.Conditions))
	})
	// Said on the condition, but no Warning while the TaskDefinition may still be
	// applied (revision.ApplyGrace): `kubectl apply -f dir/` creates service-*.yaml
	// before taskdefinition-*.yaml. Events are written asynchronously: give them time.
	time.Sleep(time.Second)
	if notes, err := warningNotes(context.Background(), ns, "Service", "web", ecsv1alpha1.ReasonRevisionNotFound); err != nil || len(notes) > 0 {
		t.Errorf("RevisionNotFound Warnings within the grace: %q (%v)", notes, err)
	}
	create(t, testobj.TaskDefinition(ns, "later").Container("app", "demo:1").Obj())
	svc := steady(t, ns, "web", 2, "later:1")
	if !conditionTrue(svc.Status.Conditions, ecsv1alpha1.ConditionAccepted) {
		t.Errorf("Accepted is not True: %s", describe(svc.Status.Conditions))
	}
}
