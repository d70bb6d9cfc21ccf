package ecsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/ecsimport"
	"github.com/berthdev/berth/internal/revision"
)

// Services are namespaced Service objects: the caller's namespace is its account.
// ECS names a service within a cluster; Berth within a namespace, so two clusters of
// one namespace cannot both have a service of the same name. The API pins the task
// definition's revision when a service is created or updated (ECS resolves `family`
// to its latest ACTIVE revision at call time), so spec.taskDefinition is always
// `family:N` for services the API writes.

func serviceOps() map[string]handler {
	return map[string]handler{
		"CreateService":              op(createService),
		"UpdateService":              op(updateService),
		"DeleteService":              op(deleteService),
		"DescribeServices":           op(describeServices),
		"ListServices":               op(listServices),
		"ListServiceDeployments":     op(listServiceDeployments),
		"DescribeServiceDeployments": op(describeServiceDeployments),
	}
}

// Annotations the API keeps on a Service for what ECS describes and the spec does
// not hold.
const (
	// annotationCreateToken is a hash of CreateService's clientToken and parameters:
	// the same token with the same parameters answers the existing service.
	annotationCreateToken = "ecs.berth.dev/create-token"
	// annotationCreatedBy is the ARN of the identity that created the service.
	annotationCreatedBy = "ecs.berth.dev/created-by"
	// annotationNetworkConfiguration is the awsvpc networkConfiguration as given
	// (JSON): kept without effect and described back.
	annotationNetworkConfiguration = "ecs.berth.dev/network-configuration"
)

// maxServiceName is the schema's bound on a Service's name: it prefixes its tasks'
// names.
const maxServiceName = 52

// serviceKubeName maps an ECS service name to the Service's name.
func serviceKubeName(member, ecsName string) (string, error) {
	name, err := kubeName(member, ecsName)
	if err != nil {
		return "", err
	}
	if len(name) > maxServiceName {
		name = ecsimport.KubeName(name, maxServiceName)
	}
	return name, nil
}

// pinnedRevision is the task definition revision a service runs.
type pinnedRevision struct {
	// ref is the Kubernetes family and the revision number.
	ref  revision.Ref
	spec *ecsv1alpha1.TaskDefinitionSpec
}

// pinTaskDefinition resolves a task definition reference (family, family:N or an
// ARN) to a revision as RunTask does: `family` is its latest ACTIVE revision now.
func (c *Call) pinTaskDefinition(ctx context.Context, member, ref string) (*pinnedRevision, error) {
	r, err := c.runnable(ctx, member, ref)
	if err != nil {
		return nil, err
	}
	return &pinnedRevision{ref: revision.Ref{Family: r.Name, Revision: r.Revision}, spec: r.Spec}, nil
}

// foundService is what a service reference names in a cluster: a live Service, the
// record of a deleted one, or neither.
type foundService struct {
	svc      *ecsv1alpha1.Service
	inactive *inactiveService
	// arn is the service's ARN, for failures.
	arn string
}

// findService looks a service reference (name or ARN) up in cluster cl.
func (c *Call) findService(ctx context.Context, cl *ecsv1alpha1.Cluster, member, ref string) (foundService, error) {
	clusterName := ecsName(cl.Annotations, cl.Name)
	arnCluster, name, err := c.ARN.Child(member, "service", ref)
	if err != nil {
		return foundService{}, err
	}
	found := foundService{arn: c.ARN.Service(clusterName, name)}
	if arnCluster != "" && arnCluster != clusterName {
		found.arn = ref
		return found, nil // a service of another cluster is not in this one
	}
	kube, err := serviceKubeName(member, name)
	if err != nil {
		return found, err
	}
	var svc ecsv1alpha1.Service
	err = c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: kube}, &svc)
	switch {
	case err == nil:
		if sameECSName(svc.Annotations, svc.Name, name) && svc.Spec.Cluster == cl.Name {
			found.svc = &svc
		}
		return found, nil
	case !apierrors.IsNotFound(err):
		return found, err
	}
	rec, err := c.inactiveService(ctx, kube)
	if err != nil || rec == nil {
		return found, err
	}
	if aws.ToString(rec.Service.ServiceName) == name && aws.ToString(rec.Service.ClusterArn) == c.ARN.Cluster(clusterName) {
		found.inactive = rec
	}
	return found, nil
}

