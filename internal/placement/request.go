package placement

import (
	"fmt"
	"sort"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
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
	// GPUs is how many of the instance's GPUs the task needs, each its own.
	GPUs int
	// AssignedGPUs are the GPUs a task already bound holds (its spec.gpuAssignments),
	// for Assume. Place ignores them and chooses.
	AssignedGPUs []string
	// Constraints every chosen instance must satisfy: the task definition's and the
	// task's or service's.
	Constraints []Constraint
	// Strategies order the instances that satisfy the constraints, in list order; none
	// means ECS's default: spread over availability zones, then over instances.
	Strategies []ecsv1alpha1.PlacementStrategy
}

// RequestFor computes what a task of the task definition reserves, with the task's
// overrides applied (taskrules.TaskResources, the rule the agent reports by too), and
// parses the task definition's memberOf constraints. The caller sets Cluster, adds
// the task's or service's constraints and sets Strategies.
func RequestFor(key, group string, spec *ecsv1alpha1.TaskDefinitionSpec, overrides *ecsv1alpha1.TaskOverrides) (Request, error) {
	if spec == nil {
		return Request{}, fmt.Errorf("task %s: no task definition spec", key)
	}
	res, err := taskrules.TaskResources(spec, overrides)
	if err != nil {
		return Request{}, err
	}
	req := Request{Key: key, Group: group, CPU: res.CPU, Memory: res.Memory, TCPPorts: res.TCPPorts, UDPPorts: res.UDPPorts, GPUs: res.GPUs}
	if req.Constraints, err = ParseTaskDefinitionConstraints(spec.PlacementConstraints); err != nil {
		return Request{}, err
	}
	platform, err := PlatformConstraints(spec.RuntimePlatform)
	if err != nil {
		return Request{}, err
	}
	req.Constraints = append(req.Constraints, platform...)
	return req, nil
}

// PlatformConstraints are the memberOf constraints a runtimePlatform implies: the
// instance's ecs.os-type and ecs.cpu-architecture attributes must match, so an arm64
// image never lands on an x86_64 instance (ECS places by the same attributes).
func PlatformConstraints(p *ecsv1alpha1.RuntimePlatform) ([]Constraint, error) {
	attrs := p.Attributes()
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Constraint, 0, len(names))
	for _, name := range names {
		x, err := ParseExpression(attributePrefix + name + " == " + attrs[name])
		if err != nil {
			return nil, &FieldError{Field: "runtimePlatform", Err: err}
		}
		out = append(out, Constraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: x})
	}
	return out, nil
}
