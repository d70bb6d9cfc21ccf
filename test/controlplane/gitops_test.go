package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	berthconfig "github.com/berthdev/berth/config"
	"github.com/berthdev/berth/controllers"
	"github.com/berthdev/berth/controllers/endpoints"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/test/testenv"
)

// The kubectl and GitOps experience: config/samples applied with server-side apply as
// Argo CD or Flux apply them, the whole manager and hollow agents converging them,
// and then what a GitOps tool and a kubectl user see.

// gitopsManager is the field manager of the GitOps tool these tests play.
const gitopsManager = "argocd-controller"

// TestGitOpsReapplyShowsNoDrift: once the controllers have converged the samples,
// every field the user set is unchanged and still owned by the GitOps tool, the
// controllers wrote nothing else under spec or metadata but a Task's binding and
// their finalizers, and re-applying the same manifests (for real, and as the server
// side dry run behind `kubectl diff --server-side`) changes nothing.
func TestGitOpsReapplyShowsNoDrift(t *testing.T) {
	s := startSamples(t, hollow.Config{})
	s.finishMigration(t)
	s.settle(t)

	for _, u := range s.objs {
		t.Run(keyOf(u), func(t *testing.T) {
			checkNoDrift(t, s.applied[keyOf(u)], s.live(t, u))
		})
	}

	before := s.sampleVersions(t)
	// Without --force-conflicts: a field another manager took over would fail the
	// apply with a conflict, which is drift too.
	s.kubectl.must(t, "apply", "--server-side", "--field-manager="+gitopsManager, "-f", s.file)
	if diff := cmp.Diff(before, s.sampleVersions(t)); diff != "" {
		t.Errorf("re-applying the unchanged samples wrote objects (resourceVersion -before +after):\n%s", diff)
	}
	out, err := s.kubectl.run("diff", "--server-side", "--field-manager="+gitopsManager, "-f", s.file)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("kubectl diff --server-side reports drift (exit 1 means differences): %v\n%s", err, out)
	}
}

// TestGitOpsSteadyStateWritesNothing: once everything has converged, nothing writes
// any object for a 10 s window: no controller rewrites a status with a list in
// another order, a fresh timestamp or a flipped reason.
func TestGitOpsSteadyStateWritesNothing(t *testing.T) {
	s := startSamples(t, hollow.Config{})
	s.finishMigration(t)
	s.settle(t)

	start := time.Now()
	before := s.snapshot(t)
	time.Sleep(10 * time.Second) // the measured window, not a wait for something
	after := s.snapshot(t)
	for key, b := range before {
		a, ok := after[key]
		switch {
		case !ok:
			t.Errorf("%s was deleted in the steady window", key)
		case a.GetResourceVersion() != b.GetResourceVersion():
			t.Errorf("%s was written in the steady window (resourceVersion %s -> %s); writers since %s:\n%s",
				key, b.GetResourceVersion(), a.GetResourceVersion(), start.Format(time.RFC3339), writersSince(a, start))
		}
	}
	for key := range after {
		if _, ok := before[key]; !ok {
			t.Errorf("%s was created in the steady window", key)
		}
	}
	if n := len(before); n < 15 {
		t.Errorf("the window watched only %d objects; the samples were not all there", n)
	}
	t.Logf("%d objects, no write in %s", len(before), time.Since(start).Round(time.Second))
}

