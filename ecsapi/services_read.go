package ecsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/deployment"
)

// familyNames formats task definition ARNs from `family[:N]` references, reading
// each family's ECS name (a TaskDefinition named by the API for an ECS family that
// is no Kubernetes name keeps it in an annotation) once per call.
type familyNames struct {
	c     *Call
	names map[string]string
}

func newFamilyNames(c *Call) *familyNames { return &familyNames{c: c, names: map[string]string{}} }

// arn is the task definition ARN of a reference (without a revision for an
// unresolved `family`).
func (f *familyNames) arn(ctx context.Context, ref string) string {
	family, rev, pinned := strings.Cut(ref, ":")
	name, ok := f.names[family]
	if !ok {
		name = family
		var td ecsv1alpha1.TaskDefinition
		if err := f.c.Client.Get(ctx, client.ObjectKey{Namespace: f.c.Namespace, Name: family}, &td); err == nil {
			name = ecsName(td.Annotations, td.Name)
		}
		f.names[family] = name
	}
	out := f.c.ARN.prefix() + "task-definition/" + name
	if pinned {
		out += ":" + rev
	}
	return out
}

// serviceOut describes a Service as ECS does, with its events.
func (c *Call) serviceOut(ctx context.Context, svc *ecsv1alpha1.Service, cl *ecsv1alpha1.Cluster, fam *familyNames, withTags bool) types.Service {
	clusterName := ecsName(cl.Annotations, cl.Name)
	name := ecsName(svc.Annotations, svc.Name)
	strategy := svc.Spec.SchedulingStrategy
	if strategy == "" {
		strategy = ecsv1alpha1.SchedulingReplica
	}
	status := "ACTIVE"
	if svc.DeletionTimestamp != nil {
		status = "DRAINING"
	}
	arn := func(ref string) string { return fam.arn(ctx, ref) }
	constraints, placement := placementOut(svc.Spec.PlacementConstraints, svc.Spec.PlacementStrategy)
	out := types.Service{
		ServiceArn:                    aws.String(c.ARN.Service(clusterName, name)),
		ServiceName:                   aws.String(name),
		ClusterArn:                    aws.String(c.ARN.Cluster(clusterName)),
		Status:                        aws.String(status),
		DesiredCount:                  serviceDesiredCount(svc),
		RunningCount:                  svc.Status.RunningCount,
		PendingCount:                  svc.Status.PendingCount,
		LaunchType:                    types.LaunchTypeEc2,
		SchedulingStrategy:            types.SchedulingStrategy(strategy),
		TaskDefinition:                aws.String(arn(serviceTaskDefinition(svc))),
		DeploymentConfiguration:       deploymentConfigurationOut(svc.Spec.DeploymentConfiguration, strategy),
		DeploymentController:          &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		Deployments:                   deploymentsOut(withPendingDeployment(svc, c.Now), arn),
		LoadBalancers:                 loadBalancersOut(svc.Spec.LoadBalancers),
		EnableExecuteCommand:          svc.Spec.EnableExecuteCommand,
		ServiceRegistries:             []types.ServiceRegistry{},
		PlacementConstraints:          constraints,
		PlacementStrategy:             placement,
		HealthCheckGracePeriodSeconds: svc.Spec.HealthCheckGracePeriodSeconds,
		CreatedAt:                     aws.Time(svc.CreationTimestamp.Time),
		PropagateTags:                 types.PropagateTagsNone,
		AvailabilityZoneRebalancing:   types.AvailabilityZoneRebalancingDisabled,
		Events:                        c.serviceEvents(ctx, svc, name),
	}
	if by := svc.Annotations[annotationCreatedBy]; by != "" {
		out.CreatedBy = aws.String(by)
	}
	if raw := svc.Annotations[annotationNetworkConfiguration]; raw != "" {
		var nc types.NetworkConfiguration
		if json.Unmarshal([]byte(raw), &nc) == nil {
			out.NetworkConfiguration = &nc
		}
	}
	if withTags {
		out.Tags = tagsOf(svc.Annotations)
	}
	return out
}

// serviceDesiredCount is the count the user asked for (ECS answers the request's,
// not the last the manager acted on); a DAEMON service's is the manager's count of
// matching instances; an auto scaled service whose manifest leaves desiredCount to
// the auto scaler runs minCapacity until it first sets one (as the service
// controller does).
func serviceDesiredCount(svc *ecsv1alpha1.Service) int32 {
	switch {
	case svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon:
		return svc.Status.DesiredCount
	case svc.Spec.DesiredCount == nil && svc.Spec.AutoScaling != nil:
		return svc.Spec.AutoScaling.MinCapacity
	}
	return aws.ToInt32(svc.Spec.DesiredCount)
}

