package ecsimport

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestSecretRef(t *testing.T) {
	cases := []struct {
		in, name, key, err string
	}{
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123", name: "prod-db", key: "value"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC123:password::", name: "prod-db", key: "password"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:MyPartial", name: "mypartial", key: "value"},
		{in: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC123:pw:AWSPREVIOUS:", err: "version stages"},
		{in: "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/api/token", name: "prod-api-token", key: "value"},
		{in: "arn:aws:ssm:eu-west-1:123456789012:parameter/Token_1", name: "token-1", key: "value"},
		{in: "/prod/api/token", name: "prod-api-token", key: "value"},
		{in: "DB_URL", name: "db-url", key: "value"},
		{in: "arn:aws:s3:::bucket/key", err: "only Secrets Manager and SSM"},
		{in: "arn:aws:ssm", err: "not an ARN"},
		{in: " ", err: "empty"},
		{in: "///", err: "names no secret"},
	}
	for _, tc := range cases {
		got, err := SecretRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SecretRef(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Name != tc.name || got.Key != tc.key {
			t.Errorf("SecretRef(%q) = %+v, %v; want %s/%s", tc.in, got, err, tc.name, tc.key)
		}
	}
}

func TestKubeName(t *testing.T) {
	for in, want := range map[string]string{
		"web":          "web",
		"My_App":       "my-app",
		"--a__b..":     "a-b",
		"api.v2":       "api.v2",
		"prod/db/pass": "prod-db-pass",
	} {
		if got := KubeName(in, 253); got != want {
			t.Errorf("KubeName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := KubeName(strings.Repeat("a", 300), 200); len(got) != 200 {
		t.Errorf("kubeName of 300 letters has %d, want 200", len(got))
	}
}

func TestConvert(t *testing.T) {
	const describeOutput = `{"taskDefinition": {
		"taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7",
		"family": "web", "revision": 7, "status": "ACTIVE",
		"requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
		"compatibilities": ["EC2", "FARGATE"], "registeredAt": "2024-01-01T00:00:00Z",
		"networkMode": "host", "cpu": "1 vCPU", "memory": "2048",
		"containerDefinitions": [{"name": "app", "image": "demo:1", "memory": 256,
			"environment": [{"name": "EMPTY"}], "resourceRequirements": [{"type": "GPU", "value": "2"}],
			"repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:1:secret:registry-Xy12Zq"}}],
		"volumes": [{"name": "scratch", "host": {}}, {"name": "data", "host": {"sourcePath": "/srv/data"}}]
	}, "tags": [{"key": "team", "value": "web"}]}`
	res, err := Convert([]byte(describeOutput), "prod")
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	td := res.TaskDefinition
	if td.Name != "web" || td.Namespace != "prod" || td.Kind != "TaskDefinition" {
		t.Errorf("object %s/%s kind %s", td.Namespace, td.Name, td.Kind)
	}
	spec := td.Spec
	if *spec.Cpu != intstr.FromString("1 vCPU") || *spec.Memory != intstr.FromString("2048") || spec.NetworkMode != ecsv1alpha1.NetworkModeHost {
		t.Errorf("task fields = %v %v %v", spec.Cpu, spec.Memory, spec.NetworkMode)
	}
	if diff := cmp.Diff([]ecsv1alpha1.Tag{{Key: "team", Value: "web"}}, spec.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ecsv1alpha1.ResourceRequirement{{Type: ecsv1alpha1.ResourceGPU, Value: "2"}}, spec.ContainerDefinitions[0].ResourceRequirements); diff != "" {
		t.Errorf("resourceRequirements (-want +got):\n%s", diff)
	}
	if spec.ContainerDefinitions[0].RepositoryCredentials.CredentialsParameter != "registry" {
		t.Errorf("repositoryCredentials = %+v", spec.ContainerDefinitions[0].RepositoryCredentials)
	}
	if spec.Volumes[0].Host != nil || spec.Volumes[1].Host == nil || spec.Volumes[1].Host.SourcePath != "/srv/data" {
		t.Errorf("volumes = %+v", spec.Volumes)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"taskDefinitionArn dropped", "revision dropped", "requiresAttributes dropped", "compatibilities dropped",
		"registeredAt dropped", "status dropped", "volumes[0].host", `Secret "registry"`} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestConvertNamespacesAndTerminals: ECS's task-level namespaces and the
// containers' terminal fields are carried as they are.
func TestConvertNamespacesAndTerminals(t *testing.T) {
	res, err := Convert([]byte(`{"family": "f", "pidMode": "task", "ipcMode": "none", "containerDefinitions": [
		{"name": "shell", "image": "x", "memory": 64, "interactive": true, "pseudoTerminal": true},
		{"name": "cat", "image": "x", "memory": 64, "interactive": true, "pseudoTerminal": false}]}`), "")
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	spec := res.TaskDefinition.Spec
	if spec.PidMode != ecsv1alpha1.NamespaceModeTask || spec.IpcMode != ecsv1alpha1.NamespaceModeNone {
		t.Errorf("pidMode %q ipcMode %q, want task and none", spec.PidMode, spec.IpcMode)
	}
	var got [][2]bool
	for _, c := range spec.ContainerDefinitions {
		got = append(got, [2]bool{c.Interactive, c.PseudoTerminal})
	}
	if diff := cmp.Diff([][2]bool{{true, true}, {true, false}}, got); diff != "" {
		t.Errorf("interactive, pseudoTerminal (-want +got):\n%s", diff)
	}
}

func TestConvertRefusesByField(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"no family", `{"containerDefinitions": [{"name": "a", "image": "x"}]}`, []string{"family: Required value"}},
		{"never here", `{"family": "f", "proxyConfiguration": {"type": "APPMESH"},
			"containerDefinitions": [{"name": "a", "image": "x", "firelensConfiguration": {"type": "fluentbit"}}],
			"volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]}`,
			[]string{"proxyConfiguration: Forbidden: App Mesh", "containerDefinitions[0].firelensConfiguration: Forbidden: FireLens",
				"volumes[0].efsVolumeConfiguration: Forbidden: Amazon EFS"}},
		{"inference accelerator", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x",
			"resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "InferenceAccelerator", "value": "device_1"}]}]}`,
			[]string{"containerDefinitions[0].resourceRequirements[1].type: Forbidden: Elastic Inference"}},
		{"typo", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "portMapings": [{"containerPort": 80}]}]}`,
			[]string{"containerDefinitions[0].portMapings: Forbidden: unknown field: not in ECS's task definition either"}},
		{"bad secret", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x",
			"secrets": [{"name": "S", "valueFrom": "arn:aws:s3:::b/k"}]}]}`,
			[]string{"containerDefinitions[0].secrets[0].valueFrom: Invalid value"}},
		{"a string where ECS has a number", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "cpu": "256"}]}`,
			[]string{"containerDefinitions.cpu: Invalid value: \"string\": must be of type int32"}},
		{"a Docker volume plugin", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x"}],
			"volumes": [{"name": "v", "dockerVolumeConfiguration": {"scope": "shared", "driver": "rexray/ebs"}},
				{"name": "w", "dockerVolumeConfiguration": {"driverOpts": {"type": "nfs", "device": ":/export"}}}]}`,
			[]string{"volumes[0].dockerVolumeConfiguration.driver: Forbidden: driver \"rexray/ebs\" is a Docker volume plugin",
				"volumes[1].dockerVolumeConfiguration.driverOpts.type: Forbidden: type \"nfs\""}},
		{"s3 environment file", `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x",
			"environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::b/k.env"}]}]}`,
			[]string{"containerDefinitions[0].environmentFiles[0].type: Forbidden: S3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]byte(tc.in), "")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want *Error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%s", want, err)
				}
			}
		})
	}
}

