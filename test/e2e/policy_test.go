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

// confinementStack is a stack whose cluster is at level, with an agent and the
// setuid test image (regtest.SetuidTestImage) in its registry; it returns the
// agent's instance name and HTTP address, and the image.
func confinementStack(t *testing.T, level ecsv1alpha1.ContainerPolicyLevel) (s *stack, instance, agentAddr, image string) {
	t.Helper()
	s = newStack(t)
	s.withPolicy(t, level)
	instance = "node-" + s.ns
	s.startAgent(t, instance)
	image, _ = s.reg.Push(t, regtest.SetuidTestImage(t), "e2e/setuid", "1")
	return s, instance, httpAddress(t, instance), image
}

// confinedProbe is a container that runs the setuid-root copy of the test program
// as UID 1000 with no capability (what restricted asks of a container) and prints
// its no_new_privs and seccomp modes and its effective UID.
func confinedProbe(name, image string, edit func(*ecsv1alpha1.ContainerDefinition)) func(*ecsv1alpha1.TaskDefinitionSpec) {
	return func(spec *ecsv1alpha1.TaskDefinitionSpec) {
		c := &spec.ContainerDefinitions[0]
		c.Name, c.Image, c.User = name, image, "1000"
		c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Drop: []ecsv1alpha1.Capability{"ALL"}}}
		c.EntryPoint = []string{regtest.SetuidBinaryPath}
		c.Command = []string{"status=NoNewPrivs,Seccomp", "euid", "echo=done", "sleep=inf"}
		if edit != nil {
			edit(c)
		}
	}
}

// wantOutput checks that the task's container printed every want (once it printed
// "done").
func wantOutput(t *testing.T, agentAddr, ns, task, container string, wants ...string) {
	t.Helper()
	waitOutput(t, agentAddr, ns, task, container, "done")
	out := logOf(t, agentAddr, ns, task, container)
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s/%s printed %q, which lacks %q", task, container, out, want)
		}
	}
}

// TestContainerPolicyRestrictedConfines: at level restricted every container runs
// with no_new_privs and containerd's default seccomp profile, so a setuid-root binary
// run by a non-root user stays that user; a task that asks for seccomp=unconfined,
// created already bound to the instance so only the agent's check stands in its
// way, is refused before anything of it is created.
func TestContainerPolicyRestrictedConfines(t *testing.T) {
	s, instance, agentAddr, image := confinementStack(t, ecsv1alpha1.ContainerPolicyRestricted)
	s.run(t, "confined", confinedProbe("app", image, nil))
	s.forge(t, instance, image, "no-new-privileges", "seccomp=unconfined")

	wantOutput(t, agentAddr, s.ns, "confined", "app", "NoNewPrivs:\t1", "Seccomp:\t2", "euid=1000")
	s.refusedWith(t, "forged", "spec.containerDefinitions[0].dockerSecurityOptions[1]: Forbidden: seccomp=unconfined", "level restricted")
}

// forge registers a task definition compliant but for the security options opts and
// creates its task "forged" bound straight to instance, past the scheduler's check,
// for the agent's own check to refuse.
func (s *stack) forge(t *testing.T, instance, image string, opts ...string) {
	t.Helper()
	td := testobj.TaskDefinition(s.ns, "unconfined").Container("app", image).Network(ecsv1alpha1.NetworkModeNone).Obj()
	confinedProbe("app", image, func(c *ecsv1alpha1.ContainerDefinition) {
		c.Cpu, c.DockerSecurityOptions = 64, opts
	})(&td.Spec)
	registered(t, td)
	if err := env.Client.Create(context.Background(), testobj.Task(s.ns, "forged", "unconfined:1").Cluster(s.cluster).On(instance).Obj()); err != nil {
		t.Fatal(err)
	}
}

// TestContainerPolicyBaselineConfines: at level baseline every container runs under
// the default seccomp profile, without no_new_privs (as Docker, so ECS, runs it):
// the same setuid-root binary that restricted keeps at UID 1000 gives UID 0 here,
// which shows the restricted test can fail. A task bound to the instance that asks
// for apparmor:unconfined is refused by the agent.
func TestContainerPolicyBaselineConfines(t *testing.T) {
	s, instance, agentAddr, image := confinementStack(t, ecsv1alpha1.ContainerPolicyBaseline)
	s.run(t, "setuid", confinedProbe("app", image, nil))
	s.forge(t, instance, image, "apparmor:unconfined")

	wantOutput(t, agentAddr, s.ns, "setuid", "app", "NoNewPrivs:\t0", "Seccomp:\t2", "euid=0")
	s.refusedWith(t, "forged", "spec.containerDefinitions[0].dockerSecurityOptions[0]: Forbidden: apparmor:unconfined", "level baseline")
}

// TestContainerPolicyPrivilegedOptOut: only at level privileged may a container run
// without the default seccomp profile, by asking for seccomp=unconfined or by being
// privileged (as Docker does); a container that asks for neither keeps the profile.
func TestContainerPolicyPrivilegedOptOut(t *testing.T) {
	s, _, agentAddr, image := confinementStack(t, ecsv1alpha1.ContainerPolicyPrivileged)
	probe := func(c *ecsv1alpha1.ContainerDefinition) {
		c.Image, c.Cpu = image, 64
		c.Command = []string{"status=NoNewPrivs,Seccomp", "echo=done", "sleep=inf"}
	}
	td := testobj.TaskDefinition(s.ns, "optout").Network(ecsv1alpha1.NetworkModeNone).
		Container("unconfined", image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		probe(c)
		c.DockerSecurityOptions = []string{"seccomp=unconfined"}
	}).
		Container("privileged", image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		probe(c)
		c.Privileged = true
	}).
		Container("plain", image).Last(probe).Obj()
	registered(t, td)
	if err := env.Client.Create(context.Background(), testobj.Task(s.ns, "optout", "optout").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, agentAddr, s.ns, "optout", "unconfined", "NoNewPrivs:\t0", "Seccomp:\t0")
	wantOutput(t, agentAddr, s.ns, "optout", "privileged", "Seccomp:\t0")
	wantOutput(t, agentAddr, s.ns, "optout", "plain", "Seccomp:\t2")
}
