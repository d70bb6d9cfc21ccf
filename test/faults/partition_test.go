package faults_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// Timeline of TestAPIServerUnreachable, from the cut, and what it tolerates after
// the heal.
const (
	outage       = 60 * time.Second
	refuseAfter  = 15 * time.Second // packets dropped first, then connections reset
	unreachGrace = 120              // the service's instanceUnreachableGracePeriodSeconds
	// reportLimit bounds the agent's own retries: the lease (every second here) and
	// task status writes (backoff capped at 10 s). Uncapped, the 45 s of failing
	// connections would delay a pending report by about 37 s more.
	reportLimit = 20 * time.Second
	// watchLimit bounds client-go's: its reflector re-lists after a backoff of up to
	// 30 s (doubled by jitter) once the watch broke.
	watchLimit = 90 * time.Second
)

// TestAPIServerUnreachable: the apiserver unreachable from the agent for 60 s (the
// manager still reaches it, as in a partition of the agent's machine): 15 s of
// dropped packets, then 45 s of connections reset as soon as they are made. Meanwhile a container dies and
// a task is stopped through the API. The running containers keep running (same
// processes), the agent logs errors but does not exit; the manager marks the instance
// disconnected but replaces nothing before the service's unreachable grace period
// (120 s). Once the path heals the agent, by itself, renews its lease, reports the
// dead container's task STOPPED (which the service replaces) and stops the task
// stopped meanwhile.
func TestAPIServerUnreachable(t *testing.T) {
	sc := newScenario(t, "apiserver unreachable from the agent for 60 s")
	s := newStack(t)
	startManager(t, 10*time.Second)
	apiserver, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	path := newPartition(t, apiserver.Host)
	agent := newProc(t, "agent", s.agentArgs("node-"+s.ns, proxiedKubeconfig(t, path.addr))...)
	agent.start(t)
	s.taskDefinition(t, "web", nil)
	s.taskDefinition(t, "side", nil)
	create(t, testobj.Service(s.ns, "web", "web", 3).Cluster(s.cluster).UnreachableGrace(unreachGrace).Obj(),
		testobj.Task(s.ns, "side", "side").Cluster(s.cluster).Obj())
	steady(t, s.ns, "web", 3, 90*time.Second)
	waitTask(t, s.ns, "side", 60*time.Second, "RUNNING", lastStatus(ecsv1alpha1.TaskRunning))
	tasks := listTasks(t, s.ns)
	cs := s.exactlyOnce(t, tasks, "c0")
	before := s.pids(t)
	var victim, side ecsv1alpha1.Task
	for _, task := range tasks {
		if task.Name == "side" {
			side = task
		} else {
			victim = task
		}
	}

	cut := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(cut.Add(d))) }
	path.Blackhole()
	at(5 * time.Second)
	if err := syscall.Kill(int(cs[victim.UID]["c0"].pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopTask(t, s.ns, "side", "stopped while the agent is cut off")
	at(refuseAfter)
	path.Refuse()
	at(outage - 5*time.Second)

	// Late in the outage: nothing replaced, the instance disconnected, the
	// containers as they were but for the one that died.
	if !agent.running() {
		t.Fatalf("the agent exited during the outage")
	}
	if connected(t, s) {
		t.Errorf("the manager still sees the instance connected after %s without heartbeats", outage-5*time.Second)
	}
	for _, task := range listTasks(t, s.ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}) {
		if task.Spec.DesiredStatus != ecsv1alpha1.DesiredRunning {
			t.Errorf("task %s was stopped (%s) before the unreachable grace period", task.Name, task.Spec.StopCode)
		}
	}
	if n := len(listTasks(t, s.ns)); n != len(tasks) {
		t.Errorf("%d tasks during the outage, want the same %d: some were replaced", n, len(tasks))
	}
	during := s.pids(t)
	for id, pid := range before {
		if id == cs[victim.UID]["c0"].id {
			if _, ok := during[id]; ok {
				t.Errorf("the killed container still runs")
			}
		} else if during[id] != pid {
			t.Errorf("container %s: pid %d before the outage, %d during", id, pid, during[id])
		}
	}
	at(outage)
	path.Heal()
	healed := time.Now()

	lease := &milestone{what: "lease renewed", limit: reportLimit, cond: func() error {
		var l coordinationv1.Lease
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: "node-" + s.ns}, &l); err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || l.Spec.RenewTime.Time.Before(healed) {
			return fmt.Errorf("renewed at %v", l.Spec.RenewTime)
		}
		return nil
	}}
	reported := &milestone{what: "dead container's task reported STOPPED", limit: reportLimit, cond: func() error {
		task := getTask(t, s.ns, victim.Name)
		if task.Status.LastStatus != ecsv1alpha1.TaskStopped || task.Status.StopCode != ecsv1alpha1.StopEssentialContainerExited {
			return fmt.Errorf("%s is %s (%s)", task.Name, task.Status.LastStatus, task.Status.StopCode)
		}
		return nil
	}}
	reconnected := &milestone{what: "instance connected", limit: reportLimit, cond: func() error {
		if !connected(t, s) {
			return fmt.Errorf("disconnected")
		}
		return nil
	}}
	stopped := &milestone{what: "task stopped meanwhile STOPPED", limit: watchLimit, cond: func() error {
		if task := getTask(t, s.ns, "side"); task.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("side is %s", task.Status.LastStatus)
		}
		return nil
	}}
	reach(t, healed, lease, reported, reconnected, stopped)
	sc.recovered(max(lease.at, reported.at, reconnected.at, stopped.at), "heal to every report")
	sc.note("after the heal: %s", describeMilestones(lease, reported, reconnected, stopped))
	steady(t, s.ns, "web", 3, 60*time.Second)

	if agent.starts != 1 || !agent.running() {
		t.Errorf("the agent did not run throughout (%d starts, running %v)", agent.starts, agent.running())
	}
	if out := agent.output(); !strings.Contains(out, `"level":"error"`) {
		t.Errorf("the agent logged no error during the outage")
	}
	all := listTasks(t, s.ns)
	if len(all) != len(tasks)+1 {
		t.Errorf("%d tasks, want the %d and one replacement", len(all), len(tasks))
	}
	after := s.exactlyOnce(t, all, "c0")
	if c := after[side.UID]["c0"]; c.status != containerd.Stopped {
		t.Errorf("side's container is %q, want stopped", c.status)
	}
	now := s.pids(t)
	for id, pid := range before {
		if id == cs[victim.UID]["c0"].id || id == cs[side.UID]["c0"].id {
			continue
		}
		if now[id] != pid {
			t.Errorf("container %s: pid %d before the outage, %d after", id, pid, now[id])
		}
	}
}

