package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testobj"
)

// The ECS suite's hand-written Linux tests (agent/functional_tests/tests,
// functionaltests_test.go and functionaltests_unix_test.go at fbe0f71e7; each names
// its source), those that need no AWS service, with the same task definitions and
// assertions. testdata/ecs-agent/tests.md lists every test and its lines.

// handwrittenTest is one test of the ECS suite written by hand.
type handwrittenTest struct {
	name string
	run  func(t *testing.T, s *stack)
}

// customAttributes is how many attributes TestCustomAttributesWithMaxOptions gives
// the agent (ECS's maximum of custom attributes per instance is 10).
const customAttributes = 10

var handwritten = []handwrittenTest{
	{"TestRunManyTasks", testRunManyTasks},
	{"TestCommandOverrides", testCommandOverrides},
	{"TestPortResourceContention", testPortResourceContention},
	{"TestContainerHealthMetrics", func(t *testing.T, s *stack) { testContainerHealth(t, s, "") }},
	{"TestContainerHealthMetricsWithStartPeriod", func(t *testing.T, s *stack) { testContainerHealth(t, s, `"startPeriod": 1,`) }},
	{"TestPullInvalidImage", testPullInvalidImage},
	{"TestOOMContainer", func(t *testing.T, s *stack) { testOOM(t, s, "oom-container") }},
	{"TestOOMTask", func(t *testing.T, s *stack) { testOOM(t, s, "oom-task") }},
	{"TestHostPIDNamespaceSharing", func(t *testing.T, s *stack) { testNamespaceSharing(t, s, "pid", "host", 1) }},
	{"TestTaskPIDNamespaceSharing", func(t *testing.T, s *stack) { testNamespaceSharing(t, s, "pid", "task", 2) }},
	{"TestHostIPCNamespaceSharing", func(t *testing.T, s *stack) { testNamespaceSharing(t, s, "ipc", "host", 1) }},
	{"TestTaskIPCNamespaceSharing", func(t *testing.T, s *stack) { testNamespaceSharing(t, s, "ipc", "task", 2) }},
	{"TestCustomAttributesWithMaxOptions", testCustomAttributes},
	{"TestSavedState", testSavedState},
	{"TestTwoTasksSharedLocalVolume", testTwoTasksSharedLocalVolume},
}

func running(tk *ecsv1alpha1.Task) bool { return tk.Status.LastStatus == ecsv1alpha1.TaskRunning }
func stopped(tk *ecsv1alpha1.Task) bool { return tk.Status.LastStatus == ecsv1alpha1.TaskStopped }

// expectExit checks a container's exit code, as the suite's ContainerExitcode did.
func expectExit(t *testing.T, task *ecsv1alpha1.Task, container string, want int32) {
	t.Helper()
	if code, ok := exitCode(task, container); !ok || code != want {
		t.Errorf("%s exited (%v) with %d, want %d\nstopped: %s\n%s", container, ok, code, want, task.Status.StoppedReason, containers(task))
	}
}

// expectErrorType is the suite's ExpectErrorType: the task stops and the container's
// reason is "<errType>: ...".
func expectErrorType(t *testing.T, s *stack, task, container, errType string, timeout time.Duration) {
	t.Helper()
	got := s.wait(t, task, "STOPPED", timeout, stopped)
	for _, c := range got.Status.Containers {
		if c.Name == container {
			if prefix, _, _ := strings.Cut(c.Reason, ":"); prefix != errType {
				t.Errorf("%s reason %q, want a %s", container, c.Reason, errType)
			}
			return
		}
	}
	t.Errorf("no container %s in %s", container, containers(got))
}

// TestRunManyTasks (FTU l.65-97): 15 tasks of simple-exit at once, each exits 42.
func testRunManyTasks(t *testing.T, s *stack) {
	td := s.register(t, "ft-many", "simple-exit", nil)
	const n = 15
	for i := range n {
		s.startTask(t, fmt.Sprintf("many-%d", i), td, nil)
	}
	for i := range n {
		got := s.wait(t, fmt.Sprintf("many-%d", i), "STOPPED", 10*time.Minute, stopped)
		expectExit(t, got, "exit", 42)
	}
}

// TestCommandOverrides (FTU l.142-158): a containerOverrides command replaces the
// definition's.
func testCommandOverrides(t *testing.T, s *stack) {
	td := s.register(t, "ft-overrides", "simple-exit", nil)
	s.startTask(t, "overrides", td, &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{
		{Name: "exit", Command: []string{"sh", "-c", "exit 21"}},
	}})
	got := s.wait(t, "overrides", "STOPPED", 2*time.Minute, stopped)
	expectExit(t, got, "exit", 21)
}

// TestPortResourceContention (FT l.161-190): a task started on the instance while
// the task before it still holds its static host port (its sh ignores SIGTERM for
// the 30 s stop timeout) waits for the port and runs; it does not fail.
func testPortResourceContention(t *testing.T, s *stack) {
	td := s.register(t, "ft-port-5180", "busybox-port-5180", nil)
	s.startTask(t, "port-first", td, nil)
	s.wait(t, "port-first", "RUNNING", 2*time.Minute, running)
	stop(t, s.ns, "port-first")
	s.startTask(t, "port-second", td, nil)
	s.wait(t, "port-second", "RUNNING", 4*time.Minute, running)
	stop(t, s.ns, "port-second")
	s.wait(t, "port-first", "STOPPED", 2*time.Minute, stopped)
	s.wait(t, "port-second", "STOPPED", 2*time.Minute, stopped)
}

