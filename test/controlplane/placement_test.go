package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

func getTask(t *testing.T, ns, name string) *ecsv1alpha1.Task {
	t.Helper()
	var task ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &task); err != nil {
		t.Fatal(err)
	}
	return &task
}

// placed waits for tasks to be bound and returns their instances.
func placed(t *testing.T, ns string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	waitFor(t, 30*time.Second, "tasks placed", func() error {
		for _, n := range names {
			task := getTask(t, ns, n)
			if task.Spec.ContainerInstance == "" {
				return fmt.Errorf("%s not placed: %s", n, describe(task.Status.Conditions))
			}
			out[n] = task.Spec.ContainerInstance
		}
		return nil
	})
	return out
}

// unplaced waits until a task reports Placed=False with a message containing want.
func unplaced(t *testing.T, ns, name, wantReason string, want ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, name+" reported unplaceable", func() error {
		task := getTask(t, ns, name)
		if task.Spec.ContainerInstance != "" {
			return fmt.Errorf("placed on %s", task.Spec.ContainerInstance)
		}
		for _, c := range task.Status.Conditions {
			if c.Type != ecsv1alpha1.TaskConditionPlaced || c.Status != metav1.ConditionFalse {
				continue
			}
			if c.Reason != wantReason {
				return fmt.Errorf("reason %s, want %s", c.Reason, wantReason)
			}
			for _, w := range want {
				if !strings.Contains(c.Message, w) {
					return fmt.Errorf("message %q lacks %q", c.Message, w)
				}
			}
			if task.Status.LastStatus != ecsv1alpha1.TaskProvisioning {
				return fmt.Errorf("lastStatus %q, want PROVISIONING", task.Status.LastStatus)
			}
			return nil
		}
		return fmt.Errorf("no Placed=False condition: %s", describe(task.Status.Conditions))
	})
}

func TestPlacementStrategiesAndConstraints(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 3, NamePrefix: ns,
		Zones: []string{"zone-a", "zone-b", "zone-c"}, Memory: 1024, CPU: 2048})
	waitConnected(t, agents.Names()...)
	zoneOf := map[string]string{}
	for i, n := range agents.Names() {
		zoneOf[n] = []string{"zone-a", "zone-b", "zone-c"}[i%3]
	}
	create(t, testobj.TaskDefinition(ns, "job").Container("app", "demo:1").Obj()) // 128 MiB, 256 cpu

	t.Run("spread over zones", func(t *testing.T) {
		var names []string
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("spread-%d", i)
			names = append(names, name)
			create(t, testobj.Task(ns, name, "job").Cluster(cluster).Group("spread").
				Strategy(ecsv1alpha1.PlacementStrategySpread, "attribute:ecs.availability-zone").Obj())
		}
		zones := map[string]bool{}
		for _, inst := range placed(t, ns, names...) {
			zones[zoneOf[inst]] = true
		}
		if len(zones) != 3 {
			t.Errorf("3 spread tasks landed in zones %v", zones)
		}
	})

	t.Run("binpack on memory", func(t *testing.T) {
		var names []string
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("pack-%d", i)
			names = append(names, name)
			create(t, testobj.Task(ns, name, "job").Cluster(cluster).Group("pack").
				Strategy(ecsv1alpha1.PlacementStrategyBinpack, "memory").Obj())
			placed(t, ns, name) // one at a time: each sees the previous one's memory
		}
		got := placed(t, ns, names...)
		if got["pack-0"] != got["pack-1"] || got["pack-1"] != got["pack-2"] {
			t.Errorf("binpack spread the tasks: %v", got)
		}
	})

	t.Run("memberOf", func(t *testing.T) {
		create(t, testobj.Task(ns, "member", "job").Cluster(cluster).
			Constraint(ecsv1alpha1.PlacementConstraintMemberOf, "attribute:ecs.availability-zone == zone-b").Obj())
		if inst := placed(t, ns, "member")["member"]; zoneOf[inst] != "zone-b" {
			t.Errorf("memberOf zone-b placed on %s in %s", inst, zoneOf[inst])
		}
	})

	t.Run("distinctInstance", func(t *testing.T) {
		var names []string
		for i := 0; i < 4; i++ {
			name := fmt.Sprintf("distinct-%d", i)
			names = append(names, name)
			create(t, testobj.Task(ns, name, "job").Cluster(cluster).Group("distinct").
				Constraint(ecsv1alpha1.PlacementConstraintDistinctInstance, "").Obj())
		}
		seen := map[string]bool{}
		var waiting string
		waitFor(t, 30*time.Second, "three placed, one waiting", func() error {
			seen, waiting = map[string]bool{}, ""
			for _, n := range names {
				task := getTask(t, ns, n)
				if task.Spec.ContainerInstance == "" {
					waiting = n
					continue
				}
				seen[task.Spec.ContainerInstance] = true
			}
			if len(seen) != 3 || waiting == "" {
				return fmt.Errorf("placed on %v, waiting %q", seen, waiting)
			}
			return nil
		})
		unplaced(t, ns, waiting, ecsv1alpha1.ReasonUnplaceable, "3 instances: distinctInstance")
	})

	t.Run("impossible task says why", func(t *testing.T) {
		create(t, testobj.TaskDefinition(ns, "huge").Container("app", "demo:1").
			Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Memory = ptr.To[int32](4096) }).Obj())
		create(t, testobj.Task(ns, "huge", "huge").Cluster(cluster).Obj())
		unplaced(t, ns, "huge", ecsv1alpha1.ReasonUnplaceable, "3 instances: insufficient memory")
	})

	t.Run("malformed expression is rejected with its position", func(t *testing.T) {
		create(t, testobj.Task(ns, "badexpr", "job").Cluster(cluster).
			Constraint(ecsv1alpha1.PlacementConstraintMemberOf, "attribute:stack in [a, b").Obj())
		unplaced(t, ns, "badexpr", ecsv1alpha1.ReasonInvalidSpec, "spec.placementConstraints[0].expression: position")
	})

	t.Run("task applied before its TaskDefinition waits quietly", func(t *testing.T) {
		// `kubectl apply -f dir/` creates task-*.yaml before taskdefinition-*.yaml.
		create(t, testobj.Task(ns, "early", "later").Cluster(cluster).Obj())
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if c := meta.FindStatusCondition(getTask(t, ns, "early").Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c != nil && c.Status == metav1.ConditionFalse {
				t.Fatalf("a task whose TaskDefinition is about to be applied was reported: %s %s", c.Reason, c.Message)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if notes, err := warningNotes(context.Background(), ns, "Task", "early", ecsv1alpha1.ReasonRevisionNotFound); err != nil || len(notes) > 0 {
			t.Errorf("RevisionNotFound Warnings within the grace: %q (%v)", notes, err)
		}
		create(t, testobj.TaskDefinition(ns, "later").Container("app", "demo:1").Obj())
		placed(t, ns, "early")
	})

	t.Run("missing revision", func(t *testing.T) {
		create(t, testobj.Task(ns, "norev", "job:9").Cluster(cluster).Obj())
		unplaced(t, ns, "norev", ecsv1alpha1.ReasonRevisionNotFound, "no revision 9")
	})
}
