package endpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

type conds struct{ Ready, Serving, Terminating bool }

func TestEndpointConditions(t *testing.T) {
	const (
		running  = ecsv1alpha1.TaskRunning
		healthy  = ecsv1alpha1.HealthHealthy
		sick     = ecsv1alpha1.HealthUnhealthy
		unknown  = ecsv1alpha1.HealthUnknown
		desRun   = ecsv1alpha1.DesiredRunning
		desStop  = ecsv1alpha1.DesiredStopped
		noChecks = checksNone
	)
	for _, tc := range []struct {
		name    string
		last    ecsv1alpha1.TaskStatusValue
		desired ecsv1alpha1.DesiredStatus
		health  ecsv1alpha1.HealthStatus
		checks  healthChecks
		want    conds
	}{
		{"running and healthy", running, desRun, healthy, checksUnknown, conds{true, true, false}},
		{"running, no health checks in the revision", running, desRun, unknown, noChecks, conds{true, true, false}},
		{"running, no health status, no health checks", running, desRun, "", noChecks, conds{true, true, false}},
		{"running, health checks not passed yet", running, desRun, unknown, checksPresent, conds{}},
		{"running, revision unresolvable", running, desRun, unknown, checksUnknown, conds{}},
		{"running and unhealthy", running, desRun, sick, checksPresent, conds{}},
		{"unhealthy wins over a revision without checks", running, desRun, sick, noChecks, conds{}},
		{"starting", ecsv1alpha1.TaskActivating, desRun, "", noChecks, conds{}},
		{"provisioning", ecsv1alpha1.TaskProvisioning, desRun, "", noChecks, conds{}},
		{"asked to stop while running and healthy", running, desStop, healthy, checksUnknown, conds{false, true, true}},
		{"asked to stop while unhealthy", running, desStop, sick, checksPresent, conds{false, false, true}},
		{"asked to stop before starting", ecsv1alpha1.TaskPending, desStop, "", noChecks, conds{false, false, true}},
		{"deactivating", ecsv1alpha1.TaskDeactivating, desRun, healthy, checksUnknown, conds{false, false, true}},
		{"stopping", ecsv1alpha1.TaskStopping, desStop, healthy, checksUnknown, conds{false, false, true}},
		{"deprovisioning", ecsv1alpha1.TaskDeprovisioning, desStop, "", checksUnknown, conds{false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &ecsv1alpha1.Task{
				Spec:   ecsv1alpha1.TaskSpec{DesiredStatus: tc.desired},
				Status: ecsv1alpha1.TaskStatus{LastStatus: tc.last, HealthStatus: tc.health},
			}
			c := endpointConditions(task, tc.checks)
			got := conds{*c.Ready, *c.Serving, *c.Terminating}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNeedsHealthChecks(t *testing.T) {
	for _, tc := range []struct {
		last   ecsv1alpha1.TaskStatusValue
		health ecsv1alpha1.HealthStatus
		want   bool
	}{
		{ecsv1alpha1.TaskRunning, "", true},
		{ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthUnknown, true},
		{ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthHealthy, false},
		{ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthUnhealthy, false},
		{ecsv1alpha1.TaskPending, "", false},
	} {
		task := &ecsv1alpha1.Task{Status: ecsv1alpha1.TaskStatus{LastStatus: tc.last, HealthStatus: tc.health}}
		if got := needsHealthChecks(task); got != tc.want {
			t.Errorf("needsHealthChecks(%s, %q) = %v, want %v", tc.last, tc.health, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in       string
		wantAddr string
		wantType discoveryv1.AddressType
		wantOK   bool
	}{
		{"10.0.0.1", "10.0.0.1", discoveryv1.AddressTypeIPv4, true},
		{"::ffff:10.0.0.1", "10.0.0.1", discoveryv1.AddressTypeIPv4, true},
		{"2001:db8:0::1", "2001:db8::1", discoveryv1.AddressTypeIPv6, true},
		{"fe80::1%eth0", "", "", false},
		// The apiserver refuses loopback, unspecified and link-local endpoint addresses.
		{"127.0.0.1", "", "", false},
		{"::1", "", "", false},
		{"0.0.0.0", "", "", false},
		{"169.254.0.7", "", "", false},
		{"fe80::1", "", "", false},
		{"node-1.example.com", "node-1.example.com", discoveryv1.AddressTypeFQDN, true},
		{"Not A Host", "", "", false},
		{"", "", "", false},
	} {
		addr, typ, ok := classify(tc.in)
		if addr != tc.wantAddr || typ != tc.wantType || ok != tc.wantOK {
			t.Errorf("classify(%q) = %q, %q, %v; want %q, %q, %v", tc.in, addr, typ, ok, tc.wantAddr, tc.wantType, tc.wantOK)
		}
	}
}

func TestInstanceAddressAndZone(t *testing.T) {
	ext := ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressExternalIP, Address: "203.0.113.1"}
	in := ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressInternalIP, Address: "10.0.0.1"}
	in2 := ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressInternalIP, Address: "10.0.0.2"}
	zone := func(v string) ecsv1alpha1.Attribute {
		return ecsv1alpha1.Attribute{Name: ecsv1alpha1.AttributeAvailabilityZone, Value: v}
	}
	for _, tc := range []struct {
		name         string
		addrs        []ecsv1alpha1.InstanceAddress
		spec, status []ecsv1alpha1.Attribute
		wantAddr     string
		wantZone     string
	}{
		{name: "first InternalIP wins", addrs: []ecsv1alpha1.InstanceAddress{ext, in, in2}, wantAddr: "10.0.0.1"},
		{name: "else the first address", addrs: []ecsv1alpha1.InstanceAddress{ext}, wantAddr: "203.0.113.1"},
		{name: "no address"},
		{name: "zone from the agent", status: []ecsv1alpha1.Attribute{{Name: "ecs.os-type", Value: "linux"}, zone("a")}, wantZone: "a"},
		{name: "operator overrides the zone", spec: []ecsv1alpha1.Attribute{zone("b")}, status: []ecsv1alpha1.Attribute{zone("a")}, wantZone: "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := &ecsv1alpha1.ContainerInstance{
				Spec:   ecsv1alpha1.ContainerInstanceSpec{Attributes: tc.spec},
				Status: ecsv1alpha1.ContainerInstanceStatus{Addresses: tc.addrs, Attributes: tc.status},
			}
			if got := instanceAddress(ci); got != tc.wantAddr {
				t.Errorf("address = %q, want %q", got, tc.wantAddr)
			}
			if got := instanceZone(ci); got != tc.wantZone {
				t.Errorf("zone = %q, want %q", got, tc.wantZone)
			}
		})
	}
}

func TestHostPorts(t *testing.T) {
	lb := ecsv1alpha1.LoadBalancer{ServiceName: "web", ContainerName: "app", ContainerPort: 8080}
	bind := func(cp, hp int32, p ecsv1alpha1.TransportProtocol) ecsv1alpha1.NetworkBinding {
		return ecsv1alpha1.NetworkBinding{ContainerPort: cp, HostPort: hp, Protocol: p}
	}
	for _, tc := range []struct {
		name       string
		containers []ecsv1alpha1.ContainerStatus
		want       []hostPort
	}{
		{name: "no bindings yet", containers: []ecsv1alpha1.ContainerStatus{{Name: "app"}}},
		{name: "tcp binding", containers: []ecsv1alpha1.ContainerStatus{{Name: "app", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			bind(9090, 32000, ecsv1alpha1.ProtocolTCP), bind(8080, 32001, ecsv1alpha1.ProtocolTCP),
		}}}, want: []hostPort{{32001, corev1.ProtocolTCP}}},
		{name: "unset protocol is tcp, udp is udp", containers: []ecsv1alpha1.ContainerStatus{{Name: "app", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			bind(8080, 32001, ""), bind(8080, 32001, ecsv1alpha1.ProtocolUDP),
		}}}, want: []hostPort{{32001, corev1.ProtocolTCP}, {32001, corev1.ProtocolUDP}}},
		{name: "IPv4 and IPv6 bindings of one port count once", containers: []ecsv1alpha1.ContainerStatus{{Name: "app", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 32001, Protocol: ecsv1alpha1.ProtocolTCP},
			{BindIP: "::", ContainerPort: 8080, HostPort: 32001, Protocol: ecsv1alpha1.ProtocolTCP},
		}}}, want: []hostPort{{32001, corev1.ProtocolTCP}}},
		{name: "other container's port", containers: []ecsv1alpha1.ContainerStatus{{Name: "sidecar", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			bind(8080, 32001, ecsv1alpha1.ProtocolTCP),
		}}}},
		{name: "unassigned host port", containers: []ecsv1alpha1.ContainerStatus{{Name: "app", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			bind(8080, 0, ecsv1alpha1.ProtocolTCP),
		}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &ecsv1alpha1.Task{Status: ecsv1alpha1.TaskStatus{Containers: tc.containers}}
			if diff := cmp.Diff(tc.want, hostPorts(task, lb), cmp.AllowUnexported(hostPort{})); diff != "" {
				t.Errorf("host ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPortName(t *testing.T) {
	svc := func(ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Ports: ports}}
	}
	port := func(name string, port, target int32, p corev1.Protocol) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(target), Protocol: p}
	}
	for _, tc := range []struct {
		name  string
		core  *corev1.Service
		proto corev1.Protocol
		want  string
	}{
		{name: "no Service yet", want: ""},
		{name: "single unnamed port", core: svc(port("", 80, 80, corev1.ProtocolTCP)), want: ""},
		{name: "single named port, whatever its target", core: svc(port("http", 80, 9999, corev1.ProtocolTCP)), want: "http"},
		{name: "by target port", core: svc(port("admin", 9000, 9000, corev1.ProtocolTCP), port("http", 80, 8080, corev1.ProtocolTCP)), want: "http"},
		{name: "by target port and protocol", proto: corev1.ProtocolUDP,
			core: svc(port("dns-tcp", 53, 8080, corev1.ProtocolTCP), port("dns-udp", 53, 8080, corev1.ProtocolUDP)), want: "dns-udp"},
		{name: "no match", core: svc(port("a", 1, 1, corev1.ProtocolTCP), port("b", 2, 2, corev1.ProtocolTCP)), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proto := tc.proto
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if got := portName(tc.core, 8080, proto); got != tc.want {
				t.Errorf("portName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSliceName(t *testing.T) {
	long := strings.Repeat("a", 60)
	for _, tc := range []struct {
		name  string
		berth string
		key   sliceKey
		chunk int
		want  string
	}{
		{"tcp", "websvc", sliceKey{service: "web", port: 32768, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv4}, 0, "web-websvc-32768t"},
		{"udp", "dns", sliceKey{service: "dns", port: 53, protocol: corev1.ProtocolUDP, addressType: discoveryv1.AddressTypeIPv4}, 0, "dns-dns-53u"},
		{"named port", "websvc", sliceKey{service: "web", portName: "http", port: 80, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv4}, 0, "web-websvc-http-80t"},
		{"IPv6", "websvc", sliceKey{service: "web", port: 80, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv6}, 0, "web-websvc-80t-v6"},
		{"FQDN", "websvc", sliceKey{service: "web", port: 80, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeFQDN}, 0, "web-websvc-80t-fqdn"},
		{"second chunk", "websvc", sliceKey{service: "web", port: 80, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv4}, 1, "web-websvc-80t-2"},
		{"shortened", long, sliceKey{service: "web", port: 32768, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv4}, 0,
			"web-" + long[:43] + "-" + hashOf("web-"+long+"-32768t") + "-32768t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sliceName(tc.berth, tc.key, tc.chunk)
			if got != tc.want {
				t.Errorf("sliceName = %q, want %q", got, tc.want)
			}
			if len(got) > maxNameLength {
				t.Errorf("sliceName %q is %d characters, over %d", got, len(got), maxNameLength)
			}
		})
	}
	// Long names that differ only past the cut stay distinct.
	k := sliceKey{service: "web", port: 80, protocol: corev1.ProtocolTCP, addressType: discoveryv1.AddressTypeIPv4}
	if a, b := sliceName(long+"x", k, 0), sliceName(long+"y", k, 0); a == b {
		t.Errorf("two long names collide: %q", a)
	}
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestDesiredSlices(t *testing.T) {
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "websvc", UID: "svc-uid"},
		Spec: ecsv1alpha1.ServiceSpec{LoadBalancers: []ecsv1alpha1.LoadBalancer{
			{ServiceName: "web", ContainerName: "app", ContainerPort: 8080},
		}},
	}
	i1 := instance("i1", "10.0.0.1", "zone-a")
	i2 := instance("i2", "10.0.0.2", "")
	running := func(name string, hostPort int32) *ecsv1alpha1.Task {
		return task(name, ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthHealthy, hostPort)
	}
	members := []member{
		{task: running("t3", 32768), instance: i2},
		{task: running("t1", 32768), instance: i1},
		{task: running("t2", 32769), instance: i1},
		{task: task("stopped", ecsv1alpha1.TaskStopped, "", 32770), instance: i1},
		{task: task("starting", ecsv1alpha1.TaskPending, "", 0), instance: i1},
		{task: running("on-a-gone-instance", 32771), instance: nil},
	}
	cores := map[string]*corev1.Service{"web": nil}
	got := summarize(desiredSlices(svc, members, cores))
	want := []sliceSummary{
		{Name: "web-websvc-32768t", Port: 32768, Protocol: "TCP", AddressType: "IPv4", Endpoints: []string{
			"10.0.0.1 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.0.0.2 t3 ready=true serving=true terminating=false zone=",
		}},
		{Name: "web-websvc-32769t", Port: 32769, Protocol: "TCP", AddressType: "IPv4", Endpoints: []string{
			"10.0.0.1 t2 ready=true serving=true terminating=false zone=zone-a",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slices (-want +got):\n%s", diff)
	}

	// Every slice carries the labels and the controller reference.
	for _, s := range desiredSlices(svc, members, cores) {
		wantLabels := map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ManagedBy, ecsv1alpha1.LabelService: "websvc",
		}
		if diff := cmp.Diff(wantLabels, s.Labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", s.Name, diff)
		}
		if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != "svc-uid" || ref.Kind != "Service" || ref.APIVersion != ecsv1alpha1.GroupVersion.String() {
			t.Errorf("%s controller reference = %+v", s.Name, ref)
		}
		if ep := s.Endpoints[0]; ep.TargetRef.Kind != "Task" || ep.NodeName != nil {
			t.Errorf("%s endpoint = %+v, want a Task targetRef and no nodeName", s.Name, ep)
		}
	}

	// No load balancers: no slices.
	bare := svc.DeepCopy()
	bare.Spec.LoadBalancers = nil
	if got := desiredSlices(bare, members, cores); len(got) != 0 {
		t.Errorf("a Service without load balancers wants %d slices", len(got))
	}
}

// awsvpc tasks are reached at their own address and the container port: two tasks
// on one instance serve the same port, each endpoint carrying its task's address.
func TestDesiredSlicesAWSVPC(t *testing.T) {
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "websvc", UID: "svc-uid"},
		Spec: ecsv1alpha1.ServiceSpec{LoadBalancers: []ecsv1alpha1.LoadBalancer{
			{ServiceName: "web", ContainerName: "app", ContainerPort: 8080},
		}},
	}
	i1 := instance("i1", "10.0.0.1", "zone-a")
	awsvpc := func(name, ip string) *ecsv1alpha1.Task {
		t := task(name, ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthHealthy, 0)
		t.Status.Containers = []ecsv1alpha1.ContainerStatus{{Name: "app", LastStatus: ecsv1alpha1.ContainerRunning,
			NetworkInterfaces: []ecsv1alpha1.NetworkInterface{{PrivateIPv4Address: ip}}}}
		return t
	}
	members := []member{
		{task: awsvpc("t1", "10.88.0.5"), instance: i1},
		{task: awsvpc("t2", "10.88.0.6"), instance: i1},
		{task: task("starting", ecsv1alpha1.TaskPending, "", 0), instance: i1},
	}
	got := summarize(desiredSlices(svc, members, map[string]*corev1.Service{"web": nil}))
	want := []sliceSummary{
		{Name: "web-websvc-8080t", Port: 8080, Protocol: "TCP", AddressType: "IPv4", Endpoints: []string{
			"10.88.0.5 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.88.0.6 t2 ready=true serving=true terminating=false zone=zone-a",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slices (-want +got):\n%s", diff)
	}
}

func TestDesiredSlicesSplitsLargeGroups(t *testing.T) {
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "big"},
		Spec:       ecsv1alpha1.ServiceSpec{LoadBalancers: []ecsv1alpha1.LoadBalancer{{ServiceName: "web", ContainerName: "app", ContainerPort: 8080}}},
	}
	var members []member
	for i := 0; i < maxEndpointsPerSlice+5; i++ {
		ci := instance(fmt.Sprintf("i%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), "")
		members = append(members, member{task: task(fmt.Sprintf("t%d", i), ecsv1alpha1.TaskRunning, ecsv1alpha1.HealthHealthy, 80), instance: ci})
	}
	var got []string
	for _, s := range desiredSlices(svc, members, nil) {
		got = append(got, fmt.Sprintf("%s:%d", s.Name, len(s.Endpoints)))
	}
	if diff := cmp.Diff([]string{"web-big-80t:1000", "web-big-80t-2:5"}, got); diff != "" {
		t.Errorf("slices (-want +got):\n%s", diff)
	}
}

func instance(name, addr, zone string) *ecsv1alpha1.ContainerInstance {
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
	ci.Status.Addresses = []ecsv1alpha1.InstanceAddress{{Type: ecsv1alpha1.AddressInternalIP, Address: addr}}
	if zone != "" {
		ci.Status.Attributes = []ecsv1alpha1.Attribute{{Name: ecsv1alpha1.AttributeAvailabilityZone, Value: zone}}
	}
	return ci
}

func task(name string, last ecsv1alpha1.TaskStatusValue, health ecsv1alpha1.HealthStatus, hostPort int32) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name + "-uid")},
		Spec:       ecsv1alpha1.TaskSpec{ContainerInstance: "i", DesiredStatus: ecsv1alpha1.DesiredRunning},
		Status:     ecsv1alpha1.TaskStatus{LastStatus: last, HealthStatus: health},
	}
	if hostPort > 0 {
		t.Status.Containers = []ecsv1alpha1.ContainerStatus{{Name: "app", NetworkBindings: []ecsv1alpha1.NetworkBinding{
			{ContainerPort: 8080, HostPort: hostPort, Protocol: ecsv1alpha1.ProtocolTCP},
		}}}
	}
	return t
}

type sliceSummary struct {
	Name        string
	Port        int32
	Protocol    string
	AddressType string
	Endpoints   []string
}

func summarize(slices []*discoveryv1.EndpointSlice) []sliceSummary {
	var out []sliceSummary
	for _, s := range slices {
		sum := sliceSummary{Name: s.Name, Port: *s.Ports[0].Port, Protocol: string(*s.Ports[0].Protocol), AddressType: string(s.AddressType)}
		for _, ep := range s.Endpoints {
			sum.Endpoints = append(sum.Endpoints, fmt.Sprintf("%s %s ready=%v serving=%v terminating=%v zone=%s",
				ep.Addresses[0], ep.TargetRef.Name, *ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating, ptr.Deref(ep.Zone, "")))
		}
		out = append(out, sum)
	}
	return out
}
