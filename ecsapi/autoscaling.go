package ecsapi

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// Application Auto Scaling, for ECS services only, is served on the same endpoint:
// its scalable target and target tracking policies are a Service's
// spec.autoScaling, which the manager's auto scaler runs, and its scaling
// activities are the auto scaler's Events on the Service. A ResourceId
// service/CLUSTER/SERVICE names the Service as ECS calls name it (names.go), in the
// caller's namespace; every read and write is the caller's, as for ECS calls.
//
// autoscaling_targets.go holds the scalable target actions, autoscaling_policies.go
// the scaling policies, autoscaling_activities.go the activities.

// AutoScalingTargetPrefix is the X-Amz-Target prefix of Application Auto Scaling's
// actions.
const AutoScalingTargetPrefix = "AnyScaleFrontendService."

var (
	autoScalingOperations = map[string]handler{
		"RegisterScalableTarget":    op(registerScalableTarget),
		"DescribeScalableTargets":   op(describeScalableTargets),
		"DeregisterScalableTarget":  op(deregisterScalableTarget),
		"PutScalingPolicy":          op(putScalingPolicy),
		"DescribeScalingPolicies":   op(describeScalingPolicies),
		"DeleteScalingPolicy":       op(deleteScalingPolicy),
		"DescribeScalingActivities": op(describeScalingActivities),
	}
	autoScalingKnown = actionsOf(&aas.Client{})
)

// The only namespace and dimension Berth scales: an ECS service's desired count.
const (
	ecsNamespace       = aastypes.ServiceNamespaceEcs
	ecsDesiredCount    = aastypes.ScalableDimensionECSServiceDesiredCount
	maxResourceID      = 1600
	autoScalingPage    = 50
	resourceIDTemplate = "service/<cluster>/<service>"
)

// invalid is Application Auto Scaling's ValidationException naming the member.
func invalid(member, format string, args ...any) *wire.Error {
	return wire.ApplicationAutoScaling.InvalidParameter(member, format, args...)
}

// checkTarget checks ServiceNamespace and ScalableDimension: Berth scales the
// desired count of ECS services and nothing else. The dimension may be left out
// where the action does not require it.
func checkTarget(namespace aastypes.ServiceNamespace, dimension aastypes.ScalableDimension, dimensionRequired bool) error {
	switch {
	case namespace == "":
		return invalid("ServiceNamespace", "is required")
	case namespace != ecsNamespace:
		return invalid("ServiceNamespace", "Berth scales ECS services only (%s), not %q", ecsNamespace, namespace)
	case dimension == "" && dimensionRequired:
		return invalid("ScalableDimension", "is required")
	case dimension != "" && dimension != ecsDesiredCount:
		return invalid("ScalableDimension", "an ECS service's only scalable dimension is %s, not %q", ecsDesiredCount, dimension)
	}
	return nil
}

// targetRef is the ECS service a ResourceId names.
type targetRef struct {
	// id is the ResourceId as given.
	id string
	// cluster and service are the ECS names in it; clusterKube and serviceKube the
	// objects' names they map to.
	cluster, service         string
	clusterKube, serviceKube string
}

// parseResourceID reads service/CLUSTER/SERVICE.
// scalableTarget checks the namespace and dimension of a call that names one
// scalable target, and parses its ResourceId.
func scalableTarget(namespace aastypes.ServiceNamespace, dimension aastypes.ScalableDimension, resourceID *string) (targetRef, error) {
	if err := checkTarget(namespace, dimension, true); err != nil {
		return targetRef{}, err
	}
	return parseResourceID("ResourceId", aws.ToString(resourceID))
}

func parseResourceID(member, id string) (targetRef, error) {
	if id == "" {
		return targetRef{}, invalid(member, "is required")
	}
	if len(id) > maxResourceID {
		return targetRef{}, invalid(member, "must be at most %d characters", maxResourceID)
	}
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] != "service" || parts[1] == "" || parts[2] == "" {
		return targetRef{}, invalid(member, "%q is not an ECS service's resource ID: want %s", id, resourceIDTemplate)
	}
	ref := targetRef{id: id, cluster: parts[1], service: parts[2]}
	var err error
	if ref.clusterKube, err = kubeName(member, ref.cluster); err != nil {
		return targetRef{}, err
	}
	if ref.serviceKube, err = serviceKubeName(member, ref.service); err != nil {
		return targetRef{}, err
	}
	return ref, nil
}

// resourceID is the ResourceId of a service in a cluster, by their ECS names.
func resourceID(cluster, service string) string { return "service/" + cluster + "/" + service }

// clusterNames reads the ECS names of clusters, once per call. Clusters are shared
// and the caller may not be allowed to read them: the server reads them itself (a
// name is all it answers with).
type clusterNames struct {
	c     *Call
	names map[string]string
}

func newClusterNames(c *Call) *clusterNames { return &clusterNames{c: c, names: map[string]string{}} }

// get is the ECS name of cluster kube (its own name when it cannot be read).
func (n *clusterNames) get(ctx context.Context, kube string) string {
	if name, ok := n.names[kube]; ok {
		return name
	}
	name := kube
	var cl ecsv1alpha1.Cluster
	if err := n.c.Self.Get(ctx, client.ObjectKey{Name: kube}, &cl); err == nil {
		name = ecsName(cl.Annotations, cl.Name)
	}
	n.names[kube] = name
	return name
}

