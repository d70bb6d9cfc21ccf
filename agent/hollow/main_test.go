package hollow

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

// TestMain starts one apiserver for the package. With -short only the unit tests
// run: the integration tests skip themselves.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		ctrl.SetLogger(logr.Discard())
		os.Exit(m.Run())
	}
	os.Exit(testenv.Run(m, &env))
}

func needEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("needs the test apiserver (skipped with -short)")
	}
}

// runAgent starts an Agent for cfg and returns it with a function that stops it and
// waits for Run to return; the test's cleanup stops it too.
func runAgent(t *testing.T, cfg Config) (*Agent, func()) {
	t.Helper()
	a, err := New(cfg, env.Config)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// createRevision plays the task definition controller: it creates td and stores its
// spec as revision 1, the latest.
func createRevision(t *testing.T, td *ecsv1alpha1.TaskDefinition) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatalf("creating TaskDefinition %s: %v", td.Name, err)
	}
	cr, err := revision.Snapshot(td, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, cr); err != nil {
		t.Fatalf("creating ControllerRevision %s: %v", cr.Name, err)
	}
	td.Status.LatestRevision = 1
	if err := env.Client.Status().Update(ctx, td); err != nil {
		t.Fatalf("setting latestRevision of %s: %v", td.Name, err)
	}
}

func createTask(t *testing.T, task *ecsv1alpha1.Task) *ecsv1alpha1.Task {
	t.Helper()
	if err := env.Client.Create(context.Background(), task); err != nil {
		t.Fatalf("creating Task %s: %v", task.Name, err)
	}
	return task
}

func getTask(t *testing.T, ns, name string) *ecsv1alpha1.Task {
	t.Helper()
	task := &ecsv1alpha1.Task{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, task); err != nil {
		t.Fatalf("reading Task %s: %v", name, err)
	}
	return task
}

func getInstance(t *testing.T, name string) *ecsv1alpha1.ContainerInstance {
	t.Helper()
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ci); err != nil {
		t.Fatalf("reading ContainerInstance %s: %v", name, err)
	}
	return ci
}

func getLease(name string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: name}, l)
	return l, err
}

// waitTaskStatus waits until the task's lastStatus is want.
func waitTaskStatus(t *testing.T, ns, name string, want ecsv1alpha1.TaskStatusValue) *ecsv1alpha1.Task {
	t.Helper()
	var task *ecsv1alpha1.Task
	testenv.EventuallyWithin(t, 20*time.Second, fmt.Sprintf("task %s %s", name, want), func() error {
		task = getTask(t, ns, name)
		if task.Status.LastStatus != want {
			return fmt.Errorf("lastStatus %q", task.Status.LastStatus)
		}
		return nil
	})
	return task
}

// stopTaskSpec plays StopTask: desiredStatus STOPPED with a stop code and reason.
func stopTaskSpec(t *testing.T, ns, name string, code ecsv1alpha1.StopCode, reason string) {
	t.Helper()
	task := getTask(t, ns, name)
	patch := client.MergeFrom(task.DeepCopy())
	task.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
	task.Spec.StopCode = code
	task.Spec.StopReason = reason
	if err := env.Client.Patch(context.Background(), task, patch); err != nil {
		t.Fatalf("stopping task %s: %v", name, err)
	}
}

// writeCounter counts the writes to one task after its creation, by watching it from
// the resourceVersion Create returned.
type writeCounter struct {
	w      watch.Interface
	events chan *ecsv1alpha1.Task
}

func countWrites(t *testing.T, task *ecsv1alpha1.Task) *writeCounter {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &ecsv1alpha1.TaskList{},
		client.InNamespace(task.Namespace),
		client.MatchingFields{"metadata.name": task.Name},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: task.ResourceVersion}})
	if err != nil {
		t.Fatalf("watching task %s: %v", task.Name, err)
	}
	c := &writeCounter{w: w, events: make(chan *ecsv1alpha1.Task, 100)}
	go func() {
		defer close(c.events)
		for ev := range w.ResultChan() {
			if tk, ok := ev.Object.(*ecsv1alpha1.Task); ok && ev.Type == watch.Modified {
				c.events <- tk
			}
		}
	}()
	t.Cleanup(w.Stop)
	return c
}

// writesUntil returns the number of writes until the task's lastStatus is want, then
// the number of further writes in the quiet period after.
func (c *writeCounter) writesUntil(want ecsv1alpha1.TaskStatusValue, quiet time.Duration) (until, after int, err error) {
	timeout := time.After(20 * time.Second)
	for {
		select {
		case tk, ok := <-c.events:
			if !ok {
				return until, 0, errors.New("watch closed")
			}
			until++
			if tk.Status.LastStatus == want {
				q := time.After(quiet)
				for {
					select {
					case _, ok := <-c.events:
						if !ok {
							return until, after, nil
						}
						after++
					case <-q:
						return until, after, nil
					}
				}
			}
		case <-timeout:
			return until, 0, fmt.Errorf("no write with lastStatus %s", want)
		}
	}
}

// webTD is a task definition with a dynamic and a static port and a health check on
// its first container, and a sidecar without either.
func webTD(ns, name string) *ecsv1alpha1.TaskDefinition {
	return testobj.TaskDefinition(ns, name).
		Container("app", "registry.local/web:1").Port(80, 0).Port(8080, 8080).HealthCheck("curl -f localhost").
		Container("sidecar", "registry.local/proxy:1").
		Obj()
}

func conditionTrue(task *ecsv1alpha1.Task, typ string) bool {
	return meta.IsStatusConditionTrue(task.Status.Conditions, typ)
}
