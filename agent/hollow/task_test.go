package hollow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestTaskReachesRunningInOneWrite is the benchmark's premise: one status write takes
// a bound task to RUNNING, with everything a real agent reports.
func TestTaskReachesRunningInOneWrite(t *testing.T) {
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
	if got.Status.StartedAt == nil || got.Status.StartedAt.Before(&got.CreationTimestamp) {
		t.Errorf("startedAt = %v, want set and not before creation (%v)", got.Status.StartedAt, got.CreationTimestamp)
	}
	var dynamic int32
	for _, c := range got.Status.Containers {
		for _, b := range c.NetworkBindings {
			if b.ContainerPort == 80 {
				dynamic = b.HostPort
			}
		}
	}
	if dynamic < 32768 || dynamic > 60999 {
		t.Errorf("dynamic host port %d outside 32768-60999", dynamic)
	}
	want := ecsv1alpha1.TaskStatus{
		TaskDefinitionRevision: 1,
		LastStatus:             ecsv1alpha1.TaskRunning,
		HealthStatus:           ecsv1alpha1.HealthHealthy,
		CreatedAt:              &got.CreationTimestamp,
		StartedAt:              got.Status.StartedAt,
		Containers: []ecsv1alpha1.ContainerStatus{
			{
				Name: "app", RuntimeID: "hollow://" + string(got.UID) + "/app",
				LastStatus: ecsv1alpha1.ContainerRunning, HealthStatus: ecsv1alpha1.HealthHealthy,
				NetworkBindings: []ecsv1alpha1.NetworkBinding{
					{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: dynamic, Protocol: ecsv1alpha1.ProtocolTCP},
					{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP},
				},
			},
			{
				Name: "sidecar", RuntimeID: "hollow://" + string(got.UID) + "/sidecar",
				LastStatus: ecsv1alpha1.ContainerRunning, HealthStatus: ecsv1alpha1.HealthUnknown,
			},
		},
		Conditions: []metav1.Condition{{
			Type: ecsv1alpha1.TaskConditionRunning, Status: metav1.ConditionTrue, Reason: reasonStarted,
			Message: "hollow: containers started", LastTransitionTime: *got.Status.StartedAt, ObservedGeneration: got.Generation,
		}},
	}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// taskOutcome is what the status table checks of a task's final status.
type taskOutcome struct {
	LastStatus    ecsv1alpha1.TaskStatusValue
	Health        ecsv1alpha1.HealthStatus
	StopCode      ecsv1alpha1.StopCode
	StoppedReason string
	Containers    []string // name/lastStatus/health[/exitCode[/reason]]
	HostPorts     []int32  // static host ports published
	Conditions    []string // type=status/reason
}

func outcomeOf(task *ecsv1alpha1.Task) taskOutcome {
	o := taskOutcome{
		LastStatus: task.Status.LastStatus, Health: task.Status.HealthStatus,
		StopCode: task.Status.StopCode, StoppedReason: task.Status.StoppedReason,
	}
	for _, c := range task.Status.Containers {
		s := fmt.Sprintf("%s/%s/%s", c.Name, c.LastStatus, c.HealthStatus)
		if c.ExitCode != nil {
			s += fmt.Sprintf("/%d", *c.ExitCode)
		}
		if c.Reason != "" {
			s += "/" + c.Reason
		}
		o.Containers = append(o.Containers, s)
		for _, b := range c.NetworkBindings {
			if b.HostPort < dynamicPortFirst {
				o.HostPorts = append(o.HostPorts, b.HostPort)
			}
		}
	}
	for _, c := range task.Status.Conditions {
		o.Conditions = append(o.Conditions, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return o
}

func TestTaskStatus(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{
		Cluster: "status", Instances: 1, NamePrefix: "status",
		FailImages: []string{"crash"}, UnhealthyImages: []string{"sick"},
	})
	running := []string{"Running=True/Started"}
	stopped := func(code ecsv1alpha1.StopCode) []string {
		return []string{"Running=False/Stopped", "Stopped=True/" + string(code)}
	}
	tests := []struct {
		name string
		td   *ecsv1alpha1.TaskDefinition // nil: the task names a missing revision
		want taskOutcome
		// wantReason is a substring of stoppedReason, when it is not known exactly.
		wantReason string
	}{
		{
			name: "health check",
			td:   testobj.TaskDefinition(ns, "checked").Container("app", "web:1").HealthCheck("true").Obj(),
			want: taskOutcome{LastStatus: "RUNNING", Health: "HEALTHY", Containers: []string{"app/RUNNING/HEALTHY"}, Conditions: running},
		},
		{
			name: "no health check",
			td:   testobj.TaskDefinition(ns, "unchecked").Container("app", "web:1").Obj(),
			want: taskOutcome{LastStatus: "RUNNING", Health: "UNKNOWN", Containers: []string{"app/RUNNING/UNKNOWN"}, Conditions: running},
		},
		{
			name: "unhealthy image",
			td:   testobj.TaskDefinition(ns, "sick").Container("app", "registry/sick:1").HealthCheck("true").Obj(),
			want: taskOutcome{LastStatus: "RUNNING", Health: "UNHEALTHY", Containers: []string{"app/RUNNING/UNHEALTHY"}, Conditions: running},
		},
		{
			name: "essential container fails",
			td:   testobj.TaskDefinition(ns, "crash").Container("app", "registry/crash:1").Container("side", "proxy:1").Obj(),
			want: taskOutcome{
				LastStatus: "STOPPED", Health: "UNKNOWN", StopCode: ecsv1alpha1.StopEssentialContainerExited,
				StoppedReason: "Essential container in task exited",
				Containers:    []string{"app/STOPPED/UNKNOWN/1/hollow: simulated failure", "side/STOPPED/UNKNOWN/143"},
				Conditions:    stopped(ecsv1alpha1.StopEssentialContainerExited),
			},
		},
		{
			name: "non-essential container fails",
			td: testobj.TaskDefinition(ns, "crash-side").Container("app", "web:1").Container("side", "crash:1").
				Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Essential = ptr.To(false) }).Obj(),
			want: taskOutcome{
				LastStatus: "RUNNING", Health: "UNKNOWN",
				Containers: []string{"app/RUNNING/UNKNOWN", "side/STOPPED/UNKNOWN/1/hollow: simulated failure"},
				Conditions: running,
			},
		},
		{
			name: "host network",
			td:   testobj.TaskDefinition(ns, "host").Container("app", "web:1").Port(9000, 9000).Network(ecsv1alpha1.NetworkModeHost).Obj(),
			want: taskOutcome{LastStatus: "RUNNING", Health: "UNKNOWN", Containers: []string{"app/RUNNING/UNKNOWN"}, HostPorts: []int32{9000}, Conditions: running},
		},
		{
			name: "reserved host port",
			td:   testobj.TaskDefinition(ns, "ssh").Container("app", "web:1").Port(22, 22).Obj(),
			want: taskOutcome{
				LastStatus: "STOPPED", Health: "UNKNOWN", StopCode: ecsv1alpha1.StopTaskFailedToStart,
				Containers: []string{"app/STOPPED/UNKNOWN/0"}, Conditions: stopped(ecsv1alpha1.StopTaskFailedToStart),
			},
			wantReason: "host port 22/tcp is reserved",
		},
		{
			name: "missing revision",
			want: taskOutcome{
				LastStatus: "STOPPED", Health: "UNKNOWN", StopCode: ecsv1alpha1.StopTaskFailedToStart,
				Conditions: stopped(ecsv1alpha1.StopTaskFailedToStart),
			},
			wantReason: "task definition missing:7 not found",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := "missing:7"
			if tc.td != nil {
				createRevision(t, tc.td)
				ref = tc.td.Name + ":1"
			}
			task := createTask(t, testobj.Task(ns, fmt.Sprintf("task-%d", i), ref).Cluster("status").On("status-0000").Obj())
			until, _, err := countWrites(t, task).writesUntil(tc.want.LastStatus, 0)
			if err != nil {
				t.Fatal(err)
			}
			if until != 1 {
				t.Errorf("writes to reach %s = %d, want 1", tc.want.LastStatus, until)
			}
			got := outcomeOf(getTask(t, ns, task.Name))
			if tc.wantReason != "" {
				if !strings.Contains(got.StoppedReason, tc.wantReason) {
					t.Errorf("stoppedReason = %q, want it to contain %q", got.StoppedReason, tc.wantReason)
				}
				got.StoppedReason = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnpinnedReference runs a StartTask naming only the family: the agent resolves
// the latest revision and records it.
func TestUnpinnedReference(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "unpinned", Instances: 1, NamePrefix: "unpinned"})
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Obj())
	createTask(t, testobj.Task(ns, "t", "web").Cluster("unpinned").On("unpinned-0000").Obj())
	got := waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskRunning)
	if got.Status.TaskDefinitionRevision != 1 {
		t.Errorf("taskDefinitionRevision = %d, want 1", got.Status.TaskDefinitionRevision)
	}
}

