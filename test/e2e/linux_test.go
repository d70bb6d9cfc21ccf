package e2e

import (
	"context"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestLinuxKnobs runs ECS's Docker-level container settings on containerd and
// reads them back from inside the container: systemControls, no-new-privileges,
// sharedMemorySize, tmpfs with its options, devices, swappiness, and
// disableNetworking (a container of a bridge task alone in its namespace).
func TestLinuxKnobs(t *testing.T) {
	s := newStack(t)
	s.withPolicy(t, ecsv1alpha1.ContainerPolicyPrivileged) // devices are the host's
	s.startBridgeAgent(t, "node-"+s.ns)
	ctx := context.Background()
	td := testobj.TaskDefinition(s.ns, "knobs").Network(ecsv1alpha1.NetworkModeBridge).
		Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](64)
		c.SystemControls = []ecsv1alpha1.SystemControl{{Namespace: "net.core.somaxconn", Value: "1234"}}
		c.DockerSecurityOptions = []string{"no-new-privileges"}
		c.LinuxParameters = &ecsv1alpha1.LinuxParameters{
			SharedMemorySize: ptr.To[int32](128),
			Tmpfs:            []ecsv1alpha1.Tmpfs{{ContainerPath: "/scratch", Size: 16, MountOptions: []string{"noexec", "mode=1777"}}},
			Devices:          []ecsv1alpha1.Device{{HostPath: "/dev/null", ContainerPath: "/dev/berth-null", Permissions: []ecsv1alpha1.DevicePermission{"read", "write"}}},
			Swappiness:       ptr.To[int32](10),
		}
		c.Command = []string{"cat=/proc/sys/net/core/somaxconn", "cat=/proc/self/status", "cat=/proc/self/mounts",
			"trywrite=/dev/berth-null:x", "echo=", "echo=done", "sleep=inf"}
	}).
		Container("alone", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		c.Essential = ptr.To(false)
		c.DisableNetworking = true
		c.Command = []string{"cat=/proc/net/dev", "echo=", "echo=done", "sleep=inf"}
	}).Obj()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, "knobs", "knobs").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	agentAddr := httpAddress(t, "node-"+s.ns)
	waitOutput(t, agentAddr, s.ns, "knobs", "app", "done")
	waitOutput(t, agentAddr, s.ns, "knobs", "alone", "done")
	_, app, err := agentGet(t, agentAddr, "/v1/logs/"+s.ns+"/knobs/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1234\n", "NoNewPrivs:\t1", "/dev/shm tmpfs", "size=131072k", "/scratch tmpfs", "noexec", "size=16384k", "write ok"} {
		if !strings.Contains(app, want) {
			t.Errorf("app output lacks %q:\n%s", want, app)
		}
	}
	// Swappiness is in the cgroup, which the container does not see: read the spec.
	swappiness := map[string]uint64{}
	s.eachContainer(t, func(ctx context.Context, c containerd.Container) {
		spec, err := c.Spec(ctx)
		if err != nil || spec.Linux == nil || spec.Linux.Resources == nil || spec.Linux.Resources.Memory == nil || spec.Linux.Resources.Memory.Swappiness == nil {
			return
		}
		labels, _ := c.Labels(ctx)
		swappiness[labels[runtime.LabelContainer]] = *spec.Linux.Resources.Memory.Swappiness
	})
	if swappiness["app"] != 10 {
		t.Errorf("swappiness in the containers' specs: %v, want app: 10", swappiness)
	}
	_, alone, err := agentGet(t, agentAddr, "/v1/logs/"+s.ns+"/knobs/alone")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(alone, "lo:") || strings.Contains(alone, "eth0") {
		t.Errorf("the disableNetworking container sees interfaces other than loopback:\n%s", alone)
	}
	stopTask(t, s.ns, "knobs")
}
