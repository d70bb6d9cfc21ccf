package hollow

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// ReservedPorts are the TCP ports ECS reserves on every instance (ssh, the Docker
// daemon and the agent's introspection and credential endpoints); they are in
// registeredResources and never given to tasks.
var ReservedPorts = []int32{22, 2375, 2376, 51678, 51679}

// The range dynamic host ports (hostPort 0 or unset in bridge mode) come from, as
// ECS's default ephemeral range.
const (
	dynamicPortFirst = 32768
	dynamicPortLast  = 60999
)

// taskResources is what a task reserves on its instance, computed as ECS does: the
// task-level cpu and memory when set, else the sums over the containers of cpu and of
// memory (or memoryReservation when memory is unset). Overrides replace the values
// they name first.
func taskResources(spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (cpu, memory int64) {
	byName := map[string]*ecsv1alpha1.ContainerOverride{}
	var taskCPU, taskMemory *int32
	if overrides != nil {
		for i := range overrides.ContainerOverrides {
			byName[overrides.ContainerOverrides[i].Name] = &overrides.ContainerOverrides[i]
		}
		taskCPU, taskMemory = overrides.Cpu, overrides.Memory
	}
	if taskCPU == nil {
		taskCPU = spec.Cpu
	}
	if taskMemory == nil {
		taskMemory = spec.Memory
	}
	var cpuSum, memorySum int64
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		ccpu, mem, reservation := c.Cpu, c.Memory, c.MemoryReservation
		if o := byName[c.Name]; o != nil {
			if o.Cpu != nil {
				ccpu = *o.Cpu
			}
			if o.Memory != nil {
				mem = o.Memory
			}
			if o.MemoryReservation != nil {
				reservation = o.MemoryReservation
			}
		}
		cpuSum += int64(ccpu)
		switch {
		case mem != nil:
			memorySum += int64(*mem)
		case reservation != nil:
			memorySum += int64(*reservation)
		}
	}
	cpu, memory = cpuSum, memorySum
	if taskCPU != nil {
		cpu = int64(*taskCPU)
	}
	if taskMemory != nil {
		memory = int64(*taskMemory)
	}
	return cpu, memory
}

// hostPort is a port on an instance.
type hostPort struct {
	port     int32
	protocol ecsv1alpha1.TransportProtocol
}

func (p hostPort) String() string { return fmt.Sprintf("%d/%s", p.port, p.protocol) }

// portTable tracks the host ports in use on one instance and hands out dynamic ones.
type portTable struct {
	used map[hostPort]types.NamespacedName
	// next is where the search for a free dynamic port starts, per protocol, so that a
	// freed port is not handed out again at once (as the kernel's ephemeral ports).
	next map[ecsv1alpha1.TransportProtocol]int32
}

func newPortTable() *portTable {
	t := &portTable{used: map[hostPort]types.NamespacedName{}, next: map[ecsv1alpha1.TransportProtocol]int32{}}
	for _, p := range ReservedPorts {
		t.used[hostPort{p, ecsv1alpha1.ProtocolTCP}] = types.NamespacedName{}
	}
	return t
}

// portInUseError says a static host port is taken.
type portInUseError struct {
	port  hostPort
	owner types.NamespacedName
}

func (e *portInUseError) Error() string {
	if e.owner == (types.NamespacedName{}) {
		return fmt.Sprintf("host port %s is reserved on the instance", e.port)
	}
	return fmt.Sprintf("host port %s is already in use by task %s", e.port, e.owner)
}

// plannedBinding is one port mapping of a container and where it is published.
type plannedBinding struct {
	container string
	binding   ecsv1alpha1.NetworkBinding
	// static is true unless the port was allocated dynamically.
	static bool
}

// allocate binds the port mappings of spec for task on the instance: the static
// hostPort in bridge mode, the containerPort in host mode, a free dynamic port for
// hostPort 0 or unset in bridge mode. On error nothing stays allocated.
func (t *portTable) allocate(task types.NamespacedName, spec *ecsv1alpha1.TaskDefinitionSpec) ([]plannedBinding, error) {
	mode := spec.NetworkMode
	if mode == "" {
		mode = ecsv1alpha1.NetworkModeBridge
	}
	if mode == ecsv1alpha1.NetworkModeNone {
		return nil, nil
	}
	var out []plannedBinding
	var taken []hostPort
	fail := func(err error) ([]plannedBinding, error) {
		for _, p := range taken {
			delete(t.used, p)
		}
		return nil, err
	}
	for _, c := range spec.ContainerDefinitions {
		for _, pm := range c.PortMappings {
			proto := pm.Protocol
			if proto == "" {
				proto = ecsv1alpha1.ProtocolTCP
			}
			port, static := staticHostPort(mode, pm)
			if !static {
				p, ok := t.freeDynamic(proto)
				if !ok {
					return fail(fmt.Errorf("no free dynamic host port for %s in %d-%d", proto, dynamicPortFirst, dynamicPortLast))
				}
				port = p
			}
			hp := hostPort{port, proto}
			if owner, ok := t.used[hp]; ok {
				return fail(&portInUseError{port: hp, owner: owner})
			}
			t.used[hp] = task
			taken = append(taken, hp)
			out = append(out, plannedBinding{container: c.Name, binding: ecsv1alpha1.NetworkBinding{
				BindIP: "0.0.0.0", ContainerPort: pm.ContainerPort, HostPort: port, Protocol: proto,
			}, static: static})
		}
	}
	return out, nil
}

