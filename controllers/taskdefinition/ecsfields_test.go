package taskdefinition_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
)

// A task definition as ECS users write it: task cpu and memory as strings with units,
// launch types, platform, roles, Fargate storage, tags and awslogs. It applies, keeps
// every field as written, and its Honoured condition names what has no effect here.
const ecsShaped = `
apiVersion: ecs.berth.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: imported
spec:
  cpu: "1 vCPU"
  memory: "2 GB"
  requiresCompatibilities: [FARGATE, EC2]
  runtimePlatform: {cpuArchitecture: X86_64, operatingSystemFamily: LINUX}
  taskRoleArn: arn:aws:iam::123456789012:role/app
  executionRoleArn: arn:aws:iam::123456789012:role/ecsTaskExecutionRole
  ephemeralStorage: {sizeInGiB: 30}
  tags: [{key: team, value: web}]
  containerDefinitions:
  - name: app
    image: demo:1
    portMappings: [{containerPort: 80, appProtocol: http}]
    logConfiguration:
      logDriver: awslogs
      options: {awslogs-group: /ecs/imported, awslogs-region: eu-west-1, awslogs-stream-prefix: ecs}
`

func TestECSShapedDefinitionKeptAndIgnoredFieldsNamed(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	var td ecsv1alpha1.TaskDefinition
	if err := yaml.UnmarshalStrict([]byte(ecsShaped), &td); err != nil {
		t.Fatal(err)
	}
	td.Namespace = ns
	if err := env.Client.Create(ctx, &td); err != nil {
		t.Fatalf("creating an ECS-shaped task definition: %v", err)
	}
	got := waitRevisions(t, ns, "imported", []revSummary{{1, ecsv1alpha1.RevisionActive}})
	if *got.Spec.Cpu != intstr.FromString("1 vCPU") || *got.Spec.Memory != intstr.FromString("2 GB") {
		t.Errorf("cpu, memory = %v, %v; want them as written", got.Spec.Cpu, got.Spec.Memory)
	}
	if cpu, _ := got.Spec.CPUUnits(); cpu != 1024 {
		t.Errorf("CPUUnits = %d, want 1024", cpu)
	}
	if mib, _ := got.Spec.MemoryMiB(); mib != 2048 {
		t.Errorf("MemoryMiB = %d, want 2048", mib)
	}
	if got.Spec.EphemeralStorage == nil || got.Spec.TaskRoleArn == "" || len(got.Spec.Tags) != 1 || got.Spec.RuntimePlatform == nil {
		t.Errorf("ECS fields not kept: %+v", got.Spec)
	}
	c := meta.FindStatusCondition(got.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionHonoured)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonFieldsNotHonoured {
		t.Fatalf("Honoured = %+v, want False/%s", c, ecsv1alpha1.ReasonFieldsNotHonoured)
	}
	for _, f := range []string{"spec.taskRoleArn", "spec.executionRoleArn", "spec.ephemeralStorage", "options[awslogs-region]"} {
		if !strings.Contains(c.Message, f) {
			t.Errorf("Honoured message %q does not name %s", c.Message, f)
		}
	}
	if !hasCondition(got, ecsv1alpha1.ConditionAccepted, metav1.ConditionTrue) {
		t.Errorf("Accepted is not True: %+v", got.Status.Conditions)
	}

	// Dropping the roles and the storage makes every field count.
	got.Spec.TaskRoleArn, got.Spec.ExecutionRoleArn, got.Spec.EphemeralStorage = "", "", nil
	delete(got.Spec.ContainerDefinitions[0].LogConfiguration.Options, "awslogs-region")
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "Honoured=True", func() error {
		var now ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "imported"}, &now); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(now.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionHonoured); c == nil ||
			c.Status != metav1.ConditionTrue || c.ObservedGeneration != now.Generation {
			return fmt.Errorf("Honoured = %+v", c)
		}
		return nil
	})
}

// Task memory written with units must still hold the containers' hard limits; the
// schema checks the integer form, the controller the string form, with the same
// field named.
func TestTaskMemoryStringBelowContainersRejected(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	var td ecsv1alpha1.TaskDefinition
	if err := yaml.UnmarshalStrict([]byte(`
apiVersion: ecs.berth.dev/v1alpha1
kind: TaskDefinition
metadata: {name: small}
spec:
  memory: "0.25 GB"
  containerDefinitions:
  - {name: app, image: demo:1, memory: 512}
`), &td); err != nil {
		t.Fatal(err)
	}
	td.Namespace = ns
	if err := env.Client.Create(ctx, &td); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "Accepted=False naming spec.memory", func() error {
		var now ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "small"}, &now); err != nil {
			return err
		}
		c := meta.FindStatusCondition(now.Status.Conditions, ecsv1alpha1.ConditionAccepted)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "spec.memory") || !strings.Contains(c.Message, "(256 MiB)") {
			return fmt.Errorf("Accepted = %+v", c)
		}
		if now.Status.LatestRevision != 0 {
			return fmt.Errorf("revision %d registered for an invalid spec", now.Status.LatestRevision)
		}
		return nil
	})
}
