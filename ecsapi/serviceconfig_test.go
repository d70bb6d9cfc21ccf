package ecsapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// wantRefusal checks that err is an InvalidParameterException naming member ("" for
// no error).
func wantRefusal(t *testing.T, err error, member string) {
	t.Helper()
	if member == "" {
		if err != nil {
			t.Errorf("unexpected refusal: %v", err)
		}
		return
	}
	var e *wire.Error
	if !errors.As(err, &e) || e.Type != wire.InvalidParameterException || !strings.HasPrefix(e.Message, member+": ") {
		t.Errorf("got %v, want InvalidParameterException naming %s", err, member)
	}
}

func TestServiceAWSOnly(t *testing.T) {
	tests := []struct {
		name       string
		in         serviceAWSOnly
		wantMember string
	}{
		{name: "nothing asked", in: serviceAWSOnly{}},
		{name: "NONE propagation, ECS controller, rebalancing off, empty lists and a disabled Service Connect",
			in: serviceAWSOnly{PropagateTags: types.PropagateTagsNone, ServiceRegistries: []types.ServiceRegistry{},
				DeploymentController:        &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
				AvailabilityZoneRebalancing: types.AvailabilityZoneRebalancingDisabled,
				ServiceConnect:              &types.ServiceConnectConfiguration{Enabled: false}}},
		{name: "capacity providers", in: serviceAWSOnly{CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}},
			wantMember: "capacityProviderStrategy"},
		{name: "CodeDeploy", in: serviceAWSOnly{DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}},
			wantMember: "deploymentController"},
		{name: "platform version", in: serviceAWSOnly{PlatformVersion: aws.String("LATEST")}, wantMember: "platformVersion"},
		{name: "Cloud Map", in: serviceAWSOnly{ServiceRegistries: []types.ServiceRegistry{{RegistryArn: aws.String("x")}}}, wantMember: "serviceRegistries"},
		{name: "Service Connect", in: serviceAWSOnly{ServiceConnect: &types.ServiceConnectConfiguration{Enabled: true}}, wantMember: "serviceConnectConfiguration"},
		{name: "EBS volumes", in: serviceAWSOnly{VolumeConfigurations: []types.ServiceVolumeConfiguration{{Name: aws.String("v")}}}, wantMember: "volumeConfigurations"},
		{name: "VPC Lattice", in: serviceAWSOnly{VpcLattice: []types.VpcLatticeConfiguration{{}}}, wantMember: "vpcLatticeConfigurations"},
		{name: "gateway connectors", in: serviceAWSOnly{GatewayConnectors: []types.GatewayConnector{{}}}, wantMember: "gatewayConnectors"},
		{name: "monitoring", in: serviceAWSOnly{Monitoring: &types.MonitoringConfiguration{}}, wantMember: "monitoring"},
		{name: "managed tags", in: serviceAWSOnly{EnableECSManagedTags: true}, wantMember: "enableECSManagedTags"},
		{name: "tag propagation", in: serviceAWSOnly{PropagateTags: types.PropagateTagsService}, wantMember: "propagateTags"},
		{name: "zone rebalancing", in: serviceAWSOnly{AvailabilityZoneRebalancing: types.AvailabilityZoneRebalancingEnabled}, wantMember: "availabilityZoneRebalancing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantRefusal(t, tc.in.check(), tc.wantMember) })
	}
}

