package engine

import (
	"fmt"
	goruntime "runtime"
	"testing"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestSteadyTasksHoldNoGoroutine: a task that runs steadily parks its worker, so the
// engine's goroutines do not grow with the number of tasks (berth hollow runs tens of
// thousands on one process); any news starts the worker again: a container's exit
// stops its task, a stop is carried out.
func TestSteadyTasksHoldNoGoroutine(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	const n = 200
	before := goruntime.NumGoroutine()
	var tasks []Desired
	for i := range n {
		d := desired(fmt.Sprintf("web-%d", i), &spec)
		tasks = append(tasks, d)
		h.eng.Update(d)
	}
	for _, d := range tasks {
		h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	}
	// Every worker parks once it has published RUNNING; a few goroutines of the
	// runtime or the test may come and go.
	h.waitUntil("workers parked", func() bool { return goruntime.NumGoroutine() < before+n/10 })

	if err := h.rt.Exit(id(tasks[0], "app"), 3); err != nil {
		t.Fatal(err)
	}
	r := h.waitFor(tasks[0].UID, "STOPPED after its container exited", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || exitCode(r, "app") != 3 {
		t.Errorf("task 0: %s", dump(r))
	}
	stop := tasks[1]
	stop.DesiredStatus = ecsv1alpha1.DesiredStopped
	h.eng.Update(stop)
	r = h.waitFor(stop.UID, "STOPPED as asked", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopUserInitiated {
		t.Errorf("task 1: %s", dump(r))
	}
	for _, d := range tasks[2:] {
		if r, _ := h.rec.last(d.UID); r.LastStatus != ecsv1alpha1.TaskRunning {
			t.Fatalf("task %s: %s", d.Task.Name, dump(r))
		}
	}
}
