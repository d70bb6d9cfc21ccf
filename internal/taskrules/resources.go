package taskrules

import (
	"cmp"
	"fmt"
	"slices"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Resources is what a task reserves on its instance.
type Resources struct {
	// CPU units (1024 per core) and Memory MiB.
	CPU, Memory int64
	// TCPPorts and UDPPorts are the static host ports the task binds, sorted and
	// without duplicates. Dynamic ports (hostPort 0 or unset in bridge mode) are not
	// reserved: the agent picks them from DynamicPortMin-DynamicPortMax.
	TCPPorts, UDPPorts []int32
	// GPUs is how many GPUs the task's containers ask for in all (GPURequests);
	// which ones it holds is in its spec.gpuAssignments.
	GPUs int
}

// TaskResources computes what a task of the revision spec reserves, with the task's
// overrides applied. The scheduler places by it and the agent reports its
// instance's remaining resources by it.
//
// GPUs are the containers' GPU requirements added up.
//
// CPU is the task-level cpu when set, else the sum of the containers' cpu. Memory is
// the task-level memory when set, else the sum over containers of memory, or of
// memoryReservation for containers without memory. An override replaces the value it
// names before the sums are taken. An override naming no container is an error
// rather than ignored: the task would otherwise run with resources its author did
// not intend.
func TaskResources(spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (Resources, error) {
	if spec == nil {
		return Resources{}, fmt.Errorf("no task definition spec")
	}
	if overrides == nil {
		overrides = &ecsv1alpha1.TaskOverrides{}
	}
	byName, err := overridesByName(spec, overrides)
	if err != nil {
		return Resources{}, err
	}
	var cpuSum, memorySum int64
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		cpu, memory, reservation := int64(c.Cpu), c.Memory, c.MemoryReservation
		if o := byName[c.Name]; o != nil {
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
	cpu, memory := TaskLimits(spec, overrides)
	r := Resources{CPU: cmp.Or(cpu, cpuSum), Memory: cmp.Or(memory, memorySum)}
	if r.TCPPorts, r.UDPPorts, err = StaticHostPorts(spec); err != nil {
		return Resources{}, err
	}
	gpus, err := GPURequests(spec)
	if err != nil {
		return Resources{}, err
	}
	r.GPUs = GPUCount(gpus)
	return r, nil
}

// TaskLimits is the task-level cpu (units) and memory (MiB) with the task's overrides
// applied; 0 means the task sets none. They are hard limits shared by the task's
// containers, and what placement reserves when set.
func TaskLimits(spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (cpu, memory int64) {
	cpu, _ = spec.CPUUnits()
	memory, _ = spec.MemoryMiB()
	if overrides != nil {
		if overrides.Cpu != nil {
			cpu = int64(*overrides.Cpu)
		}
		if overrides.Memory != nil {
			memory = int64(*overrides.Memory)
		}
	}
	return cpu, memory
}

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

// StaticHostPorts lists the host ports a task binds whatever the agent chooses. In
// bridge mode these are the mappings with a fixed hostPort (0 or unset is a dynamic
// port); in host mode every containerPort is bound on the host itself; awsvpc and
// none bind nothing on the host (an awsvpc task's ports are on its own address).
func StaticHostPorts(spec *ecsv1alpha1.TaskDefinitionSpec) (tcp, udp []int32, err error) {
	mode := spec.NetworkMode
	if mode == "" {
		mode = ecsv1alpha1.NetworkModeBridge
	}
	switch mode {
	case ecsv1alpha1.NetworkModeNone, ecsv1alpha1.NetworkModeAWSVPC:
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

// The dynamic host port range: hostPort 0 (or unset) in bridge mode gets a free port
// from it, as the ECS agent's default ECS_DYNAMIC_HOST_PORT_RANGE (49153-65535) gives.
const (
	DynamicPortMin = 49153
	DynamicPortMax = 65535
)