func TestDeploymentConfigurationSpec(t *testing.T) {
	current := ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150),
		DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	tests := []struct {
		name       string
		in         *types.DeploymentConfiguration
		current    ecsv1alpha1.DeploymentConfiguration
		strategy   ecsv1alpha1.SchedulingStrategy
		creating   bool
		want       ecsv1alpha1.DeploymentConfiguration
		wantMember string
	}{
		{name: "new REPLICA service without one keeps the schema's defaults (100/200)", strategy: ecsv1alpha1.SchedulingReplica, creating: true},
		{name: "new DAEMON service gets ECS's DAEMON defaults", strategy: ecsv1alpha1.SchedulingDaemon, creating: true,
			want: ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(0), MaximumPercent: aws.Int32(100)}},
		{name: "new DAEMON service with its own percentages", strategy: ecsv1alpha1.SchedulingDaemon, creating: true,
			in:   &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50)},
			want: ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(100)}},
		{name: "update of one member keeps the others", strategy: ecsv1alpha1.SchedulingReplica, current: current,
			in: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(300)},
			want: ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(300),
				DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: true}}},
		{name: "update replaces the circuit breaker", strategy: ecsv1alpha1.SchedulingReplica, current: current,
			in: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true}},
			want: ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150),
				DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true}}},
		{name: "update of a DAEMON service does not reset its percentages", strategy: ecsv1alpha1.SchedulingDaemon, current: current,
			want: *current.DeepCopy()},
		{name: "ROLLING is the strategy served", strategy: ecsv1alpha1.SchedulingReplica, creating: true,
			in: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyRolling}},
		{name: "blue/green refused", in: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}, wantMember: "deploymentConfiguration.strategy"},
		{name: "alarms refused", in: &types.DeploymentConfiguration{Alarms: &types.DeploymentAlarms{Enable: true}}, wantMember: "deploymentConfiguration.alarms"},
		{name: "bake time refused", in: &types.DeploymentConfiguration{BakeTimeInMinutes: aws.Int32(5)}, wantMember: "deploymentConfiguration.bakeTimeInMinutes"},
		{name: "canary refused", in: &types.DeploymentConfiguration{CanaryConfiguration: &types.CanaryConfiguration{}}, wantMember: "deploymentConfiguration.canaryConfiguration"},
		{name: "linear refused", in: &types.DeploymentConfiguration{LinearConfiguration: &types.LinearConfiguration{}}, wantMember: "deploymentConfiguration.linearConfiguration"},
		{name: "lifecycle hooks refused", in: &types.DeploymentConfiguration{LifecycleHooks: []types.DeploymentLifecycleHook{{}}}, wantMember: "deploymentConfiguration.lifecycleHooks"},
		{name: "early success refused", in: &types.DeploymentConfiguration{EarlySuccessCriteria: &types.DeploymentEarlySuccessCriteria{}}, wantMember: "deploymentConfiguration.earlySuccessCriteria"},
		{name: "circuit breaker threshold refused",
			in:         &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, ThresholdConfiguration: &types.ThresholdConfiguration{}}},
			wantMember: "deploymentConfiguration.deploymentCircuitBreaker.thresholdConfiguration"},
		{name: "circuit breaker reset refused",
			in:         &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, ResetOnHealthyTask: aws.Bool(true)}},
			wantMember: "deploymentConfiguration.deploymentCircuitBreaker.resetOnHealthyTask"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := deploymentConfigurationSpec(tc.in, tc.current, tc.strategy, tc.creating)
			wantRefusal(t, err, tc.wantMember)
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeploymentConfigurationOut(t *testing.T) {
	tests := []struct {
		name     string
		spec     ecsv1alpha1.DeploymentConfiguration
		strategy ecsv1alpha1.SchedulingStrategy
		wantMin  int32
		wantMax  int32
		wantCB   types.DeploymentCircuitBreaker
	}{
		{name: "REPLICA defaults", strategy: ecsv1alpha1.SchedulingReplica, wantMin: 100, wantMax: 200},
		{name: "DAEMON defaults", strategy: ecsv1alpha1.SchedulingDaemon, wantMin: 0, wantMax: 100},
		{name: "set values and circuit breaker", strategy: ecsv1alpha1.SchedulingReplica,
			spec: ecsv1alpha1.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150),
				DeploymentCircuitBreaker: &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
			wantMin: 50, wantMax: 150, wantCB: types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := deploymentConfigurationOut(tc.spec, tc.strategy)
			if aws.ToInt32(got.MinimumHealthyPercent) != tc.wantMin || aws.ToInt32(got.MaximumPercent) != tc.wantMax {
				t.Errorf("percents = %d/%d, want %d/%d", aws.ToInt32(got.MinimumHealthyPercent), aws.ToInt32(got.MaximumPercent), tc.wantMin, tc.wantMax)
			}
			// ECS always answers the circuit breaker, disabled when never set.
			if got.DeploymentCircuitBreaker == nil || got.DeploymentCircuitBreaker.Enable != tc.wantCB.Enable || got.DeploymentCircuitBreaker.Rollback != tc.wantCB.Rollback {
				t.Errorf("circuit breaker = %+v, want %+v", got.DeploymentCircuitBreaker, tc.wantCB)
			}
		})
	}
}