// serviceTaskDefinition is the revision the service runs: the pinned one, or for a
// service that follows its family, the one the manager resolved.
func serviceTaskDefinition(svc *ecsv1alpha1.Service) string {
	if !strings.Contains(svc.Spec.TaskDefinition, ":") && svc.Status.TaskDefinition != "" {
		return svc.Status.TaskDefinition
	}
	return svc.Spec.TaskDefinition
}

// maxServiceEvents is how many events ECS describes, newest first.
const maxServiceEvents = 100

// serviceEvents are the Service's Kubernetes Events as ECS's service events:
// "(service NAME) has reached a steady state." and the manager's other decisions.
// Events are a convenience: a caller that may not list them gets none rather than
// an error.
func (c *Call) serviceEvents(ctx context.Context, svc *ecsv1alpha1.Service, name string) []types.ServiceEvent {
	out := []types.ServiceEvent{}
	if svc.UID == "" {
		return out
	}
	var list corev1.EventList
	if err := c.Client.List(ctx, &list, client.InNamespace(svc.Namespace),
		client.MatchingFields{"involvedObject.uid": string(svc.UID)}); err != nil {
		c.Log.V(1).Info("service events unavailable", "service", svc.Name, "error", err.Error())
		return out
	}
	sort.SliceStable(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).After(eventTime(&list.Items[j])) })
	for i := range list.Items {
		if len(out) == maxServiceEvents {
			break
		}
		e := &list.Items[i]
		out = append(out, types.ServiceEvent{Id: aws.String(string(e.UID)), CreatedAt: aws.Time(eventTime(e)),
			Message: aws.String(fmt.Sprintf("(service %s) %s", name, e.Message))})
	}
	return out
}

// eventTime is when an Event last happened, whichever API wrote it.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func describeServices(ctx context.Context, c *Call, in *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error) {
	if len(in.Services) == 0 {
		return nil, wire.InvalidParameter("services", "name at least one service")
	}
	if len(in.Services) > 10 {
		return nil, wire.InvalidParameter("services", "at most 10 services per call")
	}
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	withTags := includes(in.Include, types.ServiceFieldTags)
	fam := newFamilyNames(c)
	out := &ecs.DescribeServicesOutput{Services: []types.Service{}, Failures: []types.Failure{}}
	for _, ref := range in.Services {
		found, err := c.findService(ctx, cl, "services", ref)
		switch {
		case err != nil:
			return nil, err
		case found.svc != nil:
			out.Services = append(out.Services, c.serviceOut(ctx, found.svc, cl, fam, withTags))
		case found.inactive != nil:
			out.Services = append(out.Services, found.inactive.describe(withTags))
		default:
			out.Failures = append(out.Failures, missing(found.arn))
		}
	}
	return out, nil
}

func listServices(ctx context.Context, c *Call, in *ecs.ListServicesInput) (*ecs.ListServicesOutput, error) {
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	var list ecsv1alpha1.ServiceList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return nil, err
	}
	clusterName := ecsName(cl.Annotations, cl.Name)
	arns := []string{}
	for i := range list.Items {
		if svc := &list.Items[i]; listedService(svc, cl.Name, in) {
			arns = append(arns, c.ARN.Service(clusterName, ecsName(svc.Annotations, svc.Name)))
		}
	}
	arns, next, err := page(arns, in.NextToken, in.MaxResults, defaultPageSmall, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListServicesOutput{ServiceArns: arns, NextToken: next}, nil
}

// listedService applies ListServices' filters. DRAINING services are not listed, as
// in ECS; every Berth service is of launch type EC2 and managed by its user.
func listedService(svc *ecsv1alpha1.Service, cluster string, in *ecs.ListServicesInput) bool {
	strategy := svc.Spec.SchedulingStrategy
	if strategy == "" {
		strategy = ecsv1alpha1.SchedulingReplica
	}
	switch {
	case svc.Spec.Cluster != cluster, svc.DeletionTimestamp != nil:
		return false
	case in.SchedulingStrategy != "" && string(in.SchedulingStrategy) != string(strategy):
		return false
	case in.LaunchType != "" && in.LaunchType != types.LaunchTypeEc2:
		return false
	case in.ResourceManagementType != "" && in.ResourceManagementType != types.ResourceManagementTypeCustomer:
		return false
	}
	return true
}

