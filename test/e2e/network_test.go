package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/network"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// needBridge requires the CNI plugins and iptables (a failure in CI, a skip
// elsewhere), and removes the agent's bridge after the test if the test made it.
func needBridge(t *testing.T) {
	t.Helper()
	testenv.Require(t,
		testenv.MissingFiles(network.DefaultPluginDir, []string{"bridge", "host-local", "portmap", "loopback"}, "apt-get install containernetworking-plugins"),
		testenv.MissingBinary("iptables-save", "apt-get install iptables"))
	if _, err := net.InterfaceByName(network.DefaultBridge); err != nil {
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", network.DefaultBridge).Run() })
	}
}

// startBridgeAgent runs the agent until the test ends, and then tears down the
// networks of tasks still running (a failed test), so no namespace or iptables rule
// outlives the test. It returns the agent's state directory.
func (s *stack) startBridgeAgent(t *testing.T, name string) string {
	t.Helper()
	needBridge(t)
	stateDir := s.agentOptions(t, name).StateDir
	t.Cleanup(func() { teardownNetworks(t, stateDir) }) // after the agent stops
	s.startAgent(t, name)
	return stateDir
}

func teardownNetworks(t *testing.T, stateDir string) {
	harness.TearDownNetworks(t, agent.Options{StateDir: stateDir})
}

// bridgeService creates a bridge-mode service of n tasks whose container serves "ok"
// on 8080, published on hostPort (0: dynamic).
func (s *stack) bridgeService(t *testing.T, name string, n, hostPort int32) {
	t.Helper()
	td := testobj.TaskDefinition(s.ns, name).Network(ecsv1alpha1.NetworkModeBridge).
		Container("web", s.image).Port(8080, hostPort).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Command = []string{"serve=8080", "sleep=inf"} }).Obj()
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), testobj.Service(s.ns, name, name, n).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
}

// runningTasks are the service's RUNNING tasks.
func runningTasks(t *testing.T, ns, service string) []ecsv1alpha1.Task {
	t.Helper()
	var list ecsv1alpha1.TaskList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
		t.Fatal(err)
	}
	var out []ecsv1alpha1.Task
	for _, task := range list.Items {
		if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
			out = append(out, task)
		}
	}
	return out
}

// hostPortOf is the host port the task's first container published for 8080.
func hostPortOf(task *ecsv1alpha1.Task) (int32, error) {
	if len(task.Status.Containers) == 0 {
		return 0, fmt.Errorf("task %s reports no container", task.Name)
	}
	b := task.Status.Containers[0].NetworkBindings
	if len(b) != 1 || b[0].ContainerPort != 8080 || b[0].Protocol != ecsv1alpha1.ProtocolTCP || b[0].HostPort == 0 {
		return 0, fmt.Errorf("task %s: networkBindings %+v, want one for 8080/tcp", task.Name, b)
	}
	return b[0].HostPort, nil
}

