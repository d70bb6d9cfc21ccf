package scheduler

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

// TestMain starts the shared apiserver, except with -short, where only the unit
// tests run (the integration tests skip themselves).
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		ctrl.SetLogger(logr.Discard())
		os.Exit(m.Run())
	}
	os.Exit(testenv.Run(m, &env))
}

// world is a Scheduler against the test apiserver, called directly, with its engine
// fed by hand (as its informers would) and its wake-ups in a queue the test reads.
type world struct {
	ns     string
	s      *Scheduler
	rec    *events.FakeRecorder
	writes *testenv.Writes
	woken  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the apiserver")
	}
	ctx := context.Background()
	w := &world{ns: env.Namespace(t), rec: events.NewFakeRecorder(20), woken: testQueue()}
	t.Cleanup(w.woken.ShutDown)
	c, writes := testenv.RecordingClient(env.Client)
	w.writes = writes
	w.s = &Scheduler{Client: c, Recorder: w.rec, Resolver: revision.NewResolver(env.Client), Engine: placement.NewEngine(placement.WithSeed(1))}
	if err := w.s.wakeups.Start(ctx, w.woken); err != nil {
		t.Fatal(err)
	}
	registerRevision(t, testobj.TaskDefinition(w.ns, "web").Container("app", "web:1").Obj())
	return w
}

// registerRevision creates a TaskDefinition and registers its spec as revision 1, the
// task definition controller's job.
func registerRevision(t *testing.T, td *ecsv1alpha1.TaskDefinition) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	cr, err := revision.Snapshot(td, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, cr); err != nil {
		t.Fatal(err)
	}
	td.Status.LatestRevision, td.Status.ObservedGeneration = 1, td.Generation
	if err := env.Client.Status().Update(ctx, td); err != nil {
		t.Fatal(err)
	}
}

// instance is an ACTIVE, connected instance with cpu units of room, named after the
// test, as the engine learns it from its informer.
func (w *world) instance(name string, cpu int64, connected bool) *ecsv1alpha1.ContainerInstance {
	return &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: w.ns + "-" + name},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: ecsv1alpha1.DefaultClusterName},
		Status: ecsv1alpha1.ContainerInstanceStatus{
			AgentConnected: connected, RegisteredResources: &ecsv1alpha1.Resources{Cpu: cpu, Memory: 4096},
		},
	}
}

func (w *world) createTask(t *testing.T, tk *ecsv1alpha1.Task) types.NamespacedName {
	t.Helper()
	if err := env.Client.Create(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	return client.ObjectKeyFromObject(tk)
}

func (w *world) reconcile(t *testing.T, key types.NamespacedName) ctrl.Result {
	t.Helper()
	res, err := w.s.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return res
}

func getTask(t *testing.T, key types.NamespacedName) *ecsv1alpha1.Task {
	t.Helper()
	var tk ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), key, &tk); err != nil {
		t.Fatal(err)
	}
	return &tk
}

// placed is what a reconcile left on a task.
type placed struct {
	Instance string
	Revision int32
	Status   metav1.ConditionStatus // of Placed; "" when none
	Reason   string
	Current  bool // the condition describes the task's current generation
}