// proxiedKubeconfig writes a copy of the test kubeconfig whose server is addr (the
// partition in front of the apiserver; the serving certificate names 127.0.0.1).
func proxiedKubeconfig(t *testing.T, addr string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = addr
		c.Server = u.String()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// connected tells whether the manager sees the stack's instance connected.
func connected(t *testing.T, s *stack) bool {
	t.Helper()
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "node-" + s.ns}, &ci); err != nil {
		t.Fatal(err)
	}
	return ci.Status.AgentConnected
}

// milestone is something that must happen within limit of a repair; at is when it
// first held.
type milestone struct {
	what  string
	limit time.Duration
	cond  func() error
	at    time.Duration
	err   error
	done  bool
}

// reach polls the milestones together until each held once, failing the test with
// those past their limit.
func reach(t *testing.T, since time.Time, ms ...*milestone) {
	t.Helper()
	for {
		pending := 0
		for _, m := range ms {
			if m.done {
				continue
			}
			if m.err = m.cond(); m.err == nil {
				m.done, m.at = true, time.Since(since)
				continue
			}
			pending++
		}
		if pending == 0 {
			return
		}
		var late []string
		for _, m := range ms {
			if !m.done && time.Since(since) > m.limit {
				late = append(late, fmt.Sprintf("%s (within %s): %v", m.what, m.limit, m.err))
			}
		}
		if len(late) > 0 {
			t.Fatalf("not reached in time: %s; reached: %s", strings.Join(late, "; "), describeMilestones(ms...))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describeMilestones(ms ...*milestone) string {
	var parts []string
	for _, m := range ms {
		if m.done {
			parts = append(parts, fmt.Sprintf("%s in %s", m.what, m.at.Round(100*time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}
