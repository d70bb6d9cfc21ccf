package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// withPolicy creates the stack's Cluster at level.
func (s *stack) withPolicy(t *testing.T, level ecsv1alpha1.ContainerPolicyLevel) {
	t.Helper()
	c := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: s.cluster},
		Spec: ecsv1alpha1.ClusterSpec{ContainerPolicy: &ecsv1alpha1.ContainerPolicy{Level: level}}}
	if err := env.Client.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), c) })
}

// taskContainers lists the IDs of every container of a task in the agent's
// containerd namespace, whatever their state.
func (s *stack) taskContainers(t *testing.T, uid types.UID) []string {
	t.Helper()
	var out []string
	s.eachContainer(t, func(ctx context.Context, cont containerd.Container) {
		labels, err := cont.Labels(ctx)
		if err == nil && labels[runtime.LabelTaskUID] == string(uid) {
			out = append(out, cont.ID())
		}
	})
	return out
}

// registered waits until the task definition's first revision is registered.
func registered(t *testing.T, td *ecsv1alpha1.TaskDefinition) {
	t.Helper()
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 30*time.Second, td.Name+" registered", func() error {
		var got ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: td.Namespace, Name: td.Name}, &got); err != nil {
			return err
		}
		if got.Status.LatestRevision < 1 {
			return fmt.Errorf("latest revision %d", got.Status.LatestRevision)
		}
		return nil
	})
}

// refusedWith waits until the agent stops the task as TaskFailedToStart with a reason
// naming every want, and checks that no container of it was ever created.
func (s *stack) refusedWith(t *testing.T, name string, wants ...string) {
	t.Helper()
	task := waitTask(t, s.ns, name, "refused by the container policy", func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskStopped || task.Status.StopCode != ecsv1alpha1.StopTaskFailedToStart {
			return fmt.Errorf("not stopped with %s", ecsv1alpha1.StopTaskFailedToStart)
		}
		for _, want := range append([]string{ecsv1alpha1.ReasonContainerPolicyViolation}, wants...) {
			if !strings.Contains(task.Status.StoppedReason, want) {
				return fmt.Errorf("stoppedReason lacks %q", want)
			}
		}
		return nil
	})
	if ids := s.taskContainers(t, task.UID); len(ids) != 0 {
		t.Errorf("containerd has containers of the refused task %s: %v", name, ids)
	}
}

// TestContainerPolicyForgedTaskRefusedByAgent: a task created already bound to the
// instance never meets the scheduler, which is where the manager checks the policy.
// The agent checks it before it starts anything: a privileged revision on a baseline
// cluster is stopped with TaskFailedToStart naming the field, and containerd never
// gets a container of it. A compliant task bound the same way runs.
func TestContainerPolicyForgedTaskRefusedByAgent(t *testing.T) {
	s := newStack(t)
	s.withPolicy(t, ecsv1alpha1.ContainerPolicyBaseline)
	instance := "node-" + s.ns
	s.startAgent(t, instance)

	registered(t, testobj.TaskDefinition(s.ns, "priv").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu, c.Privileged = 64, true }).Obj())
	registered(t, testobj.TaskDefinition(s.ns, "plain").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 64 }).Obj())
	for _, task := range []*ecsv1alpha1.Task{
		testobj.Task(s.ns, "forged", "priv:1").Cluster(s.cluster).On(instance).Obj(),
		testobj.Task(s.ns, "bound", "plain:1").Cluster(s.cluster).On(instance).Obj(),
	} {
		if err := env.Client.Create(context.Background(), task); err != nil {
			t.Fatal(err)
		}
	}
	s.refusedWith(t, "forged", "spec.containerDefinitions[0].privileged: Forbidden", "level baseline")
	waitTask(t, s.ns, "bound", "running", func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("not RUNNING")
		}
		return nil
	})
}

// TestContainerPolicyRestrictedRefusesRootImage: at level restricted a container that
// sets no user runs as its image's user, which only the agent can read, once the image
// is pulled. An image whose config names no user (root) is refused before any
// container is created; the same task definition with an image that runs as a
// non-root UID runs.
func TestContainerPolicyRestrictedRefusesRootImage(t *testing.T) {
	s := newStack(t)
	s.withPolicy(t, ecsv1alpha1.ContainerPolicyRestricted)
	s.startAgent(t, "node-"+s.ns)
	reg := regtest.Start(t)
	nonRoot, _ := reg.Push(t, regtest.TestImage(t, nil, regtest.WithUser("65534:65534")), "e2e/nonroot", "1")

	restricted := func(image string) func(*ecsv1alpha1.TaskDefinitionSpec) {
		return func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			c := &spec.ContainerDefinitions[0]
			c.Image = image
			c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Drop: []ecsv1alpha1.Capability{"ALL"}}}
		}
	}
	s.run(t, "rootimage", restricted(s.image)) // the test image sets no user
	s.run(t, "nonroot", restricted(nonRoot))
	s.refusedWith(t, "rootimage", "spec.containerDefinitions[0].user: Forbidden: user is unset and the image runs as root", "level restricted")
	waitTask(t, s.ns, "nonroot", "running", func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("not RUNNING")
		}
		return nil
	})
}
