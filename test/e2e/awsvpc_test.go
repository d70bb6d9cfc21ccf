package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// TestAWSVPCTasksOwnAddresses: two awsvpc tasks of one Service on one instance each
// get their own network namespace and address; both serve container port 8080 there
// (no host port is published), they reach each other by address, and the Service's
// EndpointSlice lists both addresses with port 8080.
func TestAWSVPCTasksOwnAddresses(t *testing.T) {
	s := newStack(t)
	stateDir := s.startBridgeAgent(t, "node-"+s.ns)
	ctx := context.Background()
	td := testobj.TaskDefinition(s.ns, "web").Network(ecsv1alpha1.NetworkModeAWSVPC).
		Container("web", s.image).Port(8080, 8080).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Command = []string{"serve=8080", "sleep=inf"} }).Obj()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	svc := testobj.Service(s.ns, "web", "web", 2).Cluster(s.cluster).Obj()
	svc.Spec.LoadBalancers = []ecsv1alpha1.LoadBalancer{{ServiceName: "web", ContainerName: "web", ContainerPort: 8080}}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "web", 2)

	var addrs []string
	var uids []types.UID
	for _, task := range runningTasks(t, s.ns, "web") {
		c := task.Status.Containers[0]
		if len(c.NetworkBindings) != 0 {
			t.Errorf("task %s publishes %+v on the instance, want nothing", task.Name, c.NetworkBindings)
		}
		if len(c.NetworkInterfaces) != 1 {
			t.Fatalf("task %s: networkInterfaces %+v, want its address", task.Name, c.NetworkInterfaces)
		}
		ip, err := netip.ParseAddr(c.NetworkInterfaces[0].PrivateIPv4Address)
		if err != nil || !ip.Is4() || ip.IsLoopback() {
			t.Fatalf("task %s: address %q is not a task IPv4 address", task.Name, c.NetworkInterfaces[0].PrivateIPv4Address)
		}
		addrs, uids = append(addrs, ip.String()), append(uids, task.UID)
	}
	if len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Fatalf("task addresses %v, want two different ones", addrs)
	}
	for _, a := range addrs {
		testenv.EventuallyWithin(t, 20*time.Second, a+":8080 answers", func() error { return answersAt(a + ":8080") })
	}
	// Task to task, by address: an awsvpc task on the same instance fetches from the
	// second Service task.
	fetcher := s.run(t, "fetcher", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
		spec.NetworkMode = ecsv1alpha1.NetworkModeAWSVPC
		spec.ContainerDefinitions[0].Command = []string{"get=http://" + addrs[1] + ":8080/", "sleep=inf"}
	})
	waitOutput(t, httpAddress(t, "node-"+s.ns), s.ns, fetcher, "app", "ok")
	stopTask(t, s.ns, fetcher)

	testenv.Eventually(t, "EndpointSlice with both task addresses", func() error {
		var slices discoveryv1.EndpointSliceList
		if err := env.Client.List(ctx, &slices, client.InNamespace(s.ns), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
			return err
		}
		var got []string
		for _, sl := range slices.Items {
			for _, p := range sl.Ports {
				if p.Port == nil || *p.Port != 8080 {
					return fmt.Errorf("slice %s port %v, want 8080", sl.Name, p.Port)
				}
			}
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					got = append(got, ep.Addresses...)
				}
			}
		}
		sort.Strings(got)
		want := append([]string(nil), addrs...)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("ready endpoints %v, want %v", got, want)
		}
		return nil
	})

	scaleTo(t, s.ns, "web", 0)
	steady(t, s.ns, "web", 0)
	expectNetworksGone(t, stateDir, uids, nil)
}

// answersAt GETs http://addr/ and wants "ok".
func answersAt(addr string) error {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("%s answered %q", addr, body)
	}
	return nil
}