// TestKubectlDescribeExplainsState: `kubectl get ecs` lists every sample object, and
// `kubectl describe` of each kind shows conditions with reasons and the events that
// explain how the object got there.
func TestKubectlDescribeExplainsState(t *testing.T) {
	s := startSamples(t, hollow.Config{})
	s.finishMigration(t)

	out := s.kubectl.must(t, "get", "ecs", "-n", s.ns, "-o", "name")
	for _, u := range s.objs {
		if u.GroupVersionKind().Group != ecsv1alpha1.GroupVersion.Group {
			continue
		}
		want := strings.ToLower(u.GetKind()) + "." + ecsv1alpha1.GroupVersion.Group + "/" + u.GetName()
		if !slices.Contains(strings.Fields(out), want) {
			t.Errorf("kubectl get ecs does not list %s:\n%s", want, out)
		}
	}

	serviceTask := liveTasks(listTasks(t, s.ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}))[0].Name
	tests := []struct {
		resource string
		// conditions maps a condition type to its wanted reason.
		conditions map[string]string
		// events are reasons that must be among the object's events.
		events []string
		// warnings are the Warning reasons allowed; the converging samples give no
		// other cause for one.
		warnings []string
	}{
		{
			resource:   "clusters.ecs.berth.dev/" + s.cluster,
			conditions: map[string]string{ecsv1alpha1.ConditionReady: ecsv1alpha1.ReasonReconcileComplete},
		},
		{
			// Pre-registered by the operator; no agent runs it.
			resource: "containerinstances.ecs.berth.dev/" + s.instance,
			conditions: map[string]string{
				ecsv1alpha1.InstanceConditionConnected: ecsv1alpha1.ReasonAwaitingAgent,
				ecsv1alpha1.ConditionReady:             ecsv1alpha1.ReasonAwaitingAgent,
			},
		},
		{
			resource: "containerinstances.ecs.berth.dev/" + s.agents.Names()[0],
			conditions: map[string]string{
				ecsv1alpha1.InstanceConditionConnected:    ecsv1alpha1.ReasonLeaseRenewed,
				ecsv1alpha1.InstanceConditionRuntimeReady: ecsv1alpha1.ReasonRuntimeUp,
				ecsv1alpha1.ConditionReady:                ecsv1alpha1.ReasonReconcileComplete,
			},
			events: []string{ecsv1alpha1.ReasonLeaseRenewed},
		},
		{
			resource: "taskdefinitions.ecs.berth.dev/web",
			conditions: map[string]string{
				ecsv1alpha1.ConditionAccepted:                 ecsv1alpha1.ReasonValid,
				ecsv1alpha1.TaskDefinitionConditionRevisioned: ecsv1alpha1.ReasonRevisionCurrent,
			},
			events: []string{ecsv1alpha1.ReasonRevisionCreated},
		},
		{
			resource: "services.ecs.berth.dev/web",
			conditions: map[string]string{
				ecsv1alpha1.ConditionAccepted:               ecsv1alpha1.ReasonValid,
				ecsv1alpha1.ServiceConditionRolloutComplete: ecsv1alpha1.ReasonDeploymentCompleted,
				ecsv1alpha1.ServiceConditionSteady:          ecsv1alpha1.ReasonDeploymentCompleted,
				ecsv1alpha1.ServiceConditionTasksPlaced:     ecsv1alpha1.ReasonPlaced,
			},
			events: []string{"DeploymentStarted", "TasksStarted", ecsv1alpha1.ReasonDeploymentCompleted, "SteadyState"},
			// Applied in one sync, the ECS Service may reach the endpoints
			// controller before the core Service its loadBalancers name reaches
			// its cache: it may say so once.
			warnings: []string{endpoints.ReasonLoadBalancerServiceNotFound},
		},
		{
			resource: "tasks.ecs.berth.dev/" + serviceTask,
			// Where it went is its Placed condition: placements are announced per
			// batch on the Cluster and the Service, not per task.
			conditions: map[string]string{ecsv1alpha1.TaskConditionPlaced: ecsv1alpha1.ReasonPlaced, ecsv1alpha1.TaskConditionRunning: "Started"},
		},
		{
			resource: "tasks.ecs.berth.dev/migrate-once",
			conditions: map[string]string{
				ecsv1alpha1.TaskConditionPlaced:  ecsv1alpha1.ReasonPlaced,
				ecsv1alpha1.TaskConditionRunning: "Stopped",
				ecsv1alpha1.TaskConditionStopped: string(ecsv1alpha1.StopEssentialContainerExited),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			// Events are recorded asynchronously, after the writes they explain.
			waitFor(t, 30*time.Second, "kubectl describe "+tc.resource, func() error {
				out, err := s.kubectl.run("describe", "-n", s.ns, tc.resource)
				if err != nil {
					return err
				}
				d := parseDescribe(out)
				if !d.eventsSection {
					return fmt.Errorf("no Events section:\n%s", out)
				}
				for typ, reason := range tc.conditions {
					if got, ok := d.conditions[typ]; !ok || got != reason {
						return fmt.Errorf("condition %s has reason %q (present: %v), want %q:\n%s", typ, got, ok, reason, out)
					}
				}
				for _, reason := range tc.events {
					if !slices.Contains(d.events, reason) {
						return fmt.Errorf("no %s event among %v:\n%s", reason, d.events, out)
					}
				}
				for _, reason := range d.warnings {
					if !slices.Contains(tc.warnings, reason) {
						t.Fatalf("Warning %s for a sample that converges without trouble:\n%s", reason, out)
					}
				}
				return nil
			})
		})
	}
}

