package ecsapi

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/revision"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// dep builds a deployment created minutes after t0.
func dep(id string, status ecsv1alpha1.DeploymentStatus, state ecsv1alpha1.RolloutState, minutes int) ecsv1alpha1.Deployment {
	return ecsv1alpha1.Deployment{ID: id, Status: status, RolloutState: state, TaskDefinition: "web:1",
		CreatedAt: metav1.NewTime(t0.Add(time.Duration(minutes) * time.Minute))}
}

func TestWithPendingDeployment(t *testing.T) {
	rev2 := revision.Ref{Family: "web", Revision: 2}
	steady := []ecsv1alpha1.Deployment{dep("d-old", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted, 0)}
	current := dep(deployment.ID(rev2, ""), ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted, 0)
	tests := []struct {
		name          string
		spec          string
		force         string
		observed      int64
		deps          []ecsv1alpha1.Deployment
		deleting      bool
		wantIDs       []string
		wantStatuses  []ecsv1alpha1.DeploymentStatus
		wantUnchanged bool
	}{
		{name: "status current: shown as it is", spec: "web:2", observed: 2, deps: steady, wantUnchanged: true},
		{name: "new revision not seen yet: its deployment is PRIMARY, the old one ACTIVE", spec: "web:2", observed: 1, deps: steady,
			wantIDs:      []string{deployment.ID(rev2, ""), "d-old"},
			wantStatuses: []ecsv1alpha1.DeploymentStatus{ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.DeploymentActive}},
		{name: "new service not seen yet: one PRIMARY", spec: "web:2", observed: 0,
			wantIDs: []string{deployment.ID(rev2, "")}, wantStatuses: []ecsv1alpha1.DeploymentStatus{ecsv1alpha1.DeploymentPrimary}},
		{name: "force token not seen yet", spec: "web:2", force: "t1", observed: 1, deps: []ecsv1alpha1.Deployment{current},
			wantIDs:      []string{deployment.ID(rev2, "t1"), current.ID},
			wantStatuses: []ecsv1alpha1.DeploymentStatus{ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.DeploymentActive}},
		{name: "scale only: the deployment exists, nothing added", spec: "web:2", observed: 1, deps: []ecsv1alpha1.Deployment{current}, wantUnchanged: true},
		{name: "a family followed (kubectl) is not predicted", spec: "web", observed: 1, deps: steady, wantUnchanged: true},
		{name: "a deleted service starts nothing", spec: "web:2", observed: 1, deps: steady, deleting: true, wantUnchanged: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &ecsv1alpha1.Service{}
			svc.Generation = 2
			svc.Spec.TaskDefinition, svc.Spec.ForceNewDeployment, svc.Spec.DesiredCount = tc.spec, tc.force, aws.Int32(3)
			svc.Status.ObservedGeneration, svc.Status.Deployments = tc.observed, tc.deps
			if tc.deleting {
				now := metav1.NewTime(t0)
				svc.DeletionTimestamp = &now
			}
			got := withPendingDeployment(svc, t0)
			if tc.wantUnchanged {
				if len(got) != len(tc.deps) {
					t.Fatalf("got %d deployments, want the %d of the status", len(got), len(tc.deps))
				}
				return
			}
			if len(got) != len(tc.wantIDs) {
				t.Fatalf("got %+v, want IDs %v", got, tc.wantIDs)
			}
			for i := range got {
				if got[i].ID != tc.wantIDs[i] || got[i].Status != tc.wantStatuses[i] {
					t.Errorf("deployment %d = %s %s, want %s %s", i, got[i].ID, got[i].Status, tc.wantIDs[i], tc.wantStatuses[i])
				}
			}
			if p := got[0]; p.DesiredCount != 3 || p.RolloutState != ecsv1alpha1.RolloutInProgress || p.TaskDefinition != "web:2" {
				t.Errorf("pending deployment = %+v", p)
			}
			if len(tc.deps) > 0 && tc.deps[0].Status != ecsv1alpha1.DeploymentPrimary {
				t.Error("the status was modified: withPendingDeployment must work on a copy")
			}
		})
	}
}

