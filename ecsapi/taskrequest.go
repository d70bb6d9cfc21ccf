package ecsapi

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/placement"
)

// The members of RunTask and StartTask that are checked before anything is read:
// what Berth cannot do is refused by name, what it can is mapped onto a Task.

// ECS's bounds on the members of RunTask and StartTask.
const (
	maxRunCount            = 10
	maxTaskConstraints     = 10
	maxTaskStrategies      = 5
	maxGroup               = 255
	maxSubnets             = 16
	maxSecurityGroups      = 5
	maxStartTaskInstances  = 10
	maxDescribeTasks       = 100
	maxStopReason          = 255
	defaultTaskGroupPrefix = "family:"
)

// startedByPattern is ECS's grammar for startedBy.
var startedByPattern = regexp.MustCompile(`^[a-zA-Z0-9_/-]{1,128}$`)

// taskStartUnsupported refuses the members RunTask and StartTask share that need AWS.
// enableExecuteCommand is served: it lets `berth exec` into the task (docs/exec.md).
func taskStartUnsupported(managedTags bool, referenceID *string, volumes []types.TaskVolumeConfiguration) error {
	switch {
	case managedTags:
		return wire.InvalidParameter("enableECSManagedTags", "ECS managed tags (aws:ecs:*) are not supported by Berth")
	case aws.ToString(referenceID) != "":
		return wire.InvalidParameter("referenceId", "is reserved for Amazon ECS's own use")
	case len(volumes) > 0:
		return wire.InvalidParameter("volumeConfigurations", "EBS volumes configured at launch need AWS; use the task definition's volumes")
	}
	return nil
}

// runLaunch checks RunTask's choice of infrastructure: Berth's container instances
// are ECS's EC2 or EXTERNAL capacity; Fargate, managed instances and capacity
// providers are AWS's.
func runLaunch(launch types.LaunchType, providers []types.CapacityProviderStrategyItem, platformVersion *string) error {
	switch {
	case len(providers) > 0:
		return wire.InvalidParameter("capacityProviderStrategy", "capacity providers are Auto Scaling groups and Fargate; Berth runs tasks on the cluster's container instances (launchType EC2)")
	case aws.ToString(platformVersion) != "":
		return wire.InvalidParameter("platformVersion", "platform versions are Fargate's; Berth runs tasks on container instances (launchType EC2)")
	}
	switch launch {
	case "", types.LaunchTypeEc2, types.LaunchTypeExternal:
		return nil
	case types.LaunchTypeFargate, types.LaunchTypeManagedInstances:
		return wire.InvalidParameter("launchType", "%s is not supported by Berth: tasks run on the cluster's container instances (EC2 or EXTERNAL)", launch)
	}
	return wire.InvalidParameter("launchType", "%q is not EC2, EXTERNAL, FARGATE or MANAGED_INSTANCES", launch)
}

// runCount is RunTask's count: 1 to 10, 1 by default.
func runCount(count *int32) (int, error) {
	if count == nil {
		return 1, nil
	}
	if *count < 1 || *count > maxRunCount {
		return 0, wire.InvalidParameter("count", "must be between 1 and %d", maxRunCount)
	}
	return int(*count), nil
}

// taskGroupAndStarter checks group and startedBy; the group defaults to
// family:<family>, as in ECS.
func taskGroupAndStarter(group, startedBy *string, family string) (string, string, error) {
	g := aws.ToString(group)
	if g == "" {
		g = defaultTaskGroupPrefix + family
	}
	if len(g) > maxGroup {
		return "", "", wire.InvalidParameter("group", "must be at most %d characters", maxGroup)
	}
	s := aws.ToString(startedBy)
	if s != "" && !startedByPattern.MatchString(s) {
		return "", "", wire.InvalidParameter("startedBy", "up to 128 letters, numbers, hyphens (-), forward slashes (/) and underscores (_) are allowed")
	}
	return g, s, nil
}

// taskPlacement maps RunTask's placement members. ECS counts the task definition's
// constraints against the limit of 10.
func taskPlacement(cs []types.PlacementConstraint, ss []types.PlacementStrategy, fromDefinition int) ([]ecsv1alpha1.PlacementConstraint, []ecsv1alpha1.PlacementStrategy, error) {
	if len(cs)+fromDefinition > maxTaskConstraints {
		return nil, nil, wire.InvalidParameter("placementConstraints", "a task has at most %d constraints, its task definition's %d included", maxTaskConstraints, fromDefinition)
	}
	if len(ss) > maxTaskStrategies {
		return nil, nil, wire.InvalidParameter("placementStrategy", "at most %d strategies", maxTaskStrategies)
	}
	var constraints []ecsv1alpha1.PlacementConstraint
	for _, c := range cs {
		constraints = append(constraints, ecsv1alpha1.PlacementConstraint{
			Type: ecsv1alpha1.PlacementConstraintType(c.Type), Expression: aws.ToString(c.Expression)})
	}
	var strategies []ecsv1alpha1.PlacementStrategy
	for _, s := range ss {
		strategies = append(strategies, ecsv1alpha1.PlacementStrategy{
			Type: ecsv1alpha1.PlacementStrategyType(s.Type), Field: aws.ToString(s.Field)})
	}
	if _, err := placement.ParseConstraints(constraints); err != nil {
		return nil, nil, placementError(err)
	}
	if err := placement.ValidateStrategies(strategies); err != nil {
		return nil, nil, placementError(err)
	}
	return constraints, strategies, nil
}

