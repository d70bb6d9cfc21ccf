package controlplane

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/test/testobj"
)

// setImage changes the first container's image: a new revision.
func setImage(t *testing.T, ns, td, image string) {
	t.Helper()
	// The manager writes the TaskDefinition's status meanwhile (revisions,
	// utilization): retry on a conflict, as kubectl edit would.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: td}, &cur); err != nil {
			return err
		}
		cur.Spec.ContainerDefinitions[0].Image = image
		return env.Client.Update(context.Background(), &cur)
	}); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, ns, name string, n int32) {
	t.Helper()
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"desiredCount":%d}}`, n)))
	svc := &ecsv1alpha1.Service{}
	svc.Namespace, svc.Name = ns, name
	if err := env.Client.Patch(context.Background(), svc, patch); err != nil {
		t.Fatal(err)
	}
}

func TestServiceConvergesAndScales(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 4, NamePrefix: ns})
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 10).Cluster(cluster).Obj(),
	)
	steady(t, ns, "web", 10, "web:1")

	// kubectl scale goes through the scale subresource.
	out, err := exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "-n", ns, "scale", "services.ecs.berth.dev/web", "--replicas=50").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, out)
	}
	steady(t, ns, "web", 50, "web:1")

	ends := watchEnds(t, ns, "web")
	scale(t, ns, "web", 5)
	steady(t, ns, "web", 5, "web:1")
	// Of the 45 tasks stopped, the history keeps its limit (20) as STOPPED tasks; the
	// rest end with their agent's delete, without a STOPPED report, when the service
	// marked them deleteWhenStopped, or with collection's after one.
	// The history can reach its limit before the other 25 are gone (their agents
	// delete them as they stop), and the watch sees the deletes after the list: wait
	// for both.
	waitFor(t, 20*time.Second, "the stopped-task history at its limit and the rest deleted", func() error {
		var stopped int
		for _, task := range listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}) {
			if task.Status.LastStatus == ecsv1alpha1.TaskStopped {
				stopped++
			}
		}
		if stopped != 20 {
			return fmt.Errorf("%d STOPPED tasks kept, want 20", stopped)
		}
		if _, _, deleted := ends(); deleted != 25 {
			return fmt.Errorf("%d tasks seen deleted, want 25", deleted)
		}
		return nil
	})
	marked, reported, _ := ends()
	if marked == 0 {
		t.Errorf("no task stopped with deleteWhenStopped in a scale-in of 45 beyond a history of 20")
	}
	if len(reported) > 0 {
		t.Errorf("tasks marked deleteWhenStopped were reported STOPPED before their delete: %v", reported)
	}
	t.Logf("scale-in from 50 to 5: %d tasks deleted by their agents without a STOPPED report", marked)
	// Nothing ran twice: every live task has its own name and slot.
	slots := map[string]bool{}
	for _, task := range liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"})) {
		if slots[task.Labels["ecs.berth.dev/slot"]] {
			t.Errorf("two live tasks in slot %s", task.Labels["ecs.berth.dev/slot"])
		}
		slots[task.Labels["ecs.berth.dev/slot"]] = true
	}
}

// TestRollingDeploymentStaysWithinBounds watches every task change during a rollout
// and checks the bounds at each observed step, not only at the end.
func TestRollingDeploymentStaysWithinBounds(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 3, NamePrefix: ns, RunningDelay: 300 * time.Millisecond})
	const desired, minPct, maxPct = 6, 50, 150
	create(t,
		testobj.TaskDefinition(ns, "api").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "api", "api", desired).Cluster(cluster).Bounds(minPct, maxPct).Obj(),
	)
	steady(t, ns, "api", desired, "api:1")

	minHealthy, maxTotal := deployment.MinHealthy(desired, minPct), deployment.MaxTotal(desired, maxPct)
	violations, steps := watchBounds(t, ns, "api", int(minHealthy), int(maxTotal))
	setImage(t, ns, "api", "demo:2")
	svc := steady(t, ns, "api", desired, "api:2")
	if v := violations(); len(v) > 0 {
		t.Errorf("bounds violated during the rollout (min healthy %d, max %d):\n%s", minHealthy, maxTotal, strings.Join(v, "\n"))
	}
	if n := steps(); n < 10 {
		t.Errorf("observed only %d steps of the rollout; the check saw too little", n)
	}
	primary := svc.Status.Deployments[0]
	if primary.Status != ecsv1alpha1.DeploymentPrimary || primary.RolloutState != ecsv1alpha1.RolloutCompleted || primary.TaskDefinition != "api:2" {
		t.Errorf("primary deployment = %+v", primary)
	}
	for _, d := range svc.Status.Deployments[1:] {
		if d.Status != ecsv1alpha1.DeploymentInactive {
			t.Errorf("old deployment %s is %s, want INACTIVE", d.ID, d.Status)
		}
	}
	for _, task := range liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "api"})) {
		if task.Spec.TaskDefinition != "api:2" {
			t.Errorf("task %s still runs %s", task.Name, task.Spec.TaskDefinition)
		}
	}
}

// watchBounds follows the service's tasks through a watch and records every state in
// which more than maxTotal tasks were live or fewer than minHealthy were RUNNING.
func watchBounds(t *testing.T, ns, service string, minHealthy, maxTotal int) (violations func() []string, steps func() int) {
	t.Helper()
	var mu sync.Mutex
	var found []string
	n := 0
	state := map[string]ecsv1alpha1.Task{}
	followTasks(t, ns, service, func(tasks []ecsv1alpha1.Task) {
		for _, task := range tasks {
			state[task.Name] = task
		}
	}, func(ev watch.EventType, task *ecsv1alpha1.Task) {
		mu.Lock()
		defer mu.Unlock()
		if ev == watch.Deleted {
			delete(state, task.Name)
		} else {
			state[task.Name] = *task
		}
		live, running := 0, 0
		for _, s := range state {
			if s.Spec.DesiredStatus == ecsv1alpha1.DesiredRunning && s.Status.LastStatus != ecsv1alpha1.TaskStopped {
				live++
				if s.Status.LastStatus == ecsv1alpha1.TaskRunning {
					running++
				}
			}
		}
		n++
		if live > maxTotal || running < minHealthy {
			found = append(found, fmt.Sprintf("step %d (%s %s): %d live, %d running", n, ev, task.Name, live, running))
		}
	})
	return func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), found...)
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return n
		}
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns, FailImages: []string{"broken"}})
	create(t,
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 4).Cluster(cluster).CircuitBreaker(true).Obj(),
	)
	steady(t, ns, "web", 4, "web:1")
	setImage(t, ns, "web", "demo:broken")
	// The TaskDefinition says when its change has played out: RolledOut for its new
	// generation, judged against web:2. (The Service is steady on web:1 right after
	// the change too, before the service controller has seen web:2.)
	waitFor(t, 60*time.Second, "web:2 rollout failed (RolledOut=False/RolloutFailed)", func() error {
		var td ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &td); err != nil {
			return err
		}
		c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionRolledOut)
		if c == nil || c.ObservedGeneration != td.Generation || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonRolloutFailed {
			return fmt.Errorf("generation %d, RolledOut %+v", td.Generation, c)
		}
		return nil
	})

	svc := steady(t, ns, "web", 4, "web:1")
	var failed *ecsv1alpha1.Deployment
	for i, d := range svc.Status.Deployments {
		if d.TaskDefinition == "web:2" {
			failed = &svc.Status.Deployments[i]
		}
	}
	if failed == nil || failed.RolloutState != ecsv1alpha1.RolloutFailed {
		t.Fatalf("deployment of web:2 = %+v, want FAILED", failed)
	}
	if threshold := deployment.CircuitBreakerThreshold(4); failed.FailedTasks < threshold {
		t.Errorf("failedTasks %d below the threshold %d", failed.FailedTasks, threshold)
	}
	if svc.Status.Deployments[0].TaskDefinition != "web:1" || svc.Status.RolloutState != ecsv1alpha1.RolloutCompleted {
		t.Errorf("after rollback the primary is %+v", svc.Status.Deployments[0])
	}
	// The failed deployment is not retried while the spec still names it.
	time.Sleep(2 * time.Second)
	if live := liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelDeployment: failed.ID})); len(live) != 0 {
		t.Errorf("%d tasks of the failed deployment started again", len(live))
	}
	events := eventReasons(t, ns, "web")
	for _, want := range []string{ecsv1alpha1.ReasonDeploymentFailed, ecsv1alpha1.ReasonCircuitBreakerRollback} {
		if !events[want] {
			t.Errorf("no %s event; got %v", want, events)
		}
	}
}

func TestDaemonFollowsInstances(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	first := startHollow(t, hollow.Config{Cluster: cluster, Instances: 3, NamePrefix: ns + "-a"})
	create(t,
		testobj.TaskDefinition(ns, "agent").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "agent", "agent", 0).Daemon().Cluster(cluster).Obj(),
	)
	daemonOnEach := func(want int) {
		t.Helper()
		steady(t, ns, "agent", int32(want), "agent:1")
		waitFor(t, 30*time.Second, "one task per instance", func() error {
			per := map[string]int{}
			for _, task := range liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "agent"})) {
				per[task.Spec.ContainerInstance]++
			}
			if len(per) != want {
				return fmt.Errorf("tasks on %d instances, want %d: %v", len(per), want, per)
			}
			for inst, n := range per {
				if n != 1 {
					return fmt.Errorf("%d tasks on %s", n, inst)
				}
			}
			return nil
		})
	}
	daemonOnEach(3)

	startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns + "-b"})
	daemonOnEach(5)

	drained := first.Names()[0]
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"draining":true}}`))
	ci := &ecsv1alpha1.ContainerInstance{}
	ci.Name = drained
	if err := env.Client.Patch(context.Background(), ci, patch); err != nil {
		t.Fatal(err)
	}
	daemonOnEach(4)

	if err := first.Deregister(first.Names()[1]); err != nil {
		t.Fatal(err)
	}
	daemonOnEach(3)
}