func placedOf(tk *ecsv1alpha1.Task) placed {
	p := placed{Instance: tk.Spec.ContainerInstance, Revision: revision.OfTask(tk)}
	if c := meta.FindStatusCondition(tk.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c != nil {
		p.Status, p.Reason, p.Current = c.Status, c.Reason, c.ObservedGeneration == tk.Generation
	}
	return p
}

func (w *world) eventReasons() []string {
	var out []string
	for len(w.rec.Events) > 0 {
		out = append(out, strings.Fields(<-w.rec.Events)[1]) // "<type> <reason> <note>"
	}
	return out
}

// TestBindsTask: a task of a `family` reference is bound to the instance that fits,
// with the revision resolved, in one write (the agent's first report adds the Placed
// condition); the cluster's batched Placed Event counts it.
func TestBindsTask(t *testing.T) {
	w := newWorld(t)
	w.s.upsertInstance(w.instance("small", 128, true))
	big := w.instance("big", 2048, true)
	w.s.upsertInstance(big)
	key := w.createTask(t, testobj.Task(w.ns, "oneoff", "web").Obj())

	if res := w.reconcile(t, key); res != (ctrl.Result{}) {
		t.Errorf("result %+v, want none", res)
	}
	want := placed{Instance: big.Name, Revision: 1}
	if diff := cmp.Diff(want, placedOf(getTask(t, key))); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	if got := w.writes.List(); len(got) != 1 {
		t.Errorf("writes %q, want the binding only", got)
	}
	if got := w.eventReasons(); len(got) != 0 {
		t.Errorf("events %q before the batch is flushed, want none", got)
	}
	w.s.placed.flush(w.rec)
	if got := <-w.rec.Events; got != "Normal Placed Placed 1 task on 1 container instance: "+big.Name+" (1)" {
		t.Errorf("batched event %q", got)
	}
}

// TestUnplaceableTaskWaits: a task that fits nowhere says why on Placed=False, per
// instance reason, with one Warning; it is retried on a clock that backs off, and a
// retry that finds nothing new writes nothing.
func TestUnplaceableTaskWaits(t *testing.T) {
	w := newWorld(t)
	w.s.upsertInstance(w.instance("small", 128, true))
	w.s.upsertInstance(w.instance("quiet", 4096, false))
	key := w.createTask(t, testobj.Task(w.ns, "oneoff", "web").Obj())

	if res := w.reconcile(t, key); res.RequeueAfter != unplacedRetryBase {
		t.Errorf("first attempt: result %+v, want a retry after %v", res, unplacedRetryBase)
	}
	tk := getTask(t, key)
	want := placed{Revision: 1, Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonUnplaceable, Current: true}
	if diff := cmp.Diff(want, placedOf(tk)); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	msg := meta.FindStatusCondition(tk.Status.Conditions, ecsv1alpha1.TaskConditionPlaced).Message
	for _, reason := range []string{"insufficient cpu", "not connected"} {
		if !strings.Contains(msg, reason) {
			t.Errorf("Placed message %q does not say %q", msg, reason)
		}
	}
	if diff := cmp.Diff([]string{ecsv1alpha1.ReasonUnplaceable}, w.eventReasons()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	before := len(w.writes.List())
	if res := w.reconcile(t, key); res.RequeueAfter != 2*unplacedRetryBase {
		t.Errorf("second attempt: result %+v, want a retry after %v", res, 2*unplacedRetryBase)
	}
	if got := w.writes.List()[before:]; len(got) != 0 {
		t.Errorf("a retry that found nothing new wrote %v", got)
	}
	if got := w.eventReasons(); len(got) != 0 {
		t.Errorf("a retry that found nothing new recorded %v", got)
	}
}

// TestInstanceJoiningWakesWaitingTasks: an instance that joins wakes the cluster's
// waiting tasks at once, and the woken task is placed there and no longer says it
// cannot be.
func TestInstanceJoiningWakesWaitingTasks(t *testing.T) {
	w := newWorld(t)
	key := w.createTask(t, testobj.Task(w.ns, "oneoff", "web").Obj())
	w.reconcile(t, key)
	if got := placedOf(getTask(t, key)); got.Status != metav1.ConditionFalse {
		t.Fatalf("with no instance: %+v, want Placed=False", got)
	}

	joined := w.instance("joined", 2048, true)
	w.s.upsertInstance(joined) // the informer's Add
	if n := w.woken.Len(); n != 1 {
		t.Fatalf("%d tasks woken, want 1", n)
	}
	req, _ := w.woken.Get()
	w.woken.Done(req)
	if req.NamespacedName != key {
		t.Fatalf("woke %v, want %v", req, key)
	}
	if res := w.reconcile(t, key); res != (ctrl.Result{}) {
		t.Errorf("result %+v, want none", res)
	}
	// Bound in one write: the Placed=False of the earlier generation stays until the
	// agent's first report replaces it.
	want := placed{Instance: joined.Name, Revision: 1, Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonUnplaceable}
	if diff := cmp.Diff(want, placedOf(getTask(t, key))); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	// Placed: nothing waits any more, so the next change wakes nobody.
	w.s.upsertInstance(w.instance("another", 2048, true))
	if n := w.woken.Len(); n != 0 {
		t.Errorf("%d tasks woken after the task was placed, want none", n)
	}
}

// TestUnplaceableTaskRetriedWithoutEvent: with the controller running, a task that
// could not be placed is placed once room appears that no event announces (here an
// instance fed to the engine behind the informers' back): the clock retries it.
func TestUnplaceableTaskRetriedWithoutEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the apiserver")
	}
	ns := env.Namespace(t)
	registerRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "web:1").Obj())
	s := &Scheduler{Engine: placement.NewEngine(), retryBase: 100 * time.Millisecond, retryMax: 400 * time.Millisecond}
	env.StartManager(t, ctrl.Options{}, func(ctx context.Context, mgr ctrl.Manager) error {
		if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		s.Client, s.Recorder, s.Resolver = mgr.GetClient(), mgr.GetEventRecorder("test"), revision.NewResolver(mgr.GetClient())
		return s.SetupWithManager(ctx, mgr)
	})
	// A cluster of its own, so no other test's instance wakes it.
	tk := testobj.Task(ns, "oneoff", "web").Cluster(ns).Obj()
	if err := env.Client.Create(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(tk)
	// Wait until the task waits on the clock alone: its own Placed=False write has
	// woken it once more, and that attempt found nothing new.
	testenv.Eventually(t, "two attempts", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := s.attempts[key]; n < 2 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})

	room := inventory.Instance(&ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-silent"},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: ns},
		Status:     ecsv1alpha1.ContainerInstanceStatus{AgentConnected: true, RegisteredResources: &ecsv1alpha1.Resources{Cpu: 2048, Memory: 4096}},
	})
	s.Engine.UpsertInstance(room) // no informer event, no wake-up
	testenv.Eventually(t, "the task bound by a retry", func() error {
		if got := getTask(t, key).Spec.ContainerInstance; got != room.Name {
			return fmt.Errorf("bound to %q", got)
		}
		return nil
	})
}
