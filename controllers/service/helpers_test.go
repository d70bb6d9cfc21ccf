package service

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/google/go-cmp/cmp/cmpopts"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/test/testobj"
)

// Builders for the policy tests: a service's state as one reconcile sees it, built
// without an apiserver.

// now is the clock of every policy test.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	primaryID = "dnew"
	oldID     = "dold"
)

// newTestState is a pass over svc (default: 3 tasks of web) whose PRIMARY deployment is
// primaryID (in progress) with an older COMPLETED oldID.
func newTestState(svc *ecsv1alpha1.Service, instances []*ecsv1alpha1.ContainerInstance, tasks ...*ecsv1alpha1.Task) *state {
	if svc == nil {
		svc = testobj.Service("ns", "web", "web", 3).Obj()
	}
	svc.UID = "svc-uid"
	if len(svc.Status.Deployments) == 0 {
		svc.Status.Deployments = []ecsv1alpha1.Deployment{
			{ID: primaryID, Status: ecsv1alpha1.DeploymentPrimary, TaskDefinition: "web:2", RolloutState: ecsv1alpha1.RolloutInProgress,
				CreatedAt: metav1.NewTime(now.Add(-time.Hour))},
			{ID: oldID, Status: ecsv1alpha1.DeploymentActive, TaskDefinition: "web:1", RolloutState: ecsv1alpha1.RolloutCompleted,
				CreatedAt: metav1.NewTime(now.Add(-48 * time.Hour))},
		}
	}
	s := newState(svc, now)
	s.primary = &svc.Status.Deployments[0]
	if svc.Spec.DesiredCount != nil {
		s.desired = *svc.Spec.DesiredCount
	}
	s.instances = map[string]*ecsv1alpha1.ContainerInstance{}
	for _, ci := range instances {
		s.instances[ci.Name] = ci
	}
	s.tasks = tasks
	return s
}

// instance is an ACTIVE, connected instance of the default cluster.
func instance(name string, edits ...func(*ecsv1alpha1.ContainerInstance)) *ecsv1alpha1.ContainerInstance {
	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-24 * time.Hour))},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: ecsv1alpha1.DefaultClusterName},
		Status: ecsv1alpha1.ContainerInstanceStatus{
			AgentConnected:      true,
			RegisteredResources: &ecsv1alpha1.Resources{Cpu: 4096, Memory: 8192},
		},
	}
	for _, e := range edits {
		e(ci)
	}
	return ci
}

// disconnectedAt: the manager saw the agent go quiet at since.
func disconnectedAt(since time.Time) func(*ecsv1alpha1.ContainerInstance) {
	return func(ci *ecsv1alpha1.ContainerInstance) {
		ci.Status.AgentConnected = false
		ci.Status.Conditions = []metav1.Condition{{Type: ecsv1alpha1.InstanceConditionConnected, Status: metav1.ConditionFalse,
			LastTransitionTime: metav1.NewTime(since)}}
	}
}

func draining(ci *ecsv1alpha1.ContainerInstance) { ci.Spec.Draining = true }

func attribute(name, value string) func(*ecsv1alpha1.ContainerInstance) {
	return func(ci *ecsv1alpha1.ContainerInstance) {
		ci.Spec.Attributes = append(ci.Spec.Attributes, ecsv1alpha1.Attribute{Name: name, Value: value})
	}
}

// task is a live task of the service's deployment dep, created an hour ago and not
// placed yet.
func task(name, dep string, edits ...func(*ecsv1alpha1.Task)) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour)),
			Labels:            map[string]string{ecsv1alpha1.LabelService: "web", ecsv1alpha1.LabelDeployment: dep},
		},
		Spec: ecsv1alpha1.TaskSpec{Cluster: ecsv1alpha1.DefaultClusterName, TaskDefinition: "web", DesiredStatus: ecsv1alpha1.DesiredRunning},
	}
	for _, e := range edits {
		e(t)
	}
	return t
}

func on(instance string) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) { t.Spec.ContainerInstance = instance }
}

func slot(s string) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) { t.Labels[LabelSlot] = s }
}

// running: RUNNING since startedAt, with the health given.
func running(health ecsv1alpha1.HealthStatus, startedAt time.Time) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) {
		t.Status.LastStatus = ecsv1alpha1.TaskRunning
		t.Status.HealthStatus = health
		t.Status.StartedAt = ptr.To(metav1.NewTime(startedAt))
	}
}

// stoppedWith: STOPPED at at with a stop code.
func stoppedWith(code ecsv1alpha1.StopCode, at time.Time) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) {
		t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
		t.Status.LastStatus = ecsv1alpha1.TaskStopped
		t.Status.StopCode = code
		t.Status.StoppedAt = ptr.To(metav1.NewTime(at))
	}
}

// stopRequested: asked to stop with a reason, not stopped yet.
func stopRequested(reason string) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) {
		t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
		t.Spec.StopReason = reason
	}
}

// ownedBy makes the service the task's controller, as loadWorld requires.
func ownedBy(svc *ecsv1alpha1.Service) func(*ecsv1alpha1.Task) {
	return func(t *ecsv1alpha1.Task) {
		t.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))}
	}
}

// fakeClient is a fake API holding objs, with the manager's cache indexes.
func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ecsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&ecsv1alpha1.Service{}, &ecsv1alpha1.TaskDefinition{}, &ecsv1alpha1.Task{})
	if err := index.Setup(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

// cmpEmptyMaps treats a nil map and an empty one as equal.
var cmpEmptyMaps = cmpopts.EquateEmpty()