func eventReasons(t *testing.T, ns, name string) map[string]bool {
	t.Helper()
	out, err := exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "-n", ns, "get", "events",
		"--field-selector", "involvedObject.name="+name, "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get events: %v\n%s", err, out)
	}
	reasons := map[string]bool{}
	for _, r := range strings.Fields(string(out)) {
		reasons[r] = true
	}
	return reasons
}

// watchEnds follows the service's tasks from now on; ends returns how many were
// deleted marked deleteWhenStopped, those of them that had been reported STOPPED,
// and how many were deleted in all.
func watchEnds(t *testing.T, ns, service string) (ends func() (marked int, reported []string, deleted int)) {
	t.Helper()
	var mu sync.Mutex
	stoppedSeen := map[string]bool{}
	n, all := 0, 0
	var reportedNames []string
	followTasks(t, ns, service, nil, func(ev watch.EventType, task *ecsv1alpha1.Task) {
		mu.Lock()
		defer mu.Unlock()
		if task.Status.LastStatus == ecsv1alpha1.TaskStopped {
			stoppedSeen[task.Name] = true
		}
		if ev != watch.Deleted {
			return
		}
		all++
		if task.Spec.DeleteWhenStopped {
			n++
			if stoppedSeen[task.Name] {
				reportedNames = append(reportedNames, task.Name)
			}
		}
	})
	return func() (int, []string, int) {
		mu.Lock()
		defer mu.Unlock()
		return n, slices.Clone(reportedNames), all
	}
}

// followTasks hands the service's tasks that exist now to seed (when not nil), then
// every change of them to fn, in order, until the test ends. The apiserver closes a
// watch whose reader falls behind (a burst of events on a loaded machine), so the
// watch resumes from the last event it delivered, as a reflector's does: a test
// that counts events must not lose the ones after a close.
func followTasks(t *testing.T, ns, service string, seed func([]ecsv1alpha1.Task), fn func(watch.EventType, *ecsv1alpha1.Task)) {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	sel := client.MatchingLabels{ecsv1alpha1.LabelService: service}
	var list ecsv1alpha1.TaskList
	if err := c.List(context.Background(), &list, client.InNamespace(ns), sel); err != nil {
		t.Fatal(err)
	}
	w, err := watchtools.NewRetryWatcherWithContext(context.Background(), list.ResourceVersion, &toolscache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(ns), sel, &client.ListOptions{Raw: &o})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if seed != nil {
		seed(list.Items)
	}
	go func() {
		for ev := range w.ResultChan() {
			// The retry watcher asks for bookmarks: they carry no task.
			if task, ok := ev.Object.(*ecsv1alpha1.Task); ok && ev.Type != watch.Bookmark {
				fn(ev.Type, task)
			}
		}
	}()
}
