package service

import (
	"context"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// ensureDeployment makes the deployment that spec asks for PRIMARY, starting a new
// one when the resolved revision or the forceNewDeployment token changed.
func (r *Reconciler) ensureDeployment(ctx context.Context, s *state) error {
	s.adoptUnknownDeployments()
	if s.target != nil {
		id := deployment.ID(s.target.Ref, s.svc.Spec.ForceNewDeployment)
		switch existing := s.findDeployment(id); {
		case existing == nil:
			s.startDeployment(id, s.target.Ref.String())
			ctrl.LoggerFrom(ctx).Info("started deployment", "deployment", id, "taskDefinition", s.target.Ref.String())
		case existing.Status == ecsv1alpha1.DeploymentPrimary:
		case existing.RolloutState == ecsv1alpha1.RolloutFailed:
			// Rolled back from: retrying the same failed deployment needs a spec change
			// (a new revision or forceNewDeployment token).
		default:
			// The spec went back to a deployment still in flight: promote it again.
			s.demotePrimary()
			existing.Status = ecsv1alpha1.DeploymentPrimary
			existing.RolloutState = ecsv1alpha1.RolloutInProgress
			existing.RolloutStateReason = "Deployment resumed: the service's task definition points at it again"
			existing.UpdatedAt = ptrTime(s.now)
		}
	}
	s.sortDeployments()
	for i := range s.svc.Status.Deployments {
		if s.svc.Status.Deployments[i].Status == ecsv1alpha1.DeploymentPrimary {
			s.primary = &s.svc.Status.Deployments[i]
		}
	}
	return nil
}

// targetDeployment is the deployment of the spec's resolved revision and
// forceNewDeployment token; nil when the spec does not resolve.
func (s *state) targetDeployment() *ecsv1alpha1.Deployment {
	if s.target == nil {
		return nil
	}
	return s.findDeployment(deployment.ID(s.target.Ref, s.svc.Spec.ForceNewDeployment))
}

func (s *state) findDeployment(id string) *ecsv1alpha1.Deployment {
	for i := range s.svc.Status.Deployments {
		if s.svc.Status.Deployments[i].ID == id {
			return &s.svc.Status.Deployments[i]
		}
	}
	return nil
}

func (s *state) demotePrimary() {
	for i := range s.svc.Status.Deployments {
		d := &s.svc.Status.Deployments[i]
		if d.Status == ecsv1alpha1.DeploymentPrimary {
			d.Status = ecsv1alpha1.DeploymentActive
			d.UpdatedAt = ptrTime(s.now)
		}
	}
}

func (s *state) startDeployment(id, taskDefinition string) {
	s.demotePrimary()
	s.svc.Status.Deployments = append(s.svc.Status.Deployments, ecsv1alpha1.Deployment{
		ID:                 id,
		Status:             ecsv1alpha1.DeploymentPrimary,
		TaskDefinition:     taskDefinition,
		RolloutState:       ecsv1alpha1.RolloutInProgress,
		RolloutStateReason: "ECS deployment " + id + " in progress.",
		CreatedAt:          metav1.NewTime(s.now),
		UpdatedAt:          ptrTime(s.now),
	})
	s.newDeployment = true
	s.event(false, "DeploymentStarted", "Deploy", "started deployment %s of %s", id, taskDefinition)
}

// adoptUnknownDeployments records deployments that have tasks but no status entry
// (a status lost to a restore, or written by a manager that crashed first), so their
// tasks are retired rather than ignored.
func (s *state) adoptUnknownDeployments() {
	for _, t := range s.tasks {
		id := t.Labels[ecsv1alpha1.LabelDeployment]
		if id == "" || s.findDeployment(id) != nil {
			continue
		}
		s.svc.Status.Deployments = append(s.svc.Status.Deployments, ecsv1alpha1.Deployment{
			ID: id, Status: ecsv1alpha1.DeploymentActive, TaskDefinition: t.Spec.TaskDefinition,
			RolloutState: ecsv1alpha1.RolloutInProgress, CreatedAt: t.CreationTimestamp,
			RolloutStateReason: "Recovered from the deployment's tasks",
		})
	}
}

// sortDeployments keeps PRIMARY first, then newest first, and forgets old INACTIVE
// deployments (keeping failed ones, which stop a failed deployment from restarting).
func (s *state) sortDeployments() {
	deps := s.svc.Status.Deployments
	sort.SliceStable(deps, func(i, j int) bool {
		pi, pj := deps[i].Status == ecsv1alpha1.DeploymentPrimary, deps[j].Status == ecsv1alpha1.DeploymentPrimary
		if pi != pj {
			return pi
		}
		return deps[i].CreatedAt.After(deps[j].CreatedAt.Time)
	})
	const keepInactive = 5
	kept, inactive := deps[:0], 0
	for _, d := range deps {
		if d.Status == ecsv1alpha1.DeploymentInactive {
			inactive++
			if inactive > keepInactive && d.RolloutState != ecsv1alpha1.RolloutFailed {
				continue
			}
		}
		kept = append(kept, d)
	}
	if len(kept) > 32 { // the schema's bound
		kept = kept[:32]
	}
	s.svc.Status.Deployments = kept
}
