package ecsapi

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func viewInstance() *ecsv1alpha1.ContainerInstance {
	registered := metav1.NewTime(time.Unix(1700000000, 0))
	return &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "i-1", Generation: 4},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: "prod",
			Attributes: []ecsv1alpha1.Attribute{{Name: "stack", Value: "prod"}, {Name: "ecs.instance-type", Value: "big"}}},
		Status: ecsv1alpha1.ContainerInstanceStatus{
			AgentConnected:      true,
			RegisteredResources: &ecsv1alpha1.Resources{Cpu: 4096, Memory: 8192, Ports: []int32{2376, 22}, UDPPorts: []int32{22}},
			RemainingResources:  &ecsv1alpha1.Resources{Cpu: 3072, Memory: 7168, Ports: []int32{22, 2376, 32768}, UDPPorts: []int32{22}, GPUs: []string{"1"}},
			RunningTasksCount:   2, PendingTasksCount: 1, RegisteredAt: &registered,
			Attributes:  []ecsv1alpha1.Attribute{{Name: "ecs.os-type", Value: "linux"}, {Name: "ecs.instance-type", Value: "small"}, {Name: "spot"}},
			VersionInfo: &ecsv1alpha1.VersionInfo{AgentVersion: "0.9.0", ContainerdVersion: "2.0.1"},
			Conditions: []metav1.Condition{{Type: ecsv1alpha1.InstanceConditionRuntimeReady, Status: metav1.ConditionFalse,
				Reason: "RuntimeDown", Message: "containerd unreachable", LastTransitionTime: registered}},
		},
	}
}

var ignoreInstanceSerde = cmp.AllowUnexported(types.ContainerInstance{}, types.Resource{}, types.Attribute{}, types.VersionInfo{},
	types.ContainerInstanceHealthStatus{}, types.InstanceHealthCheckResult{})

func TestInstanceOut(t *testing.T) {
	got := instanceOut(testARNs, "Prod", viewInstance(), false, true)
	at := time.Unix(1700000000, 0)
	want := types.ContainerInstance{
		ContainerInstanceArn: aws.String("arn:aws:ecs:eu-west-3:123456789012:container-instance/Prod/i-1"),
		Ec2InstanceId:        aws.String("i-1"),
		Status:               aws.String("ACTIVE"),
		AgentConnected:       true,
		RunningTasksCount:    2,
		PendingTasksCount:    1,
		RegisteredResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 8192},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22", "2376"}},
			{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22"}},
		},
		RemainingResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 3072},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 7168},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22", "2376", "32768"}},
			{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22"}},
			{Name: aws.String("GPU"), Type: aws.String("STRINGSET"), StringSetValue: []string{"1"}},
		},
		// The operator's value wins over the agent's; a flag attribute has no value.
		Attributes: []types.Attribute{
			{Name: aws.String("ecs.instance-type"), Value: aws.String("big")},
			{Name: aws.String("ecs.os-type"), Value: aws.String("linux")},
			{Name: aws.String("spot")},
			{Name: aws.String("stack"), Value: aws.String("prod")},
		},
		RegisteredAt: &at,
		Version:      4,
		VersionInfo:  &types.VersionInfo{AgentVersion: aws.String("0.9.0"), DockerVersion: aws.String("containerd 2.0.1")},
		Attachments:  []types.Attachment{},
		HealthStatus: &types.ContainerInstanceHealthStatus{OverallStatus: types.InstanceHealthCheckStateImpaired,
			Details: []types.InstanceHealthCheckResult{{Type: types.InstanceHealthCheckTypeContainerRuntime, Status: types.InstanceHealthCheckStateImpaired,
				LastStatusChange: &at, LastUpdated: &at, StatusReason: aws.String("containerd unreachable")}}},
	}
	if diff := cmp.Diff(want, got, ignoreInstanceSerde); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInstanceOutStates(t *testing.T) {
	draining := viewInstance()
	draining.Spec.Draining = true
	registering := viewInstance()
	registering.Status.RegisteredResources, registering.Status.RemainingResources = nil, nil
	cases := map[string]struct {
		ci         *ecsv1alpha1.ContainerInstance
		wantStatus string
	}{
		"draining at once":       {draining, "DRAINING"},
		"registering, no totals": {registering, "REGISTERING"},
	}
	for name, tc := range cases {
		got := instanceOut(testARNs, "Prod", tc.ci, true, false)
		if aws.ToString(got.Status) != tc.wantStatus || got.Tags == nil || got.HealthStatus != nil {
			t.Errorf("%s: status %s tags %v health %v", name, aws.ToString(got.Status), got.Tags, got.HealthStatus)
		}
	}
	if got := instanceOut(testARNs, "Prod", registering, false, false); len(got.RegisteredResources) != 0 || got.RegisteredResources == nil {
		t.Errorf("registering instance resources %v, want an empty list", got.RegisteredResources)
	}
}

func TestInstanceStatusFilter(t *testing.T) {
	shown := []string{"ACTIVE", "DRAINING", "REGISTERING", "INACTIVE"}
	cases := map[types.ContainerInstanceStatus][]string{
		"":                    {"ACTIVE", "DRAINING", "REGISTERING"},
		"ACTIVE":              {"ACTIVE"},
		"DRAINING":            {"DRAINING"},
		"REGISTERING":         {"REGISTERING"},
		"DEREGISTERING":       {"INACTIVE"},
		"INACTIVE":            {"INACTIVE"},
		"REGISTRATION_FAILED": nil,
	}
	for filter, want := range cases {
		ok, err := instanceStatusFilter(filter)
		if err != nil {
			t.Fatalf("%q: %v", filter, err)
		}
		var got []string
		for _, s := range shown {
			if ok(s) {
				got = append(got, s)
			}
		}
		if !cmp.Equal(want, got) {
			t.Errorf("status %q passes %v, want %v", filter, got, want)
		}
	}
	_, err := instanceStatusFilter("BUSY")
	refusedNaming(t, err, "status")
}
