package hollow

import (
	"context"
	"fmt"
	"strings"
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
// sees its tasks change, and its containers keep running; after Reconnect the agent
// catches up, as a real one does after a partition.
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
	if got := getTask(t, ns, "unreachable").Status; got.LastStatus != ecsv1alpha1.TaskStopped || got.StopCode != ecsv1alpha1.StopInstanceUnreachable {
		t.Errorf("task the manager stopped: %s %s, want STOPPED %s", got.LastStatus, got.StopCode, ecsv1alpha1.StopInstanceUnreachable)
	}
}

// TestRestartIsAReboot: a hollow process started again with the same Config is the
// same machines after a reboot. They register again (keeping registeredAt), find
// none of the containers the API says run, and report those tasks' containers lost,
// as the agent does on a rebooted machine; the control plane replaces them.
func TestRestartIsAReboot(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	cfg := Config{Cluster: "reboot", Instances: 1, NamePrefix: "reboot", LeaseInterval: 200 * time.Millisecond}
	const inst = "reboot-0000"
	_, stop := runAgent(t, cfg)
	createRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Port(80, 0).Obj())
	createTask(t, testobj.Task(ns, "t", "web:1").Cluster("reboot").On(inst).Obj())
	waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskRunning)
	var registeredAt *metav1.Time
	testenv.EventuallyWithin(t, 20*time.Second, "registration", func() error {
		if registeredAt = getInstance(t, inst).Status.RegisteredAt; registeredAt == nil {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	stop()

	runAgent(t, cfg)
	lost := waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskStopped)
	if c := lost.Status.Containers; len(c) != 1 || !strings.HasPrefix(c[0].Reason, "ContainerLost") {
		t.Errorf("containers %+v, want app lost", c)
	}
	if lost.Status.StopCode != ecsv1alpha1.StopEssentialContainerExited {
		t.Errorf("stopCode %s, want %s", lost.Status.StopCode, ecsv1alpha1.StopEssentialContainerExited)
	}
	if got := getInstance(t, inst).Status.RegisteredAt; !got.Equal(registeredAt) {
		t.Errorf("registeredAt changed on re-registration: %v -> %v", registeredAt, got)
	}
}
