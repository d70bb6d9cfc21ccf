// Package e2e runs the whole system for real: kube-apiserver and etcd, the manager,
// containerd with runc, a loopback registry holding images the suite builds, and the
// node agent. It needs root (containers) and skips otherwise.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if code, stop := testenv.RequireMain(ctrtest.SkipReason()); stop {
		os.Exit(code)
	}
	os.Exit(testenv.Run(m, &env))
}

// stack is one test's machine: containerd, a registry with the test image, the
// manager, and a cluster of its own.
type stack struct {
	ns, cluster, image string
	ctr                *ctrtest.Containerd
	ctrNamespace       string
	reg                *regtest.Registry
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWith(t, managerOptions)
}

// managerOptions are the e2e suites' manager settings.
var managerOptions = harness.ManagerOptions{HeartbeatGrace: 10 * time.Second, SchedulerWorkers: 4, ServiceWorkers: 2}

// newStackWith is newStack with a manager started with o.
func newStackWith(t *testing.T, o harness.ManagerOptions) *stack {
	t.Helper()
	ns := env.Namespace(t)
	s := &stack{ns: ns, cluster: "e2e-" + ns, ctr: ctrtest.Start(t), ctrNamespace: "berth-" + ns}
	s.reg = regtest.Start(t)
	s.image, _ = s.reg.Push(t, regtest.TestImage(t, nil), "e2e/test", "1")
	harness.StartManager(t, env, o)
	return s
}

func (s *stack) agentOptions(t *testing.T, name string) agent.Options {
	o := harness.AgentOptions(env, s.ctr, s.cluster, name, s.ctrNamespace)
	o.QPS, o.Burst = 200, 400
	o.HTTPBindAddress = httpAddress(t, name)
	return o
}

// startAgent runs the agent in this process until the test ends.
func (s *stack) startAgent(t *testing.T, name string) {
	t.Helper()
	s.startAgentWith(t, s.agentOptions(t, name))
}

// eachContainer calls fn for every container in the agent's containerd namespace.
func (s *stack) eachContainer(t *testing.T, fn func(ctx context.Context, c containerd.Container)) {
	t.Helper()
	c, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := namespaces.WithNamespace(context.Background(), s.ctrNamespace)
	list, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cont := range list {
		fn(ctx, cont)
	}
}

// containers lists the running task containers and their pids.
func (s *stack) containers(t *testing.T) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	s.eachContainer(t, func(ctx context.Context, cont containerd.Container) {
		task, err := cont.Task(ctx, nil)
		if err != nil {
			return
		}
		st, err := task.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			out[cont.ID()] = task.Pid()
		}
	})
	return out
}

func steady(t *testing.T, ns, name string, want int32) *ecsv1alpha1.Service {
	t.Helper()
	var svc ecsv1alpha1.Service
	testenv.EventuallyWithin(t, 90*time.Second, fmt.Sprintf("service %s steady with %d tasks", name, want), func() error {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
			return err
		}
		st := svc.Status
		steady := false
		for _, c := range st.Conditions {
			if c.Type == ecsv1alpha1.ServiceConditionSteady {
				steady = c.Status == "True"
			}
		}
		if st.RunningCount != want || !steady {
			return fmt.Errorf("running %d pending %d, conditions %+v\n%s", st.RunningCount, st.PendingCount, st.Conditions, tasksOf(t, ns, name))
		}
		return nil
	})
	return &svc
}

func tasksOf(t *testing.T, ns, service string) string {
	var list ecsv1alpha1.TaskList
	_ = env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: service})
	var b strings.Builder
	for _, task := range list.Items {
		fmt.Fprintf(&b, "  %s desired=%s last=%s stop=%s %q on %q\n", task.Name, task.Spec.DesiredStatus, task.Status.LastStatus,
			task.Status.StopCode, task.Status.StoppedReason, task.Spec.ContainerInstance)
		for _, c := range task.Status.Containers {
			fmt.Fprintf(&b, "    %s %s exit=%v reason=%q\n", c.Name, c.LastStatus, c.ExitCode, c.Reason)
		}
	}
	return b.String()
}

