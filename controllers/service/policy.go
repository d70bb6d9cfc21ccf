package service

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/policy"
	"github.com/berthdev/berth/internal/revision"
)

// The cluster's container policy (internal/policy), as the service controller applies
// it: a target revision that exceeds it is not Accepted and starts no deployment (the
// current one keeps running, as for a revision that does not resolve), and no task is
// launched for a PRIMARY revision that exceeds it, which is the case when the policy
// was tightened after the deployment started. Tasks already running are left alone,
// as Pod Security admission never evicts a running Pod.

// policyViolation is the message refusing revision ref of the service's cluster, or
// "" when the cluster's container policy allows it.
func (s *state) policyViolation(ref revision.Ref, spec *ecsv1alpha1.TaskDefinitionSpec) string {
	level := ecsv1alpha1.EffectiveContainerPolicyLevel(s.cluster)
	errs := policy.Check(level, spec)
	if len(errs) == 0 {
		return ""
	}
	return policy.Message(ref.String(), s.svc.Spec.Cluster, level, errs)
}

// primaryRefused is why the PRIMARY deployment's revision may not launch tasks under
// the cluster's container policy, or "". A revision that does not resolve is left to
// the scheduler, which reports it on the task.
func (r *Reconciler) primaryRefused(ctx context.Context, s *state) string {
	ref, err := revision.ParseRef(s.primary.TaskDefinition)
	if err != nil {
		return ""
	}
	res, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
	if err != nil {
		return ""
	}
	return s.policyViolation(res.Ref, res.Spec)
}

// servicesOfCluster requeues the services of a Cluster whose container policy
// changed (or that appeared or went away, which changes the level that applies).
func (r *Reconciler) servicesOfCluster(ctx context.Context, o client.Object) []reconcile.Request {
	var list ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &list, client.MatchingFields{index.ServiceCluster: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing services of cluster", "cluster", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return out
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
