package engine

import (
	"strconv"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func withPause(c *Config) { c.PauseBinary = "/usr/local/bin/berth" }

// callOrder is the index of each create, start, stop and delete of the task's
// containers in the runtime's calls, as "Method name".
func callOrder(h *harness, d Desired, names ...string) map[string]int {
	ids := map[string]string{pauseID(d.UID): "pause"}
	for _, n := range names {
		ids[id(d, n)] = n
	}
	out := map[string]int{}
	for i, c := range h.rt.Calls() {
		if n, ok := ids[c.ID]; ok {
			if _, seen := out[c.Method+" "+n]; !seen {
				out[c.Method+" "+n] = i
			}
		}
	}
	return out
}

// TestPauseContainerLifecycle: a pidMode task task's pause container is created
// and started before the task's containers, which join its namespaces; it is
// stopped and deleted after they stopped, and never reported as a container.
func TestPauseContainerLifecycle(t *testing.T) {
	h := newHarness(t, withPause)
	spec := taskDef().Container("app", image("app")).Container("side", image("side")).Obj().Spec
	spec.PidMode, spec.IpcMode = ecsv1alpha1.NamespaceModeTask, ecsv1alpha1.NamespaceModeTask
	d := desired("web-1", &spec)
	h.eng.Update(d)
	r := h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	if len(r.Containers) != 2 {
		t.Errorf("reported containers: %s", dump(r))
	}
	pause, ok := h.rt.Spec(pauseID(d.UID))
	if !ok || !runtime.IsPause(pause.Labels) || pause.RootFS == "" {
		t.Fatalf("pause container: %+v", pause)
	}
	app, _ := h.rt.Spec(id(d, "app"))
	if app.PIDNamespacePath == "" || app.PIDNamespacePath != "/proc/"+pidOf(t, h, pauseID(d.UID))+"/ns/pid" || app.IPCNamespacePath == "" {
		t.Errorf("app does not join the pause container's namespaces: pid %q ipc %q", app.PIDNamespacePath, app.IPCNamespacePath)
	}

	h.eng.Update(stopped(d, "", ""))
	h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	at := callOrder(h, d, "app", "side")
	for _, before := range [][2]string{
		{"Start pause", "Create app"}, {"Start pause", "Create side"},
		{"Stop app", "Stop pause"}, {"Stop side", "Stop pause"}, {"Stop pause", "Delete pause"},
	} {
		a, okA := at[before[0]]
		b, okB := at[before[1]]
		if !okA || !okB || a > b {
			t.Errorf("%s (call %d, %v) should come before %s (call %d, %v)", before[0], a, okA, before[1], b, okB)
		}
	}
	if _, ok := h.rt.Spec(pauseID(d.UID)); ok {
		t.Error("the pause container is still in the runtime")
	}
}

func pidOf(t *testing.T, h *harness, id string) string {
	t.Helper()
	info, ok := h.rt.Info(id)
	if !ok {
		t.Fatalf("no container %s", id)
	}
	return strconv.FormatUint(uint64(info.Pid), 10)
}

// TestPauseRecoveredAfterRestart: after an agent restart the pause container is
// adopted as it runs (not started again), and stopping the task then removes it;
// while the agent was away an exit of the pause container stops the task.
func TestPauseRecoveredAfterRestart(t *testing.T) {
	for _, exitedAway := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "exited while away"}[exitedAway], func(t *testing.T) {
			h := newHarness(t, withPause)
			spec := taskDef().Container("app", image("app")).Obj().Spec
			spec.PidMode = ecsv1alpha1.NamespaceModeTask
			d := desired("web-1", &spec)
			h.eng.Update(d)
			last := h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

			h.kill()
			if exitedAway {
				if err := h.rt.Exit(pauseID(d.UID), 137); err != nil {
					t.Fatal(err)
				}
			}
			h.start()
			d.Status = apiStatus(last)
			h.eng.Update(d)
			if exitedAway {
				r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
				if r.StoppedReason != reasonPauseExited {
					t.Errorf("stop: %s", dump(r))
				}
			} else {
				h.eng.Update(stopped(d, "", ""))
				h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
			}
			if n := h.rt.Count("Start", pauseID(d.UID)); n != 1 {
				t.Errorf("pause container started %d times, want once", n)
			}
			if _, ok := h.rt.Spec(pauseID(d.UID)); ok {
				t.Error("the pause container is still in the runtime")
			}
		})
	}
}

// TestPauseExitStopsTask: when the pause container exits while the task runs, the
// shared namespaces are gone, so the task stops; the pause container is still
// removed.
func TestPauseExitStopsTask(t *testing.T) {
	h := newHarness(t, withPause)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	spec.PidMode = ecsv1alpha1.NamespaceModeTask
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	if err := h.rt.Exit(pauseID(d.UID), 137); err != nil {
		t.Fatal(err)
	}
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || r.StoppedReason != reasonPauseExited {
		t.Errorf("stop: %s", dump(r))
	}
	if _, ok := h.rt.Spec(pauseID(d.UID)); ok {
		t.Error("the pause container is still in the runtime")
	}
}

// TestPauseWithoutBinary: an agent without a berth binary for the pause process
// fails such tasks at once, saying why, and creates nothing.
func TestPauseWithoutBinary(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	spec.IpcMode = ecsv1alpha1.NamespaceModeTask
	d := desired("web-1", &spec)
	h.eng.Update(d)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != reasonNoPauseBinary {
		t.Errorf("stop: %s", dump(r))
	}
	if n := len(h.rt.CallIDs("Create")); n != 0 {
		t.Errorf("%d creates, want none", n)
	}
}
