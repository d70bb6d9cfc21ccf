package ecsapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/ecsimport"
)

// shapeOf is a JSON document as the generic value specShape works on.
func shapeOf(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSpecShape: each spec field whose shape differs from ECS's is written in ECS's
// shape, and the result reads back through ecsimport as the same spec.
func TestSpecShape(t *testing.T) {
	mem := int32(256)
	spec := ecsv1alpha1.TaskDefinitionSpec{
		Cpu:                  &intstr.IntOrString{Type: intstr.Int, IntVal: 1024},
		Memory:               &intstr.IntOrString{Type: intstr.String, StrVal: "2 GB"},
		Tags:                 []ecsv1alpha1.Tag{{Key: "team", Value: "web"}},
		RevisionHistoryLimit: new(int32),
		NetworkMode:          ecsv1alpha1.NetworkModeAWSVPC,
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name: "app", Image: "demo:1", Memory: &mem,
			Secrets: []ecsv1alpha1.SecretVariable{
				{Name: "WHOLE", ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db-url", Key: "value"}}},
				{Name: "KEYED", ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}},
			},
			LogConfiguration: &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs,
				SecretOptions: []ecsv1alpha1.SecretVariable{{Name: "token", ValueFrom: ecsv1alpha1.SecretValueSource{
					ConfigMapKeyRef: &ecsv1alpha1.KeySelector{Name: "cfg", Key: "t"}}}}},
			PortMappings: []ecsv1alpha1.PortMapping{{ContainerPortRange: "8000-8010"}},
		}},
	}
	got, err := specShape(&spec, testARNs)
	if err != nil {
		t.Fatal(err)
	}
	want := shapeOf(t, `{
		"cpu": "1024", "memory": "2 GB", "networkMode": "awsvpc",
		"containerDefinitions": [{"name": "app", "image": "demo:1", "memory": 256,
			"secrets": [{"name": "WHOLE", "valueFrom": "db-url"},
				{"name": "KEYED", "valueFrom": "arn:aws:secretsmanager:eu-west-3:123456789012:secret:db:password::"}],
			"logConfiguration": {"logDriver": "awslogs", "secretOptions": [{"name": "token", "valueFrom": "configmap:cfg:t"}]},
			"portMappings": [{"containerPortRange": "8000-8010"}]}]}`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("specShape (-want +got):\n%s", diff)
	}

	// Back through `berth convert`'s rules: the same secrets (the ConfigMap key has
	// no ECS form, so it is left out here).
	got["family"] = "web"
	c := got["containerDefinitions"].([]any)[0].(map[string]any)
	delete(c["logConfiguration"].(map[string]any), "secretOptions")
	raw, _ := json.Marshal(got)
	res, err := ecsimport.Convert(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(spec.ContainerDefinitions[0].Secrets, res.TaskDefinition.Spec.ContainerDefinitions[0].Secrets); diff != "" {
		t.Errorf("secrets after a round trip (-want +got):\n%s", diff)
	}
}

