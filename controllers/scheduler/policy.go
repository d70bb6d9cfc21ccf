package scheduler

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/policy"
	"github.com/berthdev/berth/internal/revision"
)

// The cluster's container policy (internal/policy), as the scheduler applies it: a
// task whose revision exceeds it is not placed. It says so on Placed=False (reason
// ContainerPolicyViolation, every offending field in the message) with a Warning
// Event, and waits: a change of the Cluster's policy retries it, as a new instance
// retries an unplaceable task. Standalone and service tasks go through this alike; a
// task created already bound to an instance never comes here, and the agent checks
// it before it starts anything.

// policyViolation is the message refusing the task's revision, or "" when its
// cluster's container policy allows it. A cluster without a Cluster object has the
// default level.
func (s *Scheduler) policyViolation(ctx context.Context, t *ecsv1alpha1.Task, res *revision.Resolved) (string, error) {
	name := t.Spec.Cluster
	if name == "" {
		name = ecsv1alpha1.DefaultClusterName
	}
	var cluster *ecsv1alpha1.Cluster
	var c ecsv1alpha1.Cluster
	if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, &c); err == nil {
		cluster = &c
	} else if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("reading cluster %s: %w", name, err)
	}
	level := ecsv1alpha1.EffectiveContainerPolicyLevel(cluster)
	if errs := policy.Check(level, res.Spec); len(errs) > 0 {
		return policy.Message(res.Ref.String(), name, level, errs), nil
	}
	return "", nil
}

// unplacedOfCluster retries the unplaced tasks of a Cluster whose container policy
// changed (or that appeared or went away).
func (s *Scheduler) unplacedOfCluster(_ context.Context, o client.Object) []reconcile.Request {
	return s.waitingIn(o.GetName())
}

// containerPolicyChanged passes Cluster updates that change the container policy.
func containerPolicyChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !equality.Semantic.DeepEqual(e.ObjectOld.(*ecsv1alpha1.Cluster).Spec.ContainerPolicy,
				e.ObjectNew.(*ecsv1alpha1.Cluster).Spec.ContainerPolicy)
		},
	}
}
