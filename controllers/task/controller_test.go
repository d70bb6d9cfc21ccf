package task

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// world is a task reconciler against the test apiserver with a clock the test sets,
// and a record of its writes and Events.
type world struct {
	ns     string
	now    time.Time
	r      *Reconciler
	writes *testenv.Writes
	rec    *events.FakeRecorder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	needEnv(t)
	w := &world{ns: env.Namespace(t), rec: events.NewFakeRecorder(10)}
	c, writes := testenv.RecordingClient(env.Client)
	w.writes = writes
	w.r = &Reconciler{Client: c, Recorder: w.rec, Now: func() time.Time { return w.now }}
	return w
}

func (w *world) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		if o.GetNamespace() == "" { // cluster-scoped: not deleted with the namespace
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
	}
}

func (w *world) reconcile(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: w.ns, Name: name}})
	if err != nil {
		t.Fatalf("Reconcile %s: %v", name, err)
	}
	return res
}

func (w *world) get(t *testing.T, name string) *ecsv1alpha1.Task {
	t.Helper()
	var tk ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: name}, &tk); err != nil {
		t.Fatal(err)
	}
	return &tk
}

func (w *world) events() []string {
	var out []string
	for len(w.rec.Events) > 0 {
		out = append(out, <-w.rec.Events)
	}
	return out
}

// stopSpec asks a task to stop, as StopTask or the service controller do.
func stopSpec(t *testing.T, tk *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string) {
	t.Helper()
	tk.Spec.DesiredStatus, tk.Spec.StopCode, tk.Spec.StopReason = ecsv1alpha1.DesiredStopped, code, reason
	if err := env.Client.Update(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
}

// markStopped reports a task STOPPED at at, as its agent would.
func markStopped(t *testing.T, tk *ecsv1alpha1.Task, at time.Time) {
	t.Helper()
	tk.Status.LastStatus = ecsv1alpha1.TaskStopped
	tk.Status.StopCode = ecsv1alpha1.StopEssentialContainerExited
	tk.Status.StoppedAt = ptr.To(metav1.NewTime(at))
	if err := env.Client.Status().Update(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
}

// finalStatus is what the manager writes for a task no agent reports on.
type finalStatus struct {
	LastStatus    ecsv1alpha1.TaskStatusValue
	StopCode      ecsv1alpha1.StopCode
	StoppedReason string
	StoppedAt     time.Time
	Stopped       metav1.ConditionStatus
	StoppedBy     string // the Stopped condition's reason
	HasCreatedAt  bool
}

func finalOf(tk *ecsv1alpha1.Task) finalStatus {
	f := finalStatus{LastStatus: tk.Status.LastStatus, StopCode: tk.Status.StopCode, StoppedReason: tk.Status.StoppedReason,
		HasCreatedAt: tk.Status.CreatedAt != nil}
	if tk.Status.StoppedAt != nil {
		f.StoppedAt = tk.Status.StoppedAt.UTC()
	}
	if c := meta.FindStatusCondition(tk.Status.Conditions, ecsv1alpha1.TaskConditionStopped); c != nil {
		f.Stopped, f.StoppedBy = c.Status, c.Reason
	}
	return f
}

// TestFinishesTaskStoppedBeforePlacement: a task stopped while unplaced is reported
// STOPPED by the manager with the stop's code and reason, a Stopped condition and an
// Event, since no agent ever will.
func TestFinishesTaskStoppedBeforePlacement(t *testing.T) {
	w := newWorld(t)
	w.now = time.Now().UTC().Truncate(time.Second)
	tk := testobj.Task(w.ns, "oneoff", "web").Obj()
	w.create(t, tk)
	stopSpec(t, tk, ecsv1alpha1.StopUserInitiated, "no longer needed")

	if res := w.reconcile(t, "oneoff"); res != (ctrl.Result{}) {
		t.Errorf("result %+v, want none", res)
	}
	want := finalStatus{LastStatus: ecsv1alpha1.TaskStopped, StopCode: ecsv1alpha1.StopUserInitiated, StoppedReason: "no longer needed",
		StoppedAt: w.now, Stopped: metav1.ConditionTrue, StoppedBy: string(ecsv1alpha1.StopUserInitiated), HasCreatedAt: true}
	if diff := cmp.Diff(want, finalOf(w.get(t, "oneoff"))); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if ev := w.events(); len(ev) != 1 || !strings.Contains(ev[0], "UserInitiated no longer needed") {
		t.Errorf("events %q, want one UserInitiated Event", ev)
	}
}

// TestFinishesTaskOnUnregisteredInstance: a task bound at creation to an instance that
// is not registered waits out the bind grace period (the instance may be registering),
// then is reported STOPPED as InstanceUnreachable.
func TestFinishesTaskOnUnregisteredInstance(t *testing.T) {
	w := newWorld(t)
	tk := testobj.Task(w.ns, "pinned", "web").On(w.ns + "-ghost").Obj()
	w.create(t, tk)
	created := w.get(t, "pinned").CreationTimestamp.Time

	w.now = created.Add(10 * time.Second)
	if res := w.reconcile(t, "pinned"); res.RequeueAfter != 20*time.Second {
		t.Errorf("within the grace period: result %+v, want a requeue after 20s", res)
	}
	if got := w.writes.List(); len(got) != 0 {
		t.Errorf("within the grace period: writes %v, want none", got)
	}

	w.now = created.Add(bindGrace)
	w.reconcile(t, "pinned")
	want := finalStatus{LastStatus: ecsv1alpha1.TaskStopped, StopCode: ecsv1alpha1.StopInstanceUnreachable,
		StoppedReason: "Container instance " + w.ns + "-ghost is not registered", StoppedAt: w.now,
		Stopped: metav1.ConditionTrue, StoppedBy: string(ecsv1alpha1.StopInstanceUnreachable), HasCreatedAt: true}
	if diff := cmp.Diff(want, finalOf(w.get(t, "pinned"))); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// TestLeavesReportedTasksAlone: the manager writes nothing for a task an agent or the
// scheduler will handle.
func TestLeavesReportedTasksAlone(t *testing.T) {
	w := newWorld(t)
	w.now = time.Now()
	inst := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: w.ns + "-i1"},
		Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: ecsv1alpha1.DefaultClusterName}}
	bound := testobj.Task(w.ns, "bound", "web").On(inst.Name).Obj()
	stopping := testobj.Task(w.ns, "stopping", "web").On(inst.Name).Obj()
	w.create(t, inst, bound, stopping, testobj.Task(w.ns, "unplaced", "web").Obj())
	stopSpec(t, stopping, ecsv1alpha1.StopUserInitiated, "") // its agent stops it

	for _, name := range []string{"bound", "stopping", "unplaced"} {
		if res := w.reconcile(t, name); res != (ctrl.Result{}) {
			t.Errorf("%s: result %+v, want none", name, res)
		}
	}
	if got := w.writes.List(); len(got) != 0 {
		t.Errorf("writes %v, want none", got)
	}
}

