package ecsapi

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// refusedNaming fails unless err is an InvalidParameterException naming member.
func refusedNaming(t *testing.T, err error, member string) {
	t.Helper()
	e := wire.ECS.AsError(err)
	if err == nil || e.Type != wire.InvalidParameterException || !strings.HasPrefix(e.Message, member+": ") {
		t.Errorf("error %v, want InvalidParameterException naming %s", err, member)
	}
}

func TestRunLaunch(t *testing.T) {
	for _, lt := range []types.LaunchType{"", types.LaunchTypeEc2, types.LaunchTypeExternal} {
		if err := runLaunch(lt, nil, nil); err != nil {
			t.Errorf("launchType %q: %v", lt, err)
		}
	}
	refusedNaming(t, runLaunch(types.LaunchTypeFargate, nil, nil), "launchType")
	refusedNaming(t, runLaunch(types.LaunchTypeManagedInstances, nil, nil), "launchType")
	refusedNaming(t, runLaunch("SPOT", nil, nil), "launchType")
	refusedNaming(t, runLaunch("", []types.CapacityProviderStrategyItem{{}}, nil), "capacityProviderStrategy")
	refusedNaming(t, runLaunch("", nil, aws.String("LATEST")), "platformVersion")
}

func TestTaskStartUnsupported(t *testing.T) {
	if err := taskStartUnsupported(false, nil, nil); err != nil {
		t.Fatal(err)
	}
	refusedNaming(t, taskStartUnsupported(true, nil, nil), "enableECSManagedTags")
	refusedNaming(t, taskStartUnsupported(false, aws.String("x"), nil), "referenceId")
	refusedNaming(t, taskStartUnsupported(false, nil, []types.TaskVolumeConfiguration{{}}), "volumeConfigurations")
}

