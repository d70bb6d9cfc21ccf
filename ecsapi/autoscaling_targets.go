package ecsapi

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// A scalable target is a Service's spec.autoScaling: its capacity bounds and
// suspension, and its target tracking policies.

// maxCapacity is the schema's bound on minCapacity and maxCapacity.
const maxCapacity = 100000

func registerScalableTarget(ctx context.Context, c *Call, in *aas.RegisterScalableTargetInput) (*aas.RegisterScalableTargetOutput, error) {
	ref, err := scalableTarget(in.ServiceNamespace, in.ScalableDimension, in.ResourceId)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		return nil, invalid("Tags", "Berth keeps no tags on scalable targets; tag the ECS service (ecs tag-resource) instead")
	}
	// AWS's answer for a service that does not exist (RegisterScalableTarget has no
	// ObjectNotFoundException): clients that register right after CreateService
	// retry it.
	missing := invalid("ResourceId", "ECS service doesn't exist: %s", ref.id)
	svc, err := c.updateService(ctx, ref, missing, func(svc *ecsv1alpha1.Service) error {
		return registerTarget(svc, in)
	})
	if err != nil {
		return nil, err
	}
	return &aas.RegisterScalableTargetOutput{ScalableTargetARN: aws.String(c.ARN.scalableTarget(svc))}, nil
}

// registerTarget sets a service's capacity bounds and suspension as a
// RegisterScalableTarget asks: a new target needs both bounds, an update changes
// what it names and keeps the rest, policies included. RoleARN is accepted and
// ignored (there is no IAM); ScheduledScalingSuspended too (there are no scheduled
// actions to suspend).
func registerTarget(svc *ecsv1alpha1.Service, in *aas.RegisterScalableTargetInput) error {
	if svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
		return invalid("ResourceId", "%s is a DAEMON service: it runs one task on each instance and has no desired count to scale", aws.ToString(in.ResourceId))
	}
	as := svc.Spec.AutoScaling.DeepCopy()
	if as == nil {
		if in.MinCapacity == nil || in.MaxCapacity == nil {
			return invalid("MinCapacity", "MinCapacity and MaxCapacity are required to register a new scalable target")
		}
		as = &ecsv1alpha1.ServiceAutoScaling{}
	}
	if in.MinCapacity != nil {
		as.MinCapacity = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		as.MaxCapacity = *in.MaxCapacity
	}
	switch {
	case as.MinCapacity < 0 || as.MinCapacity > maxCapacity:
		return invalid("MinCapacity", "must be between 0 and %d, not %d", maxCapacity, as.MinCapacity)
	case as.MaxCapacity < 0 || as.MaxCapacity > maxCapacity:
		return invalid("MaxCapacity", "must be between 0 and %d, not %d", maxCapacity, as.MaxCapacity)
	case as.MaxCapacity < as.MinCapacity:
		return invalid("MaxCapacity", "%d is below MinCapacity %d", as.MaxCapacity, as.MinCapacity)
	}
	if s := in.SuspendedState; s != nil {
		if s.DynamicScalingInSuspended != nil {
			as.ScaleInSuspended = *s.DynamicScalingInSuspended
		}
		if s.DynamicScalingOutSuspended != nil {
			as.ScaleOutSuspended = *s.DynamicScalingOutSuspended
		}
	}
	svc.Spec.AutoScaling = as
	return nil
}

func describeScalableTargets(ctx context.Context, c *Call, in *aas.DescribeScalableTargetsInput) (*aas.DescribeScalableTargetsOutput, error) {
	if err := checkTarget(in.ServiceNamespace, in.ScalableDimension, false); err != nil {
		return nil, err
	}
	if len(in.ResourceIds) > autoScalingPage {
		return nil, invalid("ResourceIds", "at most %d per call", autoScalingPage)
	}
	services, err := c.replicaServices(ctx)
	if err != nil {
		return nil, err
	}
	asked := map[string]bool{}
	for _, id := range in.ResourceIds {
		asked[id] = true
	}
	ids := []string{}
	for id, svc := range services {
		if svc.Spec.AutoScaling != nil && (len(asked) == 0 || asked[id]) {
			ids = append(ids, id)
		}
	}
	ids, next, err := autoScalingPageOf(ids, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &aas.DescribeScalableTargetsOutput{ScalableTargets: make([]aastypes.ScalableTarget, len(ids)), NextToken: next}
	for i, id := range ids {
		out.ScalableTargets[i] = scalableTargetOut(c.ARN, services[id], id)
	}
	return out, nil
}

// scalableTargetOut describes a service's spec.autoScaling as its scalable target.
// It was created when the service was (Berth keeps no time of registration).
func scalableTargetOut(arns ARNs, svc *ecsv1alpha1.Service, id string) aastypes.ScalableTarget {
	as := svc.Spec.AutoScaling
	return aastypes.ScalableTarget{
		ServiceNamespace:  ecsNamespace,
		ResourceId:        aws.String(id),
		ScalableDimension: ecsDesiredCount,
		MinCapacity:       aws.Int32(as.MinCapacity),
		MaxCapacity:       aws.Int32(as.MaxCapacity),
		RoleARN:           aws.String(arns.autoScalingRole()),
		CreationTime:      aws.Time(svc.CreationTimestamp.Time),
		ScalableTargetARN: aws.String(arns.scalableTarget(svc)),
		SuspendedState: &aastypes.SuspendedState{
			DynamicScalingInSuspended:  aws.Bool(as.ScaleInSuspended),
			DynamicScalingOutSuspended: aws.Bool(as.ScaleOutSuspended),
			ScheduledScalingSuspended:  aws.Bool(false),
		},
	}
}

func deregisterScalableTarget(ctx context.Context, c *Call, in *aas.DeregisterScalableTargetInput) (*aas.DeregisterScalableTargetOutput, error) {
	ref, err := scalableTarget(in.ServiceNamespace, in.ScalableDimension, in.ResourceId)
	if err != nil {
		return nil, err
	}
	if _, err := c.updateService(ctx, ref, noTarget(ref), deregisterTarget); err != nil {
		return nil, err
	}
	return &aas.DeregisterScalableTargetOutput{}, nil
}

// deregisterTarget removes a service's spec.autoScaling; the service keeps the
// desiredCount it has, which a REPLICA service without auto scaling must have. The
// patch is written under optimistic locking, so the count kept is the one the
// patch was computed from.
func deregisterTarget(svc *ecsv1alpha1.Service) error {
	as := svc.Spec.AutoScaling
	if as == nil {
		return errNotScalable
	}
	if svc.Spec.DesiredCount == nil {
		// Not set by the auto scaler yet: the service runs at its minimum.
		svc.Spec.DesiredCount = aws.Int32(as.MinCapacity)
	}
	svc.Spec.AutoScaling = nil
	return nil
}
