package ecsapi

import (
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

// taskFilter is ListTasks' filters, with names already mapped to object names. An
// empty field does not filter.
type taskFilter struct {
	// Family is a TaskDefinition name.
	Family string
	// Service is a Service name: its tasks carry the label ecs.berth.dev/service.
	Service string
	// Instance is a ContainerInstance name.
	Instance  string
	StartedBy string
	// Desired is RUNNING (ECS's default, which includes tasks still pending),
	// STOPPED or PENDING (which ECS never sets, so it matches nothing).
	Desired    types.DesiredStatus
	LaunchType types.LaunchType
}

// matches reports whether a task of the listed cluster passes every filter.
func (f taskFilter) matches(t *ecsv1alpha1.Task) bool {
	_, desired := taskStatuses(t)
	switch {
	case string(f.Desired) != desired:
		return false
	case f.Family != "" && taskFamily(t) != f.Family:
		return false
	case f.Service != "" && t.Labels[ecsv1alpha1.LabelService] != f.Service:
		return false
	case f.Instance != "" && t.Spec.ContainerInstance != f.Instance:
		return false
	case f.StartedBy != "" && t.Spec.StartedBy != f.StartedBy:
		return false
	case f.LaunchType != "" && taskLaunchType(t) != f.LaunchType:
		return false
	}
	return true
}

// taskFamily is the TaskDefinition a task runs ("" for a reference that does not
// parse, which the CRD's schema prevents).
func taskFamily(t *ecsv1alpha1.Task) string {
	ref, err := revision.ParseRef(t.Spec.TaskDefinition)
	if err != nil {
		return ""
	}
	return ref.Family
}