// activeService is the ACTIVE service a reference names, or ECS's error.
func (c *Call) activeService(ctx context.Context, cl *ecsv1alpha1.Cluster, ref string) (*ecsv1alpha1.Service, error) {
	found, err := c.findService(ctx, cl, "service", ref)
	switch {
	case err != nil:
		return nil, err
	case found.svc != nil && found.svc.DeletionTimestamp == nil:
		return found.svc, nil
	case found.svc != nil || found.inactive != nil:
		return nil, wire.Errorf(wire.ServiceNotActiveException, "Service was not ACTIVE.")
	}
	return nil, wire.Errorf(wire.ServiceNotFoundException, "Service not found.")
}

func createService(ctx context.Context, c *Call, in *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error) {
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	svc, err := c.newService(ctx, cl, in)
	if err != nil {
		return nil, err
	}
	if err := c.Client.Create(ctx, svc); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		return c.existingService(ctx, cl, svc)
	}
	// The name is in use again: its INACTIVE record no longer describes it.
	c.forgetInactiveService(ctx, svc.Name)
	out := c.serviceOut(ctx, svc, cl, newFamilyNames(c), true)
	return &ecs.CreateServiceOutput{Service: &out}, nil
}

// existingService answers a CreateService whose name is taken: the existing service
// when it was created with the same clientToken and parameters, as ECS does, and
// ECS's refusal otherwise.
func (c *Call) existingService(ctx context.Context, cl *ecsv1alpha1.Cluster, asked *ecsv1alpha1.Service) (*ecs.CreateServiceOutput, error) {
	var svc ecsv1alpha1.Service
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(asked), &svc); err != nil {
		return nil, err
	}
	askedName := ecsName(asked.Annotations, asked.Name)
	switch {
	case !sameECSName(svc.Annotations, svc.Name, askedName):
		return nil, wire.InvalidParameter("serviceName", "%q maps to the name %q of the existing service %q", askedName, svc.Name, ecsName(svc.Annotations, svc.Name))
	case svc.Spec.Cluster != cl.Name:
		return nil, wire.InvalidParameter("serviceName", "a service named %q exists in cluster %q: Berth's service names are unique per namespace, not per cluster", askedName, svc.Spec.Cluster)
	case svc.DeletionTimestamp != nil, asked.Annotations[annotationCreateToken] == "",
		svc.Annotations[annotationCreateToken] != asked.Annotations[annotationCreateToken]:
		return nil, wire.Errorf(wire.InvalidParameterException, "Creation of service was not idempotent.")
	}
	out := c.serviceOut(ctx, &svc, cl, newFamilyNames(c), true)
	return &ecs.CreateServiceOutput{Service: &out}, nil
}

// newService builds the Service a CreateService asks for.
func (c *Call) newService(ctx context.Context, cl *ecsv1alpha1.Cluster, in *ecs.CreateServiceInput) (*ecsv1alpha1.Service, error) {
	if err := createServiceAWSOnly(in); err != nil {
		return nil, err
	}
	asked := aws.ToString(in.ServiceName)
	name, err := serviceKubeName("serviceName", asked)
	if err != nil {
		return nil, err
	}
	strategy, err := schedulingStrategy(in.SchedulingStrategy, in.DesiredCount)
	if err != nil {
		return nil, err
	}
	if aws.ToString(in.TaskDefinition) == "" {
		return nil, wire.InvalidParameter("taskDefinition", "is required")
	}
	pinned, err := c.pinTaskDefinition(ctx, "taskDefinition", aws.ToString(in.TaskDefinition))
	if err != nil {
		return nil, err
	}
	svc := &ecsv1alpha1.Service{}
	svc.Name, svc.Namespace = name, c.Namespace
	svc.Spec.Cluster, svc.Spec.SchedulingStrategy = cl.Name, strategy
	svc.Spec.TaskDefinition = pinned.ref.String()
	svc.Spec.DesiredCount = in.DesiredCount
	svc.Spec.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
	svc.Spec.PlacementConstraints, svc.Spec.PlacementStrategy = placementSpec(in.PlacementConstraints, in.PlacementStrategy)
	svc.Spec.EnableExecuteCommand = in.EnableExecuteCommand
	if svc.Spec.DeploymentConfiguration, err = deploymentConfigurationSpec(in.DeploymentConfiguration, svc.Spec.DeploymentConfiguration, strategy, true); err != nil {
		return nil, err
	}
	if svc.Spec.LoadBalancers, err = loadBalancersSpec(in.LoadBalancers, pinned.spec); err != nil {
		return nil, err
	}
	if err := c.annotateNewService(svc, asked, in, pinned); err != nil {
		return nil, err
	}
	return svc, nil
}

