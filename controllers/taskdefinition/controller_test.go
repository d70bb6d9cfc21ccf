package taskdefinition_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers/taskdefinition"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func startController(t *testing.T) {
	t.Helper()
	env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(ctx context.Context, mgr ctrl.Manager) error {
		if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return (&taskdefinition.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("test")}).SetupWithManager(mgr)
	})
}

type revSummary struct {
	Revision int32
	Status   ecsv1alpha1.RevisionStatus
}

func revisions(t *testing.T, ns, name string) (*ecsv1alpha1.TaskDefinition, []revSummary) {
	t.Helper()
	var td ecsv1alpha1.TaskDefinition
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &td); err != nil {
		t.Fatal(err)
	}
	var out []revSummary
	for _, r := range td.Status.Revisions {
		out = append(out, revSummary{r.Revision, r.Status})
	}
	return &td, out
}

func waitRevisions(t *testing.T, ns, name string, want []revSummary) *ecsv1alpha1.TaskDefinition {
	t.Helper()
	var td *ecsv1alpha1.TaskDefinition
	testenv.Eventually(t, "revision list", func() error {
		var got []revSummary
		td, got = revisions(t, ns, name)
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("revisions (-want +got):\n%s", diff)
		}
		if td.Status.ObservedGeneration != td.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", td.Status.ObservedGeneration, td.Generation)
		}
		return nil
	})
	return td
}

func controllerRevisions(t *testing.T, ns, family string) []string {
	t.Helper()
	var list appsv1.ControllerRevisionList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelFamily: family}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cr := range list.Items {
		if cr.DeletionTimestamp == nil {
			names = append(names, cr.Name)
		}
	}
	return names
}

func setImage(t *testing.T, ns, name, image string) {
	t.Helper()
	var td ecsv1alpha1.TaskDefinition
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &td); err != nil {
		t.Fatal(err)
	}
	td.Spec.ContainerDefinitions[0].Image = image
	if err := env.Client.Update(context.Background(), &td); err != nil {
		t.Fatal(err)
	}
}

func TestRevisionsRegisteredAndNeverReused(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj()); err != nil {
		t.Fatal(err)
	}
	td := waitRevisions(t, ns, "web", []revSummary{{1, ecsv1alpha1.RevisionActive}})
	if td.Status.LatestRevision != 1 {
		t.Fatalf("latestRevision = %d, want 1", td.Status.LatestRevision)
	}
	for _, c := range []string{ecsv1alpha1.ConditionAccepted, ecsv1alpha1.TaskDefinitionConditionRevisioned} {
		if !hasCondition(td, c, metav1.ConditionTrue) {
			t.Errorf("condition %s is not True: %+v", c, td.Status.Conditions)
		}
	}

	setImage(t, ns, "web", "demo:2")
	waitRevisions(t, ns, "web", []revSummary{{2, ecsv1alpha1.RevisionActive}, {1, ecsv1alpha1.RevisionInactive}})

	// Back to the first content: ECS registers a new revision rather than reusing 1.
	setImage(t, ns, "web", "demo:1")
	waitRevisions(t, ns, "web", []revSummary{
		{3, ecsv1alpha1.RevisionActive}, {2, ecsv1alpha1.RevisionInactive}, {1, ecsv1alpha1.RevisionInactive},
	})
	if diff := cmp.Diff([]string{"web-rev1", "web-rev2", "web-rev3"}, controllerRevisions(t, ns, "web")); diff != "" {
		t.Errorf("ControllerRevisions (-want +got):\n%s", diff)
	}
}

