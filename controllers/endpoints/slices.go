package endpoints

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// This file holds the pure part of the controller: from a Service, its tasks and the
// facts looked up about them, to the EndpointSlices that should exist.

const (
	// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the slices
	// Berth writes; slices with another value belong to other controllers.
	ManagedBy = "endpoints.ecs.berth.dev"

	// maxEndpointsPerSlice is the API's limit on endpoints in one EndpointSlice.
	maxEndpointsPerSlice = 1000
	// maxNameLength keeps slice names within a DNS label, as the Service names they
	// derive from are.
	maxNameLength = 63
)

// healthChecks says whether an essential container of a task's revision has a health
// check.
type healthChecks int

const (
	// checksUnknown: the revision could not be resolved, or was not looked up
	// because the task's health status already decides.
	checksUnknown healthChecks = iota
	checksNone
	checksPresent
)

// member is one task of the Service with the facts the controller looked up for it.
type member struct {
	task *ecsv1alpha1.Task
	// instance the task is placed on; nil when it is unknown or gone.
	instance *ecsv1alpha1.ContainerInstance
	// checks matters only when needsHealthChecks(task).
	checks healthChecks
}

// listed reports whether a task can have endpoints at all: it is placed and not
// STOPPED. Whether it also publishes the load balancer's port is decided per binding.
func listed(t *ecsv1alpha1.Task) bool {
	return t.Spec.ContainerInstance != "" && t.Status.LastStatus != ecsv1alpha1.TaskStopped
}

// needsHealthChecks reports whether the endpoint's conditions depend on whether the
// task's revision defines health checks: the task runs and its health status alone
// does not decide.
func needsHealthChecks(t *ecsv1alpha1.Task) bool {
	return t.Status.LastStatus == ecsv1alpha1.TaskRunning &&
		t.Status.HealthStatus != ecsv1alpha1.HealthHealthy && t.Status.HealthStatus != ecsv1alpha1.HealthUnhealthy
}

// taskServes is taskrules.Serving, the rule of the service controller too: RUNNING and
// HEALTHY, or RUNNING with health UNKNOWN because no essential container of its
// revision has a check. A task whose revision cannot be resolved does not serve.
func taskServes(t *ecsv1alpha1.Task, checks healthChecks) bool {
	switch t.Status.HealthStatus {
	case ecsv1alpha1.HealthHealthy, ecsv1alpha1.HealthUnhealthy:
		return taskrules.Serving(t.Status.LastStatus, t.Status.HealthStatus, true)
	}
	return checks != checksUnknown && taskrules.Serving(t.Status.LastStatus, t.Status.HealthStatus, checks == checksPresent)
}

// terminating reports whether the task is on its way out: asked to stop, or past
// RUNNING in its lifecycle (DEACTIVATING, STOPPING, DEPROVISIONING).
func terminating(t *ecsv1alpha1.Task) bool {
	return t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped ||
		t.Status.LastStatus.Index() > ecsv1alpha1.TaskRunning.Index()
}

// endpointConditions follows EndpointSlice semantics: serving is the task's own
// readiness (RUNNING and healthy) whatever its termination; ready is serving and not
// terminating. A terminating endpoint keeps its address, so connections drain, but
// gets no new traffic.
func endpointConditions(t *ecsv1alpha1.Task, checks healthChecks) discoveryv1.EndpointConditions {
	serving := taskServes(t, checks)
	term := terminating(t)
	return discoveryv1.EndpointConditions{
		Ready:       ptr.To(serving && !term),
		Serving:     ptr.To(serving),
		Terminating: ptr.To(term),
	}
}

// instanceAddress is where the instance's published host ports are reached: its first
// InternalIP, else its first address of any type.
func instanceAddress(ci *ecsv1alpha1.ContainerInstance) string {
	for _, a := range ci.Status.Addresses {
		if a.Type == ecsv1alpha1.AddressInternalIP {
			return a.Address
		}
	}
	if len(ci.Status.Addresses) > 0 {
		return ci.Status.Addresses[0].Address
	}
	return ""
}

// instanceZone is the instance's availability zone attribute; the operator's
// attributes (spec) override the agent's (status).
func instanceZone(ci *ecsv1alpha1.ContainerInstance) string {
	for _, attrs := range [][]ecsv1alpha1.Attribute{ci.Spec.Attributes, ci.Status.Attributes} {
		for _, a := range attrs {
			if a.Name == ecsv1alpha1.AttributeAvailabilityZone {
				return a.Value
			}
		}
	}
	return ""
}