// TestKubectlScaleAndWaitForRollouts: `kubectl scale` changes desiredCount and the
// service converges; `kubectl wait` on the Service's conditions returns when what
// was asked for is done, never on a condition left over from before.
func TestKubectlScaleAndWaitForRollouts(t *testing.T) {
	s := startSamples(t, hollow.Config{FailImages: []string{"broken"}})
	k, svcRef, tdRef := s.kubectl, "services.ecs.berth.dev/web", "taskdefinitions.ecs.berth.dev/web"
	wait := func(forArg string) {
		t.Helper()
		k.must(t, "wait", "-n", s.ns, svcRef, "--for="+forArg, "--timeout=90s")
	}

	t.Run("scale", func(t *testing.T) {
		k.must(t, "scale", "-n", s.ns, svcRef, "--replicas=5")
		// The scale bumped the generation: Steady from before no longer counts.
		wait("condition=Steady")
		svc := getService(t, s.ns, "web")
		if got := ptr.Deref(svc.Spec.DesiredCount, 0); got != 5 || svc.Status.RunningCount != 5 || svc.Status.DesiredCount != 5 {
			t.Fatalf("after kubectl scale: spec.desiredCount %d, status desired %d running %d; want 5", got, svc.Status.DesiredCount, svc.Status.RunningCount)
		}
		if live := liveTasks(listTasks(t, s.ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"})); len(live) != 5 {
			t.Fatalf("%d live tasks, want 5\n%s", len(live), describeTasks(live))
		}
	})

	t.Run("new revision of a latest reference", func(t *testing.T) {
		// The Service's spec does not change (it names "web", the latest revision), so
		// neither does its generation, and its RolloutComplete stays True from web:1's
		// rollout until the service controller sees web:2. The object that changed
		// answers instead: RolledOut is judged against the revision registered for
		// the TaskDefinition's new generation, so this one wait cannot return on the
		// state from before the apply.
		s.applyEdited(t, "TaskDefinition", "web", func(u *unstructured.Unstructured) {
			setEnv(t, u, "app", "GREETING", "hello from web:2")
		})
		k.must(t, "wait", "-n", s.ns, tdRef, "--for=condition=RolledOut", "--timeout=90s")
		checkRunsOnly(t, s.ns, "web:2", 5)
		if svc := getService(t, s.ns, "web"); svc.Status.TaskDefinition != "web:2" || svc.Status.RolloutState != ecsv1alpha1.RolloutCompleted {
			t.Errorf("kubectl wait returned with the service on %s (%s), want web:2 COMPLETED", svc.Status.TaskDefinition, svc.Status.RolloutState)
		}
	})

	t.Run("rolled back rollout is not complete", func(t *testing.T) {
		s.applyEdited(t, "TaskDefinition", "web", func(u *unstructured.Unstructured) {
			setContainerImage(t, u, "app", "localhost:5000/berth/demo:broken")
		})
		var svc *ecsv1alpha1.Service
		waitFor(t, 90*time.Second, "web:3 failed and rolled back", func() error {
			svc = getService(t, s.ns, "web")
			failed := slices.IndexFunc(svc.Status.Deployments, func(d ecsv1alpha1.Deployment) bool {
				return d.TaskDefinition == "web:3" && d.RolloutState == ecsv1alpha1.RolloutFailed
			})
			if failed < 0 || svc.Status.RolloutState != ecsv1alpha1.RolloutCompleted || !conditionTrue(svc.Status.Conditions, ecsv1alpha1.ServiceConditionSteady) {
				return fmt.Errorf("deployments %+v, conditions %s", svc.Status.Deployments, describe(svc.Status.Conditions))
			}
			return nil
		})
		c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionRolloutComplete)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonDeploymentFailed {
			t.Fatalf("after the rollback RolloutComplete = %+v, want False/%s", c, ecsv1alpha1.ReasonDeploymentFailed)
		}
		if _, err := k.run("wait", "-n", s.ns, svcRef, "--for=condition=RolloutComplete", "--timeout=3s"); err == nil {
			t.Error("kubectl wait --for=condition=RolloutComplete returned for a rollout that was rolled back")
		}
		wait("condition=RolloutComplete=False")
		checkRunsOnly(t, s.ns, "web:2", 5)
		// The TaskDefinition says so too, for web:3's generation, naming the Service.
		waitFor(t, 30*time.Second, "RolledOut=False/RolloutFailed", func() error {
			var td ecsv1alpha1.TaskDefinition
			if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "web"}, &td); err != nil {
				return err
			}
			c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionRolledOut)
			if c == nil || c.ObservedGeneration != td.Generation || c.Reason != ecsv1alpha1.ReasonRolloutFailed ||
				!strings.Contains(c.Message, "web:3 failed in Service web") {
				return fmt.Errorf("generation %d, RolledOut %+v", td.Generation, c)
			}
			return nil
		})
		if _, err := k.run("wait", "-n", s.ns, tdRef, "--for=condition=RolledOut", "--timeout=3s"); err == nil {
			t.Error("kubectl wait --for=condition=RolledOut returned for a revision that was rolled back")
		}
	})

	t.Run("pinned revision bumps the generation", func(t *testing.T) {
		// Accepting the rollback by pinning what runs completes at once.
		k.must(t, "patch", "-n", s.ns, svcRef, "--type=merge", "-p", `{"spec":{"taskDefinition":"web:2"}}`)
		wait("condition=RolloutComplete")
		// From RolloutComplete=True, a spec change must not let kubectl wait return on
		// the old True: the condition's observedGeneration is older than the spec.
		k.must(t, "patch", "-n", s.ns, svcRef, "--type=merge", "-p", `{"spec":{"taskDefinition":"web:1"}}`)
		wait("condition=RolloutComplete")
		svc := getService(t, s.ns, "web")
		if svc.Status.TaskDefinition != "web:1" {
			t.Errorf("kubectl wait returned with status.taskDefinition %s, want web:1", svc.Status.TaskDefinition)
		}
		checkRunsOnly(t, s.ns, "web:1", 5)
	})
}

