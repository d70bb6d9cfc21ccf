package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// stack is one test's machine: its own containerd, a registry holding the test image
// (regtest.TestImage: without a command it prints "ready" and sleeps), a namespace
// and a cluster of its own.
type stack struct {
	ns, cluster, image string
	ctr                *ctrtest.Containerd
	reg                *regtest.Registry
	ctrNamespace       string
	client             *containerd.Client
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ns := env.Namespace(t)
	s := &stack{ns: ns, cluster: "faults-" + ns, ctr: ctrtest.Start(t), ctrNamespace: "berth-" + ns}
	s.reg = regtest.Start(t)
	s.image, _ = s.reg.Push(t, regtest.TestImage(t, nil), "faults/test", "1")
	c, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	t.Cleanup(func() { _ = c.Close() })
	return s
}

// ctx is a context in the agent's containerd namespace.
func (s *stack) ctx() context.Context {
	return namespaces.WithNamespace(context.Background(), s.ctrNamespace)
}

// taskDefinition creates a task definition of one container per edit, each with the
// test image, 32 cpu units and 64 MiB, in network mode none.
func (s *stack) taskDefinition(t *testing.T, name string, edits ...func(*ecsv1alpha1.ContainerDefinition)) {
	t.Helper()
	b := testobj.TaskDefinition(s.ns, name).Network(ecsv1alpha1.NetworkModeNone)
	for i, edit := range edits {
		b.Container(fmt.Sprintf("c%d", i), s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Cpu, c.Memory = 32, ptr.To[int32](64)
			if edit != nil {
				edit(c)
			}
		})
	}
	create(t, b.Obj())
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// startManager runs the manager in this process until the test ends, with the given
// heartbeat grace.
func startManager(t *testing.T, heartbeatGrace time.Duration) {
	t.Helper()
	harness.StartManager(t, env, harness.ManagerOptions{HeartbeatGrace: heartbeatGrace, SchedulerWorkers: 4, ServiceWorkers: 2})
}

// proc is a berth process (agent or manager) that a test starts, kills and starts
// again. Its output goes to one file across restarts, shown when the test fails (or
// always, with BERTH_TEST_LOGS=1).
type proc struct {
	name    string
	args    []string
	logPath string
	starts  int
	cmd     *exec.Cmd
	exited  chan struct{}
}

