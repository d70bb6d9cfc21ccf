package network

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gocni "github.com/containerd/go-cni"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
)

func tcp(containerPort int32, hostPort ...int32) ecsv1alpha1.PortMapping {
	pm := ecsv1alpha1.PortMapping{ContainerPort: containerPort}
	if len(hostPort) > 0 {
		pm.HostPort = ptr.To(hostPort[0])
	}
	return pm
}

func udp(containerPort int32) ecsv1alpha1.PortMapping {
	return ecsv1alpha1.PortMapping{ContainerPort: containerPort, Protocol: ecsv1alpha1.ProtocolUDP}
}

// testManager is a Manager on fake plugins with a range of 100-104, where the ports
// in busy are bound on the instance.
func testManager(t *testing.T, busy ...int32) (*Manager, *fakePlugins) {
	t.Helper()
	f := &fakePlugins{}
	m := newManager(Config{StateDir: t.TempDir(), PortMin: 100, PortMax: 104}, f)
	m.ports.reserve = func(_ string, port int32) (io.Closer, error) {
		for _, b := range busy {
			if b == port {
				return nil, errors.New("address already in use")
			}
		}
		return nopCloser{}, nil
	}
	return m, f
}

// allocateAmong allocates the mappings of a task on a testManager whose instance has
// busy ports bound and whose other tasks hold others. With wantErr, it checks the
// error and returns false.
func allocateAmong(t *testing.T, busy []int32, others map[types.UID][]port, mappings []ecsv1alpha1.PortMapping, wantErr string) ([]port, bool) {
	t.Helper()
	m, _ := testManager(t, busy...)
	for uid, ports := range others {
		m.tasks[uid] = &taskState{Ports: ports}
	}
	got, _, err := m.allocate("task", mappings)
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Fatalf("error %v, want %q", err, wantErr)
		}
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return got, true
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name     string
		busy     []int32
		others   map[types.UID][]port
		mappings []ecsv1alpha1.PortMapping
		want     []int32
		wantErr  string
	}{
		{name: "dynamic ports in order", mappings: []ecsv1alpha1.PortMapping{tcp(80), tcp(443, 0)}, want: []int32{100, 101}},
		{name: "static as given, dynamic ones around it", mappings: []ecsv1alpha1.PortMapping{tcp(80), tcp(443, 100)}, want: []int32{101, 100}},
		{name: "ports bound on the instance are skipped", busy: []int32{100, 101}, mappings: []ecsv1alpha1.PortMapping{tcp(80)}, want: []int32{102}},
		{name: "ports of other tasks are skipped",
			others:   map[types.UID][]port{"other": {{ContainerPort: 80, HostPort: 100, Protocol: "tcp"}}},
			mappings: []ecsv1alpha1.PortMapping{tcp(80)}, want: []int32{101}},
		{name: "tcp and udp are apart",
			others:   map[types.UID][]port{"other": {{ContainerPort: 80, HostPort: 100, Protocol: "tcp"}}},
			mappings: []ecsv1alpha1.PortMapping{udp(53)}, want: []int32{100}},
		{name: "static port of another task",
			others:   map[types.UID][]port{"other": {{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}}},
			mappings: []ecsv1alpha1.PortMapping{tcp(80, 8080)}, wantErr: "host port 8080/tcp is held by task other"},
		{name: "static port bound on the instance", busy: []int32{8080}, mappings: []ecsv1alpha1.PortMapping{tcp(80, 8080)},
			wantErr: "host port 8080/tcp is in use on the instance: address already in use"},
		{name: "range exhausted", busy: []int32{100, 101, 102}, mappings: []ecsv1alpha1.PortMapping{tcp(1), tcp(2), tcp(3)},
			wantErr: "no free tcp host port in the dynamic range 100-104"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := allocateAmong(t, tc.busy, tc.others, tc.mappings, tc.wantErr)
			if !ok {
				return
			}
			var hostPorts []int32
			for i, p := range got {
				hostPorts = append(hostPorts, p.HostPort)
				if p.ContainerPort != tc.mappings[i].ContainerPort || p.Protocol != protocol(tc.mappings[i].Protocol) {
					t.Errorf("port %d: %+v for mapping %+v", i, p, tc.mappings[i])
				}
			}
			if diff := cmp.Diff(tc.want, hostPorts); diff != "" {
				t.Errorf("host ports (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAllocateMovesOn: a port just released is not handed out again at once (a
// client's connection to the old task could reach the new one), and the search
// wraps around the range.
func TestAllocateMovesOn(t *testing.T) {
	m, _ := testManager(t)
	var got []int32
	for i := 0; i < 7; i++ {
		ports, _, err := m.allocate("task", []ecsv1alpha1.PortMapping{tcp(80)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ports[0].HostPort)
	}
	if diff := cmp.Diff([]int32{100, 101, 102, 103, 104, 100, 101}, got); diff != "" {
		t.Errorf("host ports (-want +got):\n%s", diff)
	}
}

func TestConflist(t *testing.T) {
	cfg := withDefaults(Config{StateDir: "/var/lib/berth"})
	if err := validate(&cfg); err != nil {
		t.Fatal(err)
	}
	b, err := conflist(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range got.Plugins {
		types = append(types, p["type"].(string))
	}
	if diff := cmp.Diff([]string{"bridge", "portmap", "loopback"}, types); diff != "" {
		t.Fatalf("plugins (-want +got):\n%s", diff)
	}
	bridge := got.Plugins[0]
	wantBridge := map[string]any{
		"type": "bridge", "bridge": "berth0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
		"ipam": map[string]any{
			"type": "host-local", "ranges": []any{[]any{map[string]any{"subnet": "10.200.0.0/16"}}},
			"routes": []any{map[string]any{"dst": "0.0.0.0/0"}}, "dataDir": "/var/lib/berth/cni/networks",
		},
	}
	if diff := cmp.Diff(wantBridge, bridge); diff != "" {
		t.Errorf("bridge plugin (-want +got):\n%s", diff)
	}
	if caps, _ := got.Plugins[1]["capabilities"].(map[string]any); caps["portMappings"] != true {
		t.Errorf("portmap capabilities %v", got.Plugins[1]["capabilities"])
	}
	if got.CNIVersion != cniVersion || got.Name != "berth" {
		t.Errorf("cniVersion %q name %q", got.CNIVersion, got.Name)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Subnet: "10.200.0.0/16"}, ""},
		{Config{Subnet: "10.200.1.7/24"}, ""},
		{Config{Subnet: "10.200.0.0"}, "bridge subnet: invalid CIDR address: 10.200.0.0"},
		{Config{Subnet: "fd00::/64"}, "bridge subnet fd00::/64 is not IPv4"},
		{Config{Subnet: "10.0.0.0/31"}, "bridge subnet 10.0.0.0/31 is too small"},
		{Config{PortMin: 2000, PortMax: 1000}, "dynamic host port range 2000-1000 is not within 1-65535"},
		{Config{Bridge: "a-very-long-bridge-name"}, `bridge name "a-very-long-bridge-name" is longer than 15 characters`},
	}
	for _, tc := range tests {
		cfg := withDefaults(tc.cfg)
		err := validate(&cfg)
		if got := errString(err); got != tc.wantErr {
			t.Errorf("validate(%+v) = %q, want %q", tc.cfg, got, tc.wantErr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestRecover: a new manager learns the ports of the tasks set up before from their
// state files, and lists every task that has a state file or a namespace.
func TestRecover(t *testing.T) {
	m, _ := testManager(t)
	dir := m.cfg.StateDir
	st := &taskState{Version: stateVersion, NetNS: m.NetNSPath("a"), Ports: []port{{ContainerPort: 80, HostPort: 100, Protocol: "tcp"}}}
	if err := writeState(m.statePath("a"), st); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"network/broken.json":         "{",
		"network/c.json.1234.tmp":     "partial",
		"netns/d":                     "", // a namespace whose setup never finished
		"network/not-a-state-file.md": "",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]types.UID{"a", "broken", "d"}, got); diff != "" {
		t.Errorf("Recover (-want +got):\n%s", diff)
	}
	ports, _, err := m.allocate("e", []ecsv1alpha1.PortMapping{tcp(80)})
	if err != nil || ports[0].HostPort != 101 {
		t.Errorf("allocate after Recover = %+v, %v; want 101, as a holds 100", ports, err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "f.json")
	for _, content := range []string{"one", "two"} {
		if err := writeFileAtomic(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("%d files beside it, want none: %v", len(entries)-1, entries)
	}
}

func TestBadUID(t *testing.T) {
	m, f := testManager(t)
	for _, uid := range []types.UID{"", "..", "a/b", "../../etc"} {
		if _, _, _, err := m.Setup(context.Background(), uid, nil); err == nil {
			t.Errorf("Setup(%q) succeeded", uid)
		}
		if err := m.Teardown(context.Background(), uid); err != nil {
			t.Errorf("Teardown(%q) = %v, want nil: it cannot have a network", uid, err)
		}
	}
	if n := len(f.calls()); n != 0 {
		t.Errorf("%d CNI calls", n)
	}
}

// fakePlugins records CNI calls; add fails while addErr is set.
type fakePlugins struct {
	mu     sync.Mutex
	log    []string
	addErr error
	delErr error
}

func (f *fakePlugins) SetupSerially(_ context.Context, id, path string, _ ...gocni.NamespaceOpts) (*gocni.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "ADD "+id+" "+filepath.Base(path))
	if f.addErr != nil {
		return nil, f.addErr
	}
	return &gocni.Result{Interfaces: map[string]*gocni.Config{ifName: {}}}, nil
}

func (f *fakePlugins) Remove(_ context.Context, id, path string, _ ...gocni.NamespaceOpts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := "-"
	if path != "" {
		ns = filepath.Base(path)
	}
	f.log = append(f.log, "DEL "+id+" "+ns)
	return f.delErr
}

func (f *fakePlugins) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.Require(t, testenv.MissingRoot())
}

// TestSetupFailureLeavesNothing: a failed CNI ADD is undone (DEL, namespace and
// ports released), and a failing DEL keeps the ports held until it succeeds.
func TestSetupFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	m, f := testManager(t)
	ctx := context.Background()
	f.addErr = errors.New(`failed to find plugin "portmap" in path [/usr/lib/cni]`)
	_, _, _, err := m.Setup(ctx, "a", []ecsv1alpha1.PortMapping{tcp(80, 100)})
	if err == nil || !strings.Contains(err.Error(), "CNI ADD: failed to find plugin") {
		t.Fatalf("Setup error %v", err)
	}
	if diff := cmp.Diff([]string{"ADD a a", "DEL a a"}, f.calls()); diff != "" {
		t.Errorf("CNI calls (-want +got):\n%s", diff)
	}
	if exists(m.NetNSPath("a")) || exists(m.statePath("a")) || len(m.tasks) != 0 {
		t.Errorf("a failed setup left its namespace, state or ports")
	}

	f.addErr = nil
	path, _, bindings, err := m.Setup(ctx, "b", []ecsv1alpha1.PortMapping{tcp(80, 100), tcp(81)})
	if err != nil {
		t.Fatal(err)
	}
	if !isNetNS(path) || len(bindings) != 2 || bindings[0].HostPort != 100 || bindings[1].HostPort != 101 {
		t.Fatalf("Setup = %s %+v", path, bindings)
	}
	// Idempotent: the same namespace and ports, no second ADD.
	path2, _, bindings2, err := m.Setup(ctx, "b", []ecsv1alpha1.PortMapping{tcp(80, 100), tcp(81)})
	if err != nil || path2 != path || !cmp.Equal(bindings, bindings2) {
		t.Errorf("second Setup = %s %+v %v", path2, bindings2, err)
	}

	f.delErr = errors.New("plugin crashed")
	if err := m.Teardown(ctx, "b"); err == nil {
		t.Fatal("Teardown hid the DEL error")
	}
	if _, _, err := m.allocate("c", []ecsv1alpha1.PortMapping{tcp(80, 100)}); err == nil {
		t.Error("a network whose DEL failed gave its port away")
	}
	f.delErr = nil
	if err := m.Teardown(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if exists(path) || exists(m.statePath("b")) {
		t.Error("Teardown left the namespace or the state file")
	}
	if err := m.Teardown(ctx, "b"); err != nil {
		t.Errorf("Teardown of a task without a network: %v", err)
	}
	want := []string{"ADD a a", "DEL a a", "ADD b b", "DEL b b", "DEL b b"}
	if diff := cmp.Diff(want, f.calls()); diff != "" {
		t.Errorf("CNI calls (-want +got):\n%s", diff)
	}
}

// TestSetupReplacesADeadNamespace: a state file whose namespace is not mounted any
// more (the instance rebooted) is torn down and set up anew.
func TestSetupReplacesADeadNamespace(t *testing.T) {
	needRoot(t)
	m, f := testManager(t)
	st := &taskState{Version: stateVersion, NetNS: m.NetNSPath("a"), Ports: []port{{ContainerPort: 80, HostPort: 103, Protocol: "tcp"}}}
	if err := writeState(m.statePath("a"), st); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(st.NetNS), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.NetNS, nil, 0o444); err != nil { // the mount point, unmounted
		t.Fatal(err)
	}
	path, _, _, err := m.Setup(context.Background(), "a", []ecsv1alpha1.PortMapping{tcp(80)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNetNS(path) })
	if !isNetNS(path) {
		t.Error("no live namespace after Setup")
	}
	if diff := cmp.Diff([]string{"DEL a -", "ADD a a"}, f.calls()); diff != "" {
		t.Errorf("CNI calls (-want +got):\n%s", diff)
	}
}

// TestTwoAgentsOnOneMachineNeverShareAHostPort: host ports are reserved on the
// machine, not only in the Manager's memory, so a second agent (its own state
// directory, the same range) never publishes a port the first one published, and a
// port is free again once its task's network is gone or its agent stopped.
func TestTwoAgentsOnOneMachineNeverShareAHostPort(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	lo := freeRange(t, 3)
	agent := func() *Manager {
		return newManager(Config{StateDir: t.TempDir(), PortMin: lo, PortMax: lo + 2}, &fakePlugins{})
	}
	first, second := agent(), agent()
	_, _, b1, err := first.Setup(ctx, "a", []ecsv1alpha1.PortMapping{tcp(80)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Teardown(ctx, "a") })
	_, _, b2, err := second.Setup(ctx, "b", []ecsv1alpha1.PortMapping{tcp(80)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Teardown(ctx, "b") })
	if b1[0].HostPort != lo || b2[0].HostPort != lo+1 {
		t.Fatalf("host ports %d and %d, want %d and %d", b1[0].HostPort, b2[0].HostPort, lo, lo+1)
	}
	if bindable(lo) {
		t.Errorf("port %d of a running task can be bound by another process", lo)
	}
	// A static port another agent published is in use, not given twice.
	if _, _, _, err := second.Setup(ctx, "c", []ecsv1alpha1.PortMapping{tcp(80, lo)}); err == nil || !strings.Contains(err.Error(), "in use on the instance") {
		t.Errorf("static port held by the other agent: Setup error %v", err)
	}

	if err := first.Teardown(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if !bindable(lo) {
		t.Errorf("port %d still reserved after its task's network is gone", lo)
	}
	// An agent that stops lets go of its ports; its successor takes them again.
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if !bindable(lo + 1) {
		t.Errorf("port %d still reserved after its agent stopped", lo+1)
	}
	if _, err := second.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if bindable(lo + 1) {
		t.Errorf("port %d not reserved again by the recovering agent", lo+1)
	}
}

// freeRange finds n consecutive TCP ports nobody holds.
func freeRange(t *testing.T, n int32) int32 {
	t.Helper()
	for lo := int32(41000); lo < 48000; lo += n {
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			ok = bindable(p)
		}
		if ok {
			return lo
		}
	}
	t.Fatal("no free port range")
	return 0
}

func bindable(port int32) bool {
	c, err := reservePort("tcp", port)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