func TestDeploymentsOut(t *testing.T) {
	deps := []ecsv1alpha1.Deployment{
		dep("d3", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 3),
		dep("d2", ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutCompleted, 2),
		dep("d1", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted, 1),
	}
	arn := func(ref string) string { return "arn:" + ref }
	got := deploymentsOut(deps, arn)
	if len(got) != 2 || aws.ToString(got[0].Id) != "d3" || aws.ToString(got[1].Id) != "d2" {
		t.Fatalf("deployments = %+v, want d3 and d2 (INACTIVE left out)", got)
	}
	if aws.ToString(got[0].Status) != "PRIMARY" || aws.ToString(got[1].Status) != "ACTIVE" || aws.ToString(got[0].TaskDefinition) != "arn:web:1" {
		t.Errorf("deployments = %+v", got)
	}
	// A steady service: exactly one, what the services-stable waiter counts.
	if steady := deploymentsOut(deps[2:], arn); len(steady) != 0 {
		t.Errorf("only INACTIVE: %d deployments", len(steady))
	}
	if empty := deploymentsOut(nil, arn); empty == nil {
		t.Error("no deployments must answer an empty list, not an absent one")
	}
}

func TestServiceDeploymentStatus(t *testing.T) {
	tests := []struct {
		name string
		all  []ecsv1alpha1.Deployment
		// of is the index of the deployment judged.
		of   int
		want types.ServiceDeploymentStatus
	}{
		{name: "rolling out", all: []ecsv1alpha1.Deployment{dep("d1", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 0)},
			want: types.ServiceDeploymentStatusInProgress},
		{name: "completed", all: []ecsv1alpha1.Deployment{dep("d1", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted, 0)},
			want: types.ServiceDeploymentStatusSuccessful},
		{name: "completed then replaced stays successful", of: 1, all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 1),
			dep("d1", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted, 0)},
			want: types.ServiceDeploymentStatusSuccessful},
		{name: "replaced before it completed is stopped", of: 1, all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 1),
			dep("d1", ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutInProgress, 0)},
			want: types.ServiceDeploymentStatusStopped},
		{name: "failed without rollback is stopped", all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutFailed, 1),
			dep("d1", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutCompleted, 0)},
			want: types.ServiceDeploymentStatusStopped},
		{name: "failed, rolling back", all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutFailed, 1),
			dep("d1", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 0)},
			want: types.ServiceDeploymentStatusRollbackInProgress},
		{name: "failed, rolled back", all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed, 1),
			dep("d1", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutCompleted, 0)},
			want: types.ServiceDeploymentStatusRollbackSuccessful},
		{name: "the deployment rolled back to keeps its own success", of: 1, all: []ecsv1alpha1.Deployment{
			dep("d2", ecsv1alpha1.DeploymentActive, ecsv1alpha1.RolloutFailed, 1),
			dep("d1", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 0)},
			want: types.ServiceDeploymentStatusSuccessful},
		{name: "a new deployment after a failed one rolls out", all: []ecsv1alpha1.Deployment{
			dep("d3", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 2),
			dep("d2", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed, 1)},
			want: types.ServiceDeploymentStatusInProgress},
		{name: "a failed one replaced by a new deployment is stopped", of: 1, all: []ecsv1alpha1.Deployment{
			dep("d3", ecsv1alpha1.DeploymentPrimary, ecsv1alpha1.RolloutInProgress, 2),
			dep("d2", ecsv1alpha1.DeploymentInactive, ecsv1alpha1.RolloutFailed, 1)},
			want: types.ServiceDeploymentStatusStopped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serviceDeploymentStatus(tc.all[tc.of], tc.all); got != tc.want {
				t.Errorf("status = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestServiceDeploymentMatches(t *testing.T) {
	after, before := t0.Add(-time.Hour), t0.Add(time.Hour)
	tests := []struct {
		name     string
		statuses []types.ServiceDeploymentStatus
		window   *types.CreatedAt
		want     bool
	}{
		{name: "no filter", want: true},
		{name: "status listed", statuses: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusSuccessful, types.ServiceDeploymentStatusInProgress}, want: true},
		{name: "status not listed", statuses: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusStopped}, want: false},
		{name: "inside the window", window: &types.CreatedAt{After: &after, Before: &before}, want: true},
		{name: "before after", window: &types.CreatedAt{After: &before}, want: false},
		{name: "after before", window: &types.CreatedAt{Before: &after}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serviceDeploymentMatches(types.ServiceDeploymentStatusInProgress, t0, tc.statuses, tc.window); got != tc.want {
				t.Errorf("matches = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestNewestFirstKey(t *testing.T) {
	keys := []string{newestFirstKey(t0, "a"), newestFirstKey(t0.Add(time.Second), "b"), newestFirstKey(t0.Add(-time.Second), "c")}
	// page() sorts keys as strings: the newest must come first.
	if keys[1] >= keys[0] || keys[0] >= keys[2] {
		t.Errorf("keys do not sort newest first: %q", keys)
	}
}
