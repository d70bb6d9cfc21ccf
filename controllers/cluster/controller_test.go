package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers/cluster"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// testWindow keeps the tests' waits short; the batching itself is internal/usage's
// to test.
const testWindow = 100 * time.Millisecond

// startController runs the controller in a manager and returns the manager and the
// controller's task counts.
func startController(t *testing.T) (ctrl.Manager, *usage.Tracker) {
	t.Helper()
	tasks := usage.NewTracker()
	mgr := env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(ctx context.Context, mgr ctrl.Manager) error {
		if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return (&cluster.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("test"),
			Usage: tasks, Window: testWindow}).SetupWithManager(mgr)
	})
	return mgr, tasks
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// newCluster creates a Cluster named after the test's namespace (Clusters are
// cluster-scoped, so names must not collide between tests) and deletes it at cleanup.
func newCluster(t *testing.T, ns string) string {
	t.Helper()
	create(t, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return ns
}

func newInstance(t *testing.T, name, clusterName string) *ecsv1alpha1.ContainerInstance {
	t.Helper()
	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: clusterName},
	}
	create(t, ci)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ci) })
	return ci
}

func newService(t *testing.T, ns, name, clusterName string) *ecsv1alpha1.Service {
	t.Helper()
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       ecsv1alpha1.ServiceSpec{Cluster: clusterName, TaskDefinition: "web", DesiredCount: ptr.To[int32](1)},
	}
	create(t, svc)
	return svc
}

// setTask plays the agent's (or the user's) part on a task.
func setTask(t *testing.T, ns, name string, edit func(*ecsv1alpha1.Task), status bool) {
	t.Helper()
	ctx := context.Background()
	var task ecsv1alpha1.Task
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &task); err != nil {
		t.Fatal(err)
	}
	edit(&task)
	var err error
	if status {
		err = env.Client.Status().Update(ctx, &task)
	} else {
		err = env.Client.Update(ctx, &task)
	}
	if err != nil {
		t.Fatalf("updating task %s: %v", name, err)
	}
}

type counts struct{ Instances, Services, Running, Pending int32 }

func getCluster(name string) (*ecsv1alpha1.Cluster, error) {
	var c ecsv1alpha1.Cluster
	err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &c)
	return &c, err
}

func waitCounts(t *testing.T, name string, want counts) *ecsv1alpha1.Cluster {
	t.Helper()
	var c *ecsv1alpha1.Cluster
	testenv.Eventually(t, "cluster counts", func() error {
		var err error
		if c, err = getCluster(name); err != nil {
			return err
		}
		got := counts{c.Status.RegisteredContainerInstancesCount, c.Status.ActiveServicesCount, c.Status.RunningTasksCount, c.Status.PendingTasksCount}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("counts (-want +got):\n%s", diff)
		}
		if c.Status.ObservedGeneration != c.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", c.Status.ObservedGeneration, c.Generation)
		}
		if !meta.IsStatusConditionTrue(c.Status.Conditions, ecsv1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", c.Status.Conditions)
		}
		return nil
	})
	return c
}

func TestCountsFollowInstancesServicesAndTasks(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	name := newCluster(t, ns)
	c := waitCounts(t, name, counts{})
	if !controllerutil.ContainsFinalizer(c, ecsv1alpha1.ClusterFinalizer) {
		t.Errorf("finalizers = %v, want %s", c.Finalizers, ecsv1alpha1.ClusterFinalizer)
	}

	newInstance(t, ns+"-a", name)
	newInstance(t, ns+"-b", name)
	newInstance(t, ns+"-other", "some-other-cluster")
	waitCounts(t, name, counts{Instances: 2})

	svc := newService(t, ns, "web", name)
	waitCounts(t, name, counts{Instances: 2, Services: 1})

	create(t, testobj.Task(ns, "t1", "web:1").Cluster(name).Obj())
	create(t, testobj.Task(ns, "t2", "web:1").Cluster(name).Obj())
	create(t, testobj.Task(ns, "elsewhere", "web:1").Obj())
	waitCounts(t, name, counts{Instances: 2, Services: 1, Pending: 2})

	setTask(t, ns, "t1", func(task *ecsv1alpha1.Task) { task.Status.LastStatus = ecsv1alpha1.TaskPending }, true)
	setTask(t, ns, "t1", func(task *ecsv1alpha1.Task) { task.Status.LastStatus = ecsv1alpha1.TaskRunning }, true)
	waitCounts(t, name, counts{Instances: 2, Services: 1, Running: 1, Pending: 1})

	// StopTask on a task that never started: no longer pending.
	setTask(t, ns, "t2", func(task *ecsv1alpha1.Task) { task.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped }, false)
	waitCounts(t, name, counts{Instances: 2, Services: 1, Running: 1})

	if err := env.Client.Delete(ctx, &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "t1"}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: ns + "-a"}}); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, name, counts{Instances: 1})
}