// get returns the body of GET http://127.0.0.1:port/, on a new connection.
func get(port int32) (string, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func answersOK(port int32) error {
	body, err := get(port)
	if err != nil {
		return err
	}
	if strings.TrimSpace(body) != "ok" {
		return fmt.Errorf("host port %d answered %q", port, body)
	}
	return nil
}

// scaleTo sets the service's desiredCount.
func scaleTo(t *testing.T, ns, name string, n int32) {
	t.Helper()
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"desiredCount":%d}}`, n)))
	svc := &ecsv1alpha1.Service{}
	svc.Namespace, svc.Name = ns, name
	if err := env.Client.Patch(context.Background(), svc, patch); err != nil {
		t.Fatal(err)
	}
}

// expectNetworksGone checks that nothing is left of the tasks' networks: no
// namespace in the agent's state directory, no iptables rule naming them, no
// published port answering.
func expectNetworksGone(t *testing.T, stateDir string, uids []types.UID, ports []int32) {
	t.Helper()
	testenv.EventuallyWithin(t, 30*time.Second, "the task networks torn down", func() error {
		entries, err := os.ReadDir(filepath.Join(stateDir, "netns"))
		if err != nil {
			return err
		}
		if len(entries) != 0 {
			return fmt.Errorf("netns directory holds %d namespaces", len(entries))
		}
		out, err := exec.Command("iptables-save").CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables-save: %w: %s", err, out)
		}
		for _, uid := range uids {
			if strings.Contains(string(out), string(uid)) {
				return fmt.Errorf("iptables still has rules of task %s", uid)
			}
		}
		for _, p := range ports {
			if _, err := get(p); err == nil {
				return fmt.Errorf("host port %d still answers", p)
			}
		}
		return nil
	})
}

// TestBridgeNetworkDynamicPorts: two bridge-mode tasks publishing containerPort 8080
// on dynamic host ports each answer on their own port of the instance, reported in
// their networkBindings; scaled to zero, they leave no port, namespace or rule.
func TestBridgeNetworkDynamicPorts(t *testing.T) {
	s := newStack(t)
	stateDir := s.startBridgeAgent(t, "node-"+s.ns)
	s.bridgeService(t, "web", 2, 0)
	steady(t, s.ns, "web", 2)

	var uids []types.UID
	var ports []int32
	for _, task := range runningTasks(t, s.ns, "web") {
		p, err := hostPortOf(&task)
		if err != nil {
			t.Fatal(err)
		}
		if p < network.DefaultPortMin || p > network.DefaultPortMax {
			t.Errorf("task %s: dynamic host port %d outside %d-%d", task.Name, p, network.DefaultPortMin, network.DefaultPortMax)
		}
		uids, ports = append(uids, task.UID), append(ports, p)
	}
	if len(ports) != 2 || ports[0] == ports[1] {
		t.Fatalf("host ports %v, want two different ones", ports)
	}
	for _, p := range ports {
		testenv.EventuallyWithin(t, 20*time.Second, fmt.Sprintf("host port %d answers", p), func() error { return answersOK(p) })
	}
	if entries, err := os.ReadDir(filepath.Join(stateDir, "netns")); err != nil || len(entries) != 2 {
		t.Errorf("netns directory holds %d namespaces (%v), want 2", len(entries), err)
	}

	scaleTo(t, s.ns, "web", 0)
	steady(t, s.ns, "web", 0)
	expectNetworksGone(t, stateDir, uids, ports)
}

// TestBridgeNetworkStaticHostPort: a static hostPort is published as given.
func TestBridgeNetworkStaticHostPort(t *testing.T) {
	s := newStack(t)
	stateDir := s.startBridgeAgent(t, "node-"+s.ns)
	port := freePort(t)
	s.bridgeService(t, "static", 1, port)
	steady(t, s.ns, "static", 1)

	tasks := runningTasks(t, s.ns, "static")
	if len(tasks) != 1 {
		t.Fatalf("%d running tasks", len(tasks))
	}
	got, err := hostPortOf(&tasks[0])
	if err != nil || got != port {
		t.Fatalf("host port %d (%v), want the static %d", got, err, port)
	}
	testenv.EventuallyWithin(t, 20*time.Second, fmt.Sprintf("host port %d answers", port), func() error { return answersOK(port) })

	scaleTo(t, s.ns, "static", 0)
	steady(t, s.ns, "static", 0)
	expectNetworksGone(t, stateDir, []types.UID{tasks[0].UID}, []int32{port})
}

// freePort is a TCP port nothing listens on now, below the dynamic range.
func freePort(t *testing.T) int32 {
	t.Helper()
	for p := int32(38080); p < 38180; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err == nil {
			_ = l.Close()
			return p
		}
	}
	t.Fatal("no free port in 38080-38179")
	return 0
}

// TestBridgeNetworkSurvivesAgentKill: after `kill -9` of the agent, a new agent finds
// the tasks' namespaces and ports again (its state files): the same ports keep
// answering, a new task gets a port of its own, and the new agent tears down networks
// it never set up.
func TestBridgeNetworkSurvivesAgentKill(t *testing.T) {
	needBridge(t)
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := s.agentOptions(t, "node-"+s.ns)
	t.Cleanup(func() { teardownNetworks(t, o.StateDir) }) // after the agents stop
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "agent", "--kubeconfig", o.Kubeconfig, "--cluster", o.Cluster, "--name", o.Name,
			"--containerd-address", o.ContainerdAddress, "--containerd-namespace", o.Namespace, "--state-dir", o.StateDir,
			"--snapshotter", o.Snapshotter, "--registry-config-dir", o.RegistryConfigDir, "--runc-root", o.RuncRoot,
			"--lease-interval", "1s", "--status-interval", "1s", "--reserved-memory", "0",
			// No fixed ports: `berth up` in the suite run next to this one holds the
			// defaults.
			"--http-bind-address", "0", "--streaming-address", "127.0.0.1:0")
		if testing.Verbose() {
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	s.bridgeService(t, "web", 2, 0)
	steady(t, s.ns, "web", 2)
	before := map[types.UID]int32{}
	for _, task := range runningTasks(t, s.ns, "web") {
		p, err := hostPortOf(&task)
		if err != nil {
			t.Fatal(err)
		}
		before[task.UID] = p
	}
	_ = first.Process.Kill()
	_ = first.Wait()

	second := start()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })
	time.Sleep(3 * time.Second)
	steady(t, s.ns, "web", 2)
	// A third task gets a port of its own.
	scaleTo(t, s.ns, "web", 3)
	steady(t, s.ns, "web", 3)
	var uids []types.UID
	var ports []int32
	seen := map[int32]bool{}
	for _, task := range runningTasks(t, s.ns, "web") {
		p, err := hostPortOf(&task)
		if err != nil {
			t.Fatal(err)
		}
		if old, ok := before[task.UID]; ok && old != p {
			t.Errorf("task %s: host port %d before the kill, %d after", task.Name, old, p)
		}
		if seen[p] {
			t.Errorf("host port %d given twice", p)
		}
		seen[p] = true
		testenv.EventuallyWithin(t, 20*time.Second, fmt.Sprintf("host port %d answers", p), func() error { return answersOK(p) })
		uids, ports = append(uids, task.UID), append(ports, p)
	}
	if len(ports) != 3 {
		t.Fatalf("%d running tasks, want 3", len(ports))
	}

	scaleTo(t, s.ns, "web", 0)
	steady(t, s.ns, "web", 0)
	expectNetworksGone(t, o.StateDir, uids, ports)
}