// classify returns an address in canonical form with its EndpointSlice address type,
// or false for an address no slice can hold.
func classify(addr string) (string, discoveryv1.AddressType, bool) {
	if addr == "" {
		return "", "", false
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		switch {
		// The apiserver refuses these in an EndpointSlice (as kube-proxy could not
		// route to them): one would fail the whole slice, so it is left out.
		case ip.Zone() != "", ip.IsLoopback(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
			return "", "", false
		case ip.Is4() || ip.Is4In6():
			return ip.Unmap().String(), discoveryv1.AddressTypeIPv4, true
		default:
			return ip.String(), discoveryv1.AddressTypeIPv6, true
		}
	}
	if len(validation.IsDNS1123Subdomain(addr)) == 0 {
		return addr, discoveryv1.AddressTypeFQDN, true
	}
	return "", "", false
}

// hostPort is a published port of one task.
type hostPort struct {
	port     int32
	protocol corev1.Protocol
}

// hostPorts are the ports on which a task publishes the load balancer's container
// port, one per protocol (the agent may report an IPv4 and an IPv6 binding of the same
// port).
func hostPorts(t *ecsv1alpha1.Task, lb ecsv1alpha1.LoadBalancer) []hostPort {
	var out []hostPort
	for _, c := range t.Status.Containers {
		if c.Name != lb.ContainerName {
			continue
		}
		for _, b := range c.NetworkBindings {
			if b.ContainerPort != lb.ContainerPort || b.HostPort <= 0 {
				continue
			}
			hp := hostPort{port: b.HostPort, protocol: corev1.ProtocolTCP}
			if strings.EqualFold(string(b.Protocol), string(ecsv1alpha1.ProtocolUDP)) {
				hp.protocol = corev1.ProtocolUDP
			}
			if !slices.Contains(out, hp) {
				out = append(out, hp)
			}
		}
	}
	return out
}

// taskAddress is where an awsvpc task serves the load balancer's container port: its
// own address (the container's network interface) and the container port itself,
// with nothing published on the instance. ok is false for other tasks, and for an
// awsvpc task whose container does not run yet.
func taskAddress(t *ecsv1alpha1.Task, lb ecsv1alpha1.LoadBalancer) (string, hostPort, bool) {
	for _, c := range t.Status.Containers {
		if c.Name != lb.ContainerName || len(c.NetworkInterfaces) == 0 || c.NetworkInterfaces[0].PrivateIPv4Address == "" {
			continue
		}
		return c.NetworkInterfaces[0].PrivateIPv4Address, hostPort{port: lb.ContainerPort, protocol: corev1.ProtocolTCP}, true
	}
	return "", hostPort{}, false
}

// portName is the name of the core Service port a load balancer's endpoints serve:
// kube-proxy pairs a Service's ports with EndpointSlice ports by name. A single-port
// Service's port is the one; otherwise the port whose targetPort (which defaults to
// its port) is the container port, preferring a matching protocol. Without the
// Service (it may be created later) the name is empty, as for a single unnamed port.
func portName(core *corev1.Service, containerPort int32, protocol corev1.Protocol) string {
	if core == nil {
		return ""
	}
	if len(core.Spec.Ports) == 1 {
		return core.Spec.Ports[0].Name
	}
	name, found := "", false
	for _, p := range core.Spec.Ports {
		if p.TargetPort.Type != intstr.Int || p.TargetPort.IntVal != containerPort {
			continue
		}
		if cmp.Or(p.Protocol, corev1.ProtocolTCP) == protocol {
			return p.Name
		}
		if !found {
			name, found = p.Name, true
		}
	}
	return name
}

// sliceKey is what one EndpointSlice holds: endpoints of one core Service sharing one
// port (EndpointSlice ports apply to every endpoint of the slice, and dynamic host
// ports differ from task to task) and one address type.
type sliceKey struct {
	service     string
	portName    string
	port        int32
	protocol    corev1.Protocol
	addressType discoveryv1.AddressType
}

func compareKeys(a, b sliceKey) int {
	return cmp.Or(
		cmp.Compare(a.service, b.service),
		cmp.Compare(a.portName, b.portName),
		cmp.Compare(a.port, b.port),
		cmp.Compare(a.protocol, b.protocol),
		cmp.Compare(a.addressType, b.addressType),
	)
}

// sliceName is deterministic, so a restarted manager or a lagging cache finds the
// slice it wrote instead of writing a second one:
// `<serviceName>-<berth service>[-<port name>]-<port><t|u>[-v6|-fqdn][-<chunk>]`,
// shortened with a hash of the full name when over 63 characters.
func sliceName(berthService string, k sliceKey, chunk int) string {
	tail := strconv.Itoa(int(k.port)) + strings.ToLower(string(k.protocol[:1]))
	switch k.addressType {
	case discoveryv1.AddressTypeIPv6:
		tail += "-v6"
	case discoveryv1.AddressTypeFQDN:
		tail += "-fqdn"
	}
	if chunk > 0 {
		tail += "-" + strconv.Itoa(chunk+1)
	}
	head := k.service + "-" + berthService
	if k.portName != "" {
		head += "-" + k.portName
	}
	full := head + "-" + tail
	if len(full) <= maxNameLength {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	hash := hex.EncodeToString(sum[:])[:8]
	keep := maxNameLength - len(tail) - len(hash) - 2
	head = strings.TrimRight(head[:keep], "-.")
	return head + "-" + hash + "-" + tail
}

// desiredSlices computes every EndpointSlice the Service's load balancers need.
// cores holds the core Services by name (nil values for missing ones).
func desiredSlices(svc *ecsv1alpha1.Service, members []member, cores map[string]*corev1.Service) []*discoveryv1.EndpointSlice {
	groups := map[sliceKey][]discoveryv1.Endpoint{}
	for _, lb := range svc.Spec.LoadBalancers {
		for i := range members {
			m := &members[i]
			if !listed(m.task) || m.instance == nil {
				continue
			}
			addr, ports := instanceAddress(m.instance), hostPorts(m.task, lb)
			if ip, p, ok := taskAddress(m.task, lb); ok {
				addr, ports = ip, []hostPort{p}
			}
			addr, typ, ok := classify(addr)
			if !ok {
				continue
			}
			for _, hp := range ports {
				k := sliceKey{lb.ServiceName, portName(cores[lb.ServiceName], lb.ContainerPort, hp.protocol), hp.port, hp.protocol, typ}
				groups[k] = append(groups[k], endpoint(m, addr))
			}
		}
	}
	keys := make([]sliceKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var out []*discoveryv1.EndpointSlice
	for _, k := range keys {
		eps := sortEndpoints(groups[k])
		for chunk := 0; chunk*maxEndpointsPerSlice < len(eps); chunk++ {
			part := eps[chunk*maxEndpointsPerSlice : min(len(eps), (chunk+1)*maxEndpointsPerSlice)]
			out = append(out, newSlice(svc, k, sliceName(svc.Name, k, chunk), part))
		}
	}
	return out
}

func endpoint(m *member, addr string) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Conditions: endpointConditions(m.task, m.checks),
		TargetRef: &corev1.ObjectReference{
			APIVersion: ecsv1alpha1.GroupVersion.String(),
			Kind:       "Task",
			Namespace:  m.task.Namespace,
			Name:       m.task.Name,
			UID:        m.task.UID,
		},
	}
	if z := instanceZone(m.instance); z != "" {
		ep.Zone = ptr.To(z)
	}
	return ep
}

// sortEndpoints orders endpoints by address, then task, and drops duplicates (two
// load balancers of the same Service publishing the same port).
func sortEndpoints(eps []discoveryv1.Endpoint) []discoveryv1.Endpoint {
	slices.SortFunc(eps, func(a, b discoveryv1.Endpoint) int {
		return cmp.Or(cmp.Compare(a.Addresses[0], b.Addresses[0]), cmp.Compare(a.TargetRef.Name, b.TargetRef.Name))
	})
	return slices.CompactFunc(eps, func(a, b discoveryv1.Endpoint) bool {
		return a.Addresses[0] == b.Addresses[0] && a.TargetRef.Name == b.TargetRef.Name
	})
}

func newSlice(svc *ecsv1alpha1.Service, k sliceKey, name string, eps []discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: svc.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: k.service,
				discoveryv1.LabelManagedBy:   ManagedBy,
				ecsv1alpha1.LabelService:     svc.Name,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))},
		},
		AddressType: k.addressType,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{{
			Name:     ptr.To(k.portName),
			Port:     ptr.To(k.port),
			Protocol: ptr.To(k.protocol),
		}},
	}
}