func TestRunCount(t *testing.T) {
	for _, tc := range []struct {
		in   *int32
		want int
	}{{nil, 1}, {aws.Int32(1), 1}, {aws.Int32(10), 10}} {
		if got, err := runCount(tc.in); err != nil || got != tc.want {
			t.Errorf("runCount(%v) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, n := range []int32{0, 11, -1} {
		_, err := runCount(aws.Int32(n))
		refusedNaming(t, err, "count")
	}
}

func TestTaskGroupAndStarter(t *testing.T) {
	g, s, err := taskGroupAndStarter(nil, aws.String("ecs-svc/123_batch-7"), "My_Family")
	if err != nil || g != "family:My_Family" || s != "ecs-svc/123_batch-7" {
		t.Errorf("defaults: %q %q %v", g, s, err)
	}
	if g, _, _ := taskGroupAndStarter(aws.String("service:web"), nil, "web"); g != "service:web" {
		t.Errorf("group %q", g)
	}
	_, _, err = taskGroupAndStarter(aws.String(strings.Repeat("g", 256)), nil, "f")
	refusedNaming(t, err, "group")
	_, _, err = taskGroupAndStarter(nil, aws.String("job.42"), "f")
	refusedNaming(t, err, "startedBy")
	_, _, err = taskGroupAndStarter(nil, aws.String(strings.Repeat("s", 129)), "f")
	refusedNaming(t, err, "startedBy")
}

func TestTaskPlacement(t *testing.T) {
	cs := []types.PlacementConstraint{
		{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:stack == prod")},
		{Type: types.PlacementConstraintTypeDistinctInstance},
	}
	ss := []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}}
	gotC, gotS, err := taskPlacement(cs, ss, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantC := []ecsv1alpha1.PlacementConstraint{{Type: "memberOf", Expression: "attribute:stack == prod"}, {Type: "distinctInstance"}}
	wantS := []ecsv1alpha1.PlacementStrategy{{Type: "spread", Field: "attribute:ecs.availability-zone"}}
	if diff := cmp.Diff(wantC, gotC); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantS, gotS); diff != "" {
		t.Errorf("strategies (-want +got):\n%s", diff)
	}

	_, _, err = taskPlacement([]types.PlacementConstraint{{Type: "memberOf", Expression: aws.String("attribute:a ==")}}, nil, 0)
	refusedNaming(t, err, "placementConstraints[0].expression")
	_, _, err = taskPlacement(nil, []types.PlacementStrategy{{Type: "binpack", Field: aws.String("disk")}}, 0)
	refusedNaming(t, err, "placementStrategy[0].field")
	// The task definition's constraints count against ECS's limit of 10.
	_, _, err = taskPlacement(cs, nil, 9)
	refusedNaming(t, err, "placementConstraints")
	_, _, err = taskPlacement(nil, make([]types.PlacementStrategy, 6), 0)
	refusedNaming(t, err, "placementStrategy")
}

func TestTaskNetwork(t *testing.T) {
	vpc := func(c types.AwsVpcConfiguration) *types.NetworkConfiguration {
		return &types.NetworkConfiguration{AwsvpcConfiguration: &c}
	}
	ok := vpc(types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}})
	if err := taskNetwork(ok, ecsv1alpha1.NetworkModeAWSVPC); err != nil {
		t.Errorf("awsvpc: %v", err)
	}
	if err := taskNetwork(nil, ecsv1alpha1.NetworkModeBridge); err != nil {
		t.Errorf("none given: %v", err)
	}
	refusedNaming(t, taskNetwork(ok, ecsv1alpha1.NetworkModeBridge), "networkConfiguration")
	refusedNaming(t, taskNetwork(ok, ""), "networkConfiguration") // bridge by default
	refusedNaming(t, taskNetwork(&types.NetworkConfiguration{}, ecsv1alpha1.NetworkModeAWSVPC), "networkConfiguration.awsvpcConfiguration")
	refusedNaming(t, taskNetwork(vpc(types.AwsVpcConfiguration{}), ecsv1alpha1.NetworkModeAWSVPC), "networkConfiguration.awsvpcConfiguration.subnets")
	refusedNaming(t, taskNetwork(vpc(types.AwsVpcConfiguration{Subnets: []string{"s"}, AssignPublicIp: types.AssignPublicIpEnabled}), ecsv1alpha1.NetworkModeAWSVPC),
		"networkConfiguration.awsvpcConfiguration.assignPublicIp")
}

func TestTaskAnnotations(t *testing.T) {
	definition := []ecsv1alpha1.Tag{{Key: "team", Value: "payments"}, {Key: "tier", Value: "batch"}}
	request := []types.Tag{{Key: aws.String("tier"), Value: aws.String("nightly")}}

	got, err := taskAnnotations(definition, types.PropagateTagsTaskDefinition, request, types.LaunchTypeExternal)
	if err != nil {
		t.Fatal(err)
	}
	// The request's tags win over the task definition's.
	want := []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}, {Key: aws.String("tier"), Value: aws.String("nightly")}}
	if diff := cmp.Diff(want, tagsOf(got), cmp.AllowUnexported(types.Tag{})); diff != "" {
		t.Errorf("propagated tags (-want +got):\n%s", diff)
	}
	if got[annotationLaunchType] != "EXTERNAL" {
		t.Errorf("launch type annotation %q", got[annotationLaunchType])
	}

	got, err = taskAnnotations(definition, "", nil, types.LaunchTypeEc2)
	if err != nil || len(got) != 0 {
		t.Errorf("no propagation, EC2: %v %v", got, err)
	}
	_, err = taskAnnotations(definition, types.PropagateTagsService, nil, "")
	refusedNaming(t, err, "propagateTags")
	_, err = taskAnnotations(nil, "", []types.Tag{{Key: aws.String("aws:x")}}, "")
	refusedNaming(t, err, "tags")
}

func TestStopReason(t *testing.T) {
	if r, err := stopReason(aws.String("done")); err != nil || r != "done" {
		t.Errorf("%q %v", r, err)
	}
	_, err := stopReason(aws.String(strings.Repeat("r", 256)))
	refusedNaming(t, err, "reason")
}