// targetService is the live service ref names, nil when there is none.
func (c *Call) targetService(ctx context.Context, ref targetRef) (*ecsv1alpha1.Service, error) {
	var svc ecsv1alpha1.Service
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.serviceKube}, &svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case svc.DeletionTimestamp != nil, svc.Spec.Cluster != ref.clusterKube,
		!sameECSName(svc.Annotations, svc.Name, ref.service),
		newClusterNames(c).get(ctx, svc.Spec.Cluster) != ref.cluster:
		return nil, nil
	}
	return &svc, nil
}

// errNotScalable is returned by a change to a service that is not a scalable target.
var errNotScalable = errors.New("no scalable target")

// updateService applies change to the service ref names and writes it with a merge
// patch under optimistic locking: the auto scaler sets desiredCount on its own,
// and a change computed from an older service must not undo another's. A lost race
// is tried again on the fresh service; ConcurrentUpdateException when it keeps
// losing. missing answers a service that does not exist (or is not a target, when
// change returns errNotScalable).
func (c *Call) updateService(ctx context.Context, ref targetRef, missing *wire.Error, change func(*ecsv1alpha1.Service) error) (*ecsv1alpha1.Service, error) {
	var written *ecsv1alpha1.Service
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := c.targetService(ctx, ref)
		if err != nil {
			return err
		}
		if svc == nil {
			return missing
		}
		before := svc.DeepCopy()
		if err := change(svc); err != nil {
			if errors.Is(err, errNotScalable) {
				return missing
			}
			return err
		}
		if err := c.Client.Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		written = svc
		return nil
	})
	if apierrors.IsConflict(err) {
		return nil, wire.Errorf(wire.ConcurrentUpdateException, "the service %s kept changing while this call updated it; retry the call", ref.id)
	}
	return written, err
}

// noTarget is ObjectNotFoundException for a target that is not registered.
func noTarget(ref targetRef) *wire.Error {
	return wire.Errorf(wire.ObjectNotFoundException,
		"No scalable target found for service namespace: %s, resource ID: %s, scalable dimension: %s",
		ecsNamespace, ref.id, ecsDesiredCount)
}

// Application Auto Scaling's ARNs. Berth keeps no object for a scalable target or
// a policy: their IDs derive from the Service's UID, so they are stable for the
// service's life and new for a service of the same name created again.

// scalingPolicy is arn:aws:autoscaling:R:A:scalingPolicy:UUID:resource/ecs/RESOURCE-ID:policyName/NAME.
func (a ARNs) scalingPolicy(svc *ecsv1alpha1.Service, resourceID, policy string) string {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("ecs.berth.dev/scaling-policy/"+string(svc.UID)))
	return "arn:aws:autoscaling:" + a.Region + ":" + a.Account + ":scalingPolicy:" + id.String() +
		":resource/ecs/" + resourceID + ":policyName/" + policy
}

// scalableTarget is arn:aws:application-autoscaling:R:A:scalable-target/ID, ID 32
// hex digits.
func (a ARNs) scalableTarget(svc *ecsv1alpha1.Service) string {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("ecs.berth.dev/scalable-target/"+string(svc.UID)))
	return "arn:aws:application-autoscaling:" + a.Region + ":" + a.Account + ":scalable-target/" +
		strings.ReplaceAll(id.String(), "-", "")
}

// autoScalingRole is the service-linked role Application Auto Scaling uses for ECS
// services, which scalable targets describe as their RoleARN.
func (a ARNs) autoScalingRole() string {
	return "arn:aws:iam::" + a.Account +
		":role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
}

// autoScalingPageOf is page() with Application Auto Scaling's limits and errors:
// MaxResults 1 to 50 (default 50), InvalidNextTokenException.
func autoScalingPageOf(keys []string, nextToken *string, maxResults *int32) ([]string, *string, error) {
	if maxResults != nil && (*maxResults < 1 || *maxResults > autoScalingPage) {
		return nil, nil, invalid("MaxResults", "must be between 1 and %d", autoScalingPage)
	}
	out, next, err := page(keys, nextToken, maxResults, autoScalingPage, autoScalingPage)
	if err != nil {
		return nil, nil, wire.Errorf(wire.InvalidNextTokenException, "NextToken: is not a token this API returned")
	}
	return out, next, nil
}

// replicaServices are the caller's live REPLICA services, with their resource IDs.
func (c *Call) replicaServices(ctx context.Context) (map[string]*ecsv1alpha1.Service, error) {
	var list ecsv1alpha1.ServiceList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return nil, err
	}
	names := newClusterNames(c)
	out := map[string]*ecsv1alpha1.Service{}
	for i := range list.Items {
		svc := &list.Items[i]
		if svc.DeletionTimestamp != nil || svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
			continue
		}
		out[resourceID(names.get(ctx, svc.Spec.Cluster), ecsName(svc.Annotations, svc.Name))] = svc
	}
	return out, nil
}