// TestKubectlWaitForTask: `kubectl wait` works on Tasks: for lastStatus with a
// jsonpath, for Stopped when the task ends, and for Placed on a task whose revision
// the scheduler resolves.
func TestKubectlWaitForTask(t *testing.T) {
	s := startSamples(t, hollow.Config{})
	k, ref := s.kubectl, "tasks.ecs.berth.dev/migrate-once"
	k.must(t, "wait", "-n", s.ns, ref, "--for=jsonpath={.status.lastStatus}=RUNNING", "--timeout=60s")
	if _, err := k.run("wait", "-n", s.ns, ref, "--for=condition=Stopped", "--timeout=2s"); err == nil {
		t.Fatal("kubectl wait --for=condition=Stopped returned for a running task")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	waiting := k.command(ctx, "wait", "-n", s.ns, ref, "--for=condition=Stopped", "--timeout=90s")
	waiting.Stdout, waiting.Stderr = &out, &out
	if err := waiting.Start(); err != nil {
		t.Fatal(err)
	}
	s.finishMigration(t)
	if err := waiting.Wait(); err != nil {
		t.Fatalf("kubectl wait --for=condition=Stopped: %v\n%s", err, out.String())
	}
	k.must(t, "wait", "-n", s.ns, ref, "--for=jsonpath={.status.stopCode}=EssentialContainerExited", "--timeout=10s")

	// A `family` reference: the scheduler resolves the revision and writes Placed.
	task := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ecsv1alpha1.GroupVersion.String(), "kind": "Task",
		"metadata": map[string]any{"name": "migrate-latest", "namespace": s.ns},
		"spec":     map[string]any{"cluster": s.cluster, "taskDefinition": "migrate"},
	}}
	s.apply(t, testenv.WriteYAML(t, task))
	latest := "tasks.ecs.berth.dev/migrate-latest"
	k.must(t, "wait", "-n", s.ns, latest, "--for=condition=Placed", "--timeout=60s")
	k.must(t, "wait", "-n", s.ns, latest, "--for=condition=Running", "--timeout=60s")
	got := getTask(t, s.ns, "migrate-latest")
	if c := meta.FindStatusCondition(got.Status.Conditions, ecsv1alpha1.TaskConditionPlaced); c == nil || c.ObservedGeneration != got.Generation {
		t.Errorf("Placed condition %+v, want observedGeneration %d", c, got.Generation)
	}
}

// sampleEnv is config/samples applied into one test's namespace by a GitOps tool,
// with hollow agents in the samples' cluster and the whole manager converging it.
type sampleEnv struct {
	ns string
	// cluster and instance are the sample Cluster ("default") and pre-registered
	// ContainerInstance ("worker-1"), renamed for the test: they are cluster-scoped.
	cluster, instance string
	// objs are the objects as applied; file holds them for kubectl.
	objs []*unstructured.Unstructured
	file string
	// applied holds each object as the first apply stored it, before any controller
	// wrote it: the manifest plus the API's defaults.
	applied map[string]*unstructured.Unstructured
	agents  *hollow.Agent
	kubectl kubectlRunner
}

