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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers/taskdefinition"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/manager"
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
