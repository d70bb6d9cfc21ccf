package ecsapi

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestTaskFilter(t *testing.T) {
	web := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{ecsv1alpha1.LabelService: "web"}},
		Spec:       ecsv1alpha1.TaskSpec{TaskDefinition: "web:2", ContainerInstance: "i-1", StartedBy: "ecs-svc/1"},
	}
	pending := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{TaskDefinition: "batch"},
		Status: ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskPending}}
	asked := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{TaskDefinition: "batch:1", DesiredStatus: ecsv1alpha1.DesiredStopped}}
	exited := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{TaskDefinition: "batch:1"}, Status: ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskStopped}}
	external := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annotationLaunchType: "EXTERNAL"}},
		Spec: ecsv1alpha1.TaskSpec{TaskDefinition: "batch:1"}}

	running := types.DesiredStatusRunning
	cases := []struct {
		name string
		f    taskFilter
		task *ecsv1alpha1.Task
		want bool
	}{
		{"RUNNING includes a pending task", taskFilter{Desired: running}, pending, true},
		{"RUNNING excludes a task asked to stop", taskFilter{Desired: running}, asked, false},
		{"RUNNING excludes a task that stopped by itself", taskFilter{Desired: running}, exited, false},
		{"STOPPED includes a task asked to stop", taskFilter{Desired: types.DesiredStatusStopped}, asked, true},
		{"STOPPED includes a task that stopped by itself", taskFilter{Desired: types.DesiredStatusStopped}, exited, true},
		{"PENDING matches nothing, as in ECS", taskFilter{Desired: types.DesiredStatusPending}, pending, false},
		{"family of a pinned reference", taskFilter{Desired: running, Family: "web"}, web, true},
		{"family of an unpinned reference", taskFilter{Desired: running, Family: "batch"}, pending, true},
		{"another family", taskFilter{Desired: running, Family: "we"}, web, false},
		{"service label", taskFilter{Desired: running, Service: "web"}, web, true},
		{"not the service's", taskFilter{Desired: running, Service: "web"}, pending, false},
		{"instance", taskFilter{Desired: running, Instance: "i-1"}, web, true},
		{"unplaced task on no instance", taskFilter{Desired: running, Instance: "i-1"}, pending, false},
		{"startedBy", taskFilter{Desired: running, StartedBy: "ecs-svc/1"}, web, true},
		{"other startedBy", taskFilter{Desired: running, StartedBy: "ci"}, web, false},
		{"EC2 is every task without EXTERNAL", taskFilter{Desired: running, LaunchType: types.LaunchTypeEc2}, web, true},
		{"EC2 excludes EXTERNAL", taskFilter{Desired: running, LaunchType: types.LaunchTypeEc2}, external, false},
		{"EXTERNAL", taskFilter{Desired: running, LaunchType: types.LaunchTypeExternal}, external, true},
		{"FARGATE matches nothing", taskFilter{Desired: running, LaunchType: types.LaunchTypeFargate}, web, false},
		{"filters combine", taskFilter{Desired: running, Family: "web", Service: "web", Instance: "i-2"}, web, false},
	}
	for _, tc := range cases {
		if got := tc.f.matches(tc.task); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}
