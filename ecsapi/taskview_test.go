package ecsapi

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const testTaskID = "0123456789abcdef0123456789abcdef"

func viewSpec() *ecsv1alpha1.TaskDefinitionSpec {
	return &ecsv1alpha1.TaskDefinitionSpec{
		Memory: ptr.To(intstr.FromString("1 GB")),
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
			{Name: "web", Image: "nginx:1", Memory: ptr.To[int32](256), Cpu: 128},
			{Name: "log", Image: "fluent-bit", MemoryReservation: ptr.To[int32](64)},
		},
	}
}

func viewTask() *ecsv1alpha1.Task {
	created := metav1.NewTime(time.Unix(1700000000, 0))
	return &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: testTaskID, Namespace: "team", Generation: 1, CreationTimestamp: created,
			Annotations: map[string]string{ecsv1alpha1.AnnotationTags: `[{"key":"k","value":"v"}]`}},
		Spec: ecsv1alpha1.TaskSpec{Cluster: "prod", TaskDefinition: "my-family:3", Group: "family:My_Family", StartedBy: "ci"},
	}
}

func viewFacts() taskFacts {
	return taskFacts{Cluster: "Prod", Family: "My_Family", Revision: 3, Spec: viewSpec()}
}

var ignoreSerde = cmp.AllowUnexported(types.Task{}, types.Container{}, types.TaskOverride{}, types.ContainerOverride{},
	types.NetworkBinding{}, types.NetworkInterface{}, types.Tag{}, types.KeyValuePair{})

func TestTaskOutJustCreated(t *testing.T) {
	got := taskOut(testARNs, viewTask(), viewFacts(), true)
	prefix := "arn:aws:ecs:eu-west-3:123456789012:"
	want := types.Task{
		TaskArn:           aws.String(prefix + "task/Prod/" + testTaskID),
		ClusterArn:        aws.String(prefix + "cluster/Prod"),
		TaskDefinitionArn: aws.String(prefix + "task-definition/My_Family:3"),
		LastStatus:        aws.String("PROVISIONING"),
		DesiredStatus:     aws.String("RUNNING"),
		HealthStatus:      types.HealthStatusUnknown,
		Group:             aws.String("family:My_Family"),
		StartedBy:         aws.String("ci"),
		LaunchType:        types.LaunchTypeEc2,
		Version:           2,
		CreatedAt:         ptr.To(time.Unix(1700000000, 0)),
		Memory:            aws.String("1024"),
		Overrides:         &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web")}, {Name: aws.String("log")}}},
		Containers: []types.Container{
			{ContainerArn: aws.String(prefix + "container/Prod/" + testTaskID + "/web"), TaskArn: aws.String(prefix + "task/Prod/" + testTaskID),
				Name: aws.String("web"), Image: aws.String("nginx:1"), LastStatus: aws.String("PENDING"), HealthStatus: types.HealthStatusUnknown,
				Cpu: aws.String("128"), Memory: aws.String("256"), NetworkBindings: []types.NetworkBinding{}, NetworkInterfaces: []types.NetworkInterface{}},
			{ContainerArn: aws.String(prefix + "container/Prod/" + testTaskID + "/log"), TaskArn: aws.String(prefix + "task/Prod/" + testTaskID),
				Name: aws.String("log"), Image: aws.String("fluent-bit"), LastStatus: aws.String("PENDING"), HealthStatus: types.HealthStatusUnknown,
				Cpu: aws.String("0"), MemoryReservation: aws.String("64"), NetworkBindings: []types.NetworkBinding{}, NetworkInterfaces: []types.NetworkInterface{}},
		},
		Attachments: []types.Attachment{},
		Tags:        []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	}
	if diff := cmp.Diff(want, got, ignoreSerde); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if untagged := taskOut(testARNs, viewTask(), viewFacts(), false); untagged.Tags != nil {
		t.Errorf("tags without include TAGS: %v", untagged.Tags)
	}
}

func TestTaskOutRunningWithOverrides(t *testing.T) {
	task := viewTask()
	task.Spec.ContainerInstance = "i-1"
	task.Spec.Overrides = &ecsv1alpha1.TaskOverrides{Cpu: ptr.To[int32](512),
		ContainerOverrides: []ecsv1alpha1.ContainerOverride{{Name: "web", Memory: ptr.To[int32](300)}}}
	task.Spec.GPUAssignments = []ecsv1alpha1.GPUAssignment{{ContainerName: "web", GPUIDs: []string{"0"}}}
	started := metav1.NewTime(time.Unix(1700000100, 0))
	task.Status = ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskRunning, HealthStatus: ecsv1alpha1.HealthHealthy, StartedAt: &started,
		Containers: []ecsv1alpha1.ContainerStatus{{Name: "web", RuntimeID: "ctr-1", ImageDigest: "sha256:aa", LastStatus: ecsv1alpha1.ContainerRunning,
			NetworkBindings: []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 32768, Protocol: "tcp"},
				{ContainerPortRange: "9000-9001", HostPortRange: "40000-40001", Protocol: "udp"}}}}}
	got := taskOut(testARNs, task, viewFacts(), false)

	if aws.ToString(got.LastStatus) != "RUNNING" || got.HealthStatus != types.HealthStatusHealthy || !got.StartedAt.Equal(started.Time) {
		t.Errorf("status %s health %s startedAt %v", aws.ToString(got.LastStatus), got.HealthStatus, got.StartedAt)
	}
	if aws.ToString(got.ContainerInstanceArn) != "arn:aws:ecs:eu-west-3:123456789012:container-instance/Prod/i-1" {
		t.Errorf("containerInstanceArn %s", aws.ToString(got.ContainerInstanceArn))
	}
	if aws.ToString(got.Cpu) != "512" || aws.ToString(got.Memory) != "1024" {
		t.Errorf("task cpu %s memory %s", aws.ToString(got.Cpu), aws.ToString(got.Memory))
	}
	web := got.Containers[0]
	wantBindings := []types.NetworkBinding{
		{BindIP: aws.String("0.0.0.0"), ContainerPort: aws.Int32(80), HostPort: aws.Int32(32768), Protocol: "tcp"},
		{ContainerPortRange: aws.String("9000-9001"), HostPortRange: aws.String("40000-40001"), Protocol: "udp"},
	}
	if diff := cmp.Diff(wantBindings, web.NetworkBindings, ignoreSerde); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
	if aws.ToString(web.Memory) != "300" || aws.ToString(web.RuntimeId) != "ctr-1" || aws.ToString(web.ImageDigest) != "sha256:aa" ||
		aws.ToString(web.LastStatus) != "RUNNING" || !cmp.Equal(web.GpuIds, []string{"0"}) {
		t.Errorf("web container %+v", web)
	}
	if got.StopCode != "" || got.StoppedReason != nil {
		t.Errorf("running task with stop code %q reason %v", got.StopCode, got.StoppedReason)
	}
}

