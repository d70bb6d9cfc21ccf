// Package controlplane tests the whole manager (every controller, the scheduler and
// the placement engine) against a real kube-apiserver and etcd, with hollow agents
// playing the machines.
package controlplane

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// heartbeatGrace is short so that lost instances are noticed within a test.
const heartbeatGrace = 3 * time.Second

// startManager runs the full Berth manager until stop is called (or the test ends).
func startManager(t *testing.T) (stop func()) {
	t.Helper()
	stop = harness.StartManager(t, env, harness.ManagerOptions{HeartbeatGrace: heartbeatGrace, SchedulerWorkers: 8, ServiceWorkers: 4})
	// Synced managers react to the same events at once, which is the race the
	// deterministic task names must survive; their controllers start just after
	// the sync.
	time.Sleep(500 * time.Millisecond)
	return stop
}

// startHollow runs `berth hollow` with the suites' fast timings until the test ends.
func startHollow(t *testing.T, cfg hollow.Config) *hollow.Agent {
	t.Helper()
	return harness.StartHollow(t, env, cfg)
}

// waitFor is testenv.EventuallyWithin, named for this suite's longer waits.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	testenv.EventuallyWithin(t, timeout, what, cond)
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func getService(t *testing.T, ns, name string) *ecsv1alpha1.Service {
	t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

func listTasks(t *testing.T, ns string, opts ...client.ListOption) []ecsv1alpha1.Task {
	t.Helper()
	var list ecsv1alpha1.TaskList
	if err := env.Client.List(context.Background(), &list, append(opts, client.InNamespace(ns))...); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// liveTasks are the tasks that count: desired RUNNING and not STOPPED.
func liveTasks(tasks []ecsv1alpha1.Task) []ecsv1alpha1.Task {
	var out []ecsv1alpha1.Task
	for _, t := range tasks {
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredRunning && t.Status.LastStatus != ecsv1alpha1.TaskStopped {
			out = append(out, t)
		}
	}
	return out
}

// steady waits until the service is steady with want RUNNING tasks, of revision rev
// when rev is set.
func steady(t *testing.T, ns, name string, want int32, rev string) *ecsv1alpha1.Service {
	t.Helper()
	var svc *ecsv1alpha1.Service
	waitFor(t, 60*time.Second, fmt.Sprintf("service %s steady with %d tasks", name, want), func() error {
		svc = getService(t, ns, name)
		st := svc.Status
		if st.ObservedGeneration != svc.Generation {
			return fmt.Errorf("observedGeneration %d of %d", st.ObservedGeneration, svc.Generation)
		}
		if rev != "" && st.TaskDefinition != rev {
			return fmt.Errorf("taskDefinition %q, want %q", st.TaskDefinition, rev)
		}
		if st.RunningCount != want || st.PendingCount != 0 || !conditionTrue(st.Conditions, ecsv1alpha1.ServiceConditionSteady) {
			return fmt.Errorf("running %d pending %d desired %d, conditions %s\ntasks:\n%s", st.RunningCount, st.PendingCount, st.DesiredCount,
				describe(st.Conditions), describeTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: name})))
		}
		if live := liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: name})); len(live) != int(want) {
			return fmt.Errorf("%d live tasks, want %d", len(live), want)
		}
		return nil
	})
	return svc
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func describe(conds []metav1.Condition) string {
	var parts []string
	for _, c := range conds {
		parts = append(parts, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}

// uniqueCluster names a cluster per test, so tests' hollow instances never mix.
func uniqueCluster(ns string) string { return "c-" + ns }

// describeTasks is a one-line-per-task dump for failure messages.
func describeTasks(tasks []ecsv1alpha1.Task) string {
	var b strings.Builder
	for _, t := range tasks {
		fmt.Fprintf(&b, "  %s desired=%s last=%s health=%s instance=%q rev=%d stop=%s %s\n", t.Name, t.Spec.DesiredStatus,
			t.Status.LastStatus, t.Status.HealthStatus, t.Spec.ContainerInstance, t.Status.TaskDefinitionRevision, t.Status.StopCode, describe(t.Status.Conditions))
	}
	return b.String()
}

// waitConnected waits until the manager sees every named instance connected and ACTIVE.
func waitConnected(t *testing.T, names ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, "instances connected", func() error {
		for _, n := range names {
			var ci ecsv1alpha1.ContainerInstance
			if err := env.Client.Get(context.Background(), types.NamespacedName{Name: n}, &ci); err != nil {
				return err
			}
			if !ci.Status.AgentConnected || ci.Status.Status != ecsv1alpha1.InstanceActive {
				return fmt.Errorf("%s: connected=%v status=%s", n, ci.Status.AgentConnected, ci.Status.Status)
			}
		}
		return nil
	})
}
