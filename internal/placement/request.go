package placement

import (
	"fmt"
	"slices"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Request is what one task needs from an instance and how to choose among those that
// can give it.
type Request struct {
	// Key identifies the task (namespace/name); the engine assumes placements by it.
	Key string
	// Group is the task's group (for example service:web): distinctInstance, spread and
	// task:group expressions work within it. Empty for tasks in no group.
	Group string
	// Cluster the task runs in; empty means ecsv1alpha1.DefaultClusterName.
	Cluster string
	// CPU units and Memory MiB the task reserves on its instance.
	CPU, Memory int64
	// TCPPorts and UDPPorts are the static host ports the task binds. Dynamic ports
	// (hostPort 0 in bridge mode) are not placement's concern: the agent picks them
	// from the instance's ephemeral range.
	TCPPorts, UDPPorts []int32
	// Constraints every chosen instance must satisfy: the task definition's and the
	// task's or service's.
	Constraints []Constraint
	// Strategies order the instances that satisfy the constraints, in list order; none
	// means ECS's default: spread over availability zones, then over instances.
	Strategies []ecsv1alpha1.PlacementStrategy
}

// RequestFor computes the resources a task of the task definition reserves, with the
// task's overrides applied, and parses the task definition's memberOf constraints. The
// caller sets Cluster, adds the task's or service's constraints and sets Strategies.
//
// CPU is the task-level cpu when set, else the sum of the containers' cpu. Memory is the
// task-level memory when set, else the sum over containers of memory, or of
// memoryReservation for containers without memory. An override replaces the value it
// names before the sums are taken.
func RequestFor(key, group string, spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (Request, error) {
	if spec == nil {
		return Request{}, fmt.Errorf("task %s: no task definition spec", key)
	}
	if overrides == nil {
		overrides = &ecsv1alpha1.TaskOverrides{}
	}
	containerOverrides, err := overridesByName(spec, overrides)
	if err != nil {
		return Request{}, err
	}

	req := Request{Key: key, Group: group}
	var cpuSum, memorySum int64
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		cpu, memory, reservation := int64(c.Cpu), c.Memory, c.MemoryReservation
		if o := containerOverrides[c.Name]; o != nil {
			if o.Cpu != nil {
				cpu = int64(*o.Cpu)
			}
			if o.Memory != nil {
				memory = o.Memory
			}
			if o.MemoryReservation != nil {
				reservation = o.MemoryReservation
			}
		}
		cpuSum += cpu
		switch {
		case memory != nil:
			memorySum += int64(*memory)
		case reservation != nil:
			memorySum += int64(*reservation)
		}
	}
	req.CPU = firstSet(overrides.Cpu, spec.Cpu, cpuSum)
	req.Memory = firstSet(overrides.Memory, spec.Memory, memorySum)

	if req.TCPPorts, req.UDPPorts, err = staticHostPorts(spec); err != nil {
		return Request{}, err
	}
	if req.Constraints, err = ParseTaskDefinitionConstraints(spec.PlacementConstraints); err != nil {
		return Request{}, err
	}
	return req, nil
}

func firstSet(override, spec *int32, sum int64) int64 {
	switch {
	case override != nil:
		return int64(*override)
	case spec != nil:
		return int64(*spec)
	default:
		return sum
	}
}

// overridesByName indexes container overrides. An override naming no container is an
// error rather than ignored: the task would otherwise run with resources its author
// did not intend.
func overridesByName(spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (map[string]*ecsv1alpha1.ContainerOverride, error) {
	if len(overrides.ContainerOverrides) == 0 {
		return nil, nil
	}
	byName := make(map[string]*ecsv1alpha1.ContainerOverride, len(overrides.ContainerOverrides))
	for i := range overrides.ContainerOverrides {
		o := &overrides.ContainerOverrides[i]
		if !slices.ContainsFunc(spec.ContainerDefinitions, func(c ecsv1alpha1.ContainerDefinition) bool { return c.Name == o.Name }) {
			return nil, fmt.Errorf("overrides.containerOverrides[%d].name: the task definition has no container %q", i, o.Name)
		}
		byName[o.Name] = o
	}
	return byName, nil
}

// staticHostPorts lists the host ports the task binds. In bridge mode these are the
// mappings with a fixed hostPort (0 or unset is a dynamic port chosen by the agent); in
// host mode the container binds its containerPort on the host itself.
func staticHostPorts(spec *ecsv1alpha1.TaskDefinitionSpec) (tcp, udp []int32, err error) {
	mode := spec.NetworkMode
	if mode == "" {
		mode = ecsv1alpha1.NetworkModeBridge
	}
	switch mode {
	case ecsv1alpha1.NetworkModeNone:
		return nil, nil, nil
	case ecsv1alpha1.NetworkModeBridge, ecsv1alpha1.NetworkModeHost:
	default:
		return nil, nil, fmt.Errorf("networkMode: unsupported network mode %q", spec.NetworkMode)
	}
	for i, c := range spec.ContainerDefinitions {
		for j, pm := range c.PortMappings {
			port := pm.ContainerPort
			if mode == ecsv1alpha1.NetworkModeBridge {
				if pm.HostPort == nil || *pm.HostPort <= 0 {
					continue
				}
				port = *pm.HostPort
			}
			switch pm.Protocol {
			case "", ecsv1alpha1.ProtocolTCP:
				tcp = append(tcp, port)
			case ecsv1alpha1.ProtocolUDP:
				udp = append(udp, port)
			default:
				return nil, nil, fmt.Errorf("containerDefinitions[%d].portMappings[%d].protocol: unsupported protocol %q", i, j, pm.Protocol)
			}
		}
	}
	return sortedPorts(tcp), sortedPorts(udp), nil
}

func sortedPorts(ports []int32) []int32 {
	slices.Sort(ports)
	return slices.Compact(ports)
}