func TestTaskOutStopping(t *testing.T) {
	cases := []struct {
		name       string
		edit       func(*ecsv1alpha1.Task)
		wantLast   string
		wantCode   types.TaskStopCode
		wantReason string
	}{
		{
			name:     "asked to stop without a reason",
			edit:     func(t *ecsv1alpha1.Task) { t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped },
			wantLast: "PROVISIONING", wantCode: types.TaskStopCodeUserInitiated, wantReason: "Task stopped by user",
		},
		{
			name: "asked to stop with a reason",
			edit: func(t *ecsv1alpha1.Task) {
				t.Spec.DesiredStatus, t.Spec.StopCode, t.Spec.StopReason = ecsv1alpha1.DesiredStopped, ecsv1alpha1.StopUserInitiated, "nightly run over"
				t.Status.LastStatus = ecsv1alpha1.TaskRunning
			},
			wantLast: "RUNNING", wantCode: types.TaskStopCodeUserInitiated, wantReason: "nightly run over",
		},
		{
			name: "stopped by itself: the agent's facts, desiredStatus STOPPED",
			edit: func(t *ecsv1alpha1.Task) {
				t.Status.LastStatus, t.Status.StopCode, t.Status.StoppedReason = ecsv1alpha1.TaskStopped, ecsv1alpha1.StopEssentialContainerExited, "Essential container in task exited"
			},
			wantLast: "STOPPED", wantCode: types.TaskStopCodeEssentialContainerExited, wantReason: "Essential container in task exited",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := viewTask()
			tc.edit(task)
			got := taskOut(testARNs, task, viewFacts(), false)
			if aws.ToString(got.LastStatus) != tc.wantLast || aws.ToString(got.DesiredStatus) != "STOPPED" ||
				got.StopCode != tc.wantCode || aws.ToString(got.StoppedReason) != tc.wantReason {
				t.Errorf("last %s desired %s code %s reason %q", aws.ToString(got.LastStatus), aws.ToString(got.DesiredStatus), got.StopCode, aws.ToString(got.StoppedReason))
			}
		})
	}
}

func TestTaskOutWithoutRevision(t *testing.T) {
	task := viewTask()
	task.Annotations[annotationLaunchType] = "EXTERNAL"
	task.Status.Containers = []ecsv1alpha1.ContainerStatus{{Name: "web", LastStatus: ecsv1alpha1.ContainerStopped, ExitCode: ptr.To[int32](0)}}
	got := taskOut(testARNs, task, taskFacts{Cluster: "Prod", Family: "my-family", Revision: 3}, false)
	if len(got.Containers) != 1 || aws.ToString(got.Containers[0].Name) != "web" || aws.ToInt32(got.Containers[0].ExitCode) != 0 || got.Containers[0].ExitCode == nil {
		t.Errorf("containers from status: %+v", got.Containers)
	}
	if got.Cpu != nil || got.Memory != nil || got.LaunchType != types.LaunchTypeExternal {
		t.Errorf("cpu %v memory %v launchType %s", got.Cpu, got.Memory, got.LaunchType)
	}
}

// The version grows with every step of the lifecycle and every spec change, as
// ECS's counter does with every state change.
func TestTaskOutVersionGrows(t *testing.T) {
	task := viewTask()
	var last int64
	for _, s := range ecsv1alpha1.TaskLifecycle {
		task.Status.LastStatus = s
		v := taskOut(testARNs, task, viewFacts(), false).Version
		if v <= last {
			t.Errorf("%s: version %d after %d", s, v, last)
		}
		last = v
	}
	task.Generation++
	if v := taskOut(testARNs, task, viewFacts(), false).Version; v <= last {
		t.Errorf("after a spec change: version %d after %d", v, last)
	}
}

// TestMemoComputesOnce: concurrent askers of one key share one computation.
func TestMemoComputesOnce(t *testing.T) {
	var m memo[string, int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.get("k", func() (int, error) { calls.Add(1); return 7, nil })
			if v != 7 || err != nil {
				t.Errorf("got %d, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("computed %d times, want once", n)
	}
	if _, err := m.get("other", func() (int, error) { return 0, errors.New("boom") }); err == nil {
		t.Error("an error is an answer too")
	}
}
