package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// policyWorld is a fake API with one registered task definition and a Service of it,
// and a reconciler of it.
type policyWorld struct {
	c   client.Client
	r   *Reconciler
	rec *events.FakeRecorder
}

func newPolicyWorld(t *testing.T, td *ecsv1alpha1.TaskDefinition, objs ...client.Object) *policyWorld {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ecsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	td.Status.LatestRevision = 1
	cr, err := revision.Snapshot(td, 1)
	if err != nil {
		t.Fatal(err)
	}
	svc := testobj.Service(td.Namespace, "web", td.Name, 2).Obj()
	svc.Finalizers = []string{Finalizer}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(objs, td, cr, svc)...).
		WithStatusSubresource(&ecsv1alpha1.Service{}, &ecsv1alpha1.TaskDefinition{}, &ecsv1alpha1.Task{})
	if err := index.Setup(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	rec := events.NewFakeRecorder(100)
	return &policyWorld{c: c, rec: rec, r: &Reconciler{Client: c, Recorder: rec, Resolver: revision.NewResolver(c), Now: time.Now, Expectations: expectations.New()}}
}

// reconcile runs n passes of the service.
func (w *policyWorld) reconcile(t *testing.T, n int) *ecsv1alpha1.Service {
	t.Helper()
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}}
	for i := 0; i < n; i++ {
		if _, err := w.r.Reconcile(context.Background(), req); err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
	}
	var svc ecsv1alpha1.Service
	if err := w.c.Get(context.Background(), req.NamespacedName, &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

func (w *policyWorld) tasks(t *testing.T) []ecsv1alpha1.Task {
	t.Helper()
	var list ecsv1alpha1.TaskList
	if err := w.c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func (w *policyWorld) warnings() []string {
	var out []string
	for len(w.rec.Events) > 0 {
		if e := <-w.rec.Events; strings.HasPrefix(e, "Warning") {
			out = append(out, e)
		}
	}
	return out
}

func clusterAt(level ecsv1alpha1.ContainerPolicyLevel) *ecsv1alpha1.Cluster {
	c := &ecsv1alpha1.Cluster{Spec: ecsv1alpha1.ClusterSpec{ContainerPolicy: &ecsv1alpha1.ContainerPolicy{Level: level}}}
	c.Name = ecsv1alpha1.DefaultClusterName
	return c
}

// TestServiceRefusedByContainerPolicy: a Service whose revision exceeds its cluster's
// level is not Accepted, says which fields, warns, and creates no task; at a level
// that allows the revision it runs.
func TestServiceRefusedByContainerPolicy(t *testing.T) {
	privilegedTD := func() *ecsv1alpha1.TaskDefinition {
		return testobj.TaskDefinition("ns", "agent").Container("agent", "agent:1").
			Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true }).Obj()
	}
	tests := []struct {
		name    string
		cluster *ecsv1alpha1.Cluster // nil: no Cluster object, the default level
		td      *ecsv1alpha1.TaskDefinition
		// wantRefused is a field path the Accepted message must name; "" when accepted.
		wantRefused string
	}{
		{name: "baseline refuses privileged", cluster: clusterAt(ecsv1alpha1.ContainerPolicyBaseline), td: privilegedTD(),
			wantRefused: "spec.containerDefinitions[0].privileged"},
		{name: "no Cluster object is baseline", td: privilegedTD(), wantRefused: "spec.containerDefinitions[0].privileged"},
		{name: "restricted refuses a container that keeps its capabilities", cluster: clusterAt(ecsv1alpha1.ContainerPolicyRestricted),
			td:          testobj.TaskDefinition("ns", "web").Container("app", "web:1").Obj(),
			wantRefused: "spec.containerDefinitions[0].linuxParameters.capabilities.drop"},
		{name: "privileged allows privileged", cluster: clusterAt(ecsv1alpha1.ContainerPolicyPrivileged), td: privilegedTD()},
		{name: "baseline allows a plain container", cluster: clusterAt(ecsv1alpha1.ContainerPolicyBaseline),
			td: testobj.TaskDefinition("ns", "web").Container("app", "web:1").Obj()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var objs []client.Object
			if tc.cluster != nil {
				objs = append(objs, tc.cluster)
			}
			w := newPolicyWorld(t, tc.td, objs...)
			svc := w.reconcile(t, 3) // deployment recorded, then tasks created
			accepted := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ConditionAccepted)
			tasks := w.tasks(t)
			warnings := w.warnings()
			if tc.wantRefused == "" {
				if accepted == nil || accepted.Status != "True" || len(tasks) != 2 {
					t.Fatalf("Accepted %+v, %d tasks; want accepted with 2 tasks", accepted, len(tasks))
				}
				return
			}
			if accepted == nil || accepted.Status != "False" || accepted.Reason != ecsv1alpha1.ReasonContainerPolicyViolation ||
				!strings.Contains(accepted.Message, tc.wantRefused) {
				t.Errorf("Accepted %+v, want False/%s naming %s", accepted, ecsv1alpha1.ReasonContainerPolicyViolation, tc.wantRefused)
			}
			if rc := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionRolloutComplete); rc == nil || rc.Reason != ecsv1alpha1.ReasonContainerPolicyViolation {
				t.Errorf("RolloutComplete %+v, want reason %s", rc, ecsv1alpha1.ReasonContainerPolicyViolation)
			}
			if len(tasks) != 0 || len(svc.Status.Deployments) != 0 {
				t.Errorf("%d tasks and deployments %+v, want none", len(tasks), svc.Status.Deployments)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], ecsv1alpha1.ReasonContainerPolicyViolation) || !strings.Contains(warnings[0], tc.wantRefused) {
				t.Errorf("warnings %q, want one %s naming %s", warnings, ecsv1alpha1.ReasonContainerPolicyViolation, tc.wantRefused)
			}
		})
	}
}

