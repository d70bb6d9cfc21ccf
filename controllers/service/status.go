package service

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/deployment"
)

// computeStatus recomputes the counts and conditions from what this reconcile saw
// (before its own starts and stops, which the next reconcile will see).
func computeStatus(s *state) {
	st := &s.svc.Status
	st.Selector = ecsv1alpha1.LabelService + "=" + s.svc.Name
	st.DesiredCount = s.desired
	running, pending := setCounts(s)
	setAccepted(s)
	setPlaced(s)
	if s.primary == nil {
		gen := s.svc.Generation
		st.TaskDefinition, st.RolloutState = "", ""
		reason, msg := ecsv1alpha1.ReasonRevisionNotFound, "No deployment: the task definition does not resolve"
		if s.acceptedReason == ecsv1alpha1.ReasonContainerPolicyViolation {
			reason, msg = s.acceptedReason, "No deployment: the cluster's container policy refuses the task definition"
		}
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionFalse, reason, msg)
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionFalse, reason, "No deployment yet")
	} else {
		st.TaskDefinition, st.RolloutState = s.primary.TaskDefinition, s.primary.RolloutState
		setRolloutComplete(s)
		setSteady(s, running, pending)
	}
	st.ObservedGeneration = s.svc.Generation
}

// setCounts fills the service's and each deployment's running and pending counts and
// returns the service's.
func setCounts(s *state) (running, pending int32) {
	st := &s.svc.Status
	runningBy, pendingBy := map[string]int32{}, map[string]int32{}
	for _, lt := range s.live {
		if lt.plan.Health == deployment.Pending {
			pendingBy[lt.deployment]++
			pending++
		} else {
			runningBy[lt.deployment]++
			running++
		}
	}
	// Tasks the primary deployment needs but has no room for are pending, as ECS
	// counts them, though they do not exist yet (place.go).
	st.UnplacedCount = s.unplaced
	pending += s.unplaced
	if s.primary != nil {
		pendingBy[s.primary.ID] += s.unplaced
	}
	st.RunningCount, st.PendingCount = running, pending
	for i := range st.Deployments {
		d := &st.Deployments[i]
		d.RunningCount, d.PendingCount = runningBy[d.ID], pendingBy[d.ID]
		d.DesiredCount = 0
		if d.Status == ecsv1alpha1.DeploymentPrimary {
			d.DesiredCount = s.desired
		}
	}
	return running, pending
}

// setAccepted reports whether the spec can be acted on, with a Warning Event when
// that becomes false or its reason changes.
func setAccepted(s *state) {
	st := &s.svc.Status
	if s.accepted {
		conditions.Set(&st.Conditions, s.svc.Generation, ecsv1alpha1.ConditionAccepted, metav1.ConditionTrue, ecsv1alpha1.ReasonValid,
			"The service's task definition resolved to "+targetName(s))
		return
	}
	was := meta.FindStatusCondition(st.Conditions, ecsv1alpha1.ConditionAccepted)
	if (was == nil || was.Status != metav1.ConditionFalse || was.Message != s.acceptedMessage) && !s.rejectQuietly {
		s.event(true, s.acceptedReason, "Validate", "%s", s.acceptedMessage)
	}
	conditions.Set(&st.Conditions, s.svc.Generation, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, s.acceptedReason, s.acceptedMessage)
}

// setRolloutComplete reports whether the deployment the spec asks for completed.
// That is the PRIMARY deployment except after a circuit breaker rollback: the older
// deployment rolled back to becomes PRIMARY and completes again, but the rollout the
// spec asked for failed, and `kubectl wait --for=condition=RolloutComplete` must not
// report it done.
func setRolloutComplete(s *state) {
	st, p, gen := &s.svc.Status, s.primary, s.svc.Generation
	if want := s.targetDeployment(); want != nil && want.ID != p.ID && want.RolloutState == ecsv1alpha1.RolloutFailed {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentFailed,
			fmt.Sprintf("Deployment %s of %s failed and was rolled back to %s (%s). %s", want.ID, want.TaskDefinition, p.TaskDefinition, p.RolloutState, want.RolloutStateReason))
		return
	}
	switch p.RolloutState {
	case ecsv1alpha1.RolloutCompleted:
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted, p.RolloutStateReason)
	case ecsv1alpha1.RolloutFailed:
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentFailed, p.RolloutStateReason)
	default:
		msg := p.RolloutStateReason
		if s.plan.Blocked != "" {
			msg += " Waiting: " + s.plan.Blocked + "."
		}
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentInProgress, msg)
	}
}

// setSteady is ECS's "steady state": the PRIMARY deployment completed, desired tasks
// run, nothing is pending or being changed, and no older deployment has tasks.
func setSteady(s *state, running, pending int32) {
	st, gen := &s.svc.Status, s.svc.Generation
	wasSteady := conditions.True(st.Conditions, ecsv1alpha1.ServiceConditionSteady)
	if s.primary.RolloutState == ecsv1alpha1.RolloutCompleted && running == s.desired && pending == 0 &&
		len(s.started) == 0 && len(s.stopped) == 0 && activeDeployments(st) == 1 {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted, "The service has reached a steady state.")
		if !wasSteady {
			s.event(false, "SteadyState", "Observe", "has reached a steady state.")
		}
		return
	}
	conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionFalse, ecsv1alpha1.ReasonTasksPending,
		fmt.Sprintf("%d of %d tasks running, %d pending, %d deployments active", running, s.desired, pending, activeDeployments(st)))
}

func activeDeployments(st *ecsv1alpha1.ServiceStatus) int {
	n := 0
	for _, d := range st.Deployments {
		if d.Status != ecsv1alpha1.DeploymentInactive {
			n++
		}
	}
	return n
}

func targetName(s *state) string {
	if s.target == nil {
		return ""
	}
	return s.target.Ref.String()
}