// startSamples starts hollow agents in the samples' cluster and the manager, applies
// the samples as a GitOps sync does (everything at once, into a running system),
// and waits until both services are steady and the migration task runs.
func startSamples(t *testing.T, cfg hollow.Config) *sampleEnv {
	t.Helper()
	ns := env.Namespace(t)
	s := &sampleEnv{ns: ns, kubectl: newKubectl(t), applied: map[string]*unstructured.Unstructured{}}
	s.objs, s.cluster, s.instance = loadSamples(t, ns)
	s.file = testenv.WriteYAML(t, s.objs...)

	cfg.Cluster, cfg.NamePrefix = s.cluster, ns
	if cfg.Instances == 0 {
		cfg.Instances = 2
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{"zone-a", "zone-b"}
	}
	s.agents = startHollow(t, cfg)
	// The default heartbeat grace: a loaded machine must not disconnect instances
	// in the middle of a steady window.
	env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(ctx context.Context, mgr ctrl.Manager) error {
		return controllers.Setup(ctx, mgr, controllers.Options{SchedulerWorkers: 8, ServiceWorkers: 4})
	})
	t.Cleanup(func() { s.deleteClusterScoped() }) // runs while the manager still runs
	waitConnected(t, s.agents.Names()...)

	// The apply's response is each object as admitted (the manifest plus the API's
	// defaults), before any controller could touch it.
	out := s.kubectl.must(t, "apply", "--server-side", "--field-manager="+gitopsManager, "-f", s.file, "-o", "json", "--show-managed-fields")
	var resp unstructured.Unstructured
	if err := resp.UnmarshalJSON([]byte(out)); err != nil {
		t.Fatalf("decoding kubectl apply -o json: %v\n%s", err, out)
	}
	items := []unstructured.Unstructured{resp}
	if resp.IsList() {
		list, err := resp.ToList()
		if err != nil {
			t.Fatal(err)
		}
		items = list.Items
	}
	for i := range items {
		s.applied[keyOf(&items[i])] = &items[i]
	}
	for _, u := range s.objs {
		if s.applied[keyOf(u)] == nil {
			t.Fatalf("kubectl apply returned no %s", keyOf(u))
		}
	}

	steady(t, ns, "web", 3, "web:1")
	// DAEMON: one task per connected instance; the pre-registered one has no agent.
	steady(t, ns, "node-exporter", int32(len(s.agents.Names())), "node-exporter:1")
	waitFor(t, 30*time.Second, "migrate-once running", func() error {
		if got := getTask(t, ns, "migrate-once").Status.LastStatus; got != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("lastStatus %q", got)
		}
		return nil
	})
	return s
}

// apply server-side-applies a manifest file as the GitOps tool.
func (s *sampleEnv) apply(t *testing.T, file string) {
	t.Helper()
	s.kubectl.must(t, "apply", "--server-side", "--field-manager="+gitopsManager, "-f", file)
}

// applyEdited applies an edited copy of one sample object, as a commit to the GitOps
// repository would.
func (s *sampleEnv) applyEdited(t *testing.T, kind, name string, edit func(*unstructured.Unstructured)) {
	t.Helper()
	for _, u := range s.objs {
		if u.GetKind() == kind && u.GetName() == name && u.GroupVersionKind().Group == ecsv1alpha1.GroupVersion.Group {
			c := u.DeepCopy()
			edit(c)
			s.apply(t, testenv.WriteYAML(t, c))
			return
		}
	}
	t.Fatalf("no sample %s %s", kind, name)
}

func (s *sampleEnv) live(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(u.GroupVersionKind())
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), obj); err != nil {
		t.Fatalf("reading %s: %v", keyOf(u), err)
	}
	return obj
}

// sampleVersions maps every sample object to its resourceVersion.
func (s *sampleEnv) sampleVersions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, u := range s.objs {
		out[keyOf(u)] = s.live(t, u).GetResourceVersion()
	}
	return out
}

// finishMigration ends the migration task's only, essential container by itself, as
// the sample's --exit-after=5s does on a machine: its process exits 0 in the
// instance's in-memory runtime, and the agent's engine stops the task with
// EssentialContainerExited, exactly as it would on containerd.
func (s *sampleEnv) finishMigration(t *testing.T) {
	t.Helper()
	var task *ecsv1alpha1.Task
	waitFor(t, 30*time.Second, "migrate-once running", func() error {
		task = getTask(t, s.ns, "migrate-once")
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("lastStatus %q", task.Status.LastStatus)
		}
		return nil
	})
	rt := s.agents.Runtime(task.Spec.ContainerInstance)
	if rt == nil {
		t.Fatalf("migrate-once runs on %q, not on a hollow instance", task.Spec.ContainerInstance)
	}
	for _, c := range task.Status.Containers {
		if err := rt.Exit(c.RuntimeID, 0); err != nil {
			t.Fatalf("ending container %s of migrate-once: %v", c.Name, err)
		}
	}
	waitFor(t, 30*time.Second, "migrate-once stopped", func() error {
		got := getTask(t, s.ns, "migrate-once").Status
		if got.LastStatus != ecsv1alpha1.TaskStopped || got.StopCode != ecsv1alpha1.StopEssentialContainerExited {
			return fmt.Errorf("lastStatus %q, stopCode %q", got.LastStatus, got.StopCode)
		}
		return nil
	})
}

