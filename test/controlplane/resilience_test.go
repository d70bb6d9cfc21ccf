package controlplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestUnreachableInstanceTasksReplaced: an instance whose agent stops heartbeating has
// its service tasks replaced after the grace period, and when it comes back only one
// copy of each survives.
func TestUnreachableInstanceTasksReplaced(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns})
	waitConnected(t, agents.Names()...)
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 4).Cluster(cluster).UnreachableGrace(2).Strategy(ecsv1alpha1.PlacementStrategySpread, "instanceId").Obj(),
	)
	steady(t, ns, "web", 4, "web:1")
	lost, kept := agents.Names()[0], agents.Names()[1]
	if agents.RunningTasks(lost) == 0 {
		t.Fatalf("spread placed nothing on %s", lost)
	}
	if err := agents.Disconnect(lost); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "instance disconnected", func() error {
		var ci ecsv1alpha1.ContainerInstance
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: lost}, &ci); err != nil {
			return err
		}
		if ci.Status.AgentConnected {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	// Replacements run on the instance that is left; the lost copies still "run".
	waitFor(t, 60*time.Second, "replacements on the remaining instance", func() error {
		if n := agents.RunningTasks(kept); n != 4 {
			return fmt.Errorf("%d tasks on %s, want 4", n, kept)
		}
		return nil
	})
	for _, task := range listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}) {
		if task.Spec.ContainerInstance == lost && task.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
			t.Errorf("task %s on the lost instance is still desired RUNNING", task.Name)
		} else if task.Spec.ContainerInstance == lost && task.Spec.StopCode != ecsv1alpha1.StopInstanceUnreachable {
			t.Errorf("task %s stopped with %q, want InstanceUnreachable", task.Name, task.Spec.StopCode)
		}
	}

	if err := agents.Reconnect(lost); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "stale copies stopped after the instance returned", func() error {
		if n := agents.RunningTasks(lost); n != 0 {
			return fmt.Errorf("%d stale tasks still run on %s", n, lost)
		}
		return nil
	})
	steady(t, ns, "web", 4, "web:1")
	if total := agents.RunningTasks(lost) + agents.RunningTasks(kept); total != 4 {
		t.Errorf("%d copies run in all, want 4", total)
	}
}

// TestManagerKilledMidScaleUp stops the manager while a scale-up is under way and
// starts a new one, and then runs two managers at once (no leader election): the
// service ends with exactly the desired count either way.
func TestManagerKilledMidScaleUp(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 4, NamePrefix: ns, RunningDelay: 500 * time.Millisecond})
	stop := startManager(t)
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 30).Cluster(cluster).Obj(),
	)
	waitFor(t, 30*time.Second, "a scale-up under way", func() error {
		n := len(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}))
		if n == 0 {
			return fmt.Errorf("no task yet")
		}
		return nil
	})
	stop()
	startManager(t)
	steady(t, ns, "web", 30, "web:1")
	noTaskEverDuplicated(t, ns, 30)

	// Two managers at once, each with its own cache and no leader election.
	startManager(t)
	scale(t, ns, "web", 60)
	steady(t, ns, "web", 60, "web:1")
	time.Sleep(2 * time.Second) // let any duplicate the two managers made show up
	steady(t, ns, "web", 60, "web:1")
	noTaskEverDuplicated(t, ns, 60)
	scale(t, ns, "web", 10)
	steady(t, ns, "web", 10, "web:1")
}

// noTaskEverDuplicated checks that a scale-up with no failures created exactly want
// task objects: an extra copy, even one stopped again by scale-in, would still exist
// as a stopped task.
func noTaskEverDuplicated(t *testing.T, ns string, want int) {
	t.Helper()
	all := listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"})
	if len(all) != want {
		t.Errorf("%d task objects for %d desired: duplicates were created\n%s", len(all), want, describeTasks(all))
	}
}

// TestReapplyWritesNothing is a GitOps re-sync: applying the same manifests again
// with server-side apply must change no object once the controllers have settled.
func TestReapplyWritesNothing(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns})
	objs := []client.Object{
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 3).Cluster(cluster).Obj(),
	}
	apply := func() {
		t.Helper()
		for _, o := range objs {
			if err := testenv.Apply(context.Background(), env.Client, o, "argocd"); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply()
	steady(t, ns, "web", 3, "web:1")
	time.Sleep(time.Second)
	before := versions(t, ns)
	apply()
	time.Sleep(3 * time.Second)
	after := versions(t, ns)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed after re-applying unchanged manifests: resourceVersion %s -> %s", k, v, after[k])
		}
	}
}

func versions(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := context.Background()
	var tds ecsv1alpha1.TaskDefinitionList
	var svcs ecsv1alpha1.ServiceList
	var tasks ecsv1alpha1.TaskList
	for _, l := range []client.ObjectList{&tds, &svcs, &tasks} {
		if err := env.Client.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range tds.Items {
		out["TaskDefinition/"+o.Name] = o.ResourceVersion
	}
	for _, o := range svcs.Items {
		out["Service/"+o.Name] = o.ResourceVersion
	}
	for _, o := range tasks.Items {
		out["Task/"+o.Name] = o.ResourceVersion
	}
	return out
}