func TestDeletionHeldWhileAnInstanceRemains(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	name := newCluster(t, ns)
	ci := newInstance(t, ns+"-a", name)
	create(t, testobj.Task(ns, "t1", "web:1").Cluster(name).Obj())
	waitCounts(t, name, counts{Instances: 1, Pending: 1})

	if err := env.Client.Delete(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	wantMsg := fmt.Sprintf("1 container instance (%s) still uses this cluster", ci.Name)
	testenv.Eventually(t, "DeletionBlocked", func() error {
		c, err := getCluster(name)
		if err != nil {
			return err
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, ecsv1alpha1.ClusterConditionDeletionBlocked)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != ecsv1alpha1.ReasonResourcesRemain {
			return fmt.Errorf("no DeletionBlocked=True ResourcesRemain condition: %+v", c.Status.Conditions)
		}
		if cond.Message != wantMsg {
			return fmt.Errorf("message %q, want %q", cond.Message, wantMsg)
		}
		return nil
	})
	testenv.Eventually(t, "Warning Event", func() error {
		var list eventsv1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == name && e.Type == "Warning" && e.Reason == ecsv1alpha1.ReasonResourcesRemain &&
				strings.Contains(e.Note, ci.Name) {
				return nil
			}
		}
		return fmt.Errorf("no ResourcesRemain Warning Event for cluster %s among %d events", name, len(list.Items))
	})

	if err := env.Client.Delete(ctx, ci); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "cluster gone", func() error {
		if _, err := getCluster(name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster still exists (err %w)", err)
		}
		return nil
	})
}

func TestTasksAloneDoNotHoldDeletion(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	name := newCluster(t, ns)
	create(t, testobj.Task(ns, "t1", "web:1").Cluster(name).Obj())
	waitCounts(t, name, counts{Pending: 1})
	if err := env.Client.Delete(context.Background(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "cluster gone", func() error {
		if _, err := getCluster(name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster still exists (err %w)", err)
		}
		return nil
	})
}

// TestNothingChangedWritesNothing: a recount that finds the same numbers, and task
// status churn that changes no count, must not write the Cluster.
func TestNothingChangedWritesNothing(t *testing.T) {
	mgr, tasks := startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	name := newCluster(t, ns)
	newInstance(t, ns+"-a", name)
	create(t, testobj.Task(ns, "t1", "web:1").Cluster(name).Obj())
	setTask(t, ns, "t1", func(task *ecsv1alpha1.Task) { task.Status.LastStatus = ecsv1alpha1.TaskRunning }, true)
	rv := waitCounts(t, name, counts{Instances: 1, Running: 1}).ResourceVersion
	// The reconciler below reads through the manager's cache: let it catch up with
	// the write just seen, or a lagging cache is a change to write (a race seen under
	// load in CI, not a write of an unchanged cluster).
	testenv.Eventually(t, "the manager's cache has the counted cluster", func() error {
		var cached ecsv1alpha1.Cluster
		if err := mgr.GetClient().Get(ctx, client.ObjectKey{Name: name}, &cached); err != nil {
			return err
		}
		if cached.ResourceVersion != rv {
			return fmt.Errorf("cache at resourceVersion %s, apiserver at %s", cached.ResourceVersion, rv)
		}
		return nil
	})

	recorder, writes := testenv.RecordingClient(mgr.GetClient())
	r := &cluster.Reconciler{Client: recorder, Recorder: mgr.GetEventRecorder("test"), Usage: tasks}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(writes.List()) > 0 {
		t.Errorf("a pass with nothing changed wrote: %v", writes.List())
	}
	setTask(t, ns, "t1", func(task *ecsv1alpha1.Task) { task.Status.HealthStatus = ecsv1alpha1.HealthHealthy }, true)
	time.Sleep(time.Second) // give the controller time to (wrongly) act
	c, err := getCluster(name)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResourceVersion != rv {
		t.Errorf("an unchanged cluster was written: resourceVersion %s -> %s (status %+v)", rv, c.ResourceVersion, c.Status)
	}
}
