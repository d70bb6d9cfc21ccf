package faults_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// startManagerProc starts `berth manager` as a process, without leader election (the
// default), so that two of them reconcile at once.
func startManagerProc(t *testing.T, name string) *proc {
	t.Helper()
	p := newProc(t, name, "manager", "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", "0",
		"--health-probe-bind-address", "0", "--heartbeat-grace", "10s", "--scheduler-workers", "4", "--service-workers", "2")
	p.start(t)
	return p
}

// TestManagerKilledMidScaleUp: kill -9 of the manager process while it scales a
// service up to 20 real containers, then two manager processes at once (no leader
// election) scaling it to 40 and back to 10. Each time the service ends with exactly
// the desired count: as many task objects as were ever needed (a duplicate would
// stay as a task object), one container per task in containerd, and the tasks scaled
// in stopped.
//
// test/controlplane's TestManagerKilledMidScaleUp covers the same with hollow agents
// and in-process managers stopped by context; this one has real processes killed
// with -9 and real containers.
func TestManagerKilledMidScaleUp(t *testing.T) {
	sc := newScenario(t, "manager killed mid scale-up; two managers at once")
	s := newStack(t)
	s.startAgent(t)
	first := startManagerProc(t, "manager-1")
	s.taskDefinition(t, "web", nil)
	create(t, testobj.Service(s.ns, "web", "web", 20).Cluster(s.cluster).Obj())
	// Kill as soon as the first task exists (polled tightly: the manager creates the
	// 20 in batches within a fraction of a second).
	for deadline := time.Now().Add(60 * time.Second); len(listTasks(t, s.ns)) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the manager created no task within 60s")
		}
	}
	first.kill(t)
	atKill, running := listTasks(t, s.ns), 0
	for _, task := range atKill {
		if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
			running++
		}
	}
	sc.note("killed with %d of 20 tasks created, %d running", len(atKill), running)

	restarted := time.Now()
	second := startManagerProc(t, "manager-2")
	steady(t, s.ns, "web", 20, 120*time.Second)
	sc.recovered(time.Since(restarted), "new manager to steady at 20")
	exactTasks(t, s, 20, 20)

	// Two managers at once, both synced, react to the same scale-up.
	third := startManagerProc(t, "manager-3")
	waitFor(t, 30*time.Second, "manager-3 running its controllers", func() error { return serving(third) })
	scale(t, s.ns, "web", 40)
	steady(t, s.ns, "web", 40, 120*time.Second)
	time.Sleep(2 * time.Second) // let a duplicate made by the two managers show up
	steady(t, s.ns, "web", 40, 30*time.Second)
	exactTasks(t, s, 40, 40)

	// Scaled in: the service keeps 20 stopped tasks and deletes older ones, whose
	// containers the agent then removes.
	scale(t, s.ns, "web", 10)
	steady(t, s.ns, "web", 10, 120*time.Second)
	waitFor(t, 60*time.Second, "the containers of deleted tasks removed", func() error {
		live := map[types.UID]bool{}
		for _, task := range listTasks(t, s.ns) {
			live[task.UID] = true
		}
		for id, c := range s.inventory(t) {
			if !live[c.taskUID] {
				return fmt.Errorf("container %s of a deleted task is left", id)
			}
		}
		return nil
	})
	exactTasks(t, s, -1, 10)
	if !second.running() || !third.running() {
		t.Errorf("a manager exited (manager-2 running %v, manager-3 running %v)", second.running(), third.running())
	}
}

// serving is nil once the manager process's service controller runs its workers.
func serving(p *proc) error {
	out := p.output()
	if i := strings.LastIndex(out, "=== start"); i >= 0 {
		out = out[i:]
	}
	if !strings.Contains(out, `"msg":"Starting workers","controller":"service"`) {
		return fmt.Errorf("not yet")
	}
	return nil
}

// exactTasks checks that the service has exactly objects task objects (any number
// when objects is negative), running of them RUNNING and the rest STOPPED, and
// containerd one container per task that started, running exactly for the RUNNING
// tasks.
func exactTasks(t *testing.T, s *stack, objects, running int) {
	t.Helper()
	tasks := listTasks(t, s.ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"})
	if objects >= 0 && len(tasks) != objects {
		t.Errorf("%d task objects, want %d: duplicates were created\n%s", len(tasks), objects, describeTasks(tasks))
	}
	n := 0
	for _, task := range tasks {
		switch task.Status.LastStatus {
		case ecsv1alpha1.TaskRunning:
			n++
		case ecsv1alpha1.TaskStopped:
		default:
			t.Errorf("task %s is %s", task.Name, task.Status.LastStatus)
		}
	}
	if n != running {
		t.Errorf("%d tasks RUNNING, want %d", n, running)
	}
	s.exactlyOnce(t, tasks, "c0")
	if pids := s.pids(t); len(pids) != running {
		t.Errorf("%d containers run in containerd, want %d", len(pids), running)
	}
}
