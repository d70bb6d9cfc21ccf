package ecsapi

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

func twoContainers() *ecsv1alpha1.TaskDefinitionSpec {
	return &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
		{Name: "web", Image: "nginx"}, {Name: "log", Image: "fluent-bit"},
	}}
}

func TestTaskOverrides(t *testing.T) {
	cases := []struct {
		name       string
		in         *types.TaskOverride
		want       *ecsv1alpha1.TaskOverrides
		wantMember string // the member a refusal names; "" for success
	}{
		{name: "none", in: nil, want: nil},
		{name: "only names", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web")}}}, want: nil},
		{
			name: "every supported member",
			in: &types.TaskOverride{Cpu: aws.String("1 vCPU"), Memory: aws.String("2 GB"), ContainerOverrides: []types.ContainerOverride{{
				Name: aws.String("web"), Command: []string{"sh", "-c", "date"},
				Environment: []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("batch")}},
				Cpu:         aws.Int32(512), Memory: aws.Int32(256), MemoryReservation: aws.Int32(128),
			}}},
			want: &ecsv1alpha1.TaskOverrides{Cpu: ptr.To[int32](1024), Memory: ptr.To[int32](2048), ContainerOverrides: []ecsv1alpha1.ContainerOverride{{
				Name: "web", Command: []string{"sh", "-c", "date"},
				Environment: []ecsv1alpha1.KeyValuePair{{Name: "MODE", Value: "batch"}},
				Cpu:         ptr.To[int32](512), Memory: ptr.To[int32](256), MemoryReservation: ptr.To[int32](128),
			}}},
		},
		{name: "task role", in: &types.TaskOverride{TaskRoleArn: aws.String("arn:aws:iam::1:role/x")}, wantMember: "overrides.taskRoleArn"},
		{name: "execution role", in: &types.TaskOverride{ExecutionRoleArn: aws.String("arn:aws:iam::1:role/x")}, wantMember: "overrides.executionRoleArn"},
		{name: "ephemeral storage", in: &types.TaskOverride{EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 30}}, wantMember: "overrides.ephemeralStorage"},
		{name: "accelerators", in: &types.TaskOverride{InferenceAcceleratorOverrides: []types.InferenceAcceleratorOverride{{}}}, wantMember: "overrides.inferenceAcceleratorOverrides"}, //nolint:staticcheck // clients may still send it
		{name: "cpu out of range", in: &types.TaskOverride{Cpu: aws.String("64")}, wantMember: "overrides.cpu"},
		{name: "memory not a size", in: &types.TaskOverride{Memory: aws.String("lots")}, wantMember: "overrides.memory"},
		{name: "container without name", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Command: []string{"x"}}}}, wantMember: "overrides.containerOverrides[0].name"},
		{name: "unknown container", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("db")}}}, wantMember: "overrides.containerOverrides[0].name"},
		{name: "container twice", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web")}, {Name: aws.String("web")}}}, wantMember: "overrides.containerOverrides[1].name"},
		{name: "environment files", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), EnvironmentFiles: []types.EnvironmentFile{{}}}}}, wantMember: "overrides.containerOverrides[0].environmentFiles"},
		{name: "resource requirements", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("log"), ResourceRequirements: []types.ResourceRequirement{{}}}}}, wantMember: "overrides.containerOverrides[0].resourceRequirements"},
		{name: "unnamed variable", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), Environment: []types.KeyValuePair{{Value: aws.String("v")}}}}}, wantMember: "overrides.containerOverrides[0].environment[0].name"},
		{name: "reservation above memory", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), Memory: aws.Int32(64), MemoryReservation: aws.Int32(128)}}}, wantMember: "overrides.containerOverrides[0].memoryReservation"},
		{name: "longer than 8192", in: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), Command: []string{strings.Repeat("x", 8200)}}}}, wantMember: "overrides"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := taskOverrides(tc.in, twoContainers())
			if tc.wantMember != "" {
				e := wire.ECS.AsError(err)
				if e.Type != wire.InvalidParameterException || !strings.HasPrefix(e.Message, tc.wantMember+": ") {
					t.Fatalf("error %v, want InvalidParameterException naming %s", err, tc.wantMember)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("overrides (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOverridesOut(t *testing.T) {
	o := &ecsv1alpha1.TaskOverrides{Memory: ptr.To[int32](512), ContainerOverrides: []ecsv1alpha1.ContainerOverride{
		{Name: "log", Command: []string{"run"}, Environment: []ecsv1alpha1.KeyValuePair{{Name: "A", Value: "1"}}},
	}}
	want := &types.TaskOverride{
		Memory: aws.String("512"),
		ContainerOverrides: []types.ContainerOverride{
			{Name: aws.String("web")},
			{Name: aws.String("log"), Command: []string{"run"}, Environment: []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}}},
		},
	}
	if diff := cmp.Diff(want, overridesOut(o, twoContainers()), cmp.AllowUnexported(types.TaskOverride{}, types.ContainerOverride{}, types.KeyValuePair{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without the revision, the overridden containers are all that is known.
	got := overridesOut(o, nil)
	if len(got.ContainerOverrides) != 1 || aws.ToString(got.ContainerOverrides[0].Name) != "log" {
		t.Errorf("without a spec: %+v", got.ContainerOverrides)
	}
}