// TestServiceRunsRealContainers: kubectl-applied objects become real containers, and
// a container killed from outside is replaced.
func TestServiceRunsRealContainers(t *testing.T) {
	s := newStack(t)
	s.startAgent(t, "node-"+s.ns)
	if err := env.Client.Create(context.Background(), testobj.TaskDefinition(s.ns, "web").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).Obj()); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), testobj.Service(s.ns, "web", "web", 3).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "web", 3)
	running := s.containers(t)
	if len(running) != 3 {
		t.Fatalf("%d containers run in containerd, want 3: %v", len(running), running)
	}

	// Kill one container from outside: its essential container exits, the task stops
	// with EssentialContainerExited, and the service replaces it.
	var victim string
	var pid uint32
	for id, p := range running {
		victim, pid = id, p
		break
	}
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 60*time.Second, "the killed task reported", func() error {
		var list ecsv1alpha1.TaskList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
			return err
		}
		for _, task := range list.Items {
			if runtime.ContainerID(string(task.UID), "app") != victim {
				continue
			}
			if task.Status.LastStatus != ecsv1alpha1.TaskStopped || task.Status.StopCode != ecsv1alpha1.StopEssentialContainerExited {
				return fmt.Errorf("%s: last %s stopCode %s", task.Name, task.Status.LastStatus, task.Status.StopCode)
			}
			if c := task.Status.Containers; len(c) != 1 || c[0].ExitCode == nil || *c[0].ExitCode != 137 {
				return fmt.Errorf("%s: containers %+v, want exit 137", task.Name, c)
			}
			return nil
		}
		return fmt.Errorf("no task owns container %s", victim)
	})
	steady(t, s.ns, "web", 3)
	testenv.EventuallyWithin(t, 30*time.Second, "three containers again", func() error {
		if n := len(s.containers(t)); n != 3 {
			return fmt.Errorf("%d running containers", n)
		}
		return nil
	})
}

// TestAgentKilledAdoptsContainers: `kill -9` of the agent process with tasks running
// loses and duplicates nothing: the same container processes keep running and a new
// agent reports them again.
func TestAgentKilledAdoptsContainers(t *testing.T) {
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	name := "node-" + s.ns
	o := s.agentOptions(t, name)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "agent", "--kubeconfig", o.Kubeconfig, "--cluster", o.Cluster, "--name", o.Name,
			"--containerd-address", o.ContainerdAddress, "--containerd-namespace", o.Namespace, "--state-dir", o.StateDir,
			"--snapshotter", o.Snapshotter, "--registry-config-dir", o.RegistryConfigDir, "--runc-root", o.RuncRoot,
			"--lease-interval", "1s", "--status-interval", "1s", "--reserved-memory", "0",
			// No fixed ports: `berth up` in the suite run next to this one holds the
			// defaults.
			"--http-bind-address", "0", "--streaming-address", "127.0.0.1:0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if testing.Verbose() == false {
			cmd.Stdout, cmd.Stderr = nil, nil
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	// 10 tasks must fit a 2-core machine (2048 cpu units).
	td := testobj.TaskDefinition(s.ns, "web").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 64 }).Obj()
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), testobj.Service(s.ns, "web", "web", 10).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "web", 10)
	before := s.containers(t)
	if len(before) != 10 {
		t.Fatalf("%d containers before the kill", len(before))
	}
	_ = first.Process.Kill() // SIGKILL: no cleanup, no goodbye
	_ = first.Wait()

	second := start()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })
	reported := time.Now()
	// The new agent re-reports every task: the service stays steady with the same
	// processes, and no second copy starts.
	time.Sleep(3 * time.Second)
	steady(t, s.ns, "web", 10)
	after := s.containers(t)
	if len(after) != 10 {
		t.Errorf("%d containers after the restart, want 10", len(after))
	}
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("container %s: pid %d before the kill, %d after", id, pid, after[id])
		}
	}
	t.Logf("re-reported within %s", time.Since(reported).Round(time.Millisecond))
}
