package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// startAgentWithBerth runs an agent (network modes host and none) whose berth
// binary is a real one; it returns the agent's HTTP address.
func (s *stack) startAgentWithBerth(t *testing.T, name string) string {
	t.Helper()
	o := s.agentOptions(t, name)
	o.BerthBinary = testenv.BerthBinary(t)
	s.startAgentWith(t, o)
	return httpAddress(t, name)
}

// runTask creates td and a task of it, and waits until it runs.
func (s *stack) runTask(t *testing.T, td *ecsv1alpha1.TaskDefinition, task string) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, task, td.Name).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	waitTask(t, s.ns, task, "RUNNING", func(tk *ecsv1alpha1.Task) error {
		if tk.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("lastStatus %s", tk.Status.LastStatus)
		}
		return nil
	})
}

// logOf returns what the task's container printed, from the agent's logs endpoint.
func logOf(t *testing.T, agentAddr, ns, task, container string) string {
	t.Helper()
	_, body, err := agentGet(t, agentAddr, "/v1/logs/"+ns+"/"+task+"/"+container)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// pauseContainers lists the pause containers in the agent's containerd namespace.
func (s *stack) pauseContainers(t *testing.T) []string {
	t.Helper()
	var out []string
	s.eachContainer(t, func(ctx context.Context, c containerd.Container) {
		if labels, err := c.Labels(ctx); err == nil && runtime.IsPause(labels) {
			out = append(out, c.ID())
		}
	})
	return out
}

// TestPidAndIpcModeTask: with pidMode and ipcMode task the containers of a task
// share one PID namespace (one sees the other's process, and the pause process as
// PID 1) and one IPC namespace with its /dev/shm (a file one writes there, the other
// reads). The pause container is not one of the task's containers in its status,
// and is gone from containerd, snapshot and all, once the task stopped.
func TestPidAndIpcModeTask(t *testing.T) {
	s := newStack(t)
	addr := s.startAgentWithBerth(t, "node-"+s.ns)
	td := testobj.TaskDefinition(s.ns, "shared").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"write=/dev/shm/berth-ipc:shared memory", "echo=ready", "sleep=inf"}
	}).
		Container("watcher", s.image).DependsOn("app", ecsv1alpha1.DependencyStart).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"waitfile=/dev/shm/berth-ipc", "echo=", "ps", "echo=done", "sleep=inf"}
	}).Obj()
	td.Spec.PidMode, td.Spec.IpcMode = ecsv1alpha1.NamespaceModeTask, ecsv1alpha1.NamespaceModeTask
	s.runTask(t, td, "shared")
	waitOutput(t, addr, s.ns, "shared", "watcher", "done")
	out := logOf(t, addr, s.ns, "shared", "watcher")
	for _, want := range []string{"shared memory\n", "1 /berth pause\n", "/bin/testimage write=/dev/shm/berth-ipc:shared memory echo=ready sleep=inf"} {
		if !strings.Contains(out, want) {
			t.Errorf("watcher's output lacks %q:\n%s", want, out)
		}
	}
	task := getTask(t, s.ns, "shared")
	var names []string
	for _, c := range task.Status.Containers {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "app,watcher" {
		t.Errorf("status.containers = %v, want app and watcher only", names)
	}
	if got := s.pauseContainers(t); len(got) != 1 {
		t.Fatalf("pause containers while the task runs: %v, want one", got)
	}

	stopTask(t, s.ns, "shared")
	waitTask(t, s.ns, "shared", "STOPPED", func(tk *ecsv1alpha1.Task) error {
		if tk.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("lastStatus %s", tk.Status.LastStatus)
		}
		return nil
	})
	if got := s.pauseContainers(t); len(got) != 0 {
		t.Errorf("pause containers after the task stopped: %v", got)
	}
	s.noPauseSnapshots(t)
}

