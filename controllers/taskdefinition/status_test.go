package taskdefinition

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// registeredTD is TaskDefinition web at generation 3 whose spec this controller
// registered as revision 3 (Revisioned True for generation 3).
func registeredTD() *ecsv1alpha1.TaskDefinition {
	td := testobj.TaskDefinition("ns", "web").Container("app", "demo:3").Obj()
	td.Generation = 3
	td.Status.LatestRevision = 3
	setAccepted(td, nil)
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionTrue, ecsv1alpha1.ReasonRevisionCurrent, "The spec is revision web:3")
	return td
}

// svc is a Service of namespace ns naming ref, with deployments PRIMARY first.
func svc(name, ref string, deps ...ecsv1alpha1.Deployment) ecsv1alpha1.Service {
	s := testobj.Service("ns", name, ref, 2).Obj()
	s.Status.Deployments = deps
	return *s
}

func dep(status ecsv1alpha1.DeploymentStatus, ref string, state ecsv1alpha1.RolloutState) ecsv1alpha1.Deployment {
	return ecsv1alpha1.Deployment{ID: "d-" + ref, Status: status, TaskDefinition: ref, RolloutState: state}
}

const (
	primary  = ecsv1alpha1.DeploymentPrimary
	active   = ecsv1alpha1.DeploymentActive
	inactive = ecsv1alpha1.DeploymentInactive
	done     = ecsv1alpha1.RolloutCompleted
	running  = ecsv1alpha1.RolloutInProgress
	failed   = ecsv1alpha1.RolloutFailed
)

type rolledOutResult struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

func TestSetRolledOut(t *testing.T) {
	completedWeb3 := func(name string) ecsv1alpha1.Service {
		return svc(name, "web", dep(primary, "web:3", done), dep(inactive, "web:2", done))
	}
	deleting := completedWeb3("gone")
	deleting.Spec.TaskDefinition = "web"
	deleting.Status.Deployments = []ecsv1alpha1.Deployment{dep(primary, "web:2", done)}
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	otherNamespace := svc("elsewhere", "web", dep(primary, "web:1", done))
	otherNamespace.Namespace = "other"

	tests := []struct {
		name     string
		td       func(*ecsv1alpha1.TaskDefinition)
		services []ecsv1alpha1.Service
		want     rolledOutResult
	}{
		{
			name: "no services",
			want: rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonNoServices, "No Service follows web (services pinned to web:N are not tracked)"},
		},
		{
			name: "pinned services, other families, deleted and foreign services are not followers",
			services: []ecsv1alpha1.Service{
				svc("pinned", "web:2", dep(primary, "web:2", running)),
				svc("api", "api", dep(primary, "api:1", running)),
				deleting,
				otherNamespace,
			},
			want: rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonNoServices, "No Service follows web (services pinned to web:N are not tracked)"},
		},
		{
			// The window the condition closes: the Service still shows the completed
			// rollout of web:2 (its own RolloutComplete is True) because the service
			// controller has not seen web:3 yet.
			name:     "service controller has not started the new revision",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:2", done))},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress, "Waiting for Service a to complete a deployment of web:3"},
		},
		{
			name:     "new service without a deployment yet",
			services: []ecsv1alpha1.Service{svc("a", "web")},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress, "Waiting for Service a to complete a deployment of web:3"},
		},
		{
			name:     "deployment in progress",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:3", running), dep(active, "web:2", done))},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress, "Waiting for Service a to complete a deployment of web:3"},
		},
		{
			name:     "deployment completed",
			services: []ecsv1alpha1.Service{completedWeb3("a")},
			want:     rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted, "Service a completed a deployment of web:3"},
		},
		{
			name: "completed, with a pinned service on an older revision",
			services: []ecsv1alpha1.Service{
				completedWeb3("a"),
				svc("pinned", "web:1", dep(primary, "web:1", done)),
			},
			want: rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted, "Service a completed a deployment of web:3"},
		},
		{
			name:     "failed without rollback",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:3", failed), dep(active, "web:2", done))},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed, "The deployment of web:3 failed in Service a"},
		},
		{
			name:     "circuit breaker rolling back",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:2", running), dep(active, "web:3", failed))},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed, "The deployment of web:3 failed in Service a"},
		},
		{
			// The rollback's own deployment completed: the Service is steady again,
			// on web:2, but web:3 did not roll out.
			name:     "rolled back and steady",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:2", done), dep(inactive, "web:3", failed))},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed, "The deployment of web:3 failed in Service a"},
		},
		{
			// forceNewDeployment retried the failed revision and it completed.
			name:     "retried after a failure",
			services: []ecsv1alpha1.Service{svc("a", "web", dep(primary, "web:3", done), dep(inactive, "web:3", failed))},
			want:     rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted, "Service a completed a deployment of web:3"},
		},
		{
			name: "several services: the message is sorted and bounded",
			services: []ecsv1alpha1.Service{
				svc("g", "web", dep(primary, "web:2", done)), svc("b", "web", dep(primary, "web:3", running)),
				svc("f", "web"), svc("a", "web", dep(primary, "web:2", done)), completedWeb3("ok"),
				svc("e", "web", dep(primary, "web:3", running)), svc("c", "web"), svc("d", "web"),
			},
			want: rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress,
				"Waiting for Services a, b, c, d, e and 2 more to complete a deployment of web:3"},
		},
		{
			name: "several services: a failure outranks the rollouts still in progress",
			services: []ecsv1alpha1.Service{
				svc("b", "web", dep(primary, "web:3", running)), completedWeb3("ok"),
				svc("a", "web", dep(primary, "web:2", done), dep(active, "web:3", failed)),
				svc("c", "web", dep(primary, "web:3", failed)),
			},
			want: rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed,
				"The deployment of web:3 failed in Services a, c; still in progress in Service b"},
		},
		{
			name:     "several services, all completed",
			services: []ecsv1alpha1.Service{completedWeb3("b"), completedWeb3("a"), svc("pinned", "web:2", dep(primary, "web:2", done))},
			want:     rolledOutResult{metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted, "Services a, b completed a deployment of web:3"},
		},
		{
			// latestRevision 3 belongs to generation 2's spec; generation 3 is not
			// registered, so what the Services run says nothing about it.
			name: "revision of the current generation not registered yet",
			td: func(td *ecsv1alpha1.TaskDefinition) {
				td.Generation = 4
				setCondition(td, ecsv1alpha1.ConditionAccepted, metav1.ConditionTrue, ecsv1alpha1.ReasonValid, "The spec is valid")
			},
			services: []ecsv1alpha1.Service{completedWeb3("a")},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRevisionPending, "Generation 4 of the spec is not registered as a revision yet"},
		},
		{
			name: "registration failed",
			td: func(td *ecsv1alpha1.TaskDefinition) {
				setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionFalse, ecsv1alpha1.ReasonReconcileError, "creating revision web-rev3: boom")
			},
			services: []ecsv1alpha1.Service{completedWeb3("a")},
			want: rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRevisionPending,
				"Generation 3 of the spec is not registered as a revision yet: creating revision web-rev3: boom"},
		},
		{
			name: "no revision at all",
			td: func(td *ecsv1alpha1.TaskDefinition) {
				td.Status.LatestRevision = 0
			},
			want: rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonRevisionPending, "Generation 3 of the spec is not registered as a revision yet"},
		},
		{
			name: "invalid spec",
			td: func(td *ecsv1alpha1.TaskDefinition) {
				setCondition(td, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, ecsv1alpha1.ReasonInvalidSpec, "a -> b -> a")
			},
			services: []ecsv1alpha1.Service{completedWeb3("a")},
			want:     rolledOutResult{metav1.ConditionFalse, ecsv1alpha1.ReasonInvalidSpec, "The spec is invalid (see Accepted), so it is not registered and cannot roll out"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := registeredTD()
			if tc.td != nil {
				tc.td(td)
			}
			setRolledOut(td, tc.services)
			c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionRolledOut)
			if c == nil {
				t.Fatal("no RolledOut condition")
			}
			if diff := cmp.Diff(tc.want, rolledOutResult{c.Status, c.Reason, c.Message}); diff != "" {
				t.Errorf("RolledOut (-want +got):\n%s", diff)
			}
			if c.ObservedGeneration != td.Generation {
				t.Errorf("observedGeneration %d, want the generation %d", c.ObservedGeneration, td.Generation)
			}
			// A second pass over the same world is the same status: no write.
			before := td.DeepCopy()
			setRolledOut(td, tc.services)
			if !equality.Semantic.DeepEqual(before.Status, td.Status) {
				t.Errorf("a second pass changed the status:\n%s", cmp.Diff(before.Status, td.Status))
			}
		})
	}
}

