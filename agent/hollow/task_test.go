package hollow

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestTaskRunsOnTheAgentsEngine: a bound task goes through the agent's engine and
// reaches RUNNING in one status write (the reporter holds the passing PENDING), with
// what the agent reports on a machine: container IDs, image digests, host ports from
// the agent's dynamic range, and the health of a container whose check has not run
// yet (UNKNOWN).
func TestTaskRunsOnTheAgentsEngine(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "one", Instances: 1, NamePrefix: "one"})
	createRevision(t, webTD(ns, "web"))

	task := createTask(t, testobj.Task(ns, "t1", "web:1").Cluster("one").On("one-0000").Obj())
	writes := countWrites(t, task)
	until, after, err := writes.writesUntil(ecsv1alpha1.TaskRunning, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if until != 1 || after != 0 {
		t.Errorf("writes to reach RUNNING = %d, after = %d; want 1 and 0", until, after)
	}
	got := getTask(t, ns, "t1")
	st := got.Status
	if st.StartedAt == nil || st.PullStartedAt == nil || st.PullStoppedAt == nil || st.StartedAt.Before(st.PullStoppedAt) {
		t.Errorf("pullStartedAt %v, pullStoppedAt %v, startedAt %v: want all set, in order", st.PullStartedAt, st.PullStoppedAt, st.StartedAt)
	}
	var dynamic int32
	for _, c := range st.Containers {
		for _, b := range c.NetworkBindings {
			if b.ContainerPort == 80 {
				dynamic = b.HostPort
			}
		}
	}
	if dynamic < taskrules.DynamicPortMin || dynamic > taskrules.DynamicPortMax {
		t.Errorf("dynamic host port %d outside %d-%d", dynamic, taskrules.DynamicPortMin, taskrules.DynamicPortMax)
	}
	want := []ecsv1alpha1.ContainerStatus{
		{
			Name: "app", RuntimeID: runtime.ContainerID(string(got.UID), "app"), ImageDigest: fake.Digest("registry.local/web:1"),
			LastStatus: ecsv1alpha1.ContainerRunning, HealthStatus: ecsv1alpha1.HealthUnknown,
			NetworkBindings: []ecsv1alpha1.NetworkBinding{
				{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: dynamic, Protocol: ecsv1alpha1.ProtocolTCP},
				{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP},
			},
		},
		{
			Name: "sidecar", RuntimeID: runtime.ContainerID(string(got.UID), "sidecar"), ImageDigest: fake.Digest("registry.local/proxy:1"),
			LastStatus: ecsv1alpha1.ContainerRunning, HealthStatus: ecsv1alpha1.HealthUnknown,
		},
	}
	if diff := cmp.Diff(want, st.Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if st.TaskDefinitionRevision != 1 || st.HealthStatus != ecsv1alpha1.HealthUnknown || !conditionTrue(got, ecsv1alpha1.TaskConditionRunning) {
		t.Errorf("revision %d, health %s, conditions %+v: want 1, UNKNOWN (the check has not run), Running=True",
			st.TaskDefinitionRevision, st.HealthStatus, st.Conditions)
	}
}

// TestHealthFollowsTheAgentsRule: task health comes from the engine's checks with
// ECS's rule: an essential container's passing check makes the task HEALTHY, its
// failing one UNHEALTHY, and a check on a non-essential sidecar alone leaves the task
// UNKNOWN, whatever the sidecar's health.
func TestHealthFollowsTheAgentsRule(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "health", Instances: 1, NamePrefix: "health", UnhealthyImages: []string{"sick"}})
	fast := func(c *ecsv1alpha1.ContainerDefinition) {
		c.HealthCheck.Interval, c.HealthCheck.Retries = ptr.To[int32](5), ptr.To[int32](1)
	}
	sidecar := func(c *ecsv1alpha1.ContainerDefinition) { c.Essential = ptr.To(false) }
	for _, td := range []*ecsv1alpha1.TaskDefinition{
		testobj.TaskDefinition(ns, "checked").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", "web:1").HealthCheck("true").Last(fast).Obj(),
		testobj.TaskDefinition(ns, "failing").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", "sick:1").HealthCheck("true").Last(fast).Obj(),
		testobj.TaskDefinition(ns, "sidecar").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", "web:1").Container("side", "sick:1").HealthCheck("true").Last(fast).Last(sidecar).Obj(),
	} {
		createRevision(t, td)
		createTask(t, testobj.Task(ns, td.Name, td.Name+":1").Cluster("health").On("health-0000").Obj())
	}
	want := map[string][2]ecsv1alpha1.HealthStatus{ // task health, health of its last container
		"checked": {ecsv1alpha1.HealthHealthy, ecsv1alpha1.HealthHealthy},
		"failing": {ecsv1alpha1.HealthUnhealthy, ecsv1alpha1.HealthUnhealthy},
		"sidecar": {ecsv1alpha1.HealthUnknown, ecsv1alpha1.HealthUnhealthy},
	}
	testenv.EventuallyWithin(t, 30*time.Second, "health from the engine's checks", func() error {
		for name, w := range want {
			st := getTask(t, ns, name).Status
			if len(st.Containers) == 0 || st.LastStatus != ecsv1alpha1.TaskRunning {
				return fmt.Errorf("%s: %s", name, st.LastStatus)
			}
			last := st.Containers[len(st.Containers)-1]
			if st.HealthStatus != w[0] || last.HealthStatus != w[1] {
				return fmt.Errorf("%s: task %s, container %s %s; want %s and %s", name, st.HealthStatus, last.Name, last.HealthStatus, w[0], w[1])
			}
		}
		return nil
	})
}