// serviceDeploymentARN is arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID.
func (c *Call) serviceDeploymentARN(cluster, service, id string) string {
	return c.ARN.prefix() + "service-deployment/" + cluster + "/" + service + "/" + id
}

// serviceRevisionARN names a deployment's configuration as ECS's service revisions
// do; Berth's revision of a service is its deployment, so it has the deployment's ID.
func (c *Call) serviceRevisionARN(cluster, service, id string) string {
	return c.ARN.prefix() + "service-revision/" + cluster + "/" + service + "/" + id
}

func listServiceDeployments(ctx context.Context, c *Call, in *ecs.ListServiceDeploymentsInput) (*ecs.ListServiceDeploymentsOutput, error) {
	cl, err := c.getCluster(ctx, "cluster", aws.ToString(in.Cluster))
	if err != nil {
		return nil, err
	}
	found, err := c.findService(ctx, cl, "service", aws.ToString(in.Service))
	if err != nil {
		return nil, err
	}
	if found.svc == nil {
		return nil, wire.Errorf(wire.ServiceNotFoundException, "Service not found.")
	}
	svc := found.svc
	clusterName, name := ecsName(cl.Annotations, cl.Name), ecsName(svc.Annotations, svc.Name)
	deps := withPendingDeployment(svc, c.Now)
	byKey := map[string]types.ServiceDeploymentBrief{}
	keys := []string{}
	for _, d := range deps {
		status := serviceDeploymentStatus(d, deps)
		if !serviceDeploymentMatches(status, d.CreatedAt.Time, in.Status, in.CreatedAt) {
			continue
		}
		brief := types.ServiceDeploymentBrief{
			ServiceDeploymentArn:     aws.String(c.serviceDeploymentARN(clusterName, name, d.ID)),
			ServiceArn:               aws.String(c.ARN.Service(clusterName, name)),
			ClusterArn:               aws.String(c.ARN.Cluster(clusterName)),
			Status:                   status,
			CreatedAt:                aws.Time(d.CreatedAt.Time),
			StartedAt:                aws.Time(d.CreatedAt.Time),
			TargetServiceRevisionArn: aws.String(c.serviceRevisionARN(clusterName, name, d.ID)),
		}
		if d.RolloutStateReason != "" {
			brief.StatusReason = aws.String(d.RolloutStateReason)
		}
		if serviceDeploymentFinished(status) && d.UpdatedAt != nil {
			brief.FinishedAt = aws.Time(d.UpdatedAt.Time)
		}
		key := newestFirstKey(d.CreatedAt.Time, d.ID)
		byKey[key] = brief
		keys = append(keys, key)
	}
	keys, next, err := page(keys, in.NextToken, in.MaxResults, 20, 100)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListServiceDeploymentsOutput{ServiceDeployments: make([]types.ServiceDeploymentBrief, len(keys)), NextToken: next}
	for i, k := range keys {
		out.ServiceDeployments[i] = byKey[k]
	}
	return out, nil
}

// newestFirstKey sorts deployments newest first as page() sorts its keys.
func newestFirstKey(created time.Time, id string) string {
	return fmt.Sprintf("%020d/%s", int64(1<<62)-created.UnixNano(), id)
}

func describeServiceDeployments(ctx context.Context, c *Call, in *ecs.DescribeServiceDeploymentsInput) (*ecs.DescribeServiceDeploymentsOutput, error) {
	if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > 20 {
		return nil, wire.InvalidParameter("serviceDeploymentArns", "name 1 to 20 service deployments")
	}
	out := &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []types.ServiceDeployment{}, Failures: []types.Failure{}}
	for _, arn := range in.ServiceDeploymentArns {
		d, err := c.serviceDeployment(ctx, arn)
		if err != nil {
			return nil, err
		}
		if d == nil {
			out.Failures = append(out.Failures, missing(arn))
			continue
		}
		out.ServiceDeployments = append(out.ServiceDeployments, *d)
	}
	return out, nil
}