// noPauseSnapshots checks that containerd holds no snapshot named after a pause
// container (it has none: its root is the agent's directory).
func (s *stack) noPauseSnapshots(t *testing.T) {
	t.Helper()
	c, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := namespaces.WithNamespace(context.Background(), s.ctrNamespace)
	err = c.SnapshotService(s.ctr.Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.Contains(info.Name, "internal-berth-pause") {
			t.Errorf("snapshot %s of a pause container left behind", info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIpcModeNone: a container of an ipcMode none task has no /dev/shm.
func TestIpcModeNone(t *testing.T) {
	s := newStack(t)
	addr := s.startAgentWithBerth(t, "node-"+s.ns)
	td := testobj.TaskDefinition(s.ns, "noipc").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"cat=/proc/self/mounts", "trywrite=/dev/shm/x:y", "echo=done", "sleep=inf"}
	}).Obj()
	td.Spec.IpcMode = ecsv1alpha1.NamespaceModeNone
	s.runTask(t, td, "noipc")
	waitOutput(t, addr, s.ns, "noipc", "app", "done")
	out := logOf(t, addr, s.ns, "noipc", "app")
	if strings.Contains(out, " /dev/shm ") || !strings.Contains(out, "write failed") {
		t.Errorf("ipcMode none: /dev/shm is mounted or writable:\n%s", out)
	}
}

// TestPseudoTerminal: a container with pseudoTerminal has a terminal as its
// standard streams, and what it prints still reaches the agent's logs endpoint;
// with interactive it keeps waiting on its standard input (the terminal) instead of
// ending, until SIGTERM stops it. An interactive container without a terminal
// keeps waiting on its stdin too (a pipe the pause process holds open). A container
// without either has no terminal.
func TestPseudoTerminal(t *testing.T) {
	s := newStack(t)
	addr := s.startAgentWithBerth(t, "node-"+s.ns)
	td := testobj.TaskDefinition(s.ns, "tty").Network(ecsv1alpha1.NetworkModeNone).
		Container("tty", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.PseudoTerminal, c.Interactive = true, true
		c.Command = []string{"tty=0", "tty=1", "echo=done", "stdin"}
	}).
		Container("plain", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"tty=1", "echo=done", "sleep=inf"}
	}).
		Container("shell", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Interactive = true
		c.Command = []string{"tty=0", "echo=done", "stdin"}
	}).Obj()
	s.runTask(t, td, "tty")
	waitOutput(t, addr, s.ns, "tty", "tty", "done")
	waitOutput(t, addr, s.ns, "tty", "plain", "done")
	waitOutput(t, addr, s.ns, "tty", "shell", "done")
	if out := logOf(t, addr, s.ns, "tty", "tty"); !strings.Contains(out, "tty 0: yes") || !strings.Contains(out, "tty 1: yes") {
		t.Errorf("pseudoTerminal container's output: %q, want a terminal on 0 and 1", out)
	}
	if out := logOf(t, addr, s.ns, "tty", "plain"); !strings.Contains(out, "tty 1: no") {
		t.Errorf("plain container's output: %q, want no terminal", out)
	}
	if out := logOf(t, addr, s.ns, "tty", "shell"); !strings.Contains(out, "tty 0: no") {
		t.Errorf("interactive container without pseudoTerminal: %q, want no terminal", out)
	}
	// Stopped, the interactive containers end on SIGTERM while still reading: an
	// end of their input would have printed "stdin closed" (and ended the task)
	// before.
	stopTask(t, s.ns, "tty")
	waitTask(t, s.ns, "tty", "STOPPED", func(tk *ecsv1alpha1.Task) error {
		if tk.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("lastStatus %s", tk.Status.LastStatus)
		}
		return nil
	})
	if tk := getTask(t, s.ns, "tty"); tk.Status.StopCode != ecsv1alpha1.StopUserInitiated {
		t.Errorf("the task stopped with %s (%s), want UserInitiated", tk.Status.StopCode, tk.Status.StoppedReason)
	}
	for _, c := range []string{"tty", "shell"} {
		if out := logOf(t, addr, s.ns, "tty", c); strings.Contains(out, "stdin closed") || !strings.Contains(out, "terminated") {
			t.Errorf("the interactive container %s: %q, want its stdin open until SIGTERM", c, out)
		}
	}
}

// TestPauseSurvivesAgentKill: after the agent is killed (SIGKILL) and started again,
// the task's pause container and containers are the same processes (adopted, not
// started again), an interactive container's stdin is still open (the pause process
// held it while no agent ran), and stopping the task then removes the pause
// container found after the restart.
func TestPauseSurvivesAgentKill(t *testing.T) {
	s := newStack(t)
	bin := testenv.BerthBinary(t)
	name := "node-" + s.ns
	o := s.agentOptions(t, name)
	addr := httpAddress(t, name)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "agent", "--kubeconfig", o.Kubeconfig, "--cluster", o.Cluster, "--name", o.Name,
			"--containerd-address", o.ContainerdAddress, "--containerd-namespace", o.Namespace, "--state-dir", o.StateDir,
			"--snapshotter", o.Snapshotter, "--registry-config-dir", o.RegistryConfigDir, "--runc-root", o.RuncRoot,
			"--lease-interval", "1s", "--status-interval", "1s", "--reserved-memory", "0", "--http-bind-address", addr,
			"--streaming-address", "127.0.0.1:0")
		if testing.Verbose() {
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	td := testobj.TaskDefinition(s.ns, "kept").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"echo=ready", "sleep=inf"}
	}).
		Container("shell", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Interactive = true
		c.Command = []string{"echo=ready", "stdin"}
	}).Obj()
	td.Spec.PidMode = ecsv1alpha1.NamespaceModeTask
	s.runTask(t, td, "kept")
	waitOutput(t, addr, s.ns, "kept", "shell", "ready")
	before := s.containers(t)
	if len(before) != 3 || len(s.pauseContainers(t)) != 1 {
		t.Fatalf("before the kill: running %v, want app, shell and the pause container", before)
	}
	_ = first.Process.Kill() // SIGKILL: no cleanup, no goodbye
	_ = first.Wait()

	second := start()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })
	testenv.EventuallyWithin(t, 30*time.Second, "the restarted agent serves logs", func() error {
		_, _, err := agentGetWith(addr, "/healthz", "")
		return err
	})
	// The processes are those from before the kill: none ended, none started again.
	after := s.containers(t)
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("container %s: pid %d before the kill, %d after", id, pid, after[id])
		}
	}
	if out := logOf(t, addr, s.ns, "kept", "shell"); strings.Contains(out, "stdin closed") {
		t.Errorf("the interactive container's stdin ended while the agent was down: %q", out)
	}

	stopTask(t, s.ns, "kept")
	waitTask(t, s.ns, "kept", "STOPPED", func(tk *ecsv1alpha1.Task) error {
		if tk.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("lastStatus %s", tk.Status.LastStatus)
		}
		return nil
	})
	if got := s.pauseContainers(t); len(got) != 0 {
		t.Errorf("pause containers after the task stopped: %v", got)
	}
	if got := s.containers(t); len(got) != 0 {
		t.Errorf("running containers after the task stopped: %v", got)
	}
}