// TestServiceRolloutChanged: the Service watch passes what can change the RolledOut
// condition or a revision's use, and not the counts a Service's status changes with
// every task transition.
func TestServiceRolloutChanged(t *testing.T) {
	base := func() *ecsv1alpha1.Service {
		s := svc("a", "web", dep(primary, "web:3", running), dep(active, "web:2", done))
		return &s
	}
	tests := []struct {
		name string
		edit func(*ecsv1alpha1.Service)
		want bool
	}{
		{name: "nothing"},
		{name: "counts", edit: func(s *ecsv1alpha1.Service) {
			s.Status.RunningCount, s.Status.PendingCount = 3, 1
			s.Status.Deployments[0].RunningCount, s.Status.Deployments[0].FailedTasks = 3, 1
			s.Status.Deployments[0].RolloutStateReason = "ECS deployment in progress."
			s.Status.Conditions = []metav1.Condition{{Type: ecsv1alpha1.ServiceConditionSteady, Status: metav1.ConditionFalse}}
		}},
		{name: "desiredCount", edit: func(s *ecsv1alpha1.Service) { s.Spec.DesiredCount = nil; s.Generation++ }},
		{name: "primary completed", edit: func(s *ecsv1alpha1.Service) { s.Status.Deployments[0].RolloutState = done }, want: true},
		{name: "primary failed and rolled back", edit: func(s *ecsv1alpha1.Service) {
			s.Status.Deployments[0].RolloutState = failed
			s.Status.Deployments[0].Status, s.Status.Deployments[1].Status = active, primary
		}, want: true},
		{name: "old deployment drained", edit: func(s *ecsv1alpha1.Service) { s.Status.Deployments[1].Status = inactive }, want: true},
		{name: "new deployment", edit: func(s *ecsv1alpha1.Service) {
			s.Status.Deployments = append([]ecsv1alpha1.Deployment{dep(primary, "web:4", running)}, s.Status.Deployments...)
		}, want: true},
		{name: "pinned", edit: func(s *ecsv1alpha1.Service) { s.Spec.TaskDefinition = "web:2" }, want: true},
		{name: "being deleted", edit: func(s *ecsv1alpha1.Service) { s.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }, want: true},
	}
	p := serviceRolloutChanged()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, n := base(), base()
			if tc.edit != nil {
				tc.edit(n)
			}
			if got := p.Update(event.UpdateEvent{ObjectOld: o, ObjectNew: n}); got != tc.want {
				t.Errorf("Update passes = %v, want %v", got, tc.want)
			}
		})
	}
}