func TestDynamicPortsDistinct(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	a, _ := runAgent(t, Config{Cluster: "ports", Instances: 1, NamePrefix: "ports"})
	createRevision(t, testobj.TaskDefinition(ns, "multi").Container("app", "web:1").Port(80, 0).Port(443, 0).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 64; c.Memory = ptr.To[int32](32) }).Obj())
	const n = 8
	for i := range n {
		createTask(t, testobj.Task(ns, fmt.Sprintf("t%d", i), "multi:1").Cluster("ports").On("ports-0000").Obj())
	}
	var ports []int32
	for i := range n {
		task := waitTaskStatus(t, ns, fmt.Sprintf("t%d", i), ecsv1alpha1.TaskRunning)
		for _, b := range task.Status.Containers[0].NetworkBindings {
			if b.HostPort < dynamicPortFirst || b.HostPort > dynamicPortLast {
				t.Errorf("task t%d: host port %d outside the dynamic range", i, b.HostPort)
			}
			ports = append(ports, b.HostPort)
		}
	}
	slices.Sort(ports)
	if len(ports) != 2*n || len(slices.Compact(slices.Clone(ports))) != 2*n {
		t.Errorf("dynamic host ports on one instance = %v, want %d distinct", ports, 2*n)
	}
	if got := a.RunningTasks("ports-0000"); got != n {
		t.Errorf("RunningTasks = %d, want %d", got, n)
	}
}