// staticHostPort is the host port a mapping binds in a network mode, and whether it
// is fixed (false: a dynamic port is allocated).
func staticHostPort(mode ecsv1alpha1.NetworkMode, pm ecsv1alpha1.PortMapping) (int32, bool) {
	switch {
	case mode == ecsv1alpha1.NetworkModeHost:
		return pm.ContainerPort, true
	case pm.HostPort != nil && *pm.HostPort > 0:
		return *pm.HostPort, true
	default:
		return 0, false
	}
}

// isStaticBinding tells whether a published port came from a fixed hostPort of the
// revision; without the revision, ports outside the dynamic range are taken as static.
func isStaticBinding(spec *ecsv1alpha1.TaskDefinitionSpec, container string, b ecsv1alpha1.NetworkBinding) bool {
	if spec == nil {
		return b.HostPort < dynamicPortFirst || b.HostPort > dynamicPortLast
	}
	mode := spec.NetworkMode
	if mode == "" {
		mode = ecsv1alpha1.NetworkModeBridge
	}
	for _, c := range spec.ContainerDefinitions {
		if c.Name != container {
			continue
		}
		for _, pm := range c.PortMappings {
			proto := pm.Protocol
			if proto == "" {
				proto = ecsv1alpha1.ProtocolTCP
			}
			if pm.ContainerPort == b.ContainerPort && proto == b.Protocol {
				port, static := staticHostPort(mode, pm)
				return static && port == b.HostPort
			}
		}
	}
	return false
}

func (t *portTable) freeDynamic(proto ecsv1alpha1.TransportProtocol) (int32, bool) {
	start := t.next[proto]
	if start < dynamicPortFirst || start > dynamicPortLast {
		start = dynamicPortFirst
	}
	const size = dynamicPortLast - dynamicPortFirst + 1
	for i := int32(0); i < size; i++ {
		p := dynamicPortFirst + (start-dynamicPortFirst+i)%size
		if _, ok := t.used[hostPort{p, proto}]; !ok {
			t.next[proto] = p + 1
			return p, true
		}
	}
	return 0, false
}

// reserve marks ports already published by a task (found in its status after a
// restart) as used. A port held by another task is left to it and reported.
func (t *portTable) reserve(task types.NamespacedName, bindings []plannedBinding) error {
	var errs []error
	for _, b := range bindings {
		hp := hostPort{b.binding.HostPort, b.binding.Protocol}
		if owner, ok := t.used[hp]; ok && owner != task {
			errs = append(errs, &portInUseError{port: hp, owner: owner})
			continue
		}
		t.used[hp] = task
	}
	if len(errs) > 0 {
		return fmt.Errorf("adopting host ports: %v", errs)
	}
	return nil
}

// release frees the ports a task holds.
func (t *portTable) release(task types.NamespacedName, bindings []plannedBinding) {
	for _, b := range bindings {
		hp := hostPort{b.binding.HostPort, b.binding.Protocol}
		if t.used[hp] == task {
			delete(t.used, hp)
		}
	}
}

// staticPorts lists the reserved ports and the static host ports of tasks, the ports
// reported in remainingResources (dynamic ports are not a placement concern).
func staticPorts(tasks map[types.NamespacedName]*simTask) (tcp, udp []int32) {
	tcp = slices.Clone(ReservedPorts)
	for _, st := range tasks {
		if st.phase == phaseStopped {
			continue
		}
		for _, b := range st.bindings {
			if !b.static {
				continue
			}
			if b.binding.Protocol == ecsv1alpha1.ProtocolUDP {
				udp = append(udp, b.binding.HostPort)
			} else {
				tcp = append(tcp, b.binding.HostPort)
			}
		}
	}
	slices.Sort(tcp)
	slices.Sort(udp)
	return slices.Compact(tcp), slices.Compact(udp)
}
