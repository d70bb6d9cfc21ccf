package validation

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Ignored is a field a task definition sets that Berth keeps but does not act on,
// and why. Such definitions are accepted, so that ECS task definitions apply as they
// are; the TaskDefinition's Honoured condition and `berth convert` list these.
type Ignored struct {
	Field string
	Why   string
}

func (i Ignored) String() string { return i.Field + ": " + i.Why }

// NotHonoured lists the fields of spec (at path) that Berth keeps without effect, in
// field order. Fields Berth can never act on (EFS, FSx, proxyConfiguration, ...) are
// not here: the schema has no place for them, so they are refused by name.
func NotHonoured(path *field.Path, spec *ecsv1alpha1.TaskDefinitionSpec) []Ignored {
	var out []Ignored
	if spec.TaskRoleArn != "" {
		out = append(out, Ignored{path.Child("taskRoleArn").String(),
			"there is no IAM here: the task's containers get no role credentials (give them credentials through secrets)"})
	}
	if spec.ExecutionRoleArn != "" {
		out = append(out, Ignored{path.Child("executionRoleArn").String(),
			"there is no IAM here: images are pulled with repositoryCredentials and secrets are read from Kubernetes Secrets"})
	}
	if spec.EphemeralStorage != nil {
		out = append(out, Ignored{path.Child("ephemeralStorage").String(),
			"a Fargate setting: tasks use their instance's disk, without a size limit"})
	}
	for i, c := range spec.ContainerDefinitions {
		lc := c.LogConfiguration
		if lc != nil && len(lc.SecretOptions) > 0 {
			out = append(out, Ignored{path.Child("containerDefinitions").Index(i).Child("logConfiguration", "secretOptions").String(),
				"Berth's log drivers keep output on the instance and take no secret options"})
		}
		if lc == nil || lc.LogDriver != ecsv1alpha1.LogDriverAWSLogs {
			continue
		}
		for _, opt := range []string{"awslogs-region", "awslogs-create-group", "awslogs-endpoint", "awslogs-credentials-endpoint"} {
			if _, ok := lc.Options[opt]; ok {
				out = append(out, Ignored{path.Child("containerDefinitions").Index(i).Child("logConfiguration", "options").Key(opt).String(),
					"awslogs output is kept on the instance (as json-file keeps it), not sent to CloudWatch"})
			}
		}
	}
	return out
}