// TestFailImages: a container of a FailImages image exits with code 1 as it starts;
// the engine stops a task whose essential container that is, and keeps running one
// whose non-essential container exits, as ECS does.
func TestFailImages(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "fail", Instances: 1, NamePrefix: "fail", FailImages: []string{"crash"}})
	createRevision(t, testobj.TaskDefinition(ns, "essential").Network(ecsv1alpha1.NetworkModeNone).Container("app", "crash:1").Obj())
	createRevision(t, testobj.TaskDefinition(ns, "optional").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", "web:1").Container("job", "crash:1").Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Essential = ptr.To(false) }).Obj())
	createTask(t, testobj.Task(ns, "essential", "essential:1").Cluster("fail").On("fail-0000").Obj())
	createTask(t, testobj.Task(ns, "optional", "optional:1").Cluster("fail").On("fail-0000").Obj())

	stopped := waitTaskStatus(t, ns, "essential", ecsv1alpha1.TaskStopped)
	if stopped.Status.StopCode != ecsv1alpha1.StopEssentialContainerExited || stopped.Status.StoppedReason != taskrules.StoppedReasonEssentialExited {
		t.Errorf("stop %s %q, want %s %q", stopped.Status.StopCode, stopped.Status.StoppedReason,
			ecsv1alpha1.StopEssentialContainerExited, taskrules.StoppedReasonEssentialExited)
	}
	if c := stopped.Status.Containers; len(c) != 1 || c[0].ExitCode == nil || *c[0].ExitCode != 1 {
		t.Errorf("containers %+v, want app exited 1", c)
	}
	testenv.EventuallyWithin(t, 20*time.Second, "the non-essential container exited, the task runs on", func() error {
		st := getTask(t, ns, "optional").Status
		if st.LastStatus != ecsv1alpha1.TaskRunning || len(st.Containers) != 2 {
			return fmt.Errorf("task %s, %d containers", st.LastStatus, len(st.Containers))
		}
		if job := st.Containers[1]; job.LastStatus != ecsv1alpha1.ContainerStopped || job.ExitCode == nil || *job.ExitCode != 1 {
			return fmt.Errorf("job container %+v, want STOPPED with exit code 1", job)
		}
		return nil
	})
}

// runOneTask runs one hollow instance, <cluster>-0000, and task "t" of web:1 (a
// container with a dynamic port) on it; it returns the agent, the test's namespace
// and the task once RUNNING.
func runOneTask(t *testing.T, cluster string) (*Agent, string, *ecsv1alpha1.Task) {
	t.Helper()
	needEnv(t)
	ns := env.Namespace(t)
	a, _ := runAgent(t, Config{Cluster: cluster, Instances: 1, NamePrefix: cluster})
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Port(80, 0).Obj())
	createTask(t, testobj.Task(ns, "t", "web:1").Cluster(cluster).On(cluster+"-0000").Obj())
	return a, ns, waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskRunning)
}