// TestReapplyWritesNothing is the GitOps re-sync case: applying the same spec again
// must create no revision and leave the object untouched.
func TestReapplyWritesNothing(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	obj := testobj.TaskDefinition(ns, "api").Container("app", "demo:1").Obj()
	apply := func() {
		t.Helper()
		u := obj.DeepCopy()
		if err := testenv.Apply(ctx, env.Client, u, "gitops"); err != nil {
			t.Fatal(err)
		}
	}
	apply()
	td := waitRevisions(t, ns, "api", []revSummary{{1, ecsv1alpha1.RevisionActive}})
	rv := td.ResourceVersion
	for i := 0; i < 3; i++ {
		apply()
	}
	time.Sleep(2 * time.Second) // give the controller time to (wrongly) act
	td, got := revisions(t, ns, "api")
	if td.ResourceVersion != rv {
		t.Errorf("re-applying an unchanged spec changed the object: resourceVersion %s -> %s", rv, td.ResourceVersion)
	}
	if diff := cmp.Diff([]revSummary{{1, ecsv1alpha1.RevisionActive}}, got); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}
}

func TestRetentionPrunesOldestInactive(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(ns, "job").Container("app", "demo:1").HistoryLimit(2).Obj()); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, ns, "job", []revSummary{{1, ecsv1alpha1.RevisionActive}})
	// A task pinned to revision 1 keeps it ACTIVE and exempt from pruning.
	if err := env.Client.Create(ctx, testobj.Task(ns, "pinned", "job:1").Obj()); err != nil {
		t.Fatal(err)
	}
	for i := int32(2); i <= 6; i++ {
		setImage(t, ns, "job", fmt.Sprintf("demo:%d", i))
		testenv.Eventually(t, "next revision", func() error {
			if td, _ := revisions(t, ns, "job"); td.Status.LatestRevision != i {
				return fmt.Errorf("latestRevision %d, want %d", td.Status.LatestRevision, i)
			}
			return nil
		})
	}
	// Limit 2: the newest two INACTIVE revisions (5, 4) stay, 2 and 3 go; 1 is in use.
	waitRevisions(t, ns, "job", []revSummary{
		{6, ecsv1alpha1.RevisionActive}, {5, ecsv1alpha1.RevisionInactive}, {4, ecsv1alpha1.RevisionInactive}, {1, ecsv1alpha1.RevisionActive},
	})
	testenv.Eventually(t, "pruned ControllerRevisions", func() error {
		if diff := cmp.Diff([]string{"job-rev1", "job-rev4", "job-rev5", "job-rev6"}, controllerRevisions(t, ns, "job")); diff != "" {
			return fmt.Errorf("ControllerRevisions (-want +got):\n%s", diff)
		}
		return nil
	})
}

// deregister writes the ECS API's deregistration records of a TaskDefinition, as
// DeregisterTaskDefinition (deleteRequested false) and DeleteTaskDefinitions do.
func deregister(t *testing.T, ns, name string, deleteRequested bool, revs ...int32) {
	t.Helper()
	ctx := context.Background()
	var td ecsv1alpha1.TaskDefinition
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &td); err != nil {
		t.Fatal(err)
	}
	d, err := revision.ReadDeregistrations(&td)
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	for _, n := range revs {
		rec := revision.Deregistration{Revision: n, DeregisteredAt: now}
		if deleteRequested {
			rec.DeleteRequestedAt = &now
		}
		d[n] = rec
	}
	if err := d.Write(&td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Update(ctx, &td); err != nil {
		t.Fatal(err)
	}
}

