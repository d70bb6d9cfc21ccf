package ecsapi

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"k8s.io/apimachinery/pkg/util/validation"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// How CreateService and UpdateService's members become a Service's spec, and which
// members Berth refuses because they need AWS. Pure functions, tested table by
// table in serviceconfig_test.go.

// serviceAWSOnly are the members of CreateService and UpdateService that need AWS
// (or a deployment model Berth does not have). A request that sets one is refused,
// naming it, rather than served without it.
type serviceAWSOnly struct {
	CapacityProviderStrategy    []types.CapacityProviderStrategyItem
	ServiceRegistries           []types.ServiceRegistry
	ServiceConnect              *types.ServiceConnectConfiguration
	VolumeConfigurations        []types.ServiceVolumeConfiguration
	VpcLattice                  []types.VpcLatticeConfiguration
	GatewayConnectors           []types.GatewayConnector
	Monitoring                  *types.MonitoringConfiguration
	PlatformVersion             *string
	EnableECSManagedTags        bool
	PropagateTags               types.PropagateTags
	DeploymentController        *types.DeploymentController
	AvailabilityZoneRebalancing types.AvailabilityZoneRebalancing
}

// refusal is one member's check: set reports whether the request asks for what
// Berth cannot do, why says so.
type refusal struct {
	member string
	set    bool
	why    string
}

// check returns the first refusal, in the order ECS's documentation lists the members.
func (f serviceAWSOnly) check() error {
	controller := types.DeploymentControllerTypeEcs
	if f.DeploymentController != nil && f.DeploymentController.Type != "" {
		controller = f.DeploymentController.Type
	}
	for _, r := range []refusal{
		{"capacityProviderStrategy", len(f.CapacityProviderStrategy) > 0,
			"capacity providers are Auto Scaling groups and Fargate; Berth places tasks on the container instances that registered"},
		{"deploymentController", controller != types.DeploymentControllerTypeEcs,
			fmt.Sprintf("%s deployments need AWS CodeDeploy or task sets; Berth rolls services out itself (type ECS)", controller)},
		{"platformVersion", aws.ToString(f.PlatformVersion) != "", "platform versions are Fargate's"},
		{"serviceRegistries", len(f.ServiceRegistries) > 0,
			"service discovery needs AWS Cloud Map; publish the service through a core Service with loadBalancers"},
		{"serviceConnectConfiguration", f.ServiceConnect != nil && f.ServiceConnect.Enabled,
			"Service Connect needs AWS Cloud Map and its proxy; publish the service through a core Service with loadBalancers"},
		{"volumeConfigurations", len(f.VolumeConfigurations) > 0, "service-managed volumes are Amazon EBS volumes"},
		{"vpcLatticeConfigurations", len(f.VpcLattice) > 0, "VPC Lattice is an AWS network service"},
		{"gatewayConnectors", len(f.GatewayConnectors) > 0, "gateway connectors are an AWS network service"},
		{"monitoring", f.Monitoring != nil, "service monitoring is CloudWatch's; Berth's metrics are on the manager's and agents' /metrics"},
		{"enableECSManagedTags", f.EnableECSManagedTags,
			"Berth does not tag the tasks a service starts; they carry the labels ecs.berth.dev/service and ecs.berth.dev/deployment"},
		{"propagateTags", f.PropagateTags != "" && f.PropagateTags != types.PropagateTagsNone,
			"Berth does not copy tags to the tasks a service starts (NONE is the only value served)"},
		{"availabilityZoneRebalancing", f.AvailabilityZoneRebalancing == types.AvailabilityZoneRebalancingEnabled,
			"Berth does not move running tasks between zones; spread them with a placementStrategy on attribute:ecs.availability-zone"},
	} {
		if r.set {
			return wire.InvalidParameter(r.member, "%s", r.why)
		}
	}
	return nil
}

// ECS's deployment configuration defaults: a REPLICA service keeps all its tasks and
// may double them, a DAEMON service (one task per instance) may stop them all and
// cannot add any.
func defaultPercents(strategy ecsv1alpha1.SchedulingStrategy) (minimumHealthy, maximum int32) {
	if strategy == ecsv1alpha1.SchedulingDaemon {
		return 0, 100
	}
	return 100, 200
}