// TestStopTask: a stop the control plane asks for goes through the engine: SIGTERM,
// the exit code of a process without a handler, the stop code and reason asked for.
func TestStopTask(t *testing.T) {
	a, ns, running := runOneTask(t, "stop")
	if got := a.RunningTasks("stop-0000"); got != 1 {
		t.Fatalf("RunningTasks = %d, want 1", got)
	}
	stopTaskSpec(t, ns, "t", ecsv1alpha1.StopUserInitiated, "done for today")
	stopped := waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskStopped)
	st := stopped.Status
	if st.StopCode != ecsv1alpha1.StopUserInitiated || st.StoppedReason != "done for today" || st.StoppedAt == nil ||
		!st.StartedAt.Equal(running.Status.StartedAt) {
		t.Errorf("status %+v: want UserInitiated, the reason asked for, stoppedAt set and startedAt kept", st)
	}
	if c := st.Containers; len(c) != 1 || c[0].ExitCode == nil || *c[0].ExitCode != fake.ExitSIGTERM || len(c[0].NetworkBindings) != 0 {
		t.Errorf("containers %+v, want app exited %d (SIGTERM) without bindings", c, fake.ExitSIGTERM)
	}
	if got := a.RunningTasks("stop-0000"); got != 0 {
		t.Errorf("RunningTasks after the stop = %d, want 0", got)
	}
}

// TestStopAndDeleteTask: a task its service will not keep (stopped with
// deleteWhenStopped) ends with the agent's delete once its containers have stopped,
// not with a STOPPED report: after the stop, the task sees no status write, only its
// deletion.
func TestStopAndDeleteTask(t *testing.T) {
	a, ns, running := runOneTask(t, "gone")

	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(t.Context(), &ecsv1alpha1.TaskList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": "t"},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: running.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := env.Client.Patch(t.Context(), running, taskrules.StopAndDeletePatch(ecsv1alpha1.StopServiceSchedulerInitiated, "Scaling in")); err != nil {
		t.Fatal(err)
	}
	var seen []string
	timeout := time.After(20 * time.Second)
	for deleted := false; !deleted; {
		select {
		case ev := <-w.ResultChan():
			tk, ok := ev.Object.(*ecsv1alpha1.Task)
			if !ok {
				t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
			}
			seen = append(seen, fmt.Sprintf("%s desiredStatus=%s deleteWhenStopped=%v lastStatus=%s",
				ev.Type, tk.Spec.DesiredStatus, tk.Spec.DeleteWhenStopped, tk.Status.LastStatus))
			deleted = ev.Type == watch.Deleted
		case <-timeout:
			t.Fatalf("task not deleted within 20s; its events: %v", seen)
		}
	}
	want := []string{
		"MODIFIED desiredStatus=STOPPED deleteWhenStopped=true lastStatus=RUNNING", // the stop
		"DELETED desiredStatus=STOPPED deleteWhenStopped=true lastStatus=RUNNING",  // the agent's delete
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("the task's writes after the stop (-want +got):\n%s", diff)
	}
	testenv.EventuallyWithin(t, 10*time.Second, "the instance's running tasks 0", func() error {
		if got := a.RunningTasks("gone-0000"); got != 0 {
			return fmt.Errorf("RunningTasks = %d", got)
		}
		return nil
	})
}

// TestRemainingResources: the instance reports what its running tasks hold with the
// agent's arithmetic, and gets it back when they stop.
func TestRemainingResources(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "res", Instances: 1, NamePrefix: "res", CPU: 4096, Memory: 8192, StatusInterval: time.Second})
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Port(80, 8080).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu, c.Memory = 512, ptr.To[int32](1024) }).Obj())
	createTask(t, testobj.Task(ns, "t", "web:1").Cluster("res").On("res-0000").Obj())
	waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskRunning)
	reserved := []int32{22, 2375, 2376, 51678, 51679}
	remaining := func(cpu, mem int64, tcp ...int32) func() error {
		ports := append(append([]int32(nil), reserved...), tcp...)
		slices.Sort(ports)
		want := &ecsv1alpha1.Resources{Cpu: cpu, Memory: mem, Ports: ports, UDPPorts: reserved}
		return func() error {
			ci := getInstance(t, "res-0000")
			if diff := cmp.Diff(want, ci.Status.RemainingResources); diff != "" {
				return fmt.Errorf("remaining (-want +got):\n%s", diff)
			}
			return nil
		}
	}
	testenv.EventuallyWithin(t, 20*time.Second, "resources held", remaining(4096-512, 8192-1024, 8080))
	stopTaskSpec(t, ns, "t", "", "")
	waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskStopped)
	testenv.EventuallyWithin(t, 20*time.Second, "resources released", remaining(4096, 8192))
}