// TestDeregisteredRevisions: the ECS API's deregistration records, an annotation that
// leaves the generation unchanged, still reach the controller: a deregistered
// revision is INACTIVE even while a task uses it (as in ECS), and the latest one too
// without a new revision being registered; a revision whose deletion was asked for is
// pruned once its last task is gone, but the latest one is kept.
func TestDeregisteredRevisions(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(ns, "api").Container("app", "demo:1").Obj()); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, ns, "api", []revSummary{{1, ecsv1alpha1.RevisionActive}})
	setImage(t, ns, "api", "demo:2")
	pinned := testobj.Task(ns, "pinned", "api:1").Obj()
	if err := env.Client.Create(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, ns, "api", []revSummary{{2, ecsv1alpha1.RevisionActive}, {1, ecsv1alpha1.RevisionActive}})

	deregister(t, ns, "api", false, 1, 2)
	waitRevisions(t, ns, "api", []revSummary{{2, ecsv1alpha1.RevisionInactive}, {1, ecsv1alpha1.RevisionInactive}})

	deregister(t, ns, "api", true, 1, 2)
	if err := env.Client.Delete(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, ns, "api", []revSummary{{2, ecsv1alpha1.RevisionInactive}})
	testenv.Eventually(t, "revision 1 pruned, the latest kept", func() error {
		if diff := cmp.Diff([]string{"api-rev2"}, controllerRevisions(t, ns, "api")); diff != "" {
			return fmt.Errorf("ControllerRevisions (-want +got):\n%s", diff)
		}
		return nil
	})
	if td, _ := revisions(t, ns, "api"); td.Status.LatestRevision != 2 {
		t.Errorf("latestRevision = %d, want 2: deregistering registered nothing new", td.Status.LatestRevision)
	}
}

func hasCondition(td *ecsv1alpha1.TaskDefinition, typ string, status metav1.ConditionStatus) bool {
	for _, c := range td.Status.Conditions {
		if c.Type == typ {
			return c.Status == status
		}
	}
	return false
}