// TestCollectsStandaloneTasks: a stopped standalone task is deleted once its cluster's
// retention period has passed, and looked at again when it will have; a service's
// stopped task is left to its service controller, whatever its age.
func TestCollectsStandaloneTasks(t *testing.T) {
	w := newWorld(t)
	cluster := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: w.ns},
		Spec: ecsv1alpha1.ClusterSpec{StoppedTaskRetentionSeconds: ptr.To[int32](60)}}
	svc := testobj.Service(w.ns, "web", "web", 1).Cluster(w.ns).Obj()
	w.create(t, cluster, svc)
	standalone := testobj.Task(w.ns, "oneoff", "web").Cluster(w.ns).Obj()
	owned := testobj.Task(w.ns, "web-d1-0-0", "web").Cluster(w.ns).Obj()
	owned.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))}
	w.create(t, standalone, owned)
	stoppedAt := time.Now().UTC().Truncate(time.Second)
	markStopped(t, standalone, stoppedAt)
	markStopped(t, owned, stoppedAt.Add(-48*time.Hour))

	w.now = stoppedAt.Add(20 * time.Second)
	if res := w.reconcile(t, "oneoff"); res.RequeueAfter != 40*time.Second {
		t.Errorf("before the retention period ends: result %+v, want a requeue after 40s", res)
	}
	w.now = stoppedAt.Add(time.Minute)
	w.reconcile(t, "oneoff")
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(standalone), &ecsv1alpha1.Task{}); !apierrors.IsNotFound(err) {
		t.Errorf("standalone task after its retention period: %v, want it deleted", err)
	}

	before := len(w.writes.List())
	if res := w.reconcile(t, "web-d1-0-0"); res != (ctrl.Result{}) {
		t.Errorf("service task: result %+v, want none", res)
	}
	if got := w.writes.List()[before:]; len(got) != 0 {
		t.Errorf("service task: writes %v, want none (its service collects it)", got)
	}
}
