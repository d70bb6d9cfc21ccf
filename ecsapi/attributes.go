package ecsapi

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/inventory"
)

// Attributes are the custom attributes of container instances, ECS's only target
// type (attributerules.go has the rules). PutAttributes and DeleteAttributes check
// every attribute and find every target before they write any, so a call refused
// for one attribute changes nothing.

func attributeOps() map[string]handler {
	return map[string]handler{
		"PutAttributes":    op(putAttributes),
		"DeleteAttributes": op(deleteAttributes),
		"ListAttributes":   op(listAttributes),
	}
}

// errNoTarget answers a target that is not an instance of the cluster.
var errNoTarget = wire.Errorf(wire.TargetNotFoundException,
	"The specified target wasn't found. You can view your available container instances with ListContainerInstances.")

// attributeTarget is an instance and the attributes a call names for it.
type attributeTarget struct {
	Instance *ecsv1alpha1.ContainerInstance
	Attrs    []ecsv1alpha1.Attribute
}

// attributeTargets groups a call's attributes by the instance they target, in the
// order the instances are first named, after checking each attribute. withValues is
// false for DeleteAttributes, which ignores values.
func (c *Call) attributeTargets(ctx context.Context, clusterRef *string, attrs []types.Attribute, withValues bool) ([]*attributeTarget, error) {
	cl, clusterName, err := c.readCluster(ctx, clusterRef)
	if err != nil {
		return nil, err
	}
	if len(attrs) == 0 {
		return nil, wire.InvalidParameter("attributes", "must not be empty")
	}
	if len(attrs) > maxAttributesPerCall {
		return nil, wire.InvalidParameter("attributes", "at most %d attributes per call, got %d", maxAttributesPerCall, len(attrs))
	}
	byName := map[string]*attributeTarget{}
	var out []*attributeTarget
	for i, a := range attrs {
		member := taskRefMember("attributes", i)
		attr, err := checkAttribute(member, a, withValues)
		if err != nil {
			return nil, err
		}
		ci, err := c.instanceInCluster(ctx, member+".targetId", cl, clusterName, aws.ToString(a.TargetId))
		if err != nil {
			return nil, err
		}
		if ci == nil {
			return nil, errNoTarget
		}
		t := byName[ci.Name]
		if t == nil {
			t = &attributeTarget{Instance: ci}
			byName[ci.Name] = t
			out = append(out, t)
		}
		t.Attrs = append(t.Attrs, attr)
	}
	return out, nil
}

// checkAttribute checks one attribute of a call.
func checkAttribute(member string, a types.Attribute, withValues bool) (ecsv1alpha1.Attribute, error) {
	if err := validAttributeName(member+".name", aws.ToString(a.Name)); err != nil {
		return ecsv1alpha1.Attribute{}, err
	}
	if withValues {
		if err := validAttributeValue(member+".value", aws.ToString(a.Value)); err != nil {
			return ecsv1alpha1.Attribute{}, err
		}
	}
	if a.TargetType != "" && a.TargetType != attributeTargetInstances {
		return ecsv1alpha1.Attribute{}, wire.InvalidParameter(member+".targetType", "must be container-instance, not %q", a.TargetType)
	}
	if aws.ToString(a.TargetId) == "" {
		return ecsv1alpha1.Attribute{}, wire.InvalidParameter(member+".targetId", "is required: the container instance ID or ARN")
	}
	return ecsv1alpha1.Attribute{Name: aws.ToString(a.Name), Value: aws.ToString(a.Value)}, nil
}

// writeAttributes replaces an instance's custom attributes with edit's result,
// rereading the instance when another writer got there first.
func (c *Call) writeAttributes(ctx context.Context, t *attributeTarget, edit func([]ecsv1alpha1.Attribute) ([]ecsv1alpha1.Attribute, error)) error {
	ci := t.Instance
	reread := false
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if reread {
			if err := c.Client.Get(ctx, client.ObjectKeyFromObject(ci), ci); err != nil {
				return err
			}
		}
		reread = true
		next, err := edit(ci.Spec.Attributes)
		if err != nil {
			return err
		}
		patch := client.MergeFromWithOptions(ci.DeepCopy(), client.MergeFromWithOptimisticLock{})
		ci.Spec.Attributes = next
		return c.Client.Patch(ctx, ci, patch)
	})
}

