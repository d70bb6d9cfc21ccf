package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// gpuTaskDefinition is one container asking for n GPUs.
func gpuTaskDefinition(ns, name string, n int) *ecsv1alpha1.TaskDefinition {
	return testobj.TaskDefinition(ns, name).Container("app", "cuda:12").
		Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.ResourceRequirements = []ecsv1alpha1.ResourceRequirement{{Type: ecsv1alpha1.ResourceGPU, Value: fmt.Sprint(n)}}
		}).Obj()
}

// running waits for a task to be RUNNING.
func running(t *testing.T, ns, name string) *ecsv1alpha1.Task {
	t.Helper()
	var task *ecsv1alpha1.Task
	waitFor(t, 30*time.Second, name+" running", func() error {
		task = getTask(t, ns, name)
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("lastStatus %q (%s)", task.Status.LastStatus, task.Status.StoppedReason)
		}
		return nil
	})
	return task
}

// remainingGPUs waits until an instance reports the GPUs no task holds.
func remainingGPUs(t *testing.T, instance string, want ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, instance+" reports its free GPUs", func() error {
		var ci ecsv1alpha1.ContainerInstance
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: instance}, &ci); err != nil {
			return err
		}
		if r := ci.Status.RemainingResources; r == nil || !slices.Equal(r.GPUs, want) {
			return fmt.Errorf("remaining %+v, want GPUs %v", r, want)
		}
		return nil
	})
}

// TestGPUPlacement places tasks asking for GPUs on hollow instances (the real agent
// over an in-memory runtime) through the real manager: a task needing N GPUs lands
// only on an instance with N unassigned, each GPU goes to one task at a time, the
// binding records which ones, and the agent reports its free GPUs.
func TestGPUPlacement(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	gpuAgents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns + "-gpu", GPUs: 2})
	cpuAgents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 1, NamePrefix: ns + "-cpu"})
	waitConnected(t, append(gpuAgents.Names(), cpuAgents.Names()...)...)
	gpuInstances := gpuAgents.Names()

	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: gpuInstances[0]}, &ci); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0", "1"}, ci.Status.RegisteredResources.GPUs); diff != "" {
		t.Fatalf("registered GPUs (-want +got):\n%s", diff)
	}
	create(t, gpuTaskDefinition(ns, "train", 2), gpuTaskDefinition(ns, "infer", 1))

	// Two tasks needing both GPUs of an instance: one on each GPU instance.
	create(t, testobj.Task(ns, "train-0", "train").Cluster(cluster).Obj(),
		testobj.Task(ns, "train-1", "train").Cluster(cluster).Obj())
	got := placed(t, ns, "train-0", "train-1")
	if got["train-0"] == got["train-1"] || !slices.Contains(gpuInstances, got["train-0"]) || !slices.Contains(gpuInstances, got["train-1"]) {
		t.Fatalf("the 2-GPU tasks landed on %v, want one on each of %v", got, gpuInstances)
	}
	for _, name := range []string{"train-0", "train-1"} {
		task := running(t, ns, name)
		want := []ecsv1alpha1.GPUAssignment{{ContainerName: "app", GPUIDs: []string{"0", "1"}}}
		if diff := cmp.Diff(want, task.Spec.GPUAssignments); diff != "" {
			t.Errorf("%s: gpuAssignments (-want +got):\n%s", name, diff)
		}
		remainingGPUs(t, task.Spec.ContainerInstance)
	}

	// Every GPU is taken: a task needing one waits and says why, on every instance.
	create(t, testobj.Task(ns, "infer-0", "infer").Cluster(cluster).Obj())
	unplaced(t, ns, "infer-0", ecsv1alpha1.ReasonUnplaceable, "3 instances: fewer than 1 free GPUs")

	// A task that stops gives its GPUs back: the waiting one gets the first of them.
	stopTask(t, ns, "train-0")
	freed := got["train-0"]
	if inst := placed(t, ns, "infer-0")["infer-0"]; inst != freed {
		t.Errorf("infer-0 placed on %s, want %s, whose GPUs train-0 gave back", inst, freed)
	}
	task := running(t, ns, "infer-0")
	if diff := cmp.Diff([]ecsv1alpha1.GPUAssignment{{ContainerName: "app", GPUIDs: []string{"0"}}}, task.Spec.GPUAssignments); diff != "" {
		t.Errorf("infer-0: gpuAssignments (-want +got):\n%s", diff)
	}
	remainingGPUs(t, freed, "1")

	// A task bound at creation (StartTask) without an assignment is refused by the
	// agent, naming the field: nothing checked that its GPUs are free.
	create(t, testobj.Task(ns, "started", "infer").Cluster(cluster).On(gpuInstances[0]).Obj())
	waitFor(t, 30*time.Second, "started refused", func() error {
		st := getTask(t, ns, "started").Status
		if st.LastStatus != ecsv1alpha1.TaskStopped || st.StopCode != ecsv1alpha1.StopTaskFailedToStart ||
			!strings.Contains(st.StoppedReason, `spec.gpuAssignments: container "app" asks for 1 GPUs and has none assigned`) {
			return fmt.Errorf("lastStatus %q, stopCode %q, stoppedReason %q", st.LastStatus, st.StopCode, st.StoppedReason)
		}
		return nil
	})
}

// stopTask asks a task to stop and waits until it is STOPPED.
func stopTask(t *testing.T, ns, name string) {
	t.Helper()
	patch := []byte(`{"spec":{"desiredStatus":"STOPPED","stopCode":"UserInitiated"}}`)
	target := &ecsv1alpha1.Task{}
	target.Namespace, target.Name = ns, name
	if err := env.Client.Patch(context.Background(), target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, name+" stopped", func() error {
		if st := getTask(t, ns, name).Status.LastStatus; st != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("lastStatus %q", st)
		}
		return nil
	})
}