func TestStopTask(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	a, _ := runAgent(t, Config{Cluster: "stop", Instances: 1, NamePrefix: "stop"})
	createRevision(t, webTD(ns, "web"))
	tests := []struct {
		name       string
		code       ecsv1alpha1.StopCode
		reason     string
		beforeRun  bool
		wantCode   ecsv1alpha1.StopCode
		wantExit   int32
		wantReason string
	}{
		{name: "user", wantCode: ecsv1alpha1.StopUserInitiated, wantExit: 143},
		{name: "scheduler", code: ecsv1alpha1.StopServiceSchedulerInitiated, reason: "scaling in",
			wantCode: ecsv1alpha1.StopServiceSchedulerInitiated, wantExit: 143, wantReason: "scaling in"},
		{name: "before it ran", code: ecsv1alpha1.StopUserInitiated, reason: "changed my mind", beforeRun: true,
			wantCode: ecsv1alpha1.StopUserInitiated, wantExit: 0, wantReason: "changed my mind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "t-" + strings.ReplaceAll(tc.name, " ", "-")
			task := testobj.Task(ns, name, "web:1").Cluster("stop").On("stop-0000").Obj()
			if tc.beforeRun {
				task.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
				task.Spec.StopCode, task.Spec.StopReason = tc.code, tc.reason
				createTask(t, task)
			} else {
				createTask(t, task)
				waitTaskStatus(t, ns, name, ecsv1alpha1.TaskRunning)
				stopTaskSpec(t, ns, name, tc.code, tc.reason)
			}
			got := waitTaskStatus(t, ns, name, ecsv1alpha1.TaskStopped)
			s := got.Status
			if s.StopCode != tc.wantCode || s.StoppedReason != tc.wantReason {
				t.Errorf("stopCode, stoppedReason = %s, %q; want %s, %q", s.StopCode, s.StoppedReason, tc.wantCode, tc.wantReason)
			}
			if s.StoppingAt == nil || s.StoppedAt == nil || (s.StartedAt == nil) != tc.beforeRun {
				t.Errorf("startedAt, stoppingAt, stoppedAt = %v, %v, %v", s.StartedAt, s.StoppingAt, s.StoppedAt)
			}
			for _, c := range s.Containers {
				if c.LastStatus != ecsv1alpha1.ContainerStopped || c.ExitCode == nil || *c.ExitCode != tc.wantExit || len(c.NetworkBindings) > 0 {
					t.Errorf("container %s = %s exit %v bindings %v; want STOPPED exit %d, no bindings", c.Name, c.LastStatus, ptr.Deref(c.ExitCode, -1), c.NetworkBindings, tc.wantExit)
				}
			}
			if len(s.Containers) != 2 {
				t.Errorf("containers = %d, want 2", len(s.Containers))
			}
			for typ, want := range map[string]metav1.ConditionStatus{
				ecsv1alpha1.TaskConditionRunning: metav1.ConditionFalse, ecsv1alpha1.TaskConditionStopped: metav1.ConditionTrue,
			} {
				if c := meta.FindStatusCondition(s.Conditions, typ); c == nil || c.Status != want {
					t.Errorf("condition %s = %+v, want %s", typ, c, want)
				}
			}
		})
	}
	if got := a.RunningTasks("stop-0000"); got != 0 {
		t.Errorf("RunningTasks after stopping everything = %d, want 0", got)
	}
}

