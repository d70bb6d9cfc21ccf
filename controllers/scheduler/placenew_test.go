package scheduler

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// TestPlaceNew: tasks about to be created are placed in order and hold their room at
// once; with alike tasks the first that finds no room ends the batch; Unplace gives
// the room back; every placement wakes nobody until room appears, which OnRoom hears.
func TestPlaceNew(t *testing.T) {
	s := &Scheduler{Engine: placement.NewEngine(placement.WithSeed(1))}
	for _, name := range []string{"a", "b"} {
		s.upsertInstance(&ecsv1alpha1.ContainerInstance{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: "default"},
			Status: ecsv1alpha1.ContainerInstanceStatus{AgentConnected: true,
				RegisteredResources: &ecsv1alpha1.Resources{Cpu: 512, Memory: 4096}},
		})
	}
	var rooms []string
	s.OnRoom(func(cluster string) { rooms = append(rooms, cluster) })
	td := testobj.TaskDefinition("ns", "web").Container("app", "web:1").Obj()
	res := &revision.Resolved{Ref: revision.Ref{Family: "web", Revision: 1}, Spec: &td.Spec}
	tasks := make([]*ecsv1alpha1.Task, 6)
	for i := range tasks {
		tasks[i] = testobj.Task("ns", "web-"+string(rune('0'+i)), "web:1").Cluster("default").Obj()
	}

	errs := s.PlaceNew(tasks, res, true)
	perInstance := map[string]int{}
	for i := range 4 {
		if errs[i] != nil || tasks[i].Spec.ContainerInstance == "" {
			t.Fatalf("task %d: %v, instance %q; want placed (room for 4)", i, errs[i], tasks[i].Spec.ContainerInstance)
		}
		perInstance[tasks[i].Spec.ContainerInstance]++
	}
	if perInstance["a"] != 2 || perInstance["b"] != 2 {
		t.Errorf("placed per instance %v, want 2 on each", perInstance)
	}
	var unplaceable *placement.UnplaceableError
	if !errors.As(errs[4], &unplaceable) || unplaceable.Instances != 2 {
		t.Errorf("task 4: %v, want an UnplaceableError over 2 instances", errs[4])
	}
	if !errors.Is(errs[5], placement.ErrNotTried) || tasks[5].Spec.ContainerInstance != "" {
		t.Errorf("task 5: %v, instance %q; want ErrNotTried, unplaced", errs[5], tasks[5].Spec.ContainerInstance)
	}

	// The room of a task that was not created goes back to the engine.
	s.Unplace(tasks[0])
	if again := s.PlaceNew(tasks[4:5], res, true); again[0] != nil || tasks[4].Spec.ContainerInstance != tasks[0].Spec.ContainerInstance {
		t.Errorf("after Unplace: %v on %q, want the room of task 0 on %q", again[0], tasks[4].Spec.ContainerInstance, tasks[0].Spec.ContainerInstance)
	}

	// A task that stops frees room: the listeners hear of the cluster.
	stopped := tasks[1].DeepCopy()
	stopped.Status.LastStatus = ecsv1alpha1.TaskStopped
	s.observeTask(t.Context(), stopped)
	if len(rooms) == 0 || rooms[len(rooms)-1] != "default" {
		t.Errorf("room listeners heard %q, want the default cluster", rooms)
	}
}