// settle waits until the last reports of a converged world are written: every
// agent's instance status and the cluster's counts agree with the tasks, and every
// object's status describes its current generation.
func (s *sampleEnv) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 30*time.Second, "instance and cluster reports current", func() error {
		running := map[string]int32{}
		var total int32
		for _, task := range listTasks(t, s.ns) {
			if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
				running[task.Spec.ContainerInstance]++
				total++
			}
		}
		for _, name := range s.agents.Names() {
			var ci ecsv1alpha1.ContainerInstance
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &ci); err != nil {
				return err
			}
			if ci.Status.RunningTasksCount != running[name] || ci.Status.PendingTasksCount != 0 {
				return fmt.Errorf("instance %s reports %d running, %d pending; %d tasks run on it",
					name, ci.Status.RunningTasksCount, ci.Status.PendingTasksCount, running[name])
			}
		}
		var c ecsv1alpha1.Cluster
		if err := env.Client.Get(ctx, client.ObjectKey{Name: s.cluster}, &c); err != nil {
			return err
		}
		if c.Status.RunningTasksCount != total || c.Status.PendingTasksCount != 0 || c.Status.ObservedGeneration != c.Generation {
			return fmt.Errorf("cluster reports %d running, %d pending (observed generation %d of %d); %d tasks run",
				c.Status.RunningTasksCount, c.Status.PendingTasksCount, c.Status.ObservedGeneration, c.Generation, total)
		}
		var tds ecsv1alpha1.TaskDefinitionList
		if err := env.Client.List(ctx, &tds, client.InNamespace(s.ns)); err != nil {
			return err
		}
		for _, td := range tds.Items {
			if td.Status.ObservedGeneration != td.Generation {
				return fmt.Errorf("taskdefinition %s: observed generation %d of %d", td.Name, td.Status.ObservedGeneration, td.Generation)
			}
		}
		return nil
	})
}

// snapshot reads every object of the test's world: the namespace's Berth objects,
// revisions, EndpointSlices and core Services, and the cluster's Cluster and
// instances.
func (s *sampleEnv) snapshot(t *testing.T) map[string]client.Object {
	t.Helper()
	ctx := context.Background()
	out := map[string]client.Object{}
	add := func(list client.ObjectList, keep func(client.Object) bool, opts ...client.ListOption) {
		if err := env.Client.List(ctx, list, opts...); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			o := item.(client.Object)
			if keep == nil || keep(o) {
				out[fmt.Sprintf("%T %s", o, client.ObjectKeyFromObject(o))] = o
			}
		}
	}
	inNS := client.InNamespace(s.ns)
	add(&ecsv1alpha1.TaskDefinitionList{}, nil, inNS)
	add(&ecsv1alpha1.ServiceList{}, nil, inNS)
	add(&ecsv1alpha1.TaskList{}, nil, inNS)
	add(&appsv1.ControllerRevisionList{}, nil, inNS)
	add(&discoveryv1.EndpointSliceList{}, nil, inNS)
	add(&corev1.ServiceList{}, nil, inNS)
	add(&ecsv1alpha1.ClusterList{}, func(o client.Object) bool { return o.GetName() == s.cluster })
	add(&ecsv1alpha1.ContainerInstanceList{}, func(o client.Object) bool {
		return o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster == s.cluster
	})
	return out
}

// writersSince lists the field managers that wrote o at or after since.
func writersSince(o client.Object, since time.Time) string {
	var b strings.Builder
	for _, m := range o.GetManagedFields() {
		if m.Time != nil && !m.Time.Time.Before(since.Truncate(time.Second)) {
			fmt.Fprintf(&b, "  %s %s %s at %s\n", m.Manager, m.Operation, m.Subresource, m.Time.Format(time.RFC3339))
		}
	}
	return b.String()
}

// deleteClusterScoped removes the test's Cluster and instances, best effort: names
// are unique to the test, so a leftover disturbs no other test.
func (s *sampleEnv) deleteClusterScoped() {
	ctx := context.Background()
	for _, name := range append(s.agents.Names(), s.instance) {
		_ = env.Client.Delete(ctx, &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	_ = env.Client.Delete(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: s.cluster}})
}