func TestLoadBalancersSpec(t *testing.T) {
	td := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
		{Name: "web", PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}}},
		{Name: "sidecar"},
	}}
	lb := func(name, container string, port int32) types.LoadBalancer {
		return types.LoadBalancer{LoadBalancerName: aws.String(name), ContainerName: aws.String(container), ContainerPort: aws.Int32(port)}
	}
	tests := []struct {
		name       string
		in         []types.LoadBalancer
		want       []ecsv1alpha1.LoadBalancer
		wantMember string
	}{
		{name: "none", want: []ecsv1alpha1.LoadBalancer{}},
		{name: "a core Service", in: []types.LoadBalancer{lb("web-svc", "web", 8080)},
			want: []ecsv1alpha1.LoadBalancer{{ServiceName: "web-svc", ContainerName: "web", ContainerPort: 8080}}},
		{name: "target group", in: []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:x"), ContainerName: aws.String("web"), ContainerPort: aws.Int32(8080)}},
			wantMember: "loadBalancers[0].targetGroupArn"},
		{name: "no name", in: []types.LoadBalancer{lb("", "web", 8080)}, wantMember: "loadBalancers[0].loadBalancerName"},
		{name: "not a Service name", in: []types.LoadBalancer{lb("Web_LB", "web", 8080)}, wantMember: "loadBalancers[0].loadBalancerName"},
		{name: "unknown container", in: []types.LoadBalancer{lb("web-svc", "db", 8080)}, wantMember: "loadBalancers[0].containerName"},
		{name: "port not mapped", in: []types.LoadBalancer{lb("web-svc", "web", 9090)}, wantMember: "loadBalancers[0].containerPort"},
		{name: "container without ports", in: []types.LoadBalancer{lb("a", "web", 8080), lb("b", "sidecar", 80)}, wantMember: "loadBalancers[1].containerPort"},
		{name: "no container", in: []types.LoadBalancer{{LoadBalancerName: aws.String("web-svc"), ContainerPort: aws.Int32(8080)}}, wantMember: "loadBalancers[0].containerName"},
		{name: "six", in: []types.LoadBalancer{lb("a", "web", 8080), lb("b", "web", 8080), lb("c", "web", 8080), lb("d", "web", 8080), lb("e", "web", 8080), lb("f", "web", 8080)},
			wantMember: "loadBalancers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadBalancersSpec(tc.in, td)
			wantRefusal(t, err, tc.wantMember)
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("load balancers (-want +got):\n%s", diff)
			}
			if back := loadBalancersOut(got); len(back) != len(tc.in) {
				t.Errorf("described back as %d load balancers, want %d", len(back), len(tc.in))
			}
		})
	}
}

func TestNetworkConfigurationCheck(t *testing.T) {
	nc := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
	tests := []struct {
		name       string
		nc         *types.NetworkConfiguration
		mode       ecsv1alpha1.NetworkMode
		wantMember string
	}{
		{name: "none asked", mode: ecsv1alpha1.NetworkModeBridge},
		{name: "awsvpc", nc: nc, mode: ecsv1alpha1.NetworkModeAWSVPC},
		{name: "bridge refuses it", nc: nc, mode: ecsv1alpha1.NetworkModeBridge, wantMember: "networkConfiguration"},
		{name: "the default mode (bridge) refuses it", nc: nc, wantMember: "networkConfiguration"},
		{name: "host refuses it", nc: nc, mode: ecsv1alpha1.NetworkModeHost, wantMember: "networkConfiguration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantRefusal(t, networkConfigurationCheck(tc.nc, tc.mode), tc.wantMember) })
	}
}

func TestSchedulingStrategy(t *testing.T) {
	tests := []struct {
		name       string
		strategy   types.SchedulingStrategy
		desired    *int32
		want       ecsv1alpha1.SchedulingStrategy
		wantMember string
	}{
		{name: "default is REPLICA", desired: aws.Int32(2), want: ecsv1alpha1.SchedulingReplica},
		{name: "REPLICA needs desiredCount", strategy: types.SchedulingStrategyReplica, wantMember: "desiredCount"},
		{name: "DAEMON", strategy: types.SchedulingStrategyDaemon, want: ecsv1alpha1.SchedulingDaemon},
		{name: "DAEMON takes no desiredCount", strategy: types.SchedulingStrategyDaemon, desired: aws.Int32(1), wantMember: "desiredCount"},
		{name: "unknown", strategy: "BATCH", desired: aws.Int32(1), wantMember: "schedulingStrategy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := schedulingStrategy(tc.strategy, tc.desired)
			wantRefusal(t, err, tc.wantMember)
			if got != tc.want {
				t.Errorf("strategy = %q, want %q", got, tc.want)
			}
		})
	}
}