func putAttributes(ctx context.Context, c *Call, in *ecs.PutAttributesInput) (*ecs.PutAttributesOutput, error) {
	targets, err := c.attributeTargets(ctx, in.Cluster, in.Attributes, true)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if _, err := withAttributes(t.Instance.Spec.Attributes, t.Attrs); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		err := c.writeAttributes(ctx, t, func(current []ecsv1alpha1.Attribute) ([]ecsv1alpha1.Attribute, error) {
			return withAttributes(current, t.Attrs)
		})
		if err != nil {
			return nil, err
		}
	}
	return &ecs.PutAttributesOutput{Attributes: attributesEcho(in.Attributes)}, nil
}

func deleteAttributes(ctx context.Context, c *Call, in *ecs.DeleteAttributesInput) (*ecs.DeleteAttributesOutput, error) {
	targets, err := c.attributeTargets(ctx, in.Cluster, in.Attributes, false)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if err := agentAttributeDeleted(t); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		names := make([]string, len(t.Attrs))
		for i, a := range t.Attrs {
			names[i] = a.Name
		}
		err := c.writeAttributes(ctx, t, func(current []ecsv1alpha1.Attribute) ([]ecsv1alpha1.Attribute, error) {
			return withoutAttributes(current, names), nil
		})
		if err != nil {
			return nil, err
		}
	}
	return &ecs.DeleteAttributesOutput{Attributes: attributesEcho(in.Attributes)}, nil
}

// agentAttributeDeleted refuses to delete an attribute that only the agent reports
// (one from its configuration): it is not the API's to delete, and would be back at
// the agent's next report.
func agentAttributeDeleted(t *attributeTarget) error {
	for _, a := range t.Attrs {
		custom := slices.ContainsFunc(t.Instance.Spec.Attributes, func(x ecsv1alpha1.Attribute) bool { return x.Name == a.Name })
		reported := slices.ContainsFunc(t.Instance.Status.Attributes, func(x ecsv1alpha1.Attribute) bool { return x.Name == a.Name })
		if reported && !custom {
			return wire.InvalidParameter("attributes", "%q on %s is reported by the instance's agent from its configuration; change the agent's attributes to remove it", a.Name, t.Instance.Name)
		}
	}
	return nil
}

// attributesEcho is the call's attributes as ECS answers them, with the target type
// filled in.
func attributesEcho(in []types.Attribute) []types.Attribute {
	out := make([]types.Attribute, len(in))
	for i, a := range in {
		a.TargetType = attributeTargetInstances
		out[i] = a
	}
	return out
}

func listAttributes(ctx context.Context, c *Call, in *ecs.ListAttributesInput) (*ecs.ListAttributesOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.TargetType != attributeTargetInstances {
		return nil, wire.InvalidParameter("targetType", "must be container-instance, not %q", in.TargetType)
	}
	name, value := aws.ToString(in.AttributeName), in.AttributeValue
	if value != nil && name == "" {
		return nil, wire.InvalidParameter("attributeValue", "You must also specify an attribute name to use this parameter.")
	}
	instances, err := c.clusterInstances(ctx, cl)
	if err != nil {
		return nil, err
	}
	byKey := map[string]types.Attribute{}
	for i := range instances {
		arn := c.ARN.ContainerInstance(clusterName, instances[i].Name)
		for n, v := range inventory.Attributes(&instances[i]) {
			if (name != "" && n != name) || (value != nil && v != *value) {
				continue
			}
			byKey[arn+"\x00"+n] = types.Attribute{Name: aws.String(n), Value: strOmitEmpty(v),
				TargetType: attributeTargetInstances, TargetId: aws.String(arn)}
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	keys, next, err := page(keys, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListAttributesOutput{Attributes: make([]types.Attribute, len(keys)), NextToken: next}
	for i, k := range keys {
		out.Attributes[i] = byKey[k]
	}
	return out, nil
}
