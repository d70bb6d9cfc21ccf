package hollow

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestDisconnectReconnect: a disconnected instance neither renews its Lease nor
// touches its tasks, and its containers keep running; after Reconnect it catches up.
func TestDisconnectReconnect(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	const cut, other = "net-0000", "net-0001"
	a, _ := runAgent(t, Config{Cluster: "net", Instances: 2, NamePrefix: "net", LeaseInterval: 200 * time.Millisecond})
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Port(80, 0).Obj())
	createTask(t, testobj.Task(ns, "stopped-meanwhile", "web:1").Cluster("net").On(cut).Obj())
	createTask(t, testobj.Task(ns, "unreachable", "web:1").Cluster("net").On(cut).Obj())
	waitTaskStatus(t, ns, "stopped-meanwhile", ecsv1alpha1.TaskRunning)
	waitTaskStatus(t, ns, "unreachable", ecsv1alpha1.TaskRunning)

	if err := a.Disconnect(cut); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let a renewal in flight land
	before, err := getLease(cut)
	if err != nil {
		t.Fatal(err)
	}
	otherBefore, err := getLease(other)
	if err != nil {
		t.Fatal(err)
	}

	// The control plane acts while the instance is away: it stops one task, binds a
	// new one, and (as for an unreachable instance) stops one itself.
	stopTaskSpec(t, ns, "stopped-meanwhile", ecsv1alpha1.StopUserInitiated, "")
	createTask(t, testobj.Task(ns, "new", "web:1").Cluster("net").On(cut).Obj())
	unreachable := getTask(t, ns, "unreachable")
	stopTaskSpec(t, ns, "unreachable", ecsv1alpha1.StopInstanceUnreachable, "instance net-0000 stopped heartbeating")
	now := metav1.Now().Rfc3339Copy()
	managerStop := ecsac.Task("unreachable", ns).WithStatus(ecsac.TaskStatus().
		WithLastStatus(ecsv1alpha1.TaskStopped).WithStopCode(ecsv1alpha1.StopInstanceUnreachable).WithStoppedAt(now))
	if err := env.Client.Status().Apply(ctx, managerStop, client.FieldOwner(ecsv1alpha1.FieldManagerManager), client.ForceOwnership); err != nil {
		t.Fatalf("manager stopping task: %v", err)
	}

	time.Sleep(time.Second)
	after, err := getLease(cut)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Spec.RenewTime.Equal(before.Spec.RenewTime) {
		t.Errorf("lease renewed while disconnected: %v -> %v", before.Spec.RenewTime, after.Spec.RenewTime)
	}
	if l, err := getLease(other); err != nil || !l.Spec.RenewTime.After(otherBefore.Spec.RenewTime.Time) {
		t.Errorf("the connected instance's lease did not advance (%v)", err)
	}
	if got := getTask(t, ns, "stopped-meanwhile").Status.LastStatus; got != ecsv1alpha1.TaskRunning {
		t.Errorf("task stopped while disconnected: lastStatus %s, want RUNNING until reconnect", got)
	}
	if got := getTask(t, ns, "new").Status.LastStatus; got != "" {
		t.Errorf("task bound while disconnected: lastStatus %q, want none until reconnect", got)
	}
	if got := a.RunningTasks(cut); got != 2 {
		t.Errorf("RunningTasks while disconnected = %d, want 2: containers keep running", got)
	}

	if err := a.Reconnect(cut); err != nil {
		t.Fatal(err)
	}
	stopped := waitTaskStatus(t, ns, "stopped-meanwhile", ecsv1alpha1.TaskStopped)
	if stopped.Status.StopCode != ecsv1alpha1.StopUserInitiated {
		t.Errorf("stopCode = %s, want UserInitiated", stopped.Status.StopCode)
	}
	waitTaskStatus(t, ns, "new", ecsv1alpha1.TaskRunning)
	testenv.EventuallyWithin(t, 10*time.Second, "lease renewed after reconnect", func() error {
		l, err := getLease(cut)
		if err != nil {
			return err
		}
		if !l.Spec.RenewTime.After(after.Spec.RenewTime.Time) {
			return fmt.Errorf("renewTime still %v", l.Spec.RenewTime)
		}
		return nil
	})
	testenv.EventuallyWithin(t, 10*time.Second, "only the new task runs", func() error {
		if got := a.RunningTasks(cut); got != 1 {
			return fmt.Errorf("RunningTasks = %d, want 1", got)
		}
		return nil
	})
	// The manager's STOPPED stands: the agent killed its copy without writing.
	got := getTask(t, ns, "unreachable")
	if got.Status.StopCode != ecsv1alpha1.StopInstanceUnreachable || got.Status.StartedAt == nil ||
		!got.Status.StartedAt.Equal(unreachable.Status.StartedAt) {
		t.Errorf("task stopped by the manager was rewritten: %+v", got.Status)
	}
}

// TestRestartAdoptsTasks: a restarted hollow process adopts its instances and tasks:
// RUNNING tasks are not written again and keep their ports, stops requested while it
// was down are carried out.
func TestRestartAdoptsTasks(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	cfg := Config{Cluster: "restart", Instances: 1, NamePrefix: "restart", LeaseInterval: 200 * time.Millisecond}
	const inst = "restart-0000"
	_, stop := runAgent(t, cfg)
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Port(80, 0).Obj())
	createTask(t, testobj.Task(ns, "keep", "web:1").Cluster("restart").On(inst).Obj())
	createTask(t, testobj.Task(ns, "stop", "web:1").Cluster("restart").On(inst).Obj())
	keep := waitTaskStatus(t, ns, "keep", ecsv1alpha1.TaskRunning)
	waitTaskStatus(t, ns, "stop", ecsv1alpha1.TaskRunning)
	time.Sleep(statusMinInterval + 500*time.Millisecond) // the instance reports both
	registeredAt := getInstance(t, inst).Status.RegisteredAt
	stop()

	stopTaskSpec(t, ns, "stop", "", "")
	createTask(t, testobj.Task(ns, "new", "web:1").Cluster("restart").On(inst).Obj())
	a, _ := runAgent(t, cfg)

	stopped := waitTaskStatus(t, ns, "stop", ecsv1alpha1.TaskStopped)
	if c := stopped.Status.Containers; len(c) != 1 || c[0].ExitCode == nil || *c[0].ExitCode != 143 {
		t.Errorf("containers of the task stopped after restart = %+v, want exit 143 (it was running)", c)
	}
	newTask := waitTaskStatus(t, ns, "new", ecsv1alpha1.TaskRunning)
	if got, old := newTask.Status.Containers[0].NetworkBindings[0].HostPort, keep.Status.Containers[0].NetworkBindings[0].HostPort; got == old {
		t.Errorf("new task got host port %d, already held by the adopted task", got)
	}
	time.Sleep(time.Second)
	if got := getTask(t, ns, "keep"); got.ResourceVersion != keep.ResourceVersion {
		t.Errorf("the restarted agent rewrote a RUNNING task: resourceVersion %s -> %s, status %+v", keep.ResourceVersion, got.ResourceVersion, got.Status)
	}
	if got := a.RunningTasks(inst); got != 2 {
		t.Errorf("RunningTasks after restart = %d, want 2 (keep, new)", got)
	}
	ci := getInstance(t, inst)
	if !ci.Status.RegisteredAt.Equal(registeredAt) {
		t.Errorf("registeredAt changed on re-registration: %v -> %v", registeredAt, ci.Status.RegisteredAt)
	}
}
