package ecsapi

import (
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/inventory"
)

// A container instance's ID is its ContainerInstance name, which is also what
// placement expressions call instanceId and ec2InstanceId.

// instanceStatus is the status ECS shows: the one the scheduler acts on
// (inventory.Status), so that a drain shows DRAINING as soon as it is asked for.
func instanceStatus(ci *ecsv1alpha1.ContainerInstance) string {
	return string(inventory.Status(ci))
}

// instanceStatusFilter checks ListContainerInstances' status and reports whether an
// instance of status shown passes it. ECS lists every instance but the INACTIVE ones
// by default; Berth's INACTIVE instances are those being deregistered, which ECS
// calls DEREGISTERING while it happens.
func instanceStatusFilter(filter types.ContainerInstanceStatus) (func(shown string) bool, error) {
	inactive := string(ecsv1alpha1.InstanceInactive)
	switch filter {
	case "":
		return func(shown string) bool { return shown != inactive }, nil
	case types.ContainerInstanceStatusActive, types.ContainerInstanceStatusDraining, types.ContainerInstanceStatusRegistering:
		return func(shown string) bool { return shown == string(filter) }, nil
	case types.ContainerInstanceStatusDeregistering, types.ContainerInstanceStatus(inactive):
		return func(shown string) bool { return shown == inactive }, nil
	case types.ContainerInstanceStatusRegistrationFailed:
		// A Berth agent that fails to register has no object to list.
		return func(string) bool { return false }, nil
	}
	return nil, wire.InvalidParameter("status", "%q is not ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED", filter)
}

// instanceOut describes a ContainerInstance as ECS's DescribeContainerInstances does.
func instanceOut(arns ARNs, cluster string, ci *ecsv1alpha1.ContainerInstance, withTags, withHealth bool) types.ContainerInstance {
	out := types.ContainerInstance{
		ContainerInstanceArn: aws.String(arns.ContainerInstance(cluster, ci.Name)),
		Ec2InstanceId:        aws.String(ci.Name),
		Status:               aws.String(instanceStatus(ci)),
		AgentConnected:       ci.Status.AgentConnected,
		RunningTasksCount:    ci.Status.RunningTasksCount,
		PendingTasksCount:    ci.Status.PendingTasksCount,
		RegisteredResources:  instanceResources(ci.Status.RegisteredResources),
		RemainingResources:   instanceResources(ci.Status.RemainingResources),
		Attributes:           instanceAttributes(ci),
		RegisteredAt:         metaTime(ci.Status.RegisteredAt, &ci.CreationTimestamp),
		Version:              ci.Generation,
		Attachments:          []types.Attachment{},
	}
	if v := ci.Status.VersionInfo; v != nil {
		out.VersionInfo = &types.VersionInfo{AgentVersion: strOmitEmpty(v.AgentVersion)}
		if v.ContainerdVersion != "" {
			// ECS names the runtime's version dockerVersion; Berth's runtime is
			// containerd, and says so.
			out.VersionInfo.DockerVersion = aws.String("containerd " + v.ContainerdVersion)
		}
	}
	if withTags {
		out.Tags = tagsOf(ci.Annotations)
	}
	if withHealth {
		out.HealthStatus = instanceHealth(ci)
	}
	return out
}

// instanceResources is ECS's resource list: CPU and MEMORY as INTEGER, the taken
// host ports as PORTS and PORTS_UDP STRINGSETs, and GPU IDs as a GPU STRINGSET when
// the instance has any. An instance that has not reported resources has none.
func instanceResources(r *ecsv1alpha1.Resources) []types.Resource {
	if r == nil {
		return []types.Resource{}
	}
	out := []types.Resource{
		{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: int32(r.Cpu)},
		{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: int32(r.Memory)},
		{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: portStrings(r.Ports)},
		{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: portStrings(r.UDPPorts)},
	}
	if len(r.GPUs) > 0 {
		out = append(out, types.Resource{Name: aws.String("GPU"), Type: aws.String("STRINGSET"), StringSetValue: slices.Clone(r.GPUs)})
	}
	return out
}

func portStrings(ports []int32) []string {
	sorted := slices.Sorted(slices.Values(ports))
	out := make([]string, 0, len(sorted))
	for _, p := range sorted {
		out = append(out, strconv.Itoa(int(p)))
	}
	return out
}

// instanceAttributes are the instance's attributes, the agent's and the operator's
// merged (the operator's win, as placement sees them), by name.
func instanceAttributes(ci *ecsv1alpha1.ContainerInstance) []types.Attribute {
	attrs := inventory.Attributes(ci)
	out := make([]types.Attribute, 0, len(attrs))
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		out = append(out, types.Attribute{Name: aws.String(name), Value: strOmitEmpty(attrs[name])})
	}
	return out
}

// instanceHealth is ECS's CONTAINER_INSTANCE_HEALTH: the container runtime check,
// from the RuntimeReady condition the agent reports.
func instanceHealth(ci *ecsv1alpha1.ContainerInstance) *types.ContainerInstanceHealthStatus {
	c := meta.FindStatusCondition(ci.Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady)
	if c == nil {
		return &types.ContainerInstanceHealthStatus{OverallStatus: types.InstanceHealthCheckStateInsufficientData,
			Details: []types.InstanceHealthCheckResult{}}
	}
	state := types.InstanceHealthCheckStateImpaired
	if c.Status == metav1.ConditionTrue {
		state = types.InstanceHealthCheckStateOk
	}
	changed := c.LastTransitionTime.Time
	return &types.ContainerInstanceHealthStatus{
		OverallStatus: state,
		Details: []types.InstanceHealthCheckResult{{
			Type: types.InstanceHealthCheckTypeContainerRuntime, Status: state,
			LastStatusChange: &changed, LastUpdated: &changed, StatusReason: strOmitEmpty(c.Message),
		}},
	}
}