// loadSamples reads the manifests that config/samples/kustomization.yaml lists and
// places them for the test: namespaced objects into ns; the cluster-scoped Cluster
// and ContainerInstance renamed with ns as a suffix, and every spec.cluster that
// names the renamed Cluster (or leaves it to the default) pointed at it.
func loadSamples(t *testing.T, ns string) (objs []*unstructured.Unstructured, cluster, instance string) {
	t.Helper()
	files, err := berthconfig.SampleFiles()
	if err != nil {
		t.Fatal(err)
	}
	renamed := map[string]string{}
	for _, res := range files {
		for _, u := range decodeManifests(t, filepath.Join(testenv.RepoRoot(), "config", res)) {
			gvk := u.GroupVersionKind()
			mapping, err := env.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s: no REST mapping for %s: %v", res, gvk, err)
			}
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				u.SetNamespace(ns)
			} else {
				name := u.GetName() + "-" + ns
				switch gvk.Kind {
				case "Cluster":
					renamed[u.GetName()], cluster = name, name
				case "ContainerInstance":
					instance = name
				}
				u.SetName(name)
			}
			objs = append(objs, u)
		}
	}
	if cluster == "" || instance == "" {
		t.Fatalf("the samples lack a Cluster or a ContainerInstance (cluster %q, instance %q)", cluster, instance)
	}
	for _, u := range objs {
		if u.GroupVersionKind().Group != ecsv1alpha1.GroupVersion.Group {
			continue
		}
		switch u.GetKind() {
		case "Service", "Task", "ContainerInstance":
			name, found, _ := unstructured.NestedString(u.Object, "spec", "cluster")
			if !found {
				name = ecsv1alpha1.DefaultClusterName
			}
			if to, ok := renamed[name]; ok {
				if err := unstructured.SetNestedField(u.Object, to, "spec", "cluster"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return objs, cluster, instance
}

// decodeManifests decodes every non-empty YAML document of a file.
func decodeManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// keyOf names an object across kinds: the ECS Service web and the core Service web
// differ by group.
func keyOf(u *unstructured.Unstructured) string {
	return u.GroupVersionKind().GroupKind().String() + "/" + u.GetName()
}

// checkNoDrift compares an object as the controllers left it (live) with the same
// object right after the GitOps tool applied it (applied).
func checkNoDrift(t *testing.T, applied, live *unstructured.Unstructured) {
	t.Helper()
	wantSpec, _, _ := unstructured.NestedFieldCopy(applied.Object, "spec")
	gotSpec, _, _ := unstructured.NestedFieldCopy(live.Object, "spec")
	isTask := live.GroupVersionKind() == ecsv1alpha1.GroupVersion.WithKind("Task")
	_, userBound, _ := unstructured.NestedString(applied.Object, "spec", "containerInstance")
	if isTask && !userBound {
		// The binding, as a Pod's spec.nodeName: not a field the user set, and so not
		// one a GitOps tool compares. It must be there, and the scheduler's.
		if m, ok := gotSpec.(map[string]any); ok && m["containerInstance"] != nil {
			delete(m, "containerInstance")
		} else {
			t.Errorf("task not bound: spec %v", gotSpec)
		}
		if owners := ownersOf(live, fieldpath.MakePathOrDie("spec", "containerInstance")); !slices.Equal(owners, []string{ecsv1alpha1.FieldManagerScheduler}) {
			t.Errorf("spec.containerInstance owned by %v, want only %s", owners, ecsv1alpha1.FieldManagerScheduler)
		}
	}
	if diff := cmp.Diff(wantSpec, gotSpec); diff != "" {
		t.Errorf("spec changed after reconcile (-applied +now):\n%s", diff)
	}
	for what, want := range map[string]map[string]string{"label": applied.GetLabels(), "annotation": applied.GetAnnotations()} {
		got := live.GetLabels()
		if what == "annotation" {
			got = live.GetAnnotations()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s %s = %q, applied %q", what, k, got[k], v)
			}
		}
	}

	userFields := ownedBy(t, applied, gitopsManager)
	if userFields.Empty() {
		t.Fatalf("%s owns no field right after applying", gitopsManager)
	}
	if got := ownedBy(t, live, gitopsManager); !got.Equals(userFields) {
		t.Errorf("%s owns other fields after reconcile:\n lost: %s\n gained: %s", gitopsManager,
			userFields.Difference(got), got.Difference(userFields))
	}
	for _, m := range live.GetManagedFields() {
		if m.Manager == gitopsManager || m.Subresource != "" {
			continue
		}
		fields := parseFields(t, m)
		if shared := fields.Intersection(userFields); !shared.Empty() {
			t.Errorf("%s (%s) also owns fields the user set: %s", m.Manager, m.Operation, shared)
		}
		fields.Iterate(func(p fieldpath.Path) {
			if !controllerMayWrite(live, m.Manager, p) {
				t.Errorf("%s (%s) wrote %s, which no controller may write", m.Manager, m.Operation, p)
			}
		})
	}
}

// controllerMayWrite is what Berth writes outside status (docs/architecture.md): the
// manager's finalizers, and the scheduler's binding of a Task.
func controllerMayWrite(live *unstructured.Unstructured, manager string, p fieldpath.Path) bool {
	s := p.String()
	switch manager {
	case ecsv1alpha1.FieldManagerManager:
		return strings.HasPrefix(s, ".metadata.finalizers")
	case ecsv1alpha1.FieldManagerScheduler:
		return live.GetKind() == "Task" && s == ".spec.containerInstance"
	}
	return false
}

func parseFields(t *testing.T, m metav1.ManagedFieldsEntry) *fieldpath.Set {
	t.Helper()
	set := &fieldpath.Set{}
	if m.FieldsV1 == nil {
		return set
	}
	if err := set.FromJSON(bytes.NewReader(m.FieldsV1.GetRawBytes())); err != nil {
		t.Fatalf("managedFields of %s: %v", m.Manager, err)
	}
	return set
}

// ownedBy is the set of main-resource fields a field manager owns.
func ownedBy(t *testing.T, u *unstructured.Unstructured, manager string) *fieldpath.Set {
	t.Helper()
	out := &fieldpath.Set{}
	for _, m := range u.GetManagedFields() {
		if m.Manager == manager && m.Subresource == "" {
			out = out.Union(parseFields(t, m))
		}
	}
	return out
}

// ownersOf lists the managers that own path in the main resource.
func ownersOf(u *unstructured.Unstructured, path fieldpath.Path) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		set := &fieldpath.Set{}
		if m.Subresource != "" || m.FieldsV1 == nil || set.FromJSON(bytes.NewReader(m.FieldsV1.GetRawBytes())) != nil {
			continue
		}
		if set.Has(path) {
			out = append(out, m.Manager)
		}
	}
	return out
}

