package service

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/revision"
)

// TestSetRolloutComplete checks the condition `kubectl wait
// --for=condition=RolloutComplete` reads: True only when the deployment the spec asks
// for completed, so a circuit breaker rollback never reads as a finished rollout.
func TestSetRolloutComplete(t *testing.T) {
	ref := func(family string, n int32) revision.Ref { return revision.Ref{Family: family, Revision: n} }
	dep := func(r revision.Ref, status ecsv1alpha1.DeploymentStatus, state ecsv1alpha1.RolloutState) ecsv1alpha1.Deployment {
		return ecsv1alpha1.Deployment{ID: deployment.ID(r, ""), Status: status, TaskDefinition: r.String(), RolloutState: state, RolloutStateReason: "reason of " + r.String()}
	}
	web1, web2 := ref("web", 1), ref("web", 2)
	type want struct {
		status metav1.ConditionStatus
		reason string
	}
	tests := []struct {
		name        string
		deployments []ecsv1alpha1.Deployment
		// target is the revision spec.taskDefinition resolves to; nil when it does not.
		target *revision.Ref
		want   want
	}{
		{
			name:        "rollout in progress",
			deployments: []ecsv1alpha1.Deployment{dep(web2, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress), dep(web1, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted)},
			target:      &web2,
			want:        want{metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentInProgress},
		},
		{
			name:        "rollout completed",
			deployments: []ecsv1alpha1.Deployment{dep(web2, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted), dep(web1, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted)},
			target:      &web2,
			want:        want{metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted},
		},
		{
			name:        "failed without rollback",
			deployments: []ecsv1alpha1.Deployment{dep(web2, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutFailed), dep(web1, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted)},
			target:      &web2,
			want:        want{metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentFailed},
		},
		{
			name:        "rolling back",
			deployments: []ecsv1alpha1.Deployment{dep(web1, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress), dep(web2, ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutFailed)},
			target:      &web2,
			want:        want{metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentFailed},
		},
		{
			// The bug this guards: the rolled-back-to deployment completes again, but
			// the spec still asks for the failed one.
			name:        "rolled back and the old deployment completed",
			deployments: []ecsv1alpha1.Deployment{dep(web1, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted), dep(web2, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed)},
			target:      &web2,
			want:        want{metav1.ConditionFalse, ecsv1alpha1.ReasonDeploymentFailed},
		},
		{
			// The user pins the revision that runs: that rollout is complete.
			name:        "spec pinned to the rolled-back-to revision",
			deployments: []ecsv1alpha1.Deployment{dep(web1, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted), dep(web2, ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed)},
			target:      &web1,
			want:        want{metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted},
		},
		{
			name:        "spec does not resolve: the primary decides",
			deployments: []ecsv1alpha1.Deployment{dep(web1, ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted)},
			want:        want{metav1.ConditionTrue, ecsv1alpha1.ReasonDeploymentCompleted},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 4}}
			svc.Status.Deployments = tc.deployments
			s := newState(svc, time.Now())
			s.primary = &svc.Status.Deployments[0]
			if tc.target != nil {
				s.target = &revision.Resolved{Ref: *tc.target}
			}
			setRolloutComplete(s)
			c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionRolloutComplete)
			if c == nil {
				t.Fatal("no RolloutComplete condition")
			}
			if diff := cmp.Diff(tc.want, want{c.Status, c.Reason}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("RolloutComplete (-want +got):\n%s\nmessage: %s", diff, c.Message)
			}
			if c.ObservedGeneration != svc.Generation {
				t.Errorf("observedGeneration %d, want %d", c.ObservedGeneration, svc.Generation)
			}
		})
	}
}
