package e2e

import (
	"context"
	"testing"

	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestEssentialExitStopsSidecarOnItsTimeout: when the essential container exits,
// a non-essential container that ignores SIGTERM is killed after its own
// stopTimeout (2 s), as ECS does, not left to run to its end (30 s).
func TestEssentialExitStopsSidecarOnItsTimeout(t *testing.T) {
	s := newStack(t)
	s.startAgent(t, "node-"+s.ns)
	ctx := context.Background()
	td := testobj.TaskDefinition(s.ns, "sidecar-stop").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Command = []string{"sleep=3s", "exit=0"}
	}).
		Container("side", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Essential = ptr.To(false)
		c.StopTimeout = ptr.To[int32](2)
		c.Command = []string{"ignore-term", "echo=ready", "sleep=30s"}
	}).Obj()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, "sidecar-stop", "sidecar-stop").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	task := waitTask(t, s.ns, "sidecar-stop", "stopped", stoppedWith(ecsv1alpha1.StopEssentialContainerExited))
	// Run to its end, the sidecar would exit 0 after 30 s.
	if code, _, ok := exitCode(task, "side"); !ok || code != 137 {
		t.Errorf("side exited %d (reported %v), want 137: killed after its stopTimeout", code, ok)
	}
}