// deploymentConfigurationSpec applies a request's deploymentConfiguration over the
// service's current one (the zero value when creating): members the request sets
// replace, members it leaves out stay, as in ECS. A new DAEMON service gets ECS's
// DAEMON defaults, which differ from the schema's (those of a REPLICA service).
func deploymentConfigurationSpec(in *types.DeploymentConfiguration, current ecsv1alpha1.DeploymentConfiguration,
	strategy ecsv1alpha1.SchedulingStrategy, creating bool) (ecsv1alpha1.DeploymentConfiguration, error) {
	out := *current.DeepCopy()
	if creating && strategy == ecsv1alpha1.SchedulingDaemon {
		minHealthy, maxPercent := defaultPercents(strategy)
		out.MinimumHealthyPercent, out.MaximumPercent = &minHealthy, &maxPercent
	}
	if in == nil {
		return out, nil
	}
	if err := deploymentConfigurationAWSOnly(in); err != nil {
		return out, err
	}
	if in.MinimumHealthyPercent != nil {
		out.MinimumHealthyPercent = aws.Int32(*in.MinimumHealthyPercent)
	}
	if in.MaximumPercent != nil {
		out.MaximumPercent = aws.Int32(*in.MaximumPercent)
	}
	if cb := in.DeploymentCircuitBreaker; cb != nil {
		out.DeploymentCircuitBreaker = &ecsv1alpha1.DeploymentCircuitBreaker{Enable: cb.Enable, Rollback: cb.Rollback}
	}
	return out, nil
}

// deploymentConfigurationAWSOnly refuses the deployment strategies and gates Berth
// does not have: only rolling deployments with ECS's circuit breaker are served.
func deploymentConfigurationAWSOnly(in *types.DeploymentConfiguration) error {
	const member = "deploymentConfiguration."
	cb := in.DeploymentCircuitBreaker
	for _, r := range []refusal{
		{"strategy", in.Strategy != "" && in.Strategy != types.DeploymentStrategyRolling,
			fmt.Sprintf("%s deployments are not served; Berth rolls services out with the ROLLING strategy", in.Strategy)},
		{"alarms", in.Alarms != nil && in.Alarms.Enable, "deployment alarms are CloudWatch alarms; use deploymentCircuitBreaker"},
		{"bakeTimeInMinutes", aws.ToInt32(in.BakeTimeInMinutes) > 0, "bake time belongs to blue/green, linear and canary deployments"},
		{"canaryConfiguration", in.CanaryConfiguration != nil, "canary deployments are not served"},
		{"linearConfiguration", in.LinearConfiguration != nil, "linear deployments are not served"},
		{"lifecycleHooks", len(in.LifecycleHooks) > 0, "deployment lifecycle hooks are AWS Lambda functions"},
		{"earlySuccessCriteria", in.EarlySuccessCriteria != nil, "early success criteria belong to blue/green, linear and canary deployments"},
		{"deploymentCircuitBreaker.resetOnHealthyTask", cb != nil && cb.ResetOnHealthyTask != nil,
			"Berth's circuit breaker counts the deployment's failed tasks against max(3, min(200, ceil(desiredCount / 2)))"},
		{"deploymentCircuitBreaker.thresholdConfiguration", cb != nil && cb.ThresholdConfiguration != nil,
			"Berth's circuit breaker threshold is ECS's default rule, max(3, min(200, ceil(desiredCount / 2)))"},
	} {
		if r.set {
			return wire.InvalidParameter(member+r.member, "%s", r.why)
		}
	}
	return nil
}

// deploymentConfigurationOut is the deploymentConfiguration ECS answers: every
// member present, unset ones at ECS's defaults for the scheduling strategy.
func deploymentConfigurationOut(spec ecsv1alpha1.DeploymentConfiguration, strategy ecsv1alpha1.SchedulingStrategy) *types.DeploymentConfiguration {
	minHealthy, maxPercent := defaultPercents(strategy)
	if spec.MinimumHealthyPercent != nil {
		minHealthy = *spec.MinimumHealthyPercent
	}
	if spec.MaximumPercent != nil {
		maxPercent = *spec.MaximumPercent
	}
	cb := &types.DeploymentCircuitBreaker{}
	if spec.DeploymentCircuitBreaker != nil {
		cb.Enable, cb.Rollback = spec.DeploymentCircuitBreaker.Enable, spec.DeploymentCircuitBreaker.Rollback
	}
	return &types.DeploymentConfiguration{
		MinimumHealthyPercent:    aws.Int32(minHealthy),
		MaximumPercent:           aws.Int32(maxPercent),
		DeploymentCircuitBreaker: cb,
		Strategy:                 types.DeploymentStrategyRolling,
	}
}

// loadBalancersSpec turns ECS's loadBalancers into the spec's: loadBalancerName
// (the Classic Load Balancer's name in ECS) names a core Service of the namespace,
// whose EndpointSlices Berth writes with the container port of every healthy task.
// The container and its port must be in the task definition, as ECS checks.
func loadBalancersSpec(in []types.LoadBalancer, td *ecsv1alpha1.TaskDefinitionSpec) ([]ecsv1alpha1.LoadBalancer, error) {
	if len(in) > 5 {
		return nil, wire.InvalidParameter("loadBalancers", "at most 5 load balancers per service")
	}
	out := make([]ecsv1alpha1.LoadBalancer, 0, len(in))
	for i, lb := range in {
		member := fmt.Sprintf("loadBalancers[%d]", i)
		if aws.ToString(lb.TargetGroupArn) != "" {
			return nil, wire.InvalidParameter(member+".targetGroupArn",
				"target groups are Elastic Load Balancing's; name a core Service of the namespace in loadBalancerName instead")
		}
		if lb.AdvancedConfiguration != nil {
			return nil, wire.InvalidParameter(member+".advancedConfiguration", "blue/green traffic shifting needs Elastic Load Balancing")
		}
		name := aws.ToString(lb.LoadBalancerName)
		if name == "" {
			return nil, wire.InvalidParameter(member+".loadBalancerName", "must name a core Service of the namespace (Berth writes its EndpointSlices)")
		}
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			return nil, wire.InvalidParameter(member+".loadBalancerName", "%q is not a core Service name: %s", name, errs[0])
		}
		lbSpec := ecsv1alpha1.LoadBalancer{ServiceName: name, ContainerName: aws.ToString(lb.ContainerName), ContainerPort: aws.ToInt32(lb.ContainerPort)}
		if err := containerPortDefined(member, lbSpec, td); err != nil {
			return nil, err
		}
		out = append(out, lbSpec)
	}
	return out, nil
}

