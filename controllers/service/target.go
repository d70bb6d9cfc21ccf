package service

import (
	"context"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
)

// resolveTarget resolves spec.taskDefinition and checks the placement expressions,
// the load balancers and the cluster's container policy. A service whose target
// cannot be resolved or is refused keeps its current deployments running.
func (r *Reconciler) resolveTarget(ctx context.Context, s *state) error {
	ref, err := revision.ParseRef(s.svc.Spec.TaskDefinition)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.taskDefinition: %v", err)
		return nil
	}
	target, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
	if revision.IsNotFound(err) {
		if revision.AwaitingRegistration(ctx, r.Client, s.svc.Namespace, ref.Family, s.svc.CreationTimestamp.Time, s.now) {
			// Applied together with its TaskDefinition, or just before it: said on the
			// condition, but no Warning for what the next TaskDefinition status write
			// resolves.
			s.reject(ecsv1alpha1.ReasonRevisionNotFound, "spec.taskDefinition: %v; waiting for the task definition to be registered", err)
			s.rejectQuietly = true
			// If the TaskDefinition never comes, the pass after the grace says so loudly.
			if end := s.svc.CreationTimestamp.Add(revision.ApplyGrace); end.After(s.now) {
				s.requeueAt(end)
			}
			return nil
		}
		s.reject(ecsv1alpha1.ReasonRevisionNotFound, "spec.taskDefinition: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	svcConstraints, err := placement.ParseConstraints(s.svc.Spec.PlacementConstraints)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.%v", err)
		return nil
	}
	tdConstraints, err := placement.ParseTaskDefinitionConstraints(target.Spec.PlacementConstraints)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "task definition %s: spec.%v", target.Ref, err)
		return nil
	}
	for i, lb := range s.svc.Spec.LoadBalancers {
		if !publishesPort(target.Spec, lb.ContainerName, lb.ContainerPort) {
			s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.loadBalancers[%d]: task definition %s has no container %q with a port mapping for containerPort %d",
				i, target.Ref, lb.ContainerName, lb.ContainerPort)
			return nil
		}
	}
	if msg := s.policyViolation(target.Ref, target.Spec); msg != "" {
		s.reject(ecsv1alpha1.ReasonContainerPolicyViolation, "%s", msg)
		return nil
	}
	s.target = target
	s.constraints = append(svcConstraints, tdConstraints...)
	return nil
}

func publishesPort(spec *ecsv1alpha1.TaskDefinitionSpec, container string, port int32) bool {
	for _, c := range spec.ContainerDefinitions {
		if c.Name != container {
			continue
		}
		for _, p := range c.PortMappings {
			if p.ContainerPort == port {
				return true
			}
		}
	}
	return false
}