func TestECSDefaults(t *testing.T) {
	tests := []struct {
		name      string
		in, want  string
		wantCompa []types.Compatibility
	}{{
		name: "bridge",
		in: `{"containerDefinitions": [{"name": "a", "portMappings": [{"containerPort": 80}, {"containerPortRange": "9000-9001"}],
			"healthCheck": {"command": ["CMD", "true"]}}], "volumes": [{"name": "scratch"}, {"name": "d", "dockerVolumeConfiguration": {}}]}`,
		want: `{"networkMode": "bridge", "placementConstraints": [],
			"volumes": [{"name": "scratch", "host": {}}, {"name": "d", "dockerVolumeConfiguration": {}}],
			"containerDefinitions": [{"name": "a", "cpu": 0, "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": [],
				"portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}, {"containerPortRange": "9000-9001", "protocol": "tcp"}],
				"healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3}}]}`,
		wantCompa: []types.Compatibility{types.CompatibilityExternal, types.CompatibilityEc2},
	}, {
		name: "awsvpc with task size, set members kept",
		in: `{"networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "a", "cpu": 10, "essential": false,
			"portMappings": [{"containerPort": 80, "protocol": "udp"}], "healthCheck": {"command": ["CMD", "true"], "interval": 10}}]}`,
		want: `{"networkMode": "awsvpc", "cpu": "256", "memory": "512", "volumes": [], "placementConstraints": [],
			"containerDefinitions": [{"name": "a", "cpu": 10, "essential": false, "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": [],
				"portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "udp"}],
				"healthCheck": {"command": ["CMD", "true"], "interval": 10, "timeout": 5, "retries": 3}}]}`,
		wantCompa: []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate},
	}, {
		name:      "awsvpc without task size",
		in:        `{"networkMode": "awsvpc", "containerDefinitions": []}`,
		want:      `{"networkMode": "awsvpc", "volumes": [], "placementConstraints": [], "containerDefinitions": []}`,
		wantCompa: []types.Compatibility{types.CompatibilityEc2},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := shapeOf(t, tc.in)
			ecsDefaults(got)
			if diff := cmp.Diff(shapeOf(t, tc.want), got); diff != "" {
				t.Errorf("ecsDefaults (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCompa, compatibilities(got)); diff != "" {
				t.Errorf("compatibilities (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRegistrationPatch: the patch recorded between what was sent and the spec's
// shape turns the spec's shape into what was sent, through a JSON round trip (it is
// stored in an annotation), and records nothing when they agree.
func TestRegistrationPatch(t *testing.T) {
	tests := []struct {
		name, want, got string
		wantSize        int
	}{
		{name: "equal", want: `{"a": [1, {"b": "c"}]}`, got: `{"a": [1, {"b": "c"}]}`},
		{name: "secret ARN", wantSize: 1,
			want: `{"containerDefinitions": [{"secrets": [{"name": "A", "valueFrom": "arn:aws:ssm:eu-west-3:1:parameter/a"}]}]}`,
			got:  `{"containerDefinitions": [{"secrets": [{"name": "A", "valueFrom": "a"}]}]}`},
		{name: "defaulted and dropped members", wantSize: 3,
			want: `{"containerDefinitions": [{"name": "a", "privileged": false, "ulimits": []}]}`,
			got:  `{"containerDefinitions": [{"name": "a", "stopTimeout": 30}]}`},
		{name: "lists of other lengths, keys with dots", wantSize: 3,
			want: `{"l": [1, 2], "dockerLabels": {"com.example.a": "1"}}`,
			got:  `{"l": [1], "dockerLabels": {"com.example.b": "1"}}`},
		{name: "types differ", wantSize: 1, want: `{"a": {"b": 1}}`, got: `{"a": [1]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := diffShapes(shapeOf(t, tc.want), shapeOf(t, tc.got))
			if size := len(reg.Set) + len(reg.Unset); size != tc.wantSize {
				t.Errorf("patch has %d operations, want %d: %+v", size, tc.wantSize, reg)
			}
			raw, err := json.Marshal(map[string]registration{"h": reg})
			if err != nil {
				t.Fatal(err)
			}
			stored := readRegistrations(map[string]string{ecsv1alpha1.AnnotationRegistrations: string(raw)})["h"]
			got := shapeOf(t, tc.got)
			stored.apply(got)
			if diff := cmp.Diff(shapeOf(t, tc.want), got); diff != "" {
				t.Errorf("patched (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDescribeShapeTakesEveryField fills every field of a spec and describes it: each
// must have a member in ECS's TaskDefinition, or describeShape fails (decoding is
// strict), so a field added to Berth's spec without its ECS shape fails here.
func TestDescribeShapeTakesEveryField(t *testing.T) {
	var spec ecsv1alpha1.TaskDefinitionSpec
	fill(reflect.ValueOf(&spec).Elem())
	// One source per secret, as the schema requires.
	for i := range spec.ContainerDefinitions {
		spec.ContainerDefinitions[i].Secrets[0].ValueFrom.ConfigMapKeyRef = nil
	}
	td, err := describeShape(&spec, nil, testARNs)
	if err != nil {
		t.Fatal(err)
	}
	c := td.ContainerDefinitions[0]
	if len(c.Secrets) != 1 || c.Secrets[0].ValueFrom == nil || c.LinuxParameters == nil || c.RestartPolicy == nil || len(td.Volumes) != 1 {
		t.Errorf("members lost: %+v", td)
	}
}

// fill sets every field of v to a non-zero value.
func fill(v reflect.Value) {
	if v.Type() == reflect.TypeOf(intstr.IntOrString{}) {
		v.Set(reflect.ValueOf(intstr.FromInt32(512)))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int32, reflect.Int64:
		v.SetInt(1)
	}
}
