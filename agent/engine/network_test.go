package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// fakeNetwork is an in-memory Network: dynamic host ports count up from 49153, and
// a task set up once gets the same namespace and ports again, as agent/network's do.
type fakeNetwork struct {
	mu           sync.Mutex
	next         int32
	up           map[types.UID][]ecsv1alpha1.NetworkBinding
	setups       map[types.UID][][]ecsv1alpha1.PortMapping
	teardowns    map[types.UID]int
	failSetup    error
	failTeardown error
}

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{next: 49153, up: map[types.UID][]ecsv1alpha1.NetworkBinding{},
		setups: map[types.UID][][]ecsv1alpha1.PortMapping{}, teardowns: map[types.UID]int{}}
}

func netnsOf(uid types.UID) string { return filepath.Join("/run/berth-test/netns", string(uid)) }

// ipOf is the fake address of a task: one per task, the same after a restart.
func ipOf(uid types.UID) string { return "10.99.0." + fmt.Sprint(len(uid)) }

func (f *fakeNetwork) Setup(_ context.Context, uid types.UID, mappings []ecsv1alpha1.PortMapping) (string, string, []ecsv1alpha1.NetworkBinding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setups[uid] = append(f.setups[uid], mappings)
	if f.failSetup != nil {
		return "", "", nil, f.failSetup
	}
	if b, ok := f.up[uid]; ok {
		return netnsOf(uid), ipOf(uid), b, nil
	}
	var out []ecsv1alpha1.NetworkBinding
	for _, pm := range mappings {
		host := f.next
		if pm.HostPort != nil && *pm.HostPort != 0 {
			host = *pm.HostPort
		} else {
			f.next++
		}
		out = append(out, ecsv1alpha1.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: pm.ContainerPort, HostPort: host, Protocol: pm.Protocol})
	}
	f.up[uid] = out
	return netnsOf(uid), ipOf(uid), out, nil
}

func (f *fakeNetwork) Teardown(_ context.Context, uid types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.teardowns[uid]++
	if f.failTeardown != nil {
		return f.failTeardown
	}
	delete(f.up, uid)
	return nil
}