func TestDependencyCycleRejectedWithCondition(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	td := testobj.TaskDefinition(ns, "loop").
		Container("a", "demo:1").DependsOn("b", ecsv1alpha1.DependencyStart).
		Container("b", "demo:1").DependsOn("a", ecsv1alpha1.DependencyStart).Obj()
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatalf("the schema cannot see cycles, so the apiserver must accept this: %v", err)
	}
	testenv.Eventually(t, "Accepted=False", func() error {
		got, _ := revisions(t, ns, "loop")
		for _, c := range got.Status.Conditions {
			if c.Type == ecsv1alpha1.ConditionAccepted && c.Status == metav1.ConditionFalse {
				if !strings.Contains(c.Message, "spec.containerDefinitions[0].dependsOn") || !strings.Contains(c.Message, "a -> b -> a") {
					return fmt.Errorf("message does not name the field and cycle: %q", c.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("no Accepted=False condition yet: %+v", got.Status.Conditions)
	})
	if names := controllerRevisions(t, ns, "loop"); len(names) != 0 {
		t.Errorf("an invalid spec registered revisions %v", names)
	}
}

// setDeployments writes a Service's deployments (PRIMARY first) as the service
// controller would.
func setDeployments(t *testing.T, ns, name string, deps ...ecsv1alpha1.Deployment) {
	t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	for i := range deps {
		deps[i].ID = fmt.Sprintf("d%d-%s", i, strings.ReplaceAll(deps[i].TaskDefinition, ":", "-"))
		deps[i].CreatedAt = metav1.Now()
	}
	svc.Status.Deployments = deps
	if err := env.Client.Status().Update(context.Background(), &svc); err != nil {
		t.Fatal(err)
	}
}

func deployment(status ecsv1alpha1.DeploymentStatus, ref string, state ecsv1alpha1.RolloutState) ecsv1alpha1.Deployment {
	return ecsv1alpha1.Deployment{Status: status, TaskDefinition: ref, RolloutState: state}
}

type rolledOutSummary struct {
	Status             metav1.ConditionStatus
	Reason             string
	Message            string
	ObservedGeneration int64
}

// rolledOut reads the RolledOut condition from the apiserver, with the generation it
// must carry to count for `kubectl wait`.
func rolledOut(t *testing.T, ns, name string) (got rolledOutSummary, generation int64) {
	t.Helper()
	td, _ := revisions(t, ns, name)
	for _, c := range td.Status.Conditions {
		if c.Type == ecsv1alpha1.TaskDefinitionConditionRolledOut {
			return rolledOutSummary{c.Status, c.Reason, c.Message, c.ObservedGeneration}, td.Generation
		}
	}
	return rolledOutSummary{}, td.Generation
}

// cacheCaughtUp waits until the cache holds the apiserver's current version of the
// namespace's TaskDefinitions, Services and revisions, so that a direct Reconcile
// computes from what the test wrote.
func cacheCaughtUp(t *testing.T, cache client.Reader, ns string) {
	t.Helper()
	versions := func(r client.Reader) (map[string]string, error) {
		out := map[string]string{}
		for _, list := range []client.ObjectList{&ecsv1alpha1.TaskDefinitionList{}, &ecsv1alpha1.ServiceList{}, &appsv1.ControllerRevisionList{}} {
			opts := []client.ListOption{client.InNamespace(ns)}
			if _, ok := list.(*appsv1.ControllerRevisionList); ok {
				opts = append(opts, client.HasLabels{ecsv1alpha1.LabelFamily})
			}
			if err := r.List(context.Background(), list, opts...); err != nil {
				return nil, err
			}
			items, err := meta.ExtractList(list)
			if err != nil {
				return nil, err
			}
			for _, o := range items {
				obj := o.(client.Object)
				out[fmt.Sprintf("%T/%s", o, obj.GetName())] = obj.GetResourceVersion()
			}
		}
		return out, nil
	}
	want, err := versions(env.Client)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "cache caught up", func() error {
		got, err := versions(cache)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("cache (-api +cache):\n%s", diff)
		}
		return nil
	})
}

// TestRolledOutJudgesTheLatestRevision calls the reconciler directly, playing the
// service controller by writing the Service's deployments, through the sequence a
// new revision of a `family` reference goes through: registered, not yet seen by the
// service controller (the Service still reports the old rollout complete), deploying,
// rolled back by the circuit breaker, and rolled out.
func TestRolledOutJudgesTheLatestRevision(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	tasks := usage.NewTracker()
	mgr := env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(ctx context.Context, mgr ctrl.Manager) error {
		if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return tasks.Register(mgr.GetCache())
	})
	c, writes := testenv.RecordingClient(mgr.GetClient())
	r := &taskdefinition.Reconciler{Client: c, Recorder: mgr.GetEventRecorder("test"), Usage: tasks}
	reconcile := func() (rolledOutSummary, int64) {
		t.Helper()
		cacheCaughtUp(t, mgr.GetClient(), ns)
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "web"}}); err != nil {
			t.Fatal(err)
		}
		return rolledOut(t, ns, "web")
	}
	check := func(step string, want rolledOutSummary) {
		t.Helper()
		got, gen := reconcile()
		want.ObservedGeneration = gen
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: RolledOut (-want +got):\n%s", step, diff)
		}
	}
	const (
		primary, active, inactive = ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.DeploymentActive, ecsv1alpha1.DeploymentInactive
		done, running, failed     = ecsv1alpha1.RolloutCompleted, ecsv1alpha1.RolloutInProgress, ecsv1alpha1.RolloutFailed
	)

	if err := env.Client.Create(ctx, testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj()); err != nil {
		t.Fatal(err)
	}
	check("no service", rolledOutSummary{Status: metav1.ConditionTrue, Reason: ecsv1alpha1.ReasonNoServices,
		Message: "No Service follows web (services pinned to web:N are not tracked)"})

	for _, svc := range []*ecsv1alpha1.Service{testobj.Service(ns, "web", "web", 2).Obj(), testobj.Service(ns, "pinned", "web:1", 2).Obj()} {
		if err := env.Client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	setDeployments(t, ns, "pinned", deployment(primary, "web:1", running)) // never waited for
	setDeployments(t, ns, "web", deployment(primary, "web:1", done))
	check("web:1 rolled out", rolledOutSummary{Status: metav1.ConditionTrue, Reason: ecsv1alpha1.ReasonRolloutCompleted,
		Message: "Service web completed a deployment of web:1"})

	setImage(t, ns, "web", "demo:2")
	// Before the controller registers generation 2, the True from generation 1 is
	// still there, but older than the spec: kubectl wait does not count it.
	if got, gen := rolledOut(t, ns, "web"); got.ObservedGeneration >= gen {
		t.Fatalf("after the spec change RolledOut %+v carries generation %d", got, gen)
	}
	// The window: the Service still reports web:1 COMPLETED (its own RolloutComplete
	// is True) because the service controller has not seen web:2.
	inProgress := rolledOutSummary{Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonRolloutInProgress,
		Message: "Waiting for Service web to complete a deployment of web:2"}
	check("web:2 registered, not yet deployed", inProgress)

	before := len(writes.List())
	setDeployments(t, ns, "web", deployment(primary, "web:2", running), deployment(active, "web:1", done))
	check("web:2 deploying", inProgress)
	if w := writes.List()[before:]; len(w) != 0 {
		t.Errorf("a pass with the same verdict wrote %v", w)
	}

	setDeployments(t, ns, "web", deployment(primary, "web:1", running), deployment(active, "web:2", failed))
	rolledBack := rolledOutSummary{Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonRolloutFailed,
		Message: "The deployment of web:2 failed in Service web"}
	check("circuit breaker rolling back", rolledBack)
	setDeployments(t, ns, "web", deployment(primary, "web:1", done), deployment(inactive, "web:2", failed))
	check("rolled back to web:1 and steady", rolledBack)

	setImage(t, ns, "web", "demo:3")
	check("web:3 registered", rolledOutSummary{Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonRolloutInProgress,
		Message: "Waiting for Service web to complete a deployment of web:3"})
	setDeployments(t, ns, "web", deployment(primary, "web:3", done), deployment(inactive, "web:2", failed), deployment(inactive, "web:1", done))
	check("web:3 rolled out", rolledOutSummary{Status: metav1.ConditionTrue, Reason: ecsv1alpha1.ReasonRolloutCompleted,
		Message: "Service web completed a deployment of web:3"})

	before = len(writes.List())
	check("nothing changed", rolledOutSummary{Status: metav1.ConditionTrue, Reason: ecsv1alpha1.ReasonRolloutCompleted,
		Message: "Service web completed a deployment of web:3"})
	if w := writes.List()[before:]; len(w) != 0 {
		t.Errorf("a pass over an unchanged world wrote %v", w)
	}
}