// annotateNewService records what ECS describes beside the spec: the ECS name, tags,
// the creator, the clientToken and the network configuration.
func (c *Call) annotateNewService(svc *ecsv1alpha1.Service, asked string, in *ecs.CreateServiceInput, pinned *pinnedRevision) error {
	setECSName(&svc.Annotations, svc.Name, asked)
	if err := setTags(&svc.Annotations, in.Tags, nil); err != nil {
		return err
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[annotationCreatedBy] = c.ARN.User(c.Identity.User)
	if err := setNetworkConfiguration(svc, in.NetworkConfiguration, pinned.spec.NetworkMode); err != nil {
		return err
	}
	token, err := createToken(in)
	if err != nil {
		return err
	}
	if token != "" {
		svc.Annotations[annotationCreateToken] = token
	}
	return nil
}

// createServiceAWSOnly refuses what CreateService asks that needs AWS.
func createServiceAWSOnly(in *ecs.CreateServiceInput) error {
	switch in.LaunchType {
	case "", types.LaunchTypeEc2:
	default:
		return wire.InvalidParameter("launchType", "%s is not served: Berth runs every task on its registered container instances (launch type EC2)", in.LaunchType)
	}
	if aws.ToString(in.Role) != "" {
		return wire.InvalidParameter("role", "the service-linked IAM role for Elastic Load Balancing has no meaning here: there is no IAM")
	}
	return serviceAWSOnly{
		CapacityProviderStrategy: in.CapacityProviderStrategy, ServiceRegistries: in.ServiceRegistries,
		ServiceConnect: in.ServiceConnectConfiguration, VolumeConfigurations: in.VolumeConfigurations,
		VpcLattice: in.VpcLatticeConfigurations, GatewayConnectors: in.GatewayConnectors, Monitoring: in.Monitoring,
		PlatformVersion:      in.PlatformVersion,
		EnableECSManagedTags: in.EnableECSManagedTags, PropagateTags: in.PropagateTags,
		DeploymentController: in.DeploymentController, AvailabilityZoneRebalancing: in.AvailabilityZoneRebalancing,
	}.check()
}

// schedulingStrategy checks the strategy against desiredCount, as ECS does: a
// REPLICA service needs one, a DAEMON service takes none.
func schedulingStrategy(s types.SchedulingStrategy, desired *int32) (ecsv1alpha1.SchedulingStrategy, error) {
	switch s {
	case "", types.SchedulingStrategyReplica:
		if desired == nil {
			return "", wire.InvalidParameter("desiredCount", "is required for a REPLICA service")
		}
		return ecsv1alpha1.SchedulingReplica, nil
	case types.SchedulingStrategyDaemon:
		if desired != nil {
			return "", wire.InvalidParameter("desiredCount", "a DAEMON service runs one task on each instance and takes no desiredCount")
		}
		return ecsv1alpha1.SchedulingDaemon, nil
	}
	return "", wire.InvalidParameter("schedulingStrategy", "must be REPLICA or DAEMON, not %q", s)
}

// createToken is the annotation value identifying a CreateService call: its
// clientToken and a hash of its other parameters ("" without a clientToken).
func createToken(in *ecs.CreateServiceInput) (string, error) {
	token := aws.ToString(in.ClientToken)
	if token == "" {
		return "", nil
	}
	if len(token) > 36 {
		return "", wire.InvalidParameter("clientToken", "must be at most 36 characters")
	}
	params := *in
	params.ClientToken = nil
	raw, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("hashing CreateService's parameters: %w", err)
	}
	sum := sha256.Sum256(append([]byte(token+"\x00"), raw...))
	return hex.EncodeToString(sum[:]), nil
}

