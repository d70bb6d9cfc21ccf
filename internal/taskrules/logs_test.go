package taskrules

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestAWSLogs(t *testing.T) {
	const uid = "6f1c2a4e-9b7d-4c1e-8f3a-2d5b7c9e0a14"
	tests := []struct {
		name string
		lc   *ecsv1alpha1.LogConfiguration
		want *ecsv1alpha1.AWSLogStream
	}{
		{"no log configuration", nil, nil},
		{"json-file", &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverJSONFile}, nil},
		{"with a stream prefix: prefix/container/task-id",
			&ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs, Options: map[string]string{
				"awslogs-group": "/ecs/web", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs"}},
			&ecsv1alpha1.AWSLogStream{Group: "/ecs/web", Region: "eu-west-1", Stream: "ecs/app/6f1c2a4e9b7d4c1e8f3a2d5b7c9e0a14"}},
		{"without a prefix: the container's runtime ID",
			&ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs, Options: map[string]string{"awslogs-group": "/ecs/web"}},
			&ecsv1alpha1.AWSLogStream{Group: "/ecs/web", Stream: uid + "-app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, AWSLogs(tc.lc, "app", uid+"-app", uid)); diff != "" {
				t.Errorf("AWSLogs (-want +got):\n%s", diff)
			}
		})
	}
	if got := TaskID(uid); len(got) != 32 {
		t.Errorf("TaskID %q is not ECS's 32 hexadecimal digits", got)
	}
}