// waitRolledOut waits for RolledOut with the wanted status and reason for the current
// generation, as `kubectl wait --for=condition=RolledOut` does.
func waitRolledOut(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	testenv.Eventually(t, "RolledOut="+string(status)+"/"+reason, func() error {
		got, gen := rolledOut(t, ns, name)
		if got.ObservedGeneration != gen || got.Status != status || got.Reason != reason {
			return fmt.Errorf("RolledOut %+v at generation %d", got, gen)
		}
		return nil
	})
}

// TestRolledOutWatchesServices runs the controller in a manager: a Service's
// deployments changing in its status, with nothing else touching the TaskDefinition,
// must bring the condition up to date.
func TestRolledOutWatchesServices(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj()); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, "web", metav1.ConditionTrue, ecsv1alpha1.ReasonNoServices)
	if err := env.Client.Create(ctx, testobj.Service(ns, "web", "web", 2).Obj()); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, "web", metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress)
	setDeployments(t, ns, "web", deployment(ecsv1alpha1.DeploymentPrimary, "web:1", ecsv1alpha1.RolloutCompleted))
	waitRolledOut(t, ns, "web", metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted)

	setImage(t, ns, "web", "demo:2")
	waitRolledOut(t, ns, "web", metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress)
	setDeployments(t, ns, "web",
		deployment(ecsv1alpha1.DeploymentPrimary, "web:1", ecsv1alpha1.RolloutInProgress),
		deployment(ecsv1alpha1.DeploymentActive, "web:2", ecsv1alpha1.RolloutFailed))
	waitRolledOut(t, ns, "web", metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed)

	// Pinning the Service takes it out of the family's followers.
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.TaskDefinition = "web:1"
	if err := env.Client.Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, ns, "web", metav1.ConditionTrue, ecsv1alpha1.ReasonNoServices)
}