// setNetworkConfiguration keeps an awsvpc service's networkConfiguration (nil keeps
// the current one).
func setNetworkConfiguration(svc *ecsv1alpha1.Service, nc *types.NetworkConfiguration, mode ecsv1alpha1.NetworkMode) error {
	if nc == nil {
		return nil
	}
	if err := networkConfigurationCheck(nc, mode); err != nil {
		return err
	}
	raw, err := json.Marshal(nc)
	if err != nil {
		return fmt.Errorf("encoding networkConfiguration: %w", err)
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[annotationNetworkConfiguration] = string(raw)
	return nil
}

func updateService(ctx context.Context, c *Call, in *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error) {
	if err := updateServiceAWSOnly(in); err != nil {
		return nil, err
	}
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	svc, err := c.activeService(ctx, cl, aws.ToString(in.Service))
	if err != nil {
		return nil, err
	}
	before := svc.DeepCopy()
	if err := c.applyUpdate(ctx, svc, in); err != nil {
		return nil, err
	}
	// A merge patch of what changed: the manager's finalizer and status are left alone,
	// and a list the request replaces is replaced whole, as ECS does.
	if err := c.Client.Patch(ctx, svc, client.MergeFrom(before)); err != nil {
		return nil, err
	}
	out := c.serviceOut(ctx, svc, cl, newFamilyNames(c), false)
	return &ecs.UpdateServiceOutput{Service: &out}, nil
}

// updateServiceAWSOnly refuses what UpdateService asks that needs AWS.
func updateServiceAWSOnly(in *ecs.UpdateServiceInput) error {
	return serviceAWSOnly{
		CapacityProviderStrategy: in.CapacityProviderStrategy, ServiceRegistries: in.ServiceRegistries,
		ServiceConnect: in.ServiceConnectConfiguration, VolumeConfigurations: in.VolumeConfigurations,
		VpcLattice: in.VpcLatticeConfigurations, GatewayConnectors: in.GatewayConnectors, Monitoring: in.Monitoring,
		PlatformVersion:      in.PlatformVersion,
		EnableECSManagedTags: aws.ToBool(in.EnableECSManagedTags), PropagateTags: in.PropagateTags,
		DeploymentController: in.DeploymentController, AvailabilityZoneRebalancing: in.AvailabilityZoneRebalancing,
	}.check()
}

// applyUpdate changes the spec as an UpdateService asks: members left out keep
// their values; an empty list clears one, as in ECS.
func (c *Call) applyUpdate(ctx context.Context, svc *ecsv1alpha1.Service, in *ecs.UpdateServiceInput) error {
	if in.DesiredCount != nil {
		if svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
			return wire.InvalidParameter("desiredCount", "a DAEMON service runs one task on each instance and takes no desiredCount")
		}
		svc.Spec.DesiredCount = aws.Int32(*in.DesiredCount)
	}
	if in.EnableExecuteCommand != nil {
		// As in ECS, running tasks keep theirs until a new deployment replaces them.
		svc.Spec.EnableExecuteCommand = *in.EnableExecuteCommand
	}
	if in.ForceNewDeployment {
		// Any new token starts a deployment; the request time is unique enough and
		// says when it was asked for.
		svc.Spec.ForceNewDeployment = c.Now.UTC().Format(time.RFC3339Nano)
	}
	var err error
	if svc.Spec.DeploymentConfiguration, err = deploymentConfigurationSpec(in.DeploymentConfiguration, svc.Spec.DeploymentConfiguration, svc.Spec.SchedulingStrategy, false); err != nil {
		return err
	}
	if in.PlacementConstraints != nil {
		svc.Spec.PlacementConstraints, _ = placementSpec(in.PlacementConstraints, nil)
	}
	if in.PlacementStrategy != nil {
		_, svc.Spec.PlacementStrategy = placementSpec(nil, in.PlacementStrategy)
	}
	if in.HealthCheckGracePeriodSeconds != nil {
		svc.Spec.HealthCheckGracePeriodSeconds = aws.Int32(*in.HealthCheckGracePeriodSeconds)
	}
	return c.updateRevision(ctx, svc, in)
}

