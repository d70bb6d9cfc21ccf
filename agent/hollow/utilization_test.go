package hollow

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestUtilization: after a window, the instance's status.utilization has its
// running task's group: what the agent measured of the simulated containers (16
// CPU units and 16 MiB each), what the task reserves and its Service. When the task
// stops, an empty window is written, so that nothing is counted for it any more.
func TestUtilization(t *testing.T) {
	needEnv(t)
	ns := env.Namespace(t)
	runAgent(t, Config{Cluster: "util", Instances: 1, NamePrefix: "util", StatusInterval: time.Second, UtilizationInterval: time.Second})
	createRevision(t, testobj.TaskDefinition(ns, "web").
		Container("app", "web:1").Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu, c.Memory = 512, ptr.To[int32](1024) }).
		Container("sidecar", "proxy:1").Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu, c.Memory = 256, ptr.To[int32](256) }).
		Obj())
	task := testobj.Task(ns, "t", "web:1").Cluster("util").On("util-0000").Obj()
	task.Labels = map[string]string{ecsv1alpha1.LabelService: "web"}
	createTask(t, task)
	waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskRunning)

	want := []ecsv1alpha1.UtilizationGroup{{
		Namespace: ns, Service: "web", Family: "web", Tasks: 1,
		CPUUsed: 2 * 16, CPUReserved: 512 + 256, MemoryUsed: 2 * 16, MemoryReserved: 1024 + 256,
	}}
	testenv.EventuallyWithin(t, 20*time.Second, "the task's group in status.utilization", func() error {
		u := getInstance(t, "util-0000").Status.Utilization
		if u == nil {
			return errors.New("no status.utilization")
		}
		if !u.WindowEnd.After(u.WindowStart.Time) {
			return fmt.Errorf("window %v to %v", u.WindowStart, u.WindowEnd)
		}
		if diff := cmp.Diff(want, u.Groups); diff != "" {
			return fmt.Errorf("groups (-want +got):\n%s", diff)
		}
		return nil
	})

	stopTaskSpec(t, ns, "t", "", "")
	waitTaskStatus(t, ns, "t", ecsv1alpha1.TaskStopped)
	testenv.EventuallyWithin(t, 20*time.Second, "an empty window", func() error {
		if u := getInstance(t, "util-0000").Status.Utilization; u == nil || len(u.Groups) > 0 {
			return fmt.Errorf("status.utilization %+v, want an empty window", u)
		}
		return nil
	})
}