func TestRemainingResources(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "res", Instances: 1, NamePrefix: "res", CPU: 2048, Memory: 2048, RunningDelay: 3 * time.Second})
	// 256 + 256 cpu; 128 + 64 (memoryReservation) MiB; a static port.
	createRevision(t, testobj.TaskDefinition(ns, "sum").
		Container("app", "web:1").Port(80, 8080).
		Container("side", "proxy:1").Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory, c.MemoryReservation = nil, ptr.To[int32](64)
	}).Obj())
	// Task-level 512 cpu and 1024 MiB.
	big := testobj.TaskDefinition(ns, "big").Container("app", "web:1").Obj()
	big.Spec.Cpu, big.Spec.Memory = ptr.To[int32](512), ptr.To[int32](1024)
	createRevision(t, big)

	createTask(t, testobj.Task(ns, "a", "sum:1").Cluster("res").On("res-0000").Obj())
	createTask(t, testobj.Task(ns, "b", "big:1").Cluster("res").On("res-0000").Obj())

	type usage struct {
		Remaining        ecsv1alpha1.Resources
		Running, Pending int32
	}
	wait := func(what string, want usage) {
		t.Helper()
		testenv.EventuallyWithin(t, 20*time.Second, what, func() error {
			ci := &ecsv1alpha1.ContainerInstance{}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "res-0000"}, ci); err != nil {
				return err
			}
			s := ci.Status
			got := usage{Running: s.RunningTasksCount, Pending: s.PendingTasksCount}
			if s.RemainingResources != nil {
				got.Remaining = *s.RemainingResources
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				return fmt.Errorf("(-want +got):\n%s", diff)
			}
			return nil
		})
	}
	reserved := []int32{22, 2375, 2376, 51678, 51679}
	// While pending, cpu and memory are reserved; the port is bound at start.
	wait("pending tasks", usage{Remaining: ecsv1alpha1.Resources{Cpu: 1024, Memory: 832, Ports: reserved}, Pending: 2})
	wait("running tasks", usage{Remaining: ecsv1alpha1.Resources{Cpu: 1024, Memory: 832, Ports: []int32{22, 2375, 2376, 8080, 51678, 51679}}, Running: 2})
	stopTaskSpec(t, ns, "a", "", "")
	wait("after a stop", usage{Remaining: ecsv1alpha1.Resources{Cpu: 1536, Memory: 1024, Ports: reserved}, Running: 1})
}
