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
	gen := s.svc.Generation
	st.Selector = ecsv1alpha1.LabelService + "=" + s.svc.Name
	st.DesiredCount = s.desired

	running, pending := map[string]int32{}, map[string]int32{}
	var allRunning, allPending int32
	for _, lt := range s.live {
		if lt.plan.Health == deployment.Pending {
			pending[lt.deployment]++
			allPending++
		} else {
			running[lt.deployment]++
			allRunning++
		}
	}
	st.RunningCount, st.PendingCount = allRunning, allPending
	for i := range st.Deployments {
		d := &st.Deployments[i]
		d.RunningCount, d.PendingCount = running[d.ID], pending[d.ID]
		d.DesiredCount = 0
		if d.Status == ecsv1alpha1.DeploymentPrimary {
			d.DesiredCount = s.desired
		}
	}

	wasAccepted := meta.FindStatusCondition(st.Conditions, ecsv1alpha1.ConditionAccepted)
	if s.accepted {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ConditionAccepted, metav1.ConditionTrue, ecsv1alpha1.ReasonValid, "The service's task definition resolved to "+targetName(s))
	} else {
		if wasAccepted == nil || wasAccepted.Status != metav1.ConditionFalse || wasAccepted.Message != s.acceptedMessage {
			s.event(true, s.acceptedReason, "Validate", "%s", s.acceptedMessage)
		}
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, s.acceptedReason, s.acceptedMessage)
	}

	if s.primary == nil {
		st.TaskDefinition, st.RolloutState = "", ""
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionRolloutComplete, metav1.ConditionFalse, ecsv1alpha1.ReasonRevisionNotFound, "No deployment: the task definition does not resolve")
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionFalse, ecsv1alpha1.ReasonRevisionNotFound, "No deployment yet")
		st.ObservedGeneration = gen
		return
	}
	p := s.primary
	st.TaskDefinition, st.RolloutState = p.TaskDefinition, p.RolloutState
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

	wasSteady := conditions.True(st.Conditions, ecsv1alpha1.ServiceConditionSteady)
	steady := p.RolloutState == ecsv1alpha1.RolloutCompleted && allRunning == s.desired && allPending == 0 &&
		len(s.started) == 0 && len(s.stopped) == 0 && activeDeployments(st) == 1
	if steady {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted, "The service has reached a steady state.")
		if !wasSteady {
			s.event(false, "SteadyState", "Observe", "has reached a steady state.")
		}
	} else {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionSteady, metav1.ConditionFalse, ecsv1alpha1.ReasonTasksPending,
			fmt.Sprintf("%d of %d tasks running, %d pending, %d deployments active", allRunning, s.desired, allPending, activeDeployments(st)))
	}
	st.ObservedGeneration = gen
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
