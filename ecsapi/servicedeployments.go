package ecsapi

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/revision"
)

// How a Service's status.deployments read as ECS's two views of deployments: the
// deployments[] of DescribeServices (what the services-stable waiter counts) and the
// service deployments of ListServiceDeployments and DescribeServiceDeployments. Pure
// functions, tested table by table in servicedeployments_test.go.

// withPendingDeployment returns the service's deployments as ECS would show them
// right after the call that changed the spec. ECS's CreateService and UpdateService
// start the new deployment before they answer; Berth's manager starts it a moment
// later. Until the manager has seen the current generation, the deployment the spec
// asks for (its ID is the one the manager will give it) is shown PRIMARY and
// IN_PROGRESS and the former PRIMARY ACTIVE, so `aws ecs wait services-stable` run
// straight after update-service never passes on the state from before the update.
// Only a pinned task definition (`family:N`, what the API writes) is predicted.
func withPendingDeployment(svc *ecsv1alpha1.Service, now time.Time) []ecsv1alpha1.Deployment {
	deps := make([]ecsv1alpha1.Deployment, len(svc.Status.Deployments))
	copy(deps, svc.Status.Deployments)
	if svc.Status.ObservedGeneration >= svc.Generation || svc.DeletionTimestamp != nil {
		return deps
	}
	ref, err := revision.ParseRef(svc.Spec.TaskDefinition)
	if err != nil || !ref.Pinned() {
		return deps
	}
	id := deployment.ID(ref, svc.Spec.ForceNewDeployment)
	for _, d := range deps {
		if d.ID == id {
			return deps
		}
	}
	for i := range deps {
		if deps[i].Status == ecsv1alpha1.DeploymentPrimary {
			deps[i].Status = ecsv1alpha1.DeploymentActive
		}
	}
	created := metav1.NewTime(now)
	pending := ecsv1alpha1.Deployment{
		ID: id, Status: ecsv1alpha1.DeploymentPrimary, TaskDefinition: ref.String(),
		DesiredCount: aws.ToInt32(svc.Spec.DesiredCount), RolloutState: ecsv1alpha1.RolloutInProgress,
		RolloutStateReason: "ECS deployment " + id + " in progress.", CreatedAt: created, UpdatedAt: &created,
	}
	return append([]ecsv1alpha1.Deployment{pending}, deps...)
}

// deploymentsOut is DescribeServices' deployments[]: the PRIMARY deployment and the
// older ones that still have tasks. INACTIVE deployments (drained, kept in the
// status for history) are left out, so a steady service shows exactly one, as the
// services-stable waiter expects.
func deploymentsOut(deps []ecsv1alpha1.Deployment, taskDefinitionARN func(string) string) []types.Deployment {
	out := []types.Deployment{}
	for _, d := range deps {
		if d.Status == ecsv1alpha1.DeploymentInactive {
			continue
		}
		e := types.Deployment{
			Id:             aws.String(d.ID),
			Status:         aws.String(string(d.Status)),
			TaskDefinition: aws.String(taskDefinitionARN(d.TaskDefinition)),
			DesiredCount:   d.DesiredCount,
			PendingCount:   d.PendingCount,
			RunningCount:   d.RunningCount,
			FailedTasks:    d.FailedTasks,
			RolloutState:   types.DeploymentRolloutState(d.RolloutState),
			CreatedAt:      aws.Time(d.CreatedAt.Time),
			LaunchType:     types.LaunchTypeEc2,
		}
		if d.RolloutStateReason != "" {
			e.RolloutStateReason = aws.String(d.RolloutStateReason)
		}
		if d.UpdatedAt != nil {
			e.UpdatedAt = aws.Time(d.UpdatedAt.Time)
		}
		out = append(out, e)
	}
	return out
}

// serviceDeploymentStatus is a deployment's status as a service deployment. ECS
// models a circuit-breaker rollback as a state of the failed deployment
// (ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL); Berth makes the deployment
// rolled back to PRIMARY again. So a PRIMARY deployment older than a FAILED one is a
// rollback target: it keeps its own earlier SUCCESSFUL, and the failed one carries
// the rollback's progress. A deployment superseded before it completed is STOPPED,
// as is a failed one that was not rolled back.
func serviceDeploymentStatus(d ecsv1alpha1.Deployment, all []ecsv1alpha1.Deployment) types.ServiceDeploymentStatus {
	primary := primaryOf(all)
	switch d.RolloutState {
	case ecsv1alpha1.RolloutCompleted:
		return types.ServiceDeploymentStatusSuccessful
	case ecsv1alpha1.RolloutFailed:
		if primary == nil || primary.ID == d.ID || !primary.CreatedAt.Before(&d.CreatedAt) {
			return types.ServiceDeploymentStatusStopped
		}
		if primary.RolloutState == ecsv1alpha1.RolloutCompleted {
			return types.ServiceDeploymentStatusRollbackSuccessful
		}
		return types.ServiceDeploymentStatusRollbackInProgress
	}
	if d.Status != ecsv1alpha1.DeploymentPrimary {
		return types.ServiceDeploymentStatusStopped
	}
	for _, f := range all {
		if f.RolloutState == ecsv1alpha1.RolloutFailed && d.CreatedAt.Before(&f.CreatedAt) {
			return types.ServiceDeploymentStatusSuccessful // rolled back to: its own rollout completed before
		}
	}
	return types.ServiceDeploymentStatusInProgress
}

func primaryOf(all []ecsv1alpha1.Deployment) *ecsv1alpha1.Deployment {
	for i := range all {
		if all[i].Status == ecsv1alpha1.DeploymentPrimary {
			return &all[i]
		}
	}
	return nil
}

// serviceDeploymentFinished reports whether a service deployment status is final:
// finishedAt is then its last update.
func serviceDeploymentFinished(s types.ServiceDeploymentStatus) bool {
	switch s {
	case types.ServiceDeploymentStatusSuccessful, types.ServiceDeploymentStatusStopped,
		types.ServiceDeploymentStatusRollbackSuccessful, types.ServiceDeploymentStatusRollbackFailed:
		return true
	}
	return false
}

// serviceDeploymentMatches applies ListServiceDeployments' filters: the statuses
// (none means all) and the creation window (both ends exclusive, as ECS's after and
// before read).
func serviceDeploymentMatches(status types.ServiceDeploymentStatus, created time.Time, statuses []types.ServiceDeploymentStatus, window *types.CreatedAt) bool {
	if len(statuses) > 0 && !includes(statuses, status) {
		return false
	}
	if window != nil {
		if window.After != nil && !created.After(*window.After) {
			return false
		}
		if window.Before != nil && !created.Before(*window.Before) {
			return false
		}
	}
	return true
}
