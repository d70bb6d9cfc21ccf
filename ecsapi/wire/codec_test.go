package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestMarshalShapes(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123e6, time.UTC)
	out := &ecs.DescribeTasksOutput{
		Tasks: []types.Task{{
			TaskArn:    aws.String("arn:aws:ecs:us-east-1:000000000000:task/default/0123"),
			LastStatus: aws.String("RUNNING"),
			CreatedAt:  &at,
			Containers: []types.Container{{Name: aws.String("web"), ExitCode: aws.Int32(0)}},
			Overrides:  &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Command: []string{""}}}},
			LaunchType: types.LaunchTypeEc2,
		}},
		Failures: []types.Failure{},
	}
	got, err := ECS.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	task := doc["tasks"].([]any)[0].(map[string]any)
	want := map[string]any{
		"taskArn":    "arn:aws:ecs:us-east-1:000000000000:task/default/0123",
		"lastStatus": "RUNNING",
		"createdAt":  1.796551200123e9,
		"launchType": "EC2",
		// Zero-valued non-pointer members are in the model with defaults: kept.
		"enableExecuteCommand": false,
		"version":              0.0,
		"containers":           []any{map[string]any{"name": "web", "exitCode": 0.0}},
		// An empty string in a list is a value.
		"overrides": map[string]any{"containerOverrides": []any{map[string]any{"command": []any{""}}}},
	}
	if !reflect.DeepEqual(task, want) {
		t.Errorf("task encoded as\n%v\nwant\n%v", task, want)
	}
	if f, ok := doc["failures"].([]any); !ok || len(f) != 0 {
		t.Errorf("failures = %v, want an empty list (ECS always answers it)", doc["failures"])
	}
	if _, ok := doc["nextToken"]; ok {
		t.Error("nil members must be left out")
	}
}

func TestUnmarshal(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		wantPath string // "" for success
	}{
		{name: "ok", body: `{"cluster":"c","count":2,"overrides":{"containerOverrides":[{"name":"web","command":["a"]}]},"tags":[{"key":"k","value":"v"}]}`},
		{name: "empty body", body: ``},
		{name: "null is absent", body: `{"cluster":null}`},
		{name: "string for number", body: `{"count":"2"}`, wantPath: "count"},
		{name: "number too big", body: `{"count":4294967296}`, wantPath: "count"},
		{name: "unknown member named with its path", body: `{"overrides":{"containerOverrides":[{"nam":"web"}]}}`, wantPath: "overrides.containerOverrides[0].nam"},
		{name: "list expected", body: `{"tags":{"key":"k"}}`, wantPath: "tags"},
		{name: "not JSON", body: `{`, wantPath: "(body)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var in ecs.RunTaskInput
			err := ECS.Unmarshal([]byte(tc.body), &in)
			if tc.wantPath == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tc.wantPath {
				t.Fatalf("err = %v, want a FieldError at %s", err, tc.wantPath)
			}
			if e := ECS.AsError(err); e.Type != InvalidParameterException || e.Status() != 400 {
				t.Errorf("answered as %s %d", e.Type, e.Status())
			}
		})
	}
	var in ecs.RunTaskInput
	if err := ECS.Unmarshal([]byte(`{"cluster":"c","count":2,"overrides":{"containerOverrides":[{"name":"web","command":["a"]}]}}`), &in); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.Cluster) != "c" || aws.ToInt32(in.Count) != 2 || in.Overrides.ContainerOverrides[0].Command[0] != "a" {
		t.Errorf("decoded %+v", in)
	}
}

func TestErrorStatus(t *testing.T) {
	for typ, want := range map[string]int{
		ServerException: 500, ClusterNotFoundException: 400, InvalidParameterException: 400,
		AccessDeniedException: 403, MissingAuthenticationTokenException: 403, InvalidSignatureException: 400,
	} {
		if got := (&Error{Type: typ}).Status(); got != want {
			t.Errorf("%s answered with %d, want %d", typ, got, want)
		}
	}
	if e := ECS.AsError(errors.New("boom")); e.Type != ServerException {
		t.Errorf("an unexpected error must be a ServerException, got %s", e.Type)
	}
}