// containerPortDefined checks that a load balancer's container is in the task
// definition with that container port among its port mappings.
func containerPortDefined(member string, lb ecsv1alpha1.LoadBalancer, td *ecsv1alpha1.TaskDefinitionSpec) error {
	if lb.ContainerName == "" {
		return wire.InvalidParameter(member+".containerName", "is required")
	}
	if lb.ContainerPort < 1 || lb.ContainerPort > 65535 {
		return wire.InvalidParameter(member+".containerPort", "must be a port from 1 to 65535")
	}
	for _, cd := range td.ContainerDefinitions {
		if cd.Name != lb.ContainerName {
			continue
		}
		for _, pm := range cd.PortMappings {
			if pm.ContainerPort == lb.ContainerPort {
				return nil
			}
		}
		return wire.InvalidParameter(member+".containerPort", "The container %s does not have a container port %d defined.", lb.ContainerName, lb.ContainerPort)
	}
	return wire.InvalidParameter(member+".containerName", "The container %s does not exist in the task definition.", lb.ContainerName)
}

// loadBalancersOut is the spec's load balancers as ECS answers them.
func loadBalancersOut(in []ecsv1alpha1.LoadBalancer) []types.LoadBalancer {
	out := make([]types.LoadBalancer, len(in))
	for i, lb := range in {
		out[i] = types.LoadBalancer{LoadBalancerName: aws.String(lb.ServiceName),
			ContainerName: aws.String(lb.ContainerName), ContainerPort: aws.Int32(lb.ContainerPort)}
	}
	return out
}

// networkConfigurationCheck accepts a networkConfiguration for an awsvpc task
// definition only, as ECS does. Berth gives an awsvpc task its address on the
// instance's task network: subnets, security groups and public IPs are kept (and
// described back) without effect.
func networkConfigurationCheck(nc *types.NetworkConfiguration, mode ecsv1alpha1.NetworkMode) error {
	if nc == nil {
		return nil
	}
	if mode != ecsv1alpha1.NetworkModeAWSVPC {
		return wire.InvalidParameter("networkConfiguration", "Network Configuration is not valid for the given networkMode of this task definition (%s); only awsvpc takes one.", networkModeOrDefault(mode))
	}
	return nil
}

func networkModeOrDefault(mode ecsv1alpha1.NetworkMode) ecsv1alpha1.NetworkMode {
	if mode == "" {
		return ecsv1alpha1.NetworkModeBridge
	}
	return mode
}

// placementSpec converts placement constraints and strategies; the schema checks
// types, fields and expressions (and its messages name them).
func placementSpec(constraints []types.PlacementConstraint, strategy []types.PlacementStrategy) ([]ecsv1alpha1.PlacementConstraint, []ecsv1alpha1.PlacementStrategy) {
	var pc []ecsv1alpha1.PlacementConstraint
	for _, c := range constraints {
		pc = append(pc, ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintType(c.Type), Expression: aws.ToString(c.Expression)})
	}
	var ps []ecsv1alpha1.PlacementStrategy
	for _, s := range strategy {
		ps = append(ps, ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyType(s.Type), Field: aws.ToString(s.Field)})
	}
	return pc, ps
}

// placementOut is the spec's placement as ECS answers it (empty lists, not absent).
func placementOut(pc []ecsv1alpha1.PlacementConstraint, ps []ecsv1alpha1.PlacementStrategy) ([]types.PlacementConstraint, []types.PlacementStrategy) {
	constraints := make([]types.PlacementConstraint, len(pc))
	for i, c := range pc {
		constraints[i] = types.PlacementConstraint{Type: types.PlacementConstraintType(c.Type)}
		if c.Expression != "" {
			constraints[i].Expression = aws.String(c.Expression)
		}
	}
	strategy := make([]types.PlacementStrategy, len(ps))
	for i, s := range ps {
		strategy[i] = types.PlacementStrategy{Type: types.PlacementStrategyType(s.Type)}
		if s.Field != "" {
			strategy[i].Field = aws.String(s.Field)
		}
	}
	return constraints, strategy
}
