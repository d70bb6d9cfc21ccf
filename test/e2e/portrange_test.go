package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/network"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestBridgeNetworkPortRange: a containerPortRange in bridge mode is published on as
// many consecutive dynamic host ports, in order, reported as the binding's
// hostPortRange, as ECS's agent does; the container serves the first and last ports
// of its range, so the middle host port must not answer.
func TestBridgeNetworkPortRange(t *testing.T) {
	s := newStack(t)
	stateDir := s.startBridgeAgent(t, "node-"+s.ns)
	td := testobj.TaskDefinition(s.ns, "ranged").Network(ecsv1alpha1.NetworkModeBridge).
		Container("web", s.image).
		Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.PortMappings = []ecsv1alpha1.PortMapping{{ContainerPortRange: "8000-8002", Protocol: ecsv1alpha1.ProtocolTCP}}
			c.Command = []string{"serve=8000", "serve=8002", "sleep=inf"}
		}).Obj()
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), testobj.Service(s.ns, "ranged", "ranged", 1).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "ranged", 1)

	tasks := runningTasks(t, s.ns, "ranged")
	if len(tasks) != 1 || len(tasks[0].Status.Containers) != 1 {
		t.Fatalf("running tasks %+v, want one with one container", tasks)
	}
	b := tasks[0].Status.Containers[0].NetworkBindings
	if len(b) != 1 || b[0].ContainerPortRange != "8000-8002" || b[0].ContainerPort != 0 || b[0].HostPort != 0 || b[0].Protocol != ecsv1alpha1.ProtocolTCP {
		t.Fatalf("networkBindings %+v, want one for the range 8000-8002/tcp", b)
	}
	first, last, err := taskrules.PortRange(b[0].HostPortRange)
	if err != nil || last-first != 2 || first < network.DefaultPortMin || last > network.DefaultPortMax {
		t.Fatalf("hostPortRange %q (%v): want 3 consecutive ports in %d-%d", b[0].HostPortRange, err, network.DefaultPortMin, network.DefaultPortMax)
	}
	for _, p := range []int32{first, last} {
		testenv.EventuallyWithin(t, 20*time.Second, fmt.Sprintf("host port %d answers", p), func() error { return answersOK(p) })
	}
	if body, err := get(first + 1); err == nil {
		t.Errorf("host port %d answered %q: it maps to container port 8001, where nothing listens", first+1, body)
	}

	scaleTo(t, s.ns, "ranged", 0)
	steady(t, s.ns, "ranged", 0)
	expectNetworksGone(t, stateDir, []types.UID{tasks[0].UID}, []int32{first, last})
}
