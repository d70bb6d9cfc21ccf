package faults_test

import (
	"fmt"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestAgentKilledDuringPull: kill -9 of the agent in the middle of the download of
// a task's image layer (the registry holds the rest of it). The new agent pulls again,
// and runs the task once: one container, which printed "ready" once; nothing is left
// of the interrupted pull (its lease, its partly unpacked snapshot).
func TestAgentKilledDuringPull(t *testing.T) {
	sc := newScenario(t, "kill -9 of the agent during an image pull")
	s := newStack(t)
	startManager(t, 10*time.Second)
	agent := s.startAgent(t)
	s.taskDefinition(t, "pull", nil)
	s.reg.SetStalled(true)
	create(t, testobj.Task(s.ns, "pull", "pull").Cluster(s.cluster).Obj())

	waitTask(t, s.ns, "pull", 60*time.Second, "PENDING", lastStatus(ecsv1alpha1.TaskPending))
	waitFor(t, 30*time.Second, "the pull held by the registry", func() error {
		if s.reg.Stalled() == 0 {
			return fmt.Errorf("no blob download held")
		}
		return nil
	})
	agent.kill(t)
	if inv := s.inventory(t); len(inv) != 0 {
		t.Fatalf("containers exist before the image was pulled: %v", inv)
	}
	sc.note("the kill left %d active snapshot(s) and %d lease(s)", len(s.orphanSnapshots(t, nil)), s.leases(t))
	s.reg.SetStalled(false)

	restarted := time.Now()
	agent.start(t)
	task := waitTask(t, s.ns, "pull", 90*time.Second, "RUNNING", lastStatus(ecsv1alpha1.TaskRunning))
	sc.recovered(time.Since(restarted), "agent restart to RUNNING")
	cs := s.exactlyOnce(t, listTasks(t, s.ns), "c0")
	if n := lines(t, cs[task.UID]["c0"].logPath, "ready"); n != 1 {
		t.Errorf("the container printed ready %d times, want once", n)
	}
	if n := s.leases(t); n > 0 {
		t.Errorf("%d containerd leases left: they hold what the killed pull wrote for a day", n)
	}
}

// TestAgentKilledBetweenCreateAndStart: kill -9 of the agent while a container is
// created but not started (it waits for an init container to succeed), and the init
// container exits while no agent runs. The new agent adopts both: the init container
// is not run again, the waiting container is started once, the task runs.
func TestAgentKilledBetweenCreateAndStart(t *testing.T) {
	sc := newScenario(t, "kill -9 of the agent between create and start")
	s := newStack(t)
	startManager(t, 10*time.Second)
	agent := s.startAgent(t)
	s.taskDefinition(t, "dep",
		func(c *ecsv1alpha1.ContainerDefinition) {
			c.Name, c.Essential, c.Command = "init", ptr.To(false), []string{"echo=init-ran", "sleep=6s", "exit=0"}
		},
		func(c *ecsv1alpha1.ContainerDefinition) {
			c.Name, c.Command = "app", []string{"echo=app-ran", "sleep=inf"}
			c.DependsOn = []ecsv1alpha1.ContainerDependency{{ContainerName: "init", Condition: ecsv1alpha1.DependencySuccess}}
		})
	create(t, testobj.Task(s.ns, "dep", "dep").Cluster(s.cluster).Obj())

	// Kill when containerd shows app created without a process and init running.
	var uid string
	waitFor(t, 60*time.Second, "app created, init running", func() error {
		task := getTask(t, s.ns, "dep")
		uid = string(task.UID)
		var app, init *ctrInfo
		for _, c := range s.inventory(t) {
			switch c.name {
			case "app":
				app = &c
			case "init":
				init = &c
			}
		}
		if app == nil || init == nil || app.status != "" || init.status != containerd.Running {
			return fmt.Errorf("app %+v, init %+v", app, init)
		}
		return nil
	})
	agent.kill(t)
	waitFor(t, 30*time.Second, "init exited while no agent runs", func() error {
		for _, c := range s.inventory(t) {
			if c.name == "init" && c.status != containerd.Stopped {
				return fmt.Errorf("init is %q", c.status)
			}
		}
		return nil
	})

	restarted := time.Now()
	agent.start(t)
	task := waitTask(t, s.ns, "dep", 60*time.Second, "RUNNING", lastStatus(ecsv1alpha1.TaskRunning))
	sc.recovered(time.Since(restarted), "agent restart to RUNNING")
	cs := s.exactlyOnce(t, listTasks(t, s.ns), "init", "app")
	if string(task.UID) != uid {
		t.Fatalf("the task was replaced: uid %s, then %s", uid, task.UID)
	}
	init, app := cs[task.UID]["init"], cs[task.UID]["app"]
	if init.status != containerd.Stopped || init.exit != 0 {
		t.Errorf("init is %q with exit %d, want stopped with 0", init.status, init.exit)
	}
	if app.status != containerd.Running {
		t.Errorf("app is %q, want running", app.status)
	}
	if n := lines(t, init.logPath, "init-ran"); n != 1 {
		t.Errorf("init ran %d times, want once", n)
	}
	if n := lines(t, app.logPath, "app-ran"); n != 1 {
		t.Errorf("app ran %d times, want once", n)
	}
	for _, c := range task.Status.Containers {
		if c.Name == "init" && (c.ExitCode == nil || *c.ExitCode != 0) {
			t.Errorf("init reported with exit code %v, want 0", c.ExitCode)
		}
	}
}

// TestAgentKilledDuringStop: kill -9 of the agent while it waits for a container that
// ignores SIGTERM to exit (stopTimeout 8s). The stop is not lost: the new agent stops
// the same container (SIGKILL after the timeout, exit 137) and reports the task
// STOPPED with the user's stop code; nothing runs and nothing was started again.
func TestAgentKilledDuringStop(t *testing.T) {
	sc := newScenario(t, "kill -9 of the agent during a stop")
	s := newStack(t)
	startManager(t, 10*time.Second)
	agent := s.startAgent(t)
	s.taskDefinition(t, "stubborn", func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command, c.StopTimeout = []string{"ignore-term", "echo=ready", "sleep=inf"}, ptr.To[int32](8)
	})
	create(t, testobj.Task(s.ns, "stubborn", "stubborn").Cluster(s.cluster).Obj())
	task := waitTask(t, s.ns, "stubborn", 60*time.Second, "RUNNING", lastStatus(ecsv1alpha1.TaskRunning))
	before := s.exactlyOnce(t, listTasks(t, s.ns), "c0")[task.UID]["c0"]

	stopTask(t, s.ns, "stubborn", "fault suite")
	waitTask(t, s.ns, "stubborn", 30*time.Second, "STOPPING", lastStatus(ecsv1alpha1.TaskStopping))
	time.Sleep(2 * time.Second) // SIGTERM sent and ignored; the agent waits for the timeout
	agent.kill(t)
	if !alive(before.pid) {
		t.Fatalf("the container's process %d died on SIGTERM, which it ignores", before.pid)
	}

	restarted := time.Now()
	agent.start(t)
	task = waitTask(t, s.ns, "stubborn", 60*time.Second, "STOPPED", lastStatus(ecsv1alpha1.TaskStopped))
	sc.recovered(time.Since(restarted), "agent restart to STOPPED, incl. the 8s stopTimeout")
	if task.Status.StopCode != ecsv1alpha1.StopUserInitiated {
		t.Errorf("stopCode %s, want UserInitiated", task.Status.StopCode)
	}
	if c := task.Status.Containers; len(c) != 1 || c[0].ExitCode == nil || *c[0].ExitCode != 137 {
		t.Errorf("containers %+v, want c0 killed after its stop timeout (137)", c)
	}
	after := s.exactlyOnce(t, listTasks(t, s.ns), "c0")[task.UID]["c0"]
	if after.status != containerd.Stopped || after.exit != 137 {
		t.Errorf("container is %q with exit %d, want stopped with 137", after.status, after.exit)
	}
	if alive(before.pid) {
		t.Errorf("process %d still runs", before.pid)
	}
	if n := lines(t, after.logPath, "ready"); n != 1 {
		t.Errorf("the container started %d times, want once", n)
	}
}
