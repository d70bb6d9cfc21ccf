package ecsapi

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// Clusters are cluster-scoped Cluster objects, shared by every namespace (account):
// RBAC decides who may create or delete them.

func clusterOps() map[string]handler {
	return map[string]handler{
		"CreateCluster":    op(createCluster),
		"DescribeClusters": op(describeClusters),
		"ListClusters":     op(listClusters),
		"UpdateCluster":    op(updateCluster),
		"DeleteCluster":    op(deleteCluster),
	}
}

// clusterSettingsUnsupported refuses what needs AWS: Container Insights (CloudWatch),
// capacity providers (Auto Scaling groups, Fargate), Service Connect (Cloud Map) and
// execute-command configuration (Systems Manager).
func clusterSettingsUnsupported(settings []types.ClusterSetting, capacityProviders []string, cfg *types.ClusterConfiguration, sc *types.ClusterServiceConnectDefaultsRequest) error {
	for _, s := range settings {
		if s.Name == types.ClusterSettingNameContainerInsights && aws.ToString(s.Value) != "disabled" {
			return wire.InvalidParameter("settings", "containerInsights %q needs CloudWatch; Berth's metrics are on the agents' /metrics", aws.ToString(s.Value))
		}
	}
	if len(capacityProviders) > 0 {
		return wire.InvalidParameter("capacityProviders", "capacity providers are Auto Scaling groups and Fargate; Berth's capacity is the container instances that register")
	}
	if cfg != nil {
		return wire.InvalidParameter("configuration", "execute-command and managed-storage configuration need AWS Systems Manager and KMS")
	}
	if sc != nil {
		return wire.InvalidParameter("serviceConnectDefaults", "Service Connect needs AWS Cloud Map; Berth's services are reached through core Services (loadBalancers)")
	}
	return nil
}

func createCluster(ctx context.Context, c *Call, in *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error) {
	if err := clusterSettingsUnsupported(in.Settings, in.CapacityProviders, in.Configuration, in.ServiceConnectDefaults); err != nil {
		return nil, err
	}
	if len(in.DefaultCapacityProviderStrategy) > 0 {
		return nil, wire.InvalidParameter("defaultCapacityProviderStrategy", "capacity providers are not supported by Berth")
	}
	asked := aws.ToString(in.ClusterName)
	if asked == "" {
		asked = DefaultCluster
	}
	name, err := kubeName("clusterName", asked)
	if err != nil {
		return nil, err
	}
	cl := &ecsv1alpha1.Cluster{}
	cl.Name = name
	setECSName(&cl.Annotations, name, asked)
	if err := setTags(&cl.Annotations, in.Tags, nil); err != nil {
		return nil, err
	}
	if err := c.Client.Create(ctx, cl); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		// ECS answers an existing cluster's description: CreateCluster is idempotent.
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, cl); err != nil {
			return nil, err
		}
		if !sameECSName(cl.Annotations, cl.Name, asked) {
			return nil, wire.InvalidParameter("clusterName", "%q maps to the name %q of the existing cluster %q", asked, name, ecsName(cl.Annotations, cl.Name))
		}
		if cl.DeletionTimestamp != nil {
			return nil, wire.Errorf(wire.ClientException, "The cluster %s is being deleted; create it again once it is gone.", asked)
		}
	}
	out := c.cluster(cl, true)
	return &ecs.CreateClusterOutput{Cluster: &out}, nil
}

// cluster describes a Cluster as ECS does.
func (c *Call) cluster(cl *ecsv1alpha1.Cluster, withTags bool) types.Cluster {
	name := ecsName(cl.Annotations, cl.Name)
	status := "ACTIVE"
	if cl.DeletionTimestamp != nil {
		status = "DEPROVISIONING"
	}
	out := types.Cluster{
		ClusterArn:                        aws.String(c.ARN.Cluster(name)),
		ClusterName:                       aws.String(name),
		Status:                            aws.String(status),
		RegisteredContainerInstancesCount: cl.Status.RegisteredContainerInstancesCount,
		RunningTasksCount:                 cl.Status.RunningTasksCount,
		PendingTasksCount:                 cl.Status.PendingTasksCount,
		ActiveServicesCount:               cl.Status.ActiveServicesCount,
		Statistics:                        []types.KeyValuePair{},
		CapacityProviders:                 []string{},
		DefaultCapacityProviderStrategy:   []types.CapacityProviderStrategyItem{},
	}
	if withTags {
		out.Tags = tagsOf(cl.Annotations)
	}
	return out
}