func (f *fakeNetwork) Recover(context.Context) ([]types.UID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]types.UID, 0, len(f.up))
	for uid := range f.up {
		out = append(out, uid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (f *fakeNetwork) counts(uid types.UID) (setups, teardowns int, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, up = f.up[uid]
	return len(f.setups[uid]), f.teardowns[uid], up
}

func (f *fakeNetwork) setFailTeardown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failTeardown = err
}

func withNetwork(n *fakeNetwork) func(*Config) {
	return func(c *Config) { c.Network = n }
}

// bridgeSpec is a bridge task: app publishes 8080 on a dynamic port, side 9090 on
// 9090.
func bridgeSpec() *ecsv1alpha1.TaskDefinitionSpec {
	spec := taskDef().Network(ecsv1alpha1.NetworkModeBridge).
		Container("app", image("app")).Port(8080, 0).
		Container("side", image("side")).Port(9090, 9090).
		Obj().Spec
	return &spec
}

func TestBridgeNetwork(t *testing.T) {
	net := newFakeNetwork()
	h := newHarness(t, withNetwork(net))
	d := desired("web-1", bridgeSpec())
	h.eng.Update(d)
	r := h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

	wantBindings := map[string][]ecsv1alpha1.NetworkBinding{
		"app":  {{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 49153, Protocol: ecsv1alpha1.ProtocolTCP}},
		"side": {{BindIP: "0.0.0.0", ContainerPort: 9090, HostPort: 9090, Protocol: ecsv1alpha1.ProtocolTCP}},
	}
	for name, want := range wantBindings {
		if diff := cmp.Diff(want, containerOf(r, name).NetworkBindings); diff != "" {
			t.Errorf("%s networkBindings (-want +got):\n%s", name, diff)
		}
		spec, ok := h.rt.Spec(id(d, name))
		if !ok || spec.NetNSPath != netnsOf(d.UID) || spec.HostNetwork {
			t.Errorf("%s: netNSPath %q hostNetwork %v, want the task's namespace %s", name, spec.NetNSPath, spec.HostNetwork, netnsOf(d.UID))
		}
	}
	if setups, _, _ := net.counts(d.UID); setups != 1 {
		t.Errorf("%d setups, want 1", setups)
	}

	h.eng.Update(stopped(d, ecsv1alpha1.StopUserInitiated, ""))
	r = h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if _, teardowns, up := net.counts(d.UID); teardowns != 1 || up {
		t.Errorf("after STOPPED: %d teardowns, network up %v; want it torn down once", teardowns, up)
	}
	for _, c := range r.Containers {
		if c.NetworkBindings != nil {
			t.Errorf("%s still reports bindings when stopped: %v", c.Name, c.NetworkBindings)
		}
	}
}

func TestBridgeNetworkSetupFails(t *testing.T) {
	net := newFakeNetwork()
	net.failSetup = errors.New("no free tcp host port in the dynamic range 49153-65535")
	h := newHarness(t, withNetwork(net))
	d := desired("web-1", bridgeSpec())
	h.eng.Update(d)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	const want = "ResourceInitializationError: failed to set up the task's network: no free tcp host port in the dynamic range 49153-65535"
	if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != want {
		t.Errorf("stop: %s", dump(r))
	}
	if n := len(h.rt.CallIDs("Create")); n != 0 {
		t.Errorf("%d containers created without a network", n)
	}
	if _, teardowns, _ := net.counts(d.UID); teardowns != 1 {
		t.Errorf("%d teardowns, want 1", teardowns)
	}
}

// heldPort is the network's error for a static port a stopping task still holds.
type heldPort struct{}

func (heldPort) Error() string   { return "host port 8080/tcp is held by task old" }
func (heldPort) Temporary() bool { return true }

// TestStaticPortHeldByStoppingTask: a task whose static host port another (stopping)
// task still holds waits PENDING and starts once the port is free, as ECS holds it,
// instead of failing to start.
func TestStaticPortHeldByStoppingTask(t *testing.T) {
	net := newFakeNetwork()
	net.failSetup = heldPort{}
	h := newHarness(t, withNetwork(net))
	d := desired("web-1", bridgeSpec())
	h.eng.Update(d)
	h.stepUntil(time.Second, "three set-up attempts", func() bool { n, _, _ := net.counts(d.UID); return n >= 3 })
	if r, ok := h.rec.last(d.UID); ok && r.LastStatus == ecsv1alpha1.TaskStopped {
		t.Fatalf("the task stopped while waiting for its port: %s", dump(r))
	}
	net.mu.Lock()
	net.failSetup = nil // the old task stopped
	net.mu.Unlock()
	h.stepUntil(time.Second, "RUNNING", func() bool {
		r, ok := h.rec.last(d.UID)
		return ok && r.LastStatus == ecsv1alpha1.TaskRunning
	})
}

// TestBridgeNetworkAcrossRestart: a restarted engine finds a running task's network
// again (same namespace, same ports, nothing to report), and Forget tears it down.
func TestBridgeNetworkAcrossRestart(t *testing.T) {
	net := newFakeNetwork()
	h := newHarness(t, withNetwork(net))
	d := desired("web-1", bridgeSpec())
	h.eng.Update(d)
	last := h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

	h.restart()
	d.Status = apiStatus(last)
	h.eng.Update(d)
	h.waitUntil("the network found again", func() bool { setups, _, _ := net.counts(d.UID); return setups == 2 })
	h.waitUntil("the task known again", func() bool { return len(h.eng.Tasks()) == 1 })
	if diff := cmp.Diff(last.Containers, h.eng.Tasks()[0].Containers); diff != "" {
		t.Errorf("containers after the restart (-before +after):\n%s", diff)
	}
	if got := h.rec.all(d.UID); len(got) != 0 {
		for _, r := range got {
			t.Errorf("reports after a restart with nothing changed: %s %+v", dump(r), r.Containers)
		}
	}
	if n := h.rt.Count("Create", id(d, "app")); n != 1 {
		t.Errorf("app created %d times", n)
	}

	h.eng.Forget(d.UID)
	h.waitUntil("the task forgotten", func() bool { return len(h.eng.Tasks()) == 0 && len(h.rt.IDs()) == 0 })
	h.waitUntil("the network torn down", func() bool { _, _, up := net.counts(d.UID); return !up })
}

// TestRecoverFindsNetworkOnlyTasks: a task whose network outlived its containers (an
// agent killed between the two) is found by Recover, so the agent can forget it.
func TestRecoverFindsNetworkOnlyTasks(t *testing.T) {
	net := newFakeNetwork()
	net.up["uid-gone"] = nil
	h := newHarness(t, withNetwork(net))
	h.waitUntil("Recover done", func() bool { return len(h.eng.Unclaimed()) == 1 })
	if got := h.eng.Unclaimed(); got[0] != "uid-gone" {
		t.Fatalf("Unclaimed() = %v", got)
	}
	h.eng.Forget("uid-gone")
	h.waitUntil("the network torn down", func() bool { _, _, up := net.counts("uid-gone"); return !up })
}

// TestBridgeTeardownRetriedByCleanup: a teardown that fails does not hold the task
// in STOPPING; Cleanup tears the network down again.
func TestBridgeTeardownRetriedByCleanup(t *testing.T) {
	net := newFakeNetwork()
	h := newHarness(t, withNetwork(net))
	d := desired("web-1", bridgeSpec())
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	net.setFailTeardown(errors.New("CNI DEL: plugin crashed"))
	h.eng.Update(stopped(d, ecsv1alpha1.StopUserInitiated, ""))
	h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if _, _, up := net.counts(d.UID); !up {
		t.Fatal("the failing teardown removed the network")
	}
	h.clk.Step(1)
	if err := h.eng.Cleanup(context.Background(), 0); err == nil {
		t.Error("Cleanup hid the teardown's failure")
	}
	net.setFailTeardown(nil)
	if err := h.eng.Cleanup(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, up := net.counts(d.UID); up {
		t.Error("Cleanup left the network up")
	}
}

func TestBindingsByContainer(t *testing.T) {
	spec := bridgeSpec()
	spec.ContainerDefinitions = append(spec.ContainerDefinitions, ecsv1alpha1.ContainerDefinition{Name: "quiet", Image: image("quiet")})
	b := func(containerPort, hostPort int32) ecsv1alpha1.NetworkBinding {
		return ecsv1alpha1.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: containerPort, HostPort: hostPort, Protocol: ecsv1alpha1.ProtocolTCP}
	}
	if diff := cmp.Diff([]int32{8080, 9090}, containerPorts(portMappings(spec))); diff != "" {
		t.Errorf("portMappings (-want +got):\n%s", diff)
	}
	got, err := bindingsByContainer(spec, []ecsv1alpha1.NetworkBinding{b(8080, 49153), b(9090, 9090)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]ecsv1alpha1.NetworkBinding{"app": {b(8080, 49153)}, "side": {b(9090, 9090)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bindingsByContainer (-want +got):\n%s", diff)
	}
	if _, err := bindingsByContainer(spec, []ecsv1alpha1.NetworkBinding{b(8080, 49153)}); err == nil {
		t.Error("one binding for two mappings was taken")
	}
}

func containerPorts(pms []ecsv1alpha1.PortMapping) []int32 {
	var out []int32
	for _, pm := range pms {
		out = append(out, pm.ContainerPort)
	}
	return out
}

func TestContainerSpecJoinsTheTaskNamespace(t *testing.T) {
	in := input(bridgeSpec())
	in.netns = "/var/lib/berth/netns/" + testUID
	s, err := containerSpec(in, &in.spec.ContainerDefinitions[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.NetNSPath != in.netns || s.HostNetwork {
		t.Errorf("netNSPath %q hostNetwork %v", s.NetNSPath, s.HostNetwork)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}