// updateRevision pins the task definition the request names, and checks the load
// balancers and network configuration against the revision the service will run
// when either changes. A service that follows its family (`family`, written with
// kubectl) keeps following it unless the request names a task definition.
func (c *Call) updateRevision(ctx context.Context, svc *ecsv1alpha1.Service, in *ecs.UpdateServiceInput) error {
	var pinned *pinnedRevision
	var err error
	if asked := aws.ToString(in.TaskDefinition); asked != "" {
		if pinned, err = c.pinTaskDefinition(ctx, "taskDefinition", asked); err != nil {
			return err
		}
		svc.Spec.TaskDefinition = pinned.ref.String()
	}
	if pinned == nil && in.LoadBalancers == nil && in.NetworkConfiguration == nil {
		return nil
	}
	if pinned == nil {
		if pinned, err = c.currentRevision(ctx, svc); err != nil {
			return err
		}
	}
	lbs := in.LoadBalancers
	if lbs == nil {
		lbs = loadBalancersOut(svc.Spec.LoadBalancers) // unchanged, still checked against a new revision
	}
	if svc.Spec.LoadBalancers, err = loadBalancersSpec(lbs, pinned.spec); err != nil {
		return err
	}
	if len(svc.Spec.LoadBalancers) == 0 {
		svc.Spec.LoadBalancers = nil
	}
	return setNetworkConfiguration(svc, in.NetworkConfiguration, pinned.spec.NetworkMode)
}

// currentRevision is the revision the service's spec names now.
func (c *Call) currentRevision(ctx context.Context, svc *ecsv1alpha1.Service) (*pinnedRevision, error) {
	ref, err := revision.ParseRef(svc.Spec.TaskDefinition)
	if err != nil {
		return nil, err
	}
	res, err := revision.NewResolver(c.Client).Resolve(ctx, c.Namespace, ref)
	if err != nil {
		if revision.IsNotFound(err) {
			return nil, wire.Errorf(wire.ClientException, "TaskDefinition not found. (the service's %s)", ref)
		}
		return nil, err
	}
	return &pinnedRevision{ref: res.Ref, spec: res.Spec}, nil
}

func deleteService(ctx context.Context, c *Call, in *ecs.DeleteServiceInput) (*ecs.DeleteServiceOutput, error) {
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	svc, err := c.activeService(ctx, cl, aws.ToString(in.Service))
	if err != nil {
		return nil, err
	}
	if aws.ToInt32(svc.Spec.DesiredCount) > 0 {
		if !aws.ToBool(in.Force) {
			return nil, wire.Errorf(wire.InvalidParameterException, "The service cannot be stopped while it is scaled above 0.")
		}
		// Forced: scaled to 0 first, as ECS does; the manager then stops the tasks
		// before the Service goes away (its finalizer).
		before := svc.DeepCopy()
		svc.Spec.DesiredCount = aws.Int32(0)
		if err := c.Client.Patch(ctx, svc, client.MergeFrom(before)); err != nil {
			return nil, err
		}
	}
	if err := c.deleteWithRecord(ctx, svc, cl); err != nil {
		return nil, err
	}
	out := c.serviceOut(ctx, svc, cl, newFamilyNames(c), false)
	out.Status = aws.String("DRAINING")
	return &ecs.DeleteServiceOutput{Service: &out}, nil
}

// deleteWithRecord deletes the Service and leaves its INACTIVE record. The record is
// written between a dry run of the caller's delete (so only a delete the caller is
// allowed to make leaves one) and the delete itself, so a deleted service always has
// its record; a record whose delete then failed is shadowed by the live Service.
func (c *Call) deleteWithRecord(ctx context.Context, svc *ecsv1alpha1.Service, cl *ecsv1alpha1.Cluster) error {
	precondition := client.Preconditions{UID: &svc.UID}
	if err := c.Client.Delete(ctx, svc, precondition, client.DryRunAll); err != nil {
		return err
	}
	desc := c.serviceOut(ctx, svc, cl, newFamilyNames(c), true)
	desc.Events = nil
	rec := inactiveService{UID: string(svc.UID), DeletedAt: c.Now, Service: desc}
	if err := c.writeInactiveRecord(ctx, svc.Name, rec); err != nil {
		// The server's own write: not the caller's to be denied (kubeError would name
		// the caller), but the server's fault, and the service is not deleted.
		return wire.Errorf(wire.ServerException, "recording service %s as INACTIVE before deleting it: %v", svc.Name, err)
	}
	if err := c.Client.Delete(ctx, svc, precondition); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.sweepInactiveServices(ctx)
	return nil
}
