package ecsapi

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// maxOverridesLength is ECS's bound on a task's overrides: 8192 characters of their
// JSON, formatting included.
const maxOverridesLength = 8192

// taskOverrides maps RunTask's and StartTask's overrides onto Berth's TaskOverrides
// for a task of spec. What Berth's tasks can carry (per container command,
// environment, cpu, memory and memoryReservation; the task's cpu and memory) is
// mapped; every other member is refused by name, since a task that silently ran
// without its role, its environment files or its accelerators would not be the task
// its author asked for.
func taskOverrides(in *types.TaskOverride, spec *ecsv1alpha1.TaskDefinitionSpec) (*ecsv1alpha1.TaskOverrides, error) {
	if in == nil {
		return nil, nil
	}
	if err := overridesUnsupported(in); err != nil {
		return nil, err
	}
	if raw, err := wire.ECS.Marshal(in); err == nil && len(raw) > maxOverridesLength {
		return nil, wire.InvalidParameter("overrides", "Container Overrides length must be at most %d characters, these are %d", maxOverridesLength, len(raw))
	}
	out := &ecsv1alpha1.TaskOverrides{}
	var err error
	if out.Cpu, err = overrideQuantity("overrides.cpu", in.Cpu, ecsv1alpha1.ParseCPU); err != nil {
		return nil, err
	}
	if out.Memory, err = overrideQuantity("overrides.memory", in.Memory, ecsv1alpha1.ParseMemory); err != nil {
		return nil, err
	}
	if out.ContainerOverrides, err = containerOverrides(in.ContainerOverrides, spec); err != nil {
		return nil, err
	}
	if out.Cpu == nil && out.Memory == nil && len(out.ContainerOverrides) == 0 {
		return nil, nil
	}
	return out, nil
}

// overridesUnsupported names the task-level members that need AWS.
func overridesUnsupported(in *types.TaskOverride) error {
	switch {
	case aws.ToString(in.TaskRoleArn) != "":
		return wire.InvalidParameter("overrides.taskRoleArn", "IAM task roles are not supported by Berth: containers get no role credentials")
	case aws.ToString(in.ExecutionRoleArn) != "":
		return wire.InvalidParameter("overrides.executionRoleArn", "IAM execution roles are not supported by Berth: the agent pulls with repositoryCredentials and reads Kubernetes Secrets")
	case in.EphemeralStorage != nil:
		return wire.InvalidParameter("overrides.ephemeralStorage", "ephemeral storage is Fargate's; Berth's tasks use the instance's disk")
	case len(in.InferenceAcceleratorOverrides) > 0: //nolint:staticcheck // deprecated, yet clients may send it: refused by name, never dropped
		return wire.InvalidParameter("overrides.inferenceAcceleratorOverrides", "Elastic Inference accelerators are not supported by Berth")
	}
	return nil
}

// overrideQuantity parses a task-level cpu or memory override, which ECS sends as a
// string ("1024", "1 vCPU", "2 GB").
func overrideQuantity(member string, v *string, parse func(intstr.IntOrString) (int64, error)) (*int32, error) {
	if v == nil {
		return nil, nil
	}
	n, err := parse(intstr.FromString(*v))
	if err != nil {
		return nil, wire.InvalidParameter(member, "%v", err)
	}
	out := int32(n)
	return &out, nil
}

// containerOverrides maps the per-container overrides; each names a container of
// spec, once.
func containerOverrides(in []types.ContainerOverride, spec *ecsv1alpha1.TaskDefinitionSpec) ([]ecsv1alpha1.ContainerOverride, error) {
	names := map[string]bool{}
	for _, c := range spec.ContainerDefinitions {
		names[c.Name] = false
	}
	var out []ecsv1alpha1.ContainerOverride
	for i, o := range in {
		member := fmt.Sprintf("overrides.containerOverrides[%d]", i)
		name := aws.ToString(o.Name)
		seen, known := names[name]
		switch {
		case name == "":
			return nil, wire.InvalidParameter(member+".name", "Container.name should not be null or empty.")
		case !known:
			return nil, wire.InvalidParameter(member+".name", "Override for container named %s is not a container in the TaskDefinition.", name)
		case seen:
			return nil, wire.InvalidParameter(member+".name", "container %s is overridden twice", name)
		case len(o.EnvironmentFiles) > 0:
			return nil, wire.InvalidParameter(member+".environmentFiles", "environment files live in S3, which Berth cannot read; use environment")
		case len(o.ResourceRequirements) > 0:
			return nil, wire.InvalidParameter(member+".resourceRequirements", "GPU and accelerator overrides are not supported by Berth: a task's GPUs are its task definition's")
		}
		names[name] = true
		co, err := containerOverride(member, name, o)
		if err != nil {
			return nil, err
		}
		if co.Command != nil || co.Environment != nil || co.Cpu != nil || co.Memory != nil || co.MemoryReservation != nil {
			out = append(out, co)
		}
	}
	return out, nil
}

func containerOverride(member, name string, o types.ContainerOverride) (ecsv1alpha1.ContainerOverride, error) {
	co := ecsv1alpha1.ContainerOverride{Name: name, Command: o.Command, Cpu: o.Cpu, Memory: o.Memory, MemoryReservation: o.MemoryReservation}
	for j, kv := range o.Environment {
		if aws.ToString(kv.Name) == "" {
			return co, wire.InvalidParameter(fmt.Sprintf("%s.environment[%d].name", member, j), "must not be empty")
		}
		co.Environment = append(co.Environment, ecsv1alpha1.KeyValuePair{Name: aws.ToString(kv.Name), Value: aws.ToString(kv.Value)})
	}
	if o.Memory != nil && o.MemoryReservation != nil && *o.MemoryReservation > *o.Memory {
		return co, wire.InvalidParameter(member+".memoryReservation", "must not exceed memory (%d > %d)", *o.MemoryReservation, *o.Memory)
	}
	return co, nil
}

// overridesOut is a task's overrides as ECS answers them: one containerOverrides
// entry per container of the task definition, just its name when nothing is
// overridden.
func overridesOut(o *ecsv1alpha1.TaskOverrides, spec *ecsv1alpha1.TaskDefinitionSpec) *types.TaskOverride {
	if o == nil {
		o = &ecsv1alpha1.TaskOverrides{}
	}
	byName := map[string]*ecsv1alpha1.ContainerOverride{}
	for i := range o.ContainerOverrides {
		byName[o.ContainerOverrides[i].Name] = &o.ContainerOverrides[i]
	}
	out := &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{}}
	if o.Cpu != nil {
		out.Cpu = aws.String(strconv.Itoa(int(*o.Cpu)))
	}
	if o.Memory != nil {
		out.Memory = aws.String(strconv.Itoa(int(*o.Memory)))
	}
	names := make([]string, 0, len(o.ContainerOverrides))
	if spec != nil {
		for _, c := range spec.ContainerDefinitions {
			names = append(names, c.Name)
		}
	} else {
		for _, c := range o.ContainerOverrides {
			names = append(names, c.Name)
		}
	}
	for _, name := range names {
		co := types.ContainerOverride{Name: aws.String(name)}
		if c := byName[name]; c != nil {
			co.Command, co.Cpu, co.Memory, co.MemoryReservation = c.Command, c.Cpu, c.Memory, c.MemoryReservation
			for _, kv := range c.Environment {
				co.Environment = append(co.Environment, types.KeyValuePair{Name: aws.String(kv.Name), Value: aws.String(kv.Value)})
			}
		}
		out.ContainerOverrides = append(out.ContainerOverrides, co)
	}
	return out
}
