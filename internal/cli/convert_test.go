package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func runConvert(t *testing.T, input string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "td.json")
	if err := os.WriteFile(path, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := NewRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"convert", path}, args...))
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestConvertPrintsManifestAndNotes(t *testing.T) {
	out, notes, err := runConvert(t, `{"family": "Web_App", "networkMode": "awsvpc", "cpu": "0.5 vCPU", "memory": "1 GB",
		"taskRoleArn": "arn:aws:iam::1:role/app", "revision": 3,
		"containerDefinitions": [{"name": "web", "image": "nginx:1.25", "portMappings": [{"containerPort": 80}],
			"secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/prod/db"}]}]}`, "-n", "prod")
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	var td ecsv1alpha1.TaskDefinition
	if err := yaml.UnmarshalStrict([]byte(out), &td); err != nil {
		t.Fatalf("the output is not a TaskDefinition manifest: %v\n%s", err, out)
	}
	if td.Name != "web-app" || td.Namespace != "prod" || td.Kind != "TaskDefinition" || td.Spec.NetworkMode != ecsv1alpha1.NetworkModeAWSVPC {
		t.Errorf("manifest %s/%s kind %s mode %s", td.Namespace, td.Name, td.Kind, td.Spec.NetworkMode)
	}
	if strings.Contains(out, "status") || strings.Contains(out, "creationTimestamp") {
		t.Errorf("the manifest carries server-set fields:\n%s", out)
	}
	if ref := td.Spec.ContainerDefinitions[0].Secrets[0].ValueFrom.SecretKeyRef; ref == nil || ref.Name != "prod-db" || ref.Key != "value" {
		t.Errorf("secret = %+v", td.Spec.ContainerDefinitions[0].Secrets[0].ValueFrom)
	}
	for _, want := range []string{`family "Web_App" is named "web-app"`, "revision dropped", "taskRoleArn", `Secret "prod-db"`} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestConvertRefusesAndPrintsNothing(t *testing.T) {
	out, _, err := runConvert(t, `{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "firelensConfiguration": {"type": "fluentbit"}}]}`)
	if err == nil || !strings.Contains(err.Error(), "containerDefinitions[0].firelensConfiguration") {
		t.Errorf("error %v, want one naming containerDefinitions[0].firelensConfiguration", err)
	}
	if out != "" {
		t.Errorf("printed a manifest despite the error:\n%s", out)
	}
}