// getCluster reads the cluster a reference names, or ClusterNotFoundException.
func (c *Call) getCluster(ctx context.Context, member, ref string) (*ecsv1alpha1.Cluster, error) {
	asked, err := c.ARN.ClusterName(member, ref)
	if err != nil {
		return nil, err
	}
	name, err := kubeName(member, asked)
	if err != nil {
		return nil, err
	}
	var cl ecsv1alpha1.Cluster
	if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &cl); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, wire.Errorf(wire.ClusterNotFoundException, "Cluster not found.")
		}
		return nil, err
	}
	if !sameECSName(cl.Annotations, cl.Name, asked) {
		return nil, wire.Errorf(wire.ClusterNotFoundException, "Cluster not found.")
	}
	return &cl, nil
}

func describeClusters(ctx context.Context, c *Call, in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{DefaultCluster}
	}
	if len(refs) > 100 {
		return nil, wire.InvalidParameter("clusters", "at most 100 clusters per call")
	}
	out := &ecs.DescribeClustersOutput{Clusters: []types.Cluster{}, Failures: []types.Failure{}}
	for _, ref := range refs {
		cl, err := c.getCluster(ctx, "clusters", ref)
		if err != nil {
			if e := wire.ECS.AsError(err); e.Type == wire.ClusterNotFoundException {
				name, _ := c.ARN.ClusterName("clusters", ref)
				out.Failures = append(out.Failures, missing(c.ARN.Cluster(name)))
				continue
			}
			return nil, err
		}
		d := c.cluster(cl, includes(in.Include, types.ClusterFieldTags))
		if includes(in.Include, types.ClusterFieldSettings) {
			d.Settings = []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}}
		}
		out.Clusters = append(out.Clusters, d)
	}
	return out, nil
}

func listClusters(ctx context.Context, c *Call, in *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
	var list ecsv1alpha1.ClusterList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	arns := make([]string, len(list.Items))
	for i := range list.Items {
		arns[i] = c.ARN.Cluster(ecsName(list.Items[i].Annotations, list.Items[i].Name))
	}
	arns, next, err := page(arns, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListClustersOutput{ClusterArns: arns, NextToken: next}, nil
}

func updateCluster(ctx context.Context, c *Call, in *ecs.UpdateClusterInput) (*ecs.UpdateClusterOutput, error) {
	if err := clusterSettingsUnsupported(in.Settings, nil, in.Configuration, in.ServiceConnectDefaults); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	out := c.cluster(cl, true)
	if len(in.Settings) > 0 {
		out.Settings = in.Settings
	}
	return &ecs.UpdateClusterOutput{Cluster: &out}, nil
}

func deleteCluster(ctx context.Context, c *Call, in *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	if cl.DeletionTimestamp != nil {
		// Deleted already, its finalizer not yet released: gone, as in ECS.
		return nil, wire.Errorf(wire.ClusterNotFoundException, "Cluster not found.")
	}
	// The cluster controller counts what runs in every namespace; ECS refuses in
	// this order.
	switch {
	case cl.Status.RegisteredContainerInstancesCount > 0:
		return nil, wire.Errorf(wire.ClusterContainsContainerInstancesException,
			"The Cluster cannot be deleted while Container Instances are active or draining.")
	case cl.Status.ActiveServicesCount > 0:
		return nil, wire.Errorf(wire.ClusterContainsServicesException,
			"The Cluster cannot be deleted while Services are active.")
	case cl.Status.RunningTasksCount+cl.Status.PendingTasksCount > 0:
		return nil, wire.Errorf(wire.ClusterContainsTasksException,
			"The Cluster cannot be deleted while Tasks are active.")
	}
	if err := c.Client.Delete(ctx, cl, client.Preconditions{UID: &cl.UID}); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	out := c.cluster(cl, false)
	out.Status = aws.String("INACTIVE")
	return &ecs.DeleteClusterOutput{Cluster: &out}, nil
}