// newProc prepares `berth args...`; start runs it. The process is stopped (SIGTERM)
// when the test ends, if it still runs.
func newProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		if p.running() {
			p.signal(t, syscall.SIGTERM)
		}
		switch {
		case os.Getenv("BERTH_TEST_LOGS") != "":
			t.Logf("%s output:\n%s", p.name, p.output())
		case t.Failed():
			t.Logf("%s output (last lines):\n%s", p.name, tail(p.output(), 80))
		}
	})
	return p
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	if p.running() {
		t.Fatalf("%s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logf.Close() }() // the child has its own copy
	p.starts++
	if _, err := fmt.Fprintf(logf, "=== start %d at %s\n", p.starts, time.Now().Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berthBin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill is kill -9: no cleanup, no goodbye.
func (p *proc) kill(t *testing.T) { t.Helper(); p.signal(t, syscall.SIGKILL) }

// stop is a clean stop (SIGTERM).
func (p *proc) stop(t *testing.T) { t.Helper(); p.signal(t, syscall.SIGTERM) }

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if !p.running() {
		t.Fatalf("%s is not running", p.name)
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30s of %s; killing it", p.name, sig)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// agentArgs are the flags of `berth agent` called name on this stack, reaching the
// apiserver through kubeconfig: fast heartbeats and status, no HTTP endpoint, a
// free port for the streaming server.
func (s *stack) agentArgs(name, kubeconfig string) []string {
	return []string{"agent", "--kubeconfig", kubeconfig, "--cluster", s.cluster, "--name", name,
		"--containerd-address", s.ctr.Address, "--containerd-namespace", s.ctrNamespace,
		"--state-dir", s.stateDir(name), "--snapshotter", s.ctr.Snapshotter,
		"--registry-config-dir", s.ctr.HostsDir, "--runc-root", s.ctr.RuncRoot,
		"--lease-interval", "1s", "--status-interval", "1s", "--reserved-memory", "0",
		"--http-bind-address", "0", "--streaming-address", "127.0.0.1:0", "--kube-api-qps", "200", "--kube-api-burst", "400"}
}

func (s *stack) stateDir(agent string) string { return filepath.Join(s.ctr.Dir, "agent-"+agent) }

// startAgent starts `berth agent` on this stack, talking to the apiserver directly.
func (s *stack) startAgent(t *testing.T) *proc {
	t.Helper()
	p := newProc(t, "agent", s.agentArgs("node-"+s.ns, env.Kubeconfig)...)
	p.start(t)
	return p
}

// ctrInfo is what containerd knows of one container of the agent's namespace.
type ctrInfo struct {
	id      string
	taskUID types.UID // label berth.dev/task-uid
	name    string    // label berth.dev/container
	logPath string
	// status is the container's task status, "" when it has no task.
	status containerd.ProcessStatus
	pid    uint32
	exit   uint32
	// snapshot is the key of its root filesystem's snapshot.
	snapshot string
}

// inventory lists the containers of the agent's namespace, straight from containerd.
func (s *stack) inventory(t *testing.T) map[string]ctrInfo {
	t.Helper()
	ctx := s.ctx()
	list, err := s.client.Containers(ctx)
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	out := map[string]ctrInfo{}
	for _, c := range list {
		info, err := c.Info(ctx)
		if errdefs.IsNotFound(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		ci := ctrInfo{id: c.ID(), taskUID: types.UID(info.Labels[runtime.LabelTaskUID]), name: info.Labels[runtime.LabelContainer],
			logPath: info.Labels[runtime.LabelLogPath], snapshot: info.SnapshotKey}
		if task, err := c.Task(ctx, nil); err == nil {
			if st, err := task.Status(ctx); err == nil {
				ci.status, ci.pid, ci.exit = st.Status, task.Pid(), st.ExitStatus
			}
		}
		out[ci.id] = ci
	}
	return out
}

// pids are the PIDs of the running containers, by container ID.
func (s *stack) pids(t *testing.T) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	for id, c := range s.inventory(t) {
		if c.status == containerd.Running {
			out[id] = c.pid
		}
	}
	return out
}

// exactlyOnce checks containerd against the API for tasks (every task of the
// namespace, so that any other container is a leak): every container belongs to one
// of them, with the deterministic ID of its task and name; a task that started has
// exactly one container per container definition; a RUNNING task's essential
// containers run, with a live process; a STOPPED task runs nothing; and containerd
// has one shim per container with a task, and no active snapshot that no container
// uses. It returns the containers by task UID and container name.
func (s *stack) exactlyOnce(t *testing.T, tasks []ecsv1alpha1.Task, defs ...string) map[types.UID]map[string]ctrInfo {
	t.Helper()
	inv := s.inventory(t)
	byTask := map[types.UID]*ecsv1alpha1.Task{}
	for i := range tasks {
		byTask[tasks[i].UID] = &tasks[i]
	}
	out := map[types.UID]map[string]ctrInfo{}
	withTask := 0
	for id, c := range inv {
		if c.status != "" {
			withTask++
		}
		task, ok := byTask[c.taskUID]
		switch {
		case !ok:
			t.Errorf("container %s (task uid %q, container %q, %s) belongs to no task", id, c.taskUID, c.name, c.status)
			continue
		case id != runtime.ContainerID(string(c.taskUID), c.name):
			t.Errorf("container %s of task %s is not the deterministic %s", id, task.Name, runtime.ContainerID(string(c.taskUID), c.name))
		}
		if out[c.taskUID] == nil {
			out[c.taskUID] = map[string]ctrInfo{}
		}
		if dup, ok := out[c.taskUID][c.name]; ok {
			t.Errorf("task %s has two containers %s: %s (%s) and %s (%s)", task.Name, c.name, dup.id, dup.status, id, c.status)
		}
		out[c.taskUID][c.name] = c
	}
	for _, task := range tasks {
		cs := out[task.UID]
		if task.Status.StartedAt != nil && len(cs) != len(defs) {
			t.Errorf("task %s (%s) has %d containers, want one per definition %v: %v", task.Name, task.Status.LastStatus, len(cs), defs, cs)
		}
		for name, c := range cs {
			running := c.status == containerd.Running
			switch {
			case task.Status.LastStatus == ecsv1alpha1.TaskStopped && running:
				t.Errorf("task %s is STOPPED but its container %s runs (pid %d)", task.Name, name, c.pid)
			case task.Status.LastStatus == ecsv1alpha1.TaskRunning && running && !alive(c.pid):
				t.Errorf("task %s: container %s runs with pid %d, which is not alive", task.Name, name, c.pid)
			}
		}
	}
	// A shim exits on its own a moment after its task is deleted (the agent deletes
	// a stopped container's task while this runs), so the count is compared until
	// both readings agree; a leaked shim never does.
	testenv.EventuallyWithin(t, 10*time.Second, "one shim per container with a task", func() error {
		shims, err := ctrtest.ShimPIDs(s.ctr.Address)
		if err != nil {
			return err
		}
		if len(shims) != withTask {
			err := fmt.Errorf("%d shims run for %d containers with a task", len(shims), withTask)
			withTask = 0
			for _, c := range s.inventory(t) {
				if c.status != "" {
					withTask++
				}
			}
			return err
		}
		return nil
	})
	if orphans := s.orphanSnapshots(t, inv); len(orphans) > 0 {
		t.Errorf("active snapshots that no container uses: %v", orphans)
	}
	return out
}

// orphanSnapshots are the active snapshots of the namespace that no container uses
// (what a create interrupted by a crash can leave).
func (s *stack) orphanSnapshots(t *testing.T, inv map[string]ctrInfo) []string {
	t.Helper()
	used := map[string]bool{}
	for _, c := range inv {
		used[c.snapshot] = true
	}
	var out []string
	err := s.client.SnapshotService(s.ctr.Snapshotter).Walk(s.ctx(), func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive && !used[info.Name] {
			out = append(out, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing snapshots: %v", err)
	}
	sort.Strings(out)
	return out
}

// leases counts containerd leases in the namespace: a client killed in the middle of
// a pull or a create leaves its lease until it expires (24h), holding what it wrote.
func (s *stack) leases(t *testing.T) int {
	t.Helper()
	ls, err := s.client.LeasesService().List(s.ctx())
	if err != nil {
		t.Fatalf("listing leases: %v", err)
	}
	return len(ls)
}

func alive(pid uint32) bool {
	return pid != 0 && syscall.Kill(int(pid), 0) == nil
}

// lines counts the lines of the file at path that equal line.
func lines(t *testing.T, path, line string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	defer func() { _ = f.Close() }()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == line {
			n++
		}
	}
	return n
}

func listTasks(t *testing.T, ns string, opts ...client.ListOption) []ecsv1alpha1.Task {
	t.Helper()
	var list ecsv1alpha1.TaskList
	if err := env.Client.List(context.Background(), &list, append(opts, client.InNamespace(ns))...); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func getTask(t *testing.T, ns, name string) *ecsv1alpha1.Task {
	t.Helper()
	var task ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &task); err != nil {
		t.Fatal(err)
	}
	return &task
}

// waitTask waits until cond accepts the task.
func waitTask(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*ecsv1alpha1.Task) error) *ecsv1alpha1.Task {
	t.Helper()
	var task *ecsv1alpha1.Task
	testenv.EventuallyWithin(t, timeout, name+": "+what, func() error {
		task = getTask(t, ns, name)
		if err := cond(task); err != nil {
			return fmt.Errorf("%w\n%s", err, describeTasks([]ecsv1alpha1.Task{*task}))
		}
		return nil
	})
	return task
}

func lastStatus(want ecsv1alpha1.TaskStatusValue) func(*ecsv1alpha1.Task) error {
	return func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != want {
			return fmt.Errorf("lastStatus %q, want %s", task.Status.LastStatus, want)
		}
		return nil
	}
}

// stopTask asks for a task to stop, as `aws ecs stop-task` does.
func stopTask(t *testing.T, ns, name, reason string) {
	t.Helper()
	task := getTask(t, ns, name)
	patch := client.MergeFrom(task.DeepCopy())
	task.Spec.DesiredStatus, task.Spec.StopCode, task.Spec.StopReason = ecsv1alpha1.DesiredStopped, ecsv1alpha1.StopUserInitiated, reason
	if err := env.Client.Patch(context.Background(), task, patch); err != nil {
		t.Fatal(err)
	}
}

// steady waits until the service is steady with want RUNNING tasks.
func steady(t *testing.T, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	testenv.EventuallyWithin(t, timeout, fmt.Sprintf("service %s steady with %d tasks", name, want), func() error {
		var svc ecsv1alpha1.Service
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
			return err
		}
		st := svc.Status
		steady := false
		for _, c := range st.Conditions {
			if c.Type == ecsv1alpha1.ServiceConditionSteady {
				steady = c.Status == "True" && c.ObservedGeneration == svc.Generation
			}
		}
		// Counted from the tasks too: right after a heal the Service's status can
		// still say steady from before, while a replacement is PENDING (its agent
		// creating the container).
		live, running := 0, 0
		for _, task := range listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: name}) {
			if task.Spec.DesiredStatus == ecsv1alpha1.DesiredRunning && task.Status.LastStatus != ecsv1alpha1.TaskStopped {
				live++
				if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
					running++
				}
			}
		}
		if st.RunningCount != want || st.PendingCount != 0 || live != int(want) || running != int(want) || !steady {
			return fmt.Errorf("running %d pending %d live %d (%d RUNNING) steady %v\n%s", st.RunningCount, st.PendingCount, live, running, steady,
				describeTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: name})))
		}
		return nil
	})
}

// scale sets the service's desiredCount.
func scale(t *testing.T, ns, name string, n int32) {
	t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Spec.DesiredCount = ptr.To(n)
	if err := env.Client.Patch(context.Background(), &svc, patch); err != nil {
		t.Fatal(err)
	}
}

func describeTasks(tasks []ecsv1alpha1.Task) string {
	var b strings.Builder
	for _, task := range tasks {
		fmt.Fprintf(&b, "  %s uid=%s desired=%s last=%s stop=%s %q on %q\n", task.Name, task.UID, task.Spec.DesiredStatus,
			task.Status.LastStatus, task.Status.StopCode, task.Status.StoppedReason, task.Spec.ContainerInstance)
		for _, c := range task.Status.Containers {
			exit := "-"
			if c.ExitCode != nil {
				exit = fmt.Sprint(*c.ExitCode)
			}
			fmt.Fprintf(&b, "    %s %s exit=%s reason=%q\n", c.Name, c.LastStatus, exit, c.Reason)
		}
	}
	return b.String()
}

// waitFor polls cond every 50ms until it holds and returns how long that took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.EventuallyWithin(t, timeout, what, cond)
	return time.Since(start)
}
