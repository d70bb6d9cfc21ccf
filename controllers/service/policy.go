package service

import (
	"context"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
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
