package faults_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestContainerdRestarts: containerd restarted three times (a clean stop, then two
// crashes) under 20 running tasks loses no task container: the shims keep the same
// processes running, no task is reported STOPPED or replaced. The agent reconnects by
// itself: a container killed after the last restart is noticed through containerd's
// events, and its task reported and replaced.
func TestContainerdRestarts(t *testing.T) {
	sc := newScenario(t, "containerd restarted 3 times under 20 running tasks")
	s := newStack(t)
	startManager(t, 10*time.Second)
	s.startAgent(t)
	s.taskDefinition(t, "web", nil)
	create(t, testobj.Service(s.ns, "web", "web", 20).Cluster(s.cluster).Obj())
	steady(t, s.ns, "web", 20, 180*time.Second)
	tasks := listTasks(t, s.ns)
	s.exactlyOnce(t, tasks, "c0")
	before := s.pids(t)
	if len(before) != 20 {
		t.Fatalf("%d running containers, want 20", len(before))
	}

	var downtime time.Duration
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGKILL} {
		start := time.Now()
		if err := s.ctr.Restart(sig); err != nil {
			t.Fatalf("restart %d (%s): %v", i+1, sig, err)
		}
		downtime = max(downtime, time.Since(start))
		time.Sleep(3 * time.Second) // let the agent notice, and react if it would
		if after := s.pids(t); !samePIDs(before, after) {
			t.Fatalf("after restart %d (%s): containers and pids changed:\nbefore %v\nafter  %v", i+1, sig, before, after)
		}
		for _, task := range listTasks(t, s.ns) {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning || task.Spec.DesiredStatus != ecsv1alpha1.DesiredRunning {
				t.Errorf("after restart %d: task %s is %s (desired %s)", i+1, task.Name, task.Status.LastStatus, task.Spec.DesiredStatus)
			}
		}
		if n := len(listTasks(t, s.ns)); n != 20 {
			t.Fatalf("after restart %d: %d tasks, want the same 20", i+1, n)
		}
	}
	sc.note("containerd down at most %s per restart", downtime.Round(100*time.Millisecond))
	waitFor(t, 30*time.Second, "the instance's runtime ready", func() error { return runtimeReady(s) })
	s.exactlyOnce(t, listTasks(t, s.ns), "c0")

	// The agent follows containerd's events again: kill one container's process.
	victim := tasks[0].UID
	cs := s.exactlyOnce(t, tasks, "c0")
	if err := syscall.Kill(int(cs[victim]["c0"].pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	noticed := waitFor(t, 60*time.Second, "the killed container's task reported STOPPED", func() error {
		for _, task := range listTasks(t, s.ns) {
			if task.UID == victim {
				if task.Status.LastStatus != ecsv1alpha1.TaskStopped || task.Status.StopCode != ecsv1alpha1.StopEssentialContainerExited {
					return fmt.Errorf("%s is %s (%s)", task.Name, task.Status.LastStatus, task.Status.StopCode)
				}
				return nil
			}
		}
		return fmt.Errorf("task %s is gone", victim)
	})
	sc.recovered(noticed, "a container killed after the 3rd restart reported STOPPED")
	steady(t, s.ns, "web", 20, 60*time.Second)
	tasks = listTasks(t, s.ns)
	if len(tasks) != 21 {
		t.Errorf("%d tasks, want the 20 and one replacement", len(tasks))
	}
	s.exactlyOnce(t, tasks, "c0")
	after := s.pids(t)
	delete(before, cs[victim]["c0"].id)
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("container %s: pid %d before, %d after", id, pid, after[id])
		}
	}
}

func samePIDs(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for id, pid := range a {
		if b[id] != pid {
			return false
		}
	}
	return true
}

// runtimeReady is nil when the stack's instance reports its runtime ready.
func runtimeReady(s *stack) error {
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "node-" + s.ns}, &ci); err != nil {
		return err
	}
	for _, c := range ci.Status.Conditions {
		if c.Type == ecsv1alpha1.InstanceConditionRuntimeReady {
			if c.Status != "True" {
				return fmt.Errorf("RuntimeReady %s: %s", c.Status, c.Message)
			}
			return nil
		}
	}
	return fmt.Errorf("no RuntimeReady condition")
}