// TestTightenedPolicyStartsNoNewTasks: tightening the policy under a running
// deployment leaves its tasks running (nothing is stopped), but a task that goes away
// is not replaced; relaxing it again replaces it.
func TestTightenedPolicyStartsNoNewTasks(t *testing.T) {
	ctx := context.Background()
	cluster := clusterAt(ecsv1alpha1.ContainerPolicyPrivileged)
	td := testobj.TaskDefinition("ns", "exporter").Network(ecsv1alpha1.NetworkModeHost).Container("app", "exporter:1").Obj()
	w := newPolicyWorld(t, td, cluster)
	w.reconcile(t, 3)
	if n := len(w.tasks(t)); n != 2 {
		t.Fatalf("%d tasks at level privileged, want 2", n)
	}

	setLevel := func(level ecsv1alpha1.ContainerPolicyLevel) {
		t.Helper()
		var c ecsv1alpha1.Cluster
		if err := w.c.Get(ctx, client.ObjectKeyFromObject(cluster), &c); err != nil {
			t.Fatal(err)
		}
		c.Spec.ContainerPolicy.Level = level
		if err := w.c.Update(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	setLevel(ecsv1alpha1.ContainerPolicyBaseline)
	gone := w.tasks(t)[0]
	if err := w.c.Delete(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	svc := w.reconcile(t, 2)
	tasks := w.tasks(t)
	if len(tasks) != 1 || tasks[0].Spec.DesiredStatus != ecsv1alpha1.DesiredRunning {
		var got []string
		for _, task := range tasks {
			got = append(got, task.Name+"/"+string(task.Spec.DesiredStatus))
		}
		t.Fatalf("tasks after tightening: %v, want the remaining one, still desired RUNNING, and no replacement", got)
	}
	if c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ConditionAccepted); c == nil || c.Reason != ecsv1alpha1.ReasonContainerPolicyViolation ||
		!strings.Contains(c.Message, "spec.networkMode") {
		t.Errorf("Accepted %+v, want %s naming spec.networkMode", c, ecsv1alpha1.ReasonContainerPolicyViolation)
	}
	// The fake tasks never ran, so the deployment is still in progress; it says why
	// it waits.
	if c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionRolloutComplete); c == nil || !strings.Contains(c.Message, "Waiting: task definition exporter:1 exceeds") {
		t.Errorf("RolloutComplete %+v does not say why no task starts", c)
	}

	setLevel(ecsv1alpha1.ContainerPolicyPrivileged)
	w.reconcile(t, 2)
	if n := len(w.tasks(t)); n != 2 {
		t.Errorf("%d tasks after relaxing the policy, want 2", n)
	}
}