// TestConvertDockerVolumes: ECS's Docker volumes convert field for field (the
// conformance suite's task-local-vol and a shared one), with a note on where a shared
// volume is shared.
func TestConvertDockerVolumes(t *testing.T) {
	const in = `{"family": "vols", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64}],
		"volumes": [
			{"name": "task-local", "dockerVolumeConfiguration": {"scope": "task", "driver": "local",
				"driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}, "labels": {"mylables": "test"}}},
			{"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}}]}`
	res, err := Convert([]byte(in), "prod")
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	want := []ecsv1alpha1.Volume{
		{Name: "task-local", DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{Scope: "task", Driver: "local",
			DriverOpts: &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs", Device: "tmpfs", O: "size=64m"}, Labels: map[string]string{"mylables": "test"}}},
		{Name: "shared", DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{Scope: "shared", Autoprovision: true, Driver: "local"}},
	}
	if diff := cmp.Diff(want, res.TaskDefinition.Spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "volumes[1].dockerVolumeConfiguration: a shared volume is shared by the tasks of the TaskDefinition's namespace") {
		t.Errorf("notes lack the shared volume's:\n%s", notes)
	}
}

// TestConvertVersionConsistency: versionConsistency is carried as written.
func TestConvertVersionConsistency(t *testing.T) {
	res, err := Convert([]byte(`{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64,
		"versionConsistency": "disabled"}]}`), "ns")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.TaskDefinition.Spec.ContainerDefinitions[0].VersionConsistency; got != ecsv1alpha1.VersionConsistencyDisabled {
		t.Errorf("versionConsistency %q, want disabled", got)
	}
}
