package service

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// Rollout judgment: a deployment in progress completes when every desired task of it
// is healthy and nothing else is live, or fails when the circuit breaker counts
// enough failed tasks; with rollback, the newest COMPLETED deployment becomes PRIMARY
// again. Drained older deployments become INACTIVE.

// failed reports whether a task counts against its deployment's circuit breaker: it
// failed to start, its essential container exited, or the service stopped it for
// failing health checks (counted from the stop request, before the task stopped).
func failed(t *ecsv1alpha1.Task) bool {
	if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped && t.Spec.StopReason == unhealthyStopReason {
		return true
	}
	if t.Status.LastStatus != ecsv1alpha1.TaskStopped {
		return false
	}
	switch t.Status.StopCode {
	case ecsv1alpha1.StopTaskFailedToStart, ecsv1alpha1.StopEssentialContainerExited:
		return true
	}
	return false
}

// judgeDeployments moves deployments through their rollout states: the circuit
// breaker (and rollback), completion, and retirement of drained deployments.
func (r *Reconciler) judgeDeployments(ctx context.Context, s *state) error {
	if s.primary == nil {
		return nil
	}
	s.countFailures()
	p := s.primary
	if p.RolloutState == ecsv1alpha1.RolloutInProgress {
		threshold := deployment.CircuitBreakerThreshold(s.desired)
		switch cb := s.svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker; {
		case cb != nil && cb.Enable && p.FailedTasks >= threshold:
			s.tripCircuitBreaker(ctx, threshold, cb.Rollback)
		case s.rolloutDone():
			p.RolloutState = ecsv1alpha1.RolloutCompleted
			p.RolloutStateReason = "ECS deployment " + p.ID + " completed."
			p.UpdatedAt = ptrTime(s.now)
			s.event(false, ecsv1alpha1.ReasonDeploymentCompleted, "Deploy", "deployment %s of %s completed", p.ID, p.TaskDefinition)
		}
	}
	s.retireDrained()
	return nil
}

// countFailures records each deployment's failed tasks still stored (collection keeps
// those of a deployment in progress; see collect.go).
func (s *state) countFailures() {
	failures := map[string]int32{}
	for _, t := range s.tasks {
		if failed(t) {
			failures[t.Labels[ecsv1alpha1.LabelDeployment]]++
		}
	}
	for i := range s.svc.Status.Deployments {
		s.svc.Status.Deployments[i].FailedTasks = failures[s.svc.Status.Deployments[i].ID]
	}
}

// retireDrained makes ACTIVE deployments without live tasks INACTIVE.
func (s *state) retireDrained() {
	liveBy := map[string]int{}
	for _, lt := range s.live {
		liveBy[lt.deployment]++
	}
	for i := range s.svc.Status.Deployments {
		d := &s.svc.Status.Deployments[i]
		if d.Status == ecsv1alpha1.DeploymentActive && liveBy[d.ID] == 0 {
			d.Status = ecsv1alpha1.DeploymentInactive
			d.UpdatedAt = ptrTime(s.now)
		}
	}
}

// rolloutDone: every desired primary task is healthy and nothing else is live.
func (s *state) rolloutDone() bool {
	healthy := int32(0)
	for _, lt := range s.live {
		if !lt.plan.Primary || lt.plan.Replace || lt.plan.StopNow || lt.plan.Health != deployment.Healthy {
			return false
		}
		healthy++
	}
	return healthy == s.desired
}

// tripCircuitBreaker fails the PRIMARY deployment and, with rollback, makes the
// deployment rollbackTarget picks PRIMARY again.
func (s *state) tripCircuitBreaker(ctx context.Context, threshold int32, rollback bool) {
	p := s.primary
	p.RolloutState = ecsv1alpha1.RolloutFailed
	p.RolloutStateReason = fmt.Sprintf("ECS deployment circuit breaker: %d tasks failed to start or stay healthy (threshold %d).", p.FailedTasks, threshold)
	p.UpdatedAt = ptrTime(s.now)
	ctrl.LoggerFrom(ctx).Info("deployment failed", "deployment", p.ID, "failedTasks", p.FailedTasks, "threshold", threshold)
	s.event(true, ecsv1alpha1.ReasonDeploymentFailed, "Deploy", "deployment %s of %s failed: %d tasks failed (circuit breaker threshold %d)",
		p.ID, p.TaskDefinition, p.FailedTasks, threshold)
	if !rollback {
		return
	}
	back := rollbackTarget(s.svc.Status.Deployments, p.ID)
	if back == nil {
		s.event(true, ecsv1alpha1.ReasonCircuitBreakerRollback, "Rollback", "no completed deployment to roll back to; deployment %s stays failed", p.ID)
		return
	}
	p.Status = ecsv1alpha1.DeploymentActive
	back.Status = ecsv1alpha1.DeploymentPrimary
	back.RolloutState = ecsv1alpha1.RolloutInProgress
	back.RolloutStateReason = "Rolling back to " + back.TaskDefinition + " after deployment " + p.ID + " failed."
	back.UpdatedAt = ptrTime(s.now)
	s.primary = back
	s.event(true, ecsv1alpha1.ReasonCircuitBreakerRollback, "Rollback", "rolling back from %s to deployment %s of %s", p.ID, back.ID, back.TaskDefinition)
	// Tasks of the failed deployment are now old tasks to retire.
	for i := range s.live {
		s.live[i].plan.Primary = s.live[i].deployment == back.ID
	}
}

// rollbackTarget is the deployment a failed one rolls back to: the newest COMPLETED
// one other than it, or nil.
func rollbackTarget(deployments []ecsv1alpha1.Deployment, failedID string) *ecsv1alpha1.Deployment {
	var back *ecsv1alpha1.Deployment
	for i := range deployments {
		d := &deployments[i]
		if d.ID != failedID && d.RolloutState == ecsv1alpha1.RolloutCompleted && (back == nil || d.CreatedAt.After(back.CreatedAt.Time)) {
			back = d
		}
	}
	return back
}