// TestContainerHealthMetrics and ...WithStartPeriod (FT l.277-298, 683-700): the
// container's health goes from UNKNOWN to HEALTHY; the task then stops on request.
func testContainerHealth(t *testing.T, s *stack, startPeriod string) {
	name := "health"
	if startPeriod != "" {
		name = "health-start-period"
	}
	td := s.register(t, "ft-"+name, "container-health", map[string]string{"$$$$START_PERIOD$$$$": startPeriod})
	s.startTask(t, name, td, nil)
	s.wait(t, name, "RUNNING", 2*time.Minute, running)
	s.wait(t, name, "healthy", 2*time.Minute, func(tk *ecsv1alpha1.Task) bool {
		return len(tk.Status.Containers) == 1 && tk.Status.Containers[0].HealthStatus == ecsv1alpha1.HealthHealthy
	})
	stop(t, s.ns, name)
	s.wait(t, name, "STOPPED", 2*time.Minute, stopped)
}

// TestPullInvalidImage (FT l.68-79): an image that cannot be pulled stops the task
// with a CannotPullContainerError.
func testPullInvalidImage(t *testing.T, s *stack) {
	td := s.register(t, "ft-invalid-image", "invalid-image", nil)
	s.startTask(t, "invalid-image", td, nil)
	expectErrorType(t, s, "invalid-image", "error", "CannotPullContainerError", 2*time.Minute)
}

// TestOOMContainer and TestOOMTask (FTU l.100-138): a container that outgrows its
// memory (the container's, or the task's "64") stops with an OutOfMemoryError.
func testOOM(t *testing.T, s *stack, file string) {
	td := s.register(t, "ft-"+file, file, nil)
	s.startTask(t, file, td, nil)
	expectErrorType(t, s, file, "error", "OutOfMemoryError", time.Minute)
}

// TestHost/TaskPID/IPCNamespaceSharing (FTU l.1038-1129): a producer holds a process
// (pid) or a semaphore set (ipc); a reader in another task sees it in the host
// namespace (exit 1) and not in a task namespace (exit 2).
func testNamespaceSharing(t *testing.T, s *stack, kind, mode string, want int32) {
	share, read := fmt.Sprintf("%s-namespace-%s-share", kind, mode), fmt.Sprintf("%s-namespace-%s-read", kind, mode)
	producer := s.register(t, "ft-"+share, share, nil)
	reader := s.register(t, "ft-"+read, read, nil)
	s.startTask(t, share, producer, nil)
	s.wait(t, share, "RUNNING", 2*time.Minute, running)
	s.startTask(t, read, reader, nil)
	got := s.wait(t, read, "STOPPED", 2*time.Minute, stopped)
	stop(t, s.ns, share)
	s.wait(t, share, "STOPPED", 2*time.Minute, stopped)
	container := map[string]string{"pid": "pidConsumer", "ipc": "ipcConsumer"}[kind]
	expectExit(t, got, container, want)
}

// TestCustomAttributesWithMaxOptions (FT l.217-258): the agent's ten custom
// attributes and ecs.os-type are the instance's attributes.
func testCustomAttributes(t *testing.T, s *stack) {
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: "node-" + s.ns}, &ci); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range ci.Status.Attributes {
		got[a.Name] = a.Value
	}
	for i := range customAttributes {
		if k, v := fmt.Sprintf("key%d", i), fmt.Sprintf("val%d", i); got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if got["ecs.os-type"] == "" {
		t.Errorf("no ecs.os-type attribute in %v", got)
	}
}

// TestSavedState (FT l.84-119): the agent stops, the task's container is stopped
// behind its back (docker stop -t 1), the agent starts again and finds the task
// stopped. An agent of its own, so that the suite's agent runs on.
func testSavedState(t *testing.T, s *stack) {
	o := s.agentOptions(t, "saved-"+s.ns, "berthconf1", "10.197.0.0/16")
	stopAgent := s.startAgent(t, o)
	t.Cleanup(func() {
		stopAgent()
		harness.TearDownNetworks(t, o)
		_ = exec.Command("ip", "link", "del", o.Bridge).Run()
	})
	// The definition's portBindings is not an ECS field: the suite's SDK unmarshal
	// dropped it, as this does.
	td := s.register(t, "ft-saved-state", "nginx", map[string]string{}, withoutKeys("portBindings"))
	task := testobj.Task(s.ns, "saved-state", td).Cluster(s.cluster).On(o.Name).Obj()
	if err := env.Client.Create(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	got := s.wait(t, "saved-state", "RUNNING", 2*time.Minute, running)
	id := ""
	for _, c := range got.Status.Containers {
		id = c.RuntimeID
	}
	if id == "" {
		t.Fatalf("no runtime ID in %s", containers(got))
	}
	stopAgent()

	c, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := namespaces.WithNamespace(context.Background(), o.Namespace)
	cont, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ctask, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := ctask.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// docker stop -t 1: SIGTERM, SIGKILL a second later.
	if err := ctask.Kill(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Second):
		if err := ctask.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
	}

	stopAgent = s.startAgent(t, o)
	s.wait(t, "saved-state", "STOPPED", 2*time.Minute, stopped)
}

// TestTwoTasksSharedLocalVolume (FTU l.1010-1033): a task writes to a shared,
// autoprovisioned Docker volume and exits 42; then a second task, whose volume does
// not autoprovision (so it must find the first one's), reads what the first wrote
// and exits 42.
func testTwoTasksSharedLocalVolume(t *testing.T, s *stack) {
	for _, name := range []string{"task-shared-vol-write", "task-shared-vol-read"} {
		s.runSimpleTest(t, name, simpleTest{TaskDefinition: name, Timeout: "2m", ExitCodes: map[string]int32{name: 42}})
		if t.Failed() {
			return
		}
	}
}