// placementError is a placement field error as ECS's InvalidParameterException,
// naming the member (placementConstraints[0].expression: position 12: ...).
func placementError(err error) error {
	var fe *placement.FieldError
	if errors.As(err, &fe) {
		return wire.Errorf(wire.InvalidParameterException, "%s", fe.Error())
	}
	return wire.Errorf(wire.InvalidParameterException, "%v", err)
}

// taskNetwork checks networkConfiguration against the task definition's network
// mode, as ECS does. For awsvpc it is accepted and its subnets and security groups are
// not applied: a Berth task's address is on its instance's task network.
func taskNetwork(nc *types.NetworkConfiguration, mode ecsv1alpha1.NetworkMode) error {
	if nc == nil {
		return nil
	}
	if mode != ecsv1alpha1.NetworkModeAWSVPC {
		return wire.InvalidParameter("networkConfiguration", "Network Configuration is not valid for the given networkMode of this task definition.")
	}
	vpc := nc.AwsvpcConfiguration
	switch {
	case vpc == nil:
		return wire.InvalidParameter("networkConfiguration.awsvpcConfiguration", "is required")
	case len(vpc.Subnets) == 0:
		return wire.InvalidParameter("networkConfiguration.awsvpcConfiguration.subnets", "subnets can not be empty.")
	case len(vpc.Subnets) > maxSubnets:
		return wire.InvalidParameter("networkConfiguration.awsvpcConfiguration.subnets", "at most %d subnets", maxSubnets)
	case len(vpc.SecurityGroups) > maxSecurityGroups:
		return wire.InvalidParameter("networkConfiguration.awsvpcConfiguration.securityGroups", "at most %d security groups", maxSecurityGroups)
	case vpc.AssignPublicIp == types.AssignPublicIpEnabled:
		return wire.InvalidParameter("networkConfiguration.awsvpcConfiguration.assignPublicIp", "Assign public IP is not supported for this launch type.")
	}
	return nil
}

// taskAnnotations are a new task's ECS tags (the task definition's first when
// propagateTags is TASK_DEFINITION, then the request's) and its launch type.
func taskAnnotations(definitionTags []ecsv1alpha1.Tag, propagate types.PropagateTags, tags []types.Tag, launch types.LaunchType) (map[string]string, error) {
	out := map[string]string{}
	switch propagate {
	case "", types.PropagateTagsNone:
	case types.PropagateTagsTaskDefinition:
		inherited := make([]types.Tag, 0, len(definitionTags))
		for _, t := range definitionTags {
			inherited = append(inherited, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
		}
		if err := setTags(&out, inherited, nil); err != nil {
			return nil, err
		}
	case types.PropagateTagsService:
		return nil, wire.InvalidParameter("propagateTags", "SERVICE propagates a service's tags to its tasks; a standalone task takes TASK_DEFINITION or NONE")
	default:
		return nil, wire.InvalidParameter("propagateTags", "%q is not TASK_DEFINITION, SERVICE or NONE", propagate)
	}
	if err := setTags(&out, tags, nil); err != nil {
		return nil, err
	}
	if launch == types.LaunchTypeExternal {
		out[annotationLaunchType] = string(types.LaunchTypeExternal)
	}
	return out, nil
}

// stopReason checks StopTask's reason against ECS's bound.
func stopReason(reason *string) (string, error) {
	r := aws.ToString(reason)
	if len(r) > maxStopReason {
		return "", wire.InvalidParameter("reason", "Up to %d characters are allowed in this message, this one has %d", maxStopReason, len(r))
	}
	return r, nil
}

// describeCount checks the number of references of a Describe call.
func describeCount(member string, n, max int, empty string) error {
	switch {
	case n == 0:
		return wire.Errorf(wire.InvalidParameterException, "%s", empty)
	case n > max:
		return wire.InvalidParameter(member, "at most %d per call, got %d", max, n)
	}
	return nil
}

// taskRefMember names the i-th element of a list member in messages.
func taskRefMember(member string, i int) string { return fmt.Sprintf("%s[%d]", member, i) }
