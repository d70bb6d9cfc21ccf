package validation

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestNotHonoured(t *testing.T) {
	awslogs := func(opts map[string]string) ecsv1alpha1.ContainerDefinition {
		return ecsv1alpha1.ContainerDefinition{Name: "app", LogConfiguration: &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs, Options: opts}}
	}
	cases := []struct {
		name string
		spec ecsv1alpha1.TaskDefinitionSpec
		want []string
	}{
		{name: "plain", spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{Name: "app"}}}},
		{
			name: "kept fields that have an effect are not listed",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				RequiresCompatibilities: []ecsv1alpha1.Compatibility{ecsv1alpha1.CompatibilityFargate},
				RuntimePlatform:         &ecsv1alpha1.RuntimePlatform{OperatingSystemFamily: ecsv1alpha1.OSFamilyLinux},
				Tags:                    []ecsv1alpha1.Tag{{Key: "team", Value: "web"}},
				ContainerDefinitions:    []ecsv1alpha1.ContainerDefinition{awslogs(map[string]string{"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs"})},
			},
		},
		{
			name: "roles, Fargate storage and CloudWatch-only options",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				TaskRoleArn:          "arn:aws:iam::123456789012:role/app",
				ExecutionRoleArn:     "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
				EphemeralStorage:     &ecsv1alpha1.EphemeralStorage{SizeInGiB: 30},
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{awslogs(map[string]string{"awslogs-region": "eu-west-1", "awslogs-group": "g"})},
			},
			want: []string{"spec.taskRoleArn", "spec.executionRoleArn", "spec.ephemeralStorage", "spec.containerDefinitions[0].logConfiguration.options[awslogs-region]"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, i := range NotHonoured(field.NewPath("spec"), &tc.spec) {
				if i.Why == "" {
					t.Errorf("%s: no reason", i.Field)
				}
				got = append(got, i.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NotHonoured fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaskMemoryString(t *testing.T) {
	app := func(mib int32) []ecsv1alpha1.ContainerDefinition {
		return []ecsv1alpha1.ContainerDefinition{{Name: "app", Memory: ptr.To(mib)}}
	}
	cases := []struct {
		name   string
		memory intstr.IntOrString
		c      []ecsv1alpha1.ContainerDefinition
		want   string
	}{
		{"GB holds the containers", intstr.FromString("0.5 GB"), app(512), ""},
		{"GB too small", intstr.FromString("0.5GB"), app(600), `spec.memory: Invalid value: "0.5GB": task memory (512 MiB) is smaller than the sum of the containers' memory limits (600 MiB)`},
		{"numeric string", intstr.FromString("256"), app(300), `spec.memory: Invalid value: "256": task memory (256 MiB) is smaller than the sum of the containers' memory limits (300 MiB)`},
		{"integer form is the schema's job", intstr.FromInt32(256), app(300), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{Memory: &tc.memory, ContainerDefinitions: tc.c}
			got := TaskDefinitionSpec(field.NewPath("spec"), spec).ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("error %v, want none", got)
			case tc.want != "" && (got == nil || got.Error() != tc.want):
				t.Errorf("error %v, want %s", got, tc.want)
			}
		})
	}
}