// serviceDeployment describes the deployment a service deployment ARN names (nil
// when it names none).
func (c *Call) serviceDeployment(ctx context.Context, arn string) (*types.ServiceDeployment, error) {
	r, err := c.ARN.ParseARN("serviceDeploymentArns", arn)
	if err != nil {
		return nil, err
	}
	if r.Type != "service-deployment" || len(r.Parts) != 3 {
		return nil, wire.InvalidParameter("serviceDeploymentArns", "%q is not a service deployment ARN (service-deployment/CLUSTER/SERVICE/ID)", arn)
	}
	cl, err := c.getCluster(ctx, "serviceDeploymentArns", r.Parts[0])
	if err != nil {
		if wire.ECS.AsError(err).Type == wire.ClusterNotFoundException {
			return nil, nil
		}
		return nil, err
	}
	found, err := c.findService(ctx, cl, "serviceDeploymentArns", r.Parts[1])
	if err != nil || found.svc == nil {
		return nil, err
	}
	deps := withPendingDeployment(found.svc, c.Now)
	for _, d := range deps {
		if d.ID == r.Parts[2] {
			out := c.serviceDeploymentOut(ctx, found.svc, cl, d, deps)
			return &out, nil
		}
	}
	return nil, nil
}

// serviceDeploymentOut describes one deployment as a service deployment.
func (c *Call) serviceDeploymentOut(ctx context.Context, svc *ecsv1alpha1.Service, cl *ecsv1alpha1.Cluster, d ecsv1alpha1.Deployment, all []ecsv1alpha1.Deployment) types.ServiceDeployment {
	clusterName, name := ecsName(cl.Annotations, cl.Name), ecsName(svc.Annotations, svc.Name)
	status := serviceDeploymentStatus(d, all)
	strategy := svc.Spec.SchedulingStrategy
	out := types.ServiceDeployment{
		ServiceDeploymentArn:     aws.String(c.serviceDeploymentARN(clusterName, name, d.ID)),
		ServiceArn:               aws.String(c.ARN.Service(clusterName, name)),
		ClusterArn:               aws.String(c.ARN.Cluster(clusterName)),
		Status:                   status,
		CreatedAt:                aws.Time(d.CreatedAt.Time),
		StartedAt:                aws.Time(d.CreatedAt.Time),
		DeploymentConfiguration:  deploymentConfigurationOut(svc.Spec.DeploymentConfiguration, strategy),
		DeploymentCircuitBreaker: circuitBreakerOut(svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker, d),
		TargetServiceRevision: &types.ServiceRevisionSummary{
			Arn:                aws.String(c.serviceRevisionARN(clusterName, name, d.ID)),
			RequestedTaskCount: d.DesiredCount, RunningTaskCount: d.RunningCount, PendingTaskCount: d.PendingCount,
		},
		SourceServiceRevisions: []types.ServiceRevisionSummary{},
	}
	if d.RolloutStateReason != "" {
		out.StatusReason = aws.String(d.RolloutStateReason)
	}
	if d.UpdatedAt != nil {
		out.UpdatedAt = aws.Time(d.UpdatedAt.Time)
		if serviceDeploymentFinished(status) {
			out.FinishedAt = aws.Time(d.UpdatedAt.Time)
		}
		if status == types.ServiceDeploymentStatusStopped {
			out.StoppedAt = aws.Time(d.UpdatedAt.Time)
		}
	}
	if status == types.ServiceDeploymentStatusInProgress {
		// What it replaces: the older deployments that still have tasks.
		for _, o := range all {
			if o.ID != d.ID && o.Status == ecsv1alpha1.DeploymentActive {
				out.SourceServiceRevisions = append(out.SourceServiceRevisions, types.ServiceRevisionSummary{
					Arn:              aws.String(c.serviceRevisionARN(clusterName, name, o.ID)),
					RunningTaskCount: o.RunningCount, PendingTaskCount: o.PendingCount,
				})
			}
		}
	}
	return out
}

// circuitBreakerOut is the circuit breaker's state for one deployment.
func circuitBreakerOut(cb *ecsv1alpha1.DeploymentCircuitBreaker, d ecsv1alpha1.Deployment) *types.ServiceDeploymentCircuitBreaker {
	out := &types.ServiceDeploymentCircuitBreaker{FailureCount: d.FailedTasks, Status: types.ServiceDeploymentRollbackMonitorsStatusDisabled}
	if cb == nil || !cb.Enable {
		return out
	}
	out.Threshold = deployment.CircuitBreakerThreshold(d.DesiredCount)
	switch d.RolloutState {
	case ecsv1alpha1.RolloutFailed:
		out.Status = types.ServiceDeploymentRollbackMonitorsStatusTriggered
	case ecsv1alpha1.RolloutCompleted:
		out.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
	default:
		out.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoring
	}
	return out
}
