// Package inventory turns ContainerInstance objects into the placement engine's view
// of a machine: merged attributes, registered resources, and whether it may receive
// tasks. The scheduler and the DAEMON service logic share it so they never disagree
// about which instances are eligible.
package inventory

import (
	"iter"
	"maps"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
)

// Attributes merges the agent's attributes with the operator's; the operator's win.
func Attributes(ci *ecsv1alpha1.ContainerInstance) map[string]string {
	out := make(map[string]string, len(ci.Status.Attributes)+len(ci.Spec.Attributes))
	for _, a := range ci.Status.Attributes {
		out[a.Name] = a.Value
	}
	for _, a := range ci.Spec.Attributes {
		out[a.Name] = a.Value
	}
	return out
}

// Status is the instance's scheduling state, derived from facts rather than read
// from status.status (which the manager writes from this same function): being
// deleted is INACTIVE, spec.draining is DRAINING at once, an instance whose agent has
// not reported resources is REGISTERING, and the rest are ACTIVE.
func Status(ci *ecsv1alpha1.ContainerInstance) ecsv1alpha1.InstanceStatusValue {
	switch {
	case !ci.DeletionTimestamp.IsZero():
		return ecsv1alpha1.InstanceInactive
	case ci.Spec.Draining:
		return ecsv1alpha1.InstanceDraining
	case ci.Status.RegisteredResources == nil:
		return ecsv1alpha1.InstanceRegistering
	}
	return ecsv1alpha1.InstanceActive
}

// Instance converts a ContainerInstance into the placement engine's Instance.
func Instance(ci *ecsv1alpha1.ContainerInstance) placement.Instance {
	inst := placement.Instance{
		Name:       ci.Name,
		Cluster:    ci.Spec.Cluster,
		Status:     Status(ci),
		Connected:  ci.Status.AgentConnected,
		Attributes: Attributes(ci),
	}
	if r := ci.Status.RegisteredResources; r != nil {
		inst.CPU, inst.Memory = r.Cpu, r.Memory
		inst.ReservedTCP, inst.ReservedUDP = r.Ports, r.UDPPorts
		inst.GPUs = r.GPUs
	}
	return inst
}

// Target adapts a ContainerInstance for evaluating memberOf expressions outside the
// engine (DAEMON services). It knows no task groups.
func Target(ci *ecsv1alpha1.ContainerInstance) placement.Target {
	return target{name: ci.Name, attrs: Attributes(ci)}
}

type target struct {
	name  string
	attrs map[string]string
}

func (t target) InstanceID() string { return t.name }
func (t target) Attribute(name string) (string, bool) {
	v, ok := t.attrs[name]
	return v, ok
}
func (t target) HasTaskGroup(string) bool     { return false }
func (t target) TaskGroups() iter.Seq[string] { return maps.Keys(map[string]bool{}) }