// describeOutput is what `kubectl describe` shows of an object's conditions (type ->
// reason) and events (their reasons).
type describeOutput struct {
	conditions    map[string]string
	events        []string
	warnings      []string
	eventsSection bool
}

// parseDescribe reads the Conditions list (fields printed alphabetically, Type last)
// and the Events table of `kubectl describe` output.
func parseDescribe(out string) describeOutput {
	d := describeOutput{conditions: map[string]string{}}
	lines := strings.Split(out, "\n")
	inConditions, indent, reason := false, 0, ""
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		lineIndent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(line, "Events:") {
			d.eventsSection = true
			for _, row := range lines[i+1:] {
				if f := strings.Fields(row); len(f) >= 2 && f[0] != "Type" && !strings.HasPrefix(f[0], "--") {
					d.events = append(d.events, f[1])
					if f[0] == corev1.EventTypeWarning {
						d.warnings = append(d.warnings, f[1])
					}
				}
			}
			break
		}
		if trimmed == "Conditions:" {
			inConditions, indent = true, lineIndent
			continue
		}
		if !inConditions || trimmed == "" {
			continue
		}
		if lineIndent <= indent {
			inConditions = false
			continue
		}
		key, value, _ := strings.Cut(trimmed, ":")
		switch key {
		case "Reason":
			reason = strings.TrimSpace(value)
		case "Type":
			d.conditions[strings.TrimSpace(value)] = reason
			reason = ""
		}
	}
	return d
}

// kubectlRunner runs kubectl against the test apiserver with a discovery cache
// private to the test.
type kubectlRunner struct{ cacheDir string }

func newKubectl(t *testing.T) kubectlRunner {
	t.Helper()
	testenv.Require(t, testenv.MissingBinary("kubectl", "install kubectl; .ci/run requires it"))
	return kubectlRunner{cacheDir: t.TempDir()}
}

func (k kubectlRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.Kubeconfig, "--cache-dir", k.cacheDir}, args...)...)
}

// run returns kubectl's combined output, and an error that includes it.
func (k kubectlRunner) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := k.command(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (k kubectlRunner) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// containerOf returns the named container of a TaskDefinition manifest.
func containerOf(t *testing.T, u *unstructured.Unstructured, name string) (containers []any, c map[string]any) {
	t.Helper()
	containers, _, _ = unstructured.NestedSlice(u.Object, "spec", "containerDefinitions")
	for _, x := range containers {
		if m, ok := x.(map[string]any); ok && m["name"] == name {
			return containers, m
		}
	}
	t.Fatalf("taskdefinition %s has no container %s", u.GetName(), name)
	return nil, nil
}

// setEnv sets an environment variable of a container in a TaskDefinition manifest.
func setEnv(t *testing.T, u *unstructured.Unstructured, container, name, value string) {
	t.Helper()
	containers, c := containerOf(t, u, container)
	vars, _ := c["environment"].([]any)
	for _, v := range vars {
		if m, ok := v.(map[string]any); ok && m["name"] == name {
			m["value"] = value
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "containerDefinitions"); err != nil {
		t.Fatal(err)
	}
}

// setContainerImage sets a container's image in a TaskDefinition manifest.
func setContainerImage(t *testing.T, u *unstructured.Unstructured, container, image string) {
	t.Helper()
	containers, c := containerOf(t, u, container)
	c["image"] = image
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "containerDefinitions"); err != nil {
		t.Fatal(err)
	}
}

// checkRunsOnly checks that the service's live tasks are n tasks of revision rev.
func checkRunsOnly(t *testing.T, ns, rev string, n int) {
	t.Helper()
	live := liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "web"}))
	for _, task := range live {
		if task.Spec.TaskDefinition != rev {
			t.Errorf("task %s runs %s, want %s", task.Name, task.Spec.TaskDefinition, rev)
		}
	}
	if len(live) != n {
		t.Errorf("%d live tasks, want %d\n%s", len(live), n, describeTasks(live))
	}
}
