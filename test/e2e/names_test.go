package e2e

import (
	"context"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestBridgeNameResolution: in bridge mode the agent writes each container's
// /etc/hosts and /etc/resolv.conf, as Docker does for ECS: a link's names resolve to
// the linked container (started first), hostname and extraHosts are there, and
// dnsServers and dnsSearchDomains replace the instance's resolver; dockerLabels are
// the container's labels in containerd.
func TestBridgeNameResolution(t *testing.T) {
	s := newStack(t)
	s.startBridgeAgent(t, "node-"+s.ns)
	ctx := context.Background()
	td := testobj.TaskDefinition(s.ns, "linked").Network(ecsv1alpha1.NetworkModeBridge).
		Container("web", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Links = []string{"db:database"}
		c.Hostname = "web-1"
		c.ExtraHosts = []ecsv1alpha1.HostEntry{{Hostname: "api.internal", IPAddress: "10.1.2.3"}}
		c.DnsServers = []string{"10.9.9.9"}
		c.DnsSearchDomains = []string{"corp.example"}
		c.DockerLabels = map[string]string{"team": "web"}
		c.Command = []string{"cat=/etc/hosts", "cat=/etc/resolv.conf", "cat=/proc/sys/kernel/hostname",
			"get=http://database:8080/", "echo=", "echo=done", "sleep=inf"}
	}).
		Container("db", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Essential = ptrTo(false)
		c.Command = []string{"serve=8080", "sleep=inf"}
	}).Obj()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, "linked", "linked").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	agentAddr := httpAddress(t, "node-"+s.ns)
	waitOutput(t, agentAddr, s.ns, "linked", "web", "done")
	_, out, err := agentGet(t, agentAddr, "/v1/logs/"+s.ns+"/linked/web")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1\tdb database", "\tweb-1\n", "10.1.2.3\tapi.internal", "nameserver 10.9.9.9",
		"search corp.example", "web-1\n", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("the web container's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "get failed") {
		t.Errorf("the link's alias did not reach the db container:\n%s", out)
	}
	labelled := false
	s.eachContainer(t, func(ctx context.Context, c containerd.Container) {
		labels, err := c.Labels(ctx)
		if err == nil && labels[runtime.LabelContainer] == "web" && labels["team"] == "web" {
			labelled = true
		}
	})
	if !labelled {
		t.Errorf("no web container labelled team=web in containerd")
	}
	stopTask(t, s.ns, "linked")
}

func ptrTo[T any](v T) *T { return &v }
