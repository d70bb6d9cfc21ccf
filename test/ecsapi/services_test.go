package ecsapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// waitStable runs the SDK's own services-stable waiter (one PRIMARY deployment and
// runningCount == desiredCount, failing on MISSING, DRAINING and INACTIVE).
func waitStable(t *testing.T, c *ecs.Client, cluster string, services ...string) {
	t.Helper()
	w := ecs.NewServicesStableWaiter(c, func(o *ecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: services}, time.Minute); err != nil {
		t.Fatalf("services-stable %v: %v", services, err)
	}
}

// describeOne describes one service that must be found.
func describeOne(t *testing.T, c *ecs.Client, cluster, service string) types.Service {
	t.Helper()
	d, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service},
		Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Services) != 1 {
		t.Fatalf("describe %s: services %d, failures %+v", service, len(d.Services), d.Failures)
	}
	return d.Services[0]
}

// primary is the one deployment of a steady service.
func primary(t *testing.T, svc types.Service) types.Deployment {
	t.Helper()
	if len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Status) != "PRIMARY" {
		t.Fatalf("deployments = %+v, want one PRIMARY", svc.Deployments)
	}
	return svc.Deployments[0]
}

// TestServiceLifecycle drives one service through ECS's whole life with the SDK and
// its waiters: create behind a core Service, steady, a new revision, scale, a forced
// deployment, delete refused then forced, DRAINING, INACTIVE, and the name reused.
func TestServiceLifecycle(t *testing.T) {
	s := start(t)
	u := s.newUser("deployer", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster := u.Namespace
	newCluster(t, c, cluster, 2, nil)

	web := testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:1").Port(8080, 0).Obj()
	putFamily(t, web, 1)
	lb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: u.Namespace, Name: "web-lb"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if err := env.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}

	create := &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String("Web_App"), TaskDefinition: aws.String("web"),
		DesiredCount: aws.Int32(2), ClientToken: aws.String("create-web-1"),
		LoadBalancers: []types.LoadBalancer{{LoadBalancerName: aws.String("web-lb"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}},
	}
	created, err := c.CreateService(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	svc := created.Service
	arnPrefix := "arn:aws:ecs:" + region + ":" + account + ":"
	wantARN := arnPrefix + "service/" + cluster + "/Web_App"
	if got := aws.ToString(svc.ServiceArn); got != wantARN {
		t.Errorf("serviceArn = %s, want %s", got, wantARN)
	}
	// The family was pinned to its latest revision when the service was created.
	if got, want := aws.ToString(svc.TaskDefinition), arnPrefix+"task-definition/web:1"; got != want {
		t.Errorf("taskDefinition = %s, want %s", got, want)
	}
	// As ECS's answer: the deployment already started, and the defaults filled in.
	if d := primary(t, *svc); d.RolloutState != types.DeploymentRolloutStateInProgress || d.DesiredCount != 2 {
		t.Errorf("created deployment = %+v", d)
	}
	if dc := svc.DeploymentConfiguration; aws.ToInt32(dc.MaximumPercent) != 200 || aws.ToInt32(dc.MinimumHealthyPercent) != 50 || !dc.DeploymentCircuitBreaker.Rollback {
		t.Errorf("deploymentConfiguration = %+v", dc)
	}
	if aws.ToString(svc.Status) != "ACTIVE" || svc.LaunchType != types.LaunchTypeEc2 || aws.ToString(svc.CreatedBy) == "" {
		t.Errorf("service = %+v", svc)
	}

	t.Run("clientToken", func(t *testing.T) {
		again, err := c.CreateService(ctx, create)
		if err != nil {
			t.Fatalf("same token, same parameters: %v", err)
		}
		if !aws.ToTime(again.Service.CreatedAt).Equal(aws.ToTime(svc.CreatedAt)) {
			t.Error("the same token and parameters answered another service")
		}
		changed := *create
		changed.DesiredCount = aws.Int32(5)
		if _, err := c.CreateService(ctx, &changed); apiErrorCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "Creation of service was not idempotent.") {
			t.Errorf("same token, other parameters: %v", err)
		}
		noToken := *create
		noToken.ClientToken = nil
		if _, err := c.CreateService(ctx, &noToken); apiErrorCode(err) != "InvalidParameterException" {
			t.Errorf("existing name without a token: %v", err)
		}
	})

	waitStable(t, c, cluster, "Web_App")
	steady := describeOne(t, c, cluster, wantARN)
	first := primary(t, steady)
	if steady.RunningCount != 2 || steady.DesiredCount != 2 || first.RolloutState != types.DeploymentRolloutStateCompleted {
		t.Errorf("steady service = running %d desired %d, deployment %+v", steady.RunningCount, steady.DesiredCount, first)
	}
	if len(steady.LoadBalancers) != 1 || aws.ToString(steady.LoadBalancers[0].LoadBalancerName) != "web-lb" {
		t.Errorf("loadBalancers = %+v", steady.LoadBalancers)
	}
	if len(steady.Tags) != 1 || aws.ToString(steady.Tags[0].Key) != "team" {
		t.Errorf("tags = %+v", steady.Tags)
	}
	testenv.Eventually(t, "the steady-state event", func() error {
		for _, e := range describeOne(t, c, cluster, "Web_App").Events {
			if aws.ToString(e.Message) == "(service Web_App) has reached a steady state." {
				return nil
			}
		}
		return fmt.Errorf("no steady-state event")
	})

	t.Run("new revision", func(t *testing.T) {
		web2 := testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:2").Port(8080, 0).Obj()
		putFamily(t, web2, 2)
		// A service pinned at creation does not follow the family by itself.
		if got := aws.ToString(describeOne(t, c, cluster, "Web_App").TaskDefinition); !strings.HasSuffix(got, "web:1") {
			t.Errorf("the service moved to %s without an update", got)
		}
		up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App"), TaskDefinition: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		// Answered at once with the new deployment PRIMARY and the old one ACTIVE, so
		// a waiter started now does not pass on the old state.
		deps := up.Service.Deployments
		if len(deps) != 2 || aws.ToString(deps[0].Status) != "PRIMARY" || !strings.HasSuffix(aws.ToString(deps[0].TaskDefinition), "web:2") ||
			aws.ToString(deps[1].Status) != "ACTIVE" {
			t.Fatalf("deployments after update = %+v", deps)
		}
		waitStable(t, c, cluster, "Web_App")
		d := primary(t, describeOne(t, c, cluster, "Web_App"))
		if !strings.HasSuffix(aws.ToString(d.TaskDefinition), "task-definition/web:2") || aws.ToString(d.Id) == aws.ToString(first.Id) {
			t.Errorf("primary after the update = %+v", d)
		}

		list, err := c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String(cluster), Service: aws.String("Web_App")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.ServiceDeployments) != 2 {
			t.Fatalf("service deployments = %+v", list.ServiceDeployments)
		}
		newest := list.ServiceDeployments[0]
		wantDeploymentARN := arnPrefix + "service-deployment/" + cluster + "/Web_App/" + aws.ToString(d.Id)
		if aws.ToString(newest.ServiceDeploymentArn) != wantDeploymentARN || newest.Status != types.ServiceDeploymentStatusSuccessful {
			t.Errorf("newest service deployment = %s %s, want %s SUCCESSFUL", aws.ToString(newest.ServiceDeploymentArn), newest.Status, wantDeploymentARN)
		}
		missingARN := arnPrefix + "service-deployment/" + cluster + "/Web_App/dnothere"
		desc, err := c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{wantDeploymentARN, missingARN}})
		if err != nil {
			t.Fatal(err)
		}
		if len(desc.ServiceDeployments) != 1 || len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" {
			t.Fatalf("describe service deployments = %+v, failures %+v", desc.ServiceDeployments, desc.Failures)
		}
		if tr := desc.ServiceDeployments[0].TargetServiceRevision; tr == nil || tr.RunningTaskCount != 2 {
			t.Errorf("target revision = %+v", tr)
		}
	})

	t.Run("scale", func(t *testing.T) {
		up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App"), DesiredCount: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		if up.Service.DesiredCount != 3 {
			t.Errorf("desiredCount answered %d", up.Service.DesiredCount)
		}
		waitStable(t, c, cluster, "Web_App")
		if got := describeOne(t, c, cluster, "Web_App"); got.RunningCount != 3 {
			t.Errorf("runningCount = %d after scaling to 3", got.RunningCount)
		}
	})

	t.Run("forceNewDeployment", func(t *testing.T) {
		before := primary(t, describeOne(t, c, cluster, "Web_App"))
		if before := describeOne(t, c, cluster, "Web_App"); before.EnableExecuteCommand {
			t.Errorf("enableExecuteCommand of a service created without it: %v", before.EnableExecuteCommand)
		}
		// With ECS Exec switched on, as `aws ecs update-service --enable-execute-command
		// --force-new-deployment` does.
		up, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App"), ForceNewDeployment: true,
			EnableExecuteCommand: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if !up.Service.EnableExecuteCommand {
			t.Error("UpdateService with enableExecuteCommand answered a service without it")
		}
		if len(up.Service.Deployments) != 2 {
			t.Fatalf("deployments after a forced deployment = %+v", up.Service.Deployments)
		}
		waitStable(t, c, cluster, "Web_App")
		after := primary(t, describeOne(t, c, cluster, "Web_App"))
		if aws.ToString(after.Id) == aws.ToString(before.Id) || aws.ToString(after.TaskDefinition) != aws.ToString(before.TaskDefinition) {
			t.Errorf("forced deployment: before %+v, after %+v", before, after)
		}
		// The new deployment's tasks can be exec'd into; DescribeTasks says so.
		list, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String("Web_App")})
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: list.TaskArns})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks.Tasks {
			if !task.EnableExecuteCommand {
				t.Errorf("task %s of the deployment with enableExecuteCommand has it off", aws.ToString(task.TaskArn))
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		del := &ecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App")}
		if _, err := c.DeleteService(ctx, del); apiErrorCode(err) != "InvalidParameterException" ||
			!strings.Contains(err.Error(), "The service cannot be stopped while it is scaled above 0.") {
			t.Fatalf("delete without force: %v", err)
		}
		del.Force = aws.Bool(true)
		out, err := c.DeleteService(ctx, del)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Service.Status) != "DRAINING" || out.Service.DesiredCount != 0 {
			t.Errorf("deleted service = %s desired %d", aws.ToString(out.Service.Status), out.Service.DesiredCount)
		}
		// Not listed once DRAINING, as in ECS.
		list, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster)})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.ServiceArns) != 0 {
			t.Errorf("ListServices after delete = %v", list.ServiceArns)
		}
		w := ecs.NewServicesInactiveWaiter(c, func(o *ecs.ServicesInactiveWaiterOptions) { o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second })
		if err := w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"Web_App"}}, time.Minute); err != nil {
			t.Fatalf("services-inactive: %v", err)
		}
		gone := describeOne(t, c, cluster, "Web_App")
		if aws.ToString(gone.ServiceArn) != wantARN || gone.RunningCount != 0 || len(gone.Deployments) != 0 || len(gone.Tags) != 1 {
			t.Errorf("INACTIVE service = %+v", gone)
		}
		if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App"), DesiredCount: aws.Int32(1)}); apiErrorCode(err) != "ServiceNotActiveException" {
			t.Errorf("update of an INACTIVE service: %v", err)
		}
		if _, err := c.DeleteService(ctx, del); apiErrorCode(err) != "ServiceNotActiveException" {
			t.Errorf("second delete: %v", err)
		}
	})

	t.Run("name reused", func(t *testing.T) {
		again, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("Web_App"),
			TaskDefinition: aws.String("web:1"), DesiredCount: aws.Int32(0)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(again.Service.Status) != "ACTIVE" || !strings.HasSuffix(aws.ToString(again.Service.TaskDefinition), "web:1") {
			t.Errorf("re-created service = %+v", again.Service)
		}
		var records corev1.ConfigMapList
		if err := env.Client.List(ctx, &records, client.InNamespace(u.Namespace), client.HasLabels{"ecs.berth.dev/inactive-service"}); err != nil {
			t.Fatal(err)
		}
		if len(records.Items) != 0 {
			t.Errorf("the INACTIVE record outlived the name's reuse: %d left", len(records.Items))
		}
		// Scaled to 0: deleted without force.
		if _, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String("Web_App")}); err != nil {
			t.Errorf("delete of a service at 0: %v", err)
		}
	})
}

// TestServiceErrors: every refusal CreateService, UpdateService and DescribeServices
// make, with ECS's error type, and one namespace's services invisible to another.
func TestServiceErrors(t *testing.T) {
	s := start(t)
	u := s.newUser("ops", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster := u.Namespace
	newCluster(t, c, cluster, 0, nil)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:1").Port(8080, 0).Obj(), 1)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "vpc").Container("app", "demo:1").Network(ecsv1alpha1.NetworkModeAWSVPC).Obj(), 1)

	base := func(edit func(*ecs.CreateServiceInput)) *ecs.CreateServiceInput {
		in := &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("api"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(0)}
		edit(in)
		return in
	}
	tests := []struct {
		name     string
		in       *ecs.CreateServiceInput
		wantCode string
		wantText string
	}{
		{"no cluster", base(func(in *ecs.CreateServiceInput) { in.Cluster = aws.String("nowhere") }), "ClusterNotFoundException", "Cluster not found."},
		{"no task definition", base(func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("nothing") }), "ClientException", "TaskDefinition not found."},
		{"no such revision", base(func(in *ecs.CreateServiceInput) { in.TaskDefinition = aws.String("web:7") }), "ClientException", "TaskDefinition not found."},
		{"Fargate", base(func(in *ecs.CreateServiceInput) { in.LaunchType = types.LaunchTypeFargate }), "InvalidParameterException", "launchType"},
		{"capacity providers", base(func(in *ecs.CreateServiceInput) {
			in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT")}}
		}), "InvalidParameterException", "capacityProviderStrategy"},
		{"target group", base(func(in *ecs.CreateServiceInput) {
			in.LoadBalancers = []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:eu-west-3:123456789012:targetgroup/x/1"),
				ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}}
		}), "InvalidParameterException", "targetGroupArn"},
		{"port not in the task definition", base(func(in *ecs.CreateServiceInput) {
			in.LoadBalancers = []types.LoadBalancer{{LoadBalancerName: aws.String("lb"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(9999)}}
		}), "InvalidParameterException", "does not have a container port 9999 defined"},
		{"service discovery", base(func(in *ecs.CreateServiceInput) {
			in.ServiceRegistries = []types.ServiceRegistry{{RegistryArn: aws.String("arn:aws:servicediscovery:x")}}
		}), "InvalidParameterException", "serviceRegistries"},
		{"Service Connect", base(func(in *ecs.CreateServiceInput) {
			in.ServiceConnectConfiguration = &types.ServiceConnectConfiguration{Enabled: true}
		}), "InvalidParameterException", "serviceConnectConfiguration"},
		{"EBS volumes", base(func(in *ecs.CreateServiceInput) {
			in.VolumeConfigurations = []types.ServiceVolumeConfiguration{{Name: aws.String("data")}}
		}), "InvalidParameterException", "volumeConfigurations"},
		{"network configuration for bridge", base(func(in *ecs.CreateServiceInput) {
			in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
		}), "InvalidParameterException", "networkConfiguration"},
		{"DAEMON with a count", base(func(in *ecs.CreateServiceInput) { in.SchedulingStrategy = types.SchedulingStrategyDaemon }), "InvalidParameterException", "desiredCount"},
		{"REPLICA without a count", base(func(in *ecs.CreateServiceInput) { in.DesiredCount = nil }), "InvalidParameterException", "desiredCount"},
		{"schema refusal: maximumPercent below 100", base(func(in *ecs.CreateServiceInput) {
			in.DeploymentConfiguration = &types.DeploymentConfiguration{MaximumPercent: aws.Int32(50)}
		}), "InvalidParameterException", "maximumPercent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateService(ctx, tc.in)
			if apiErrorCode(err) != tc.wantCode || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("got %v, want %s saying %q", err, tc.wantCode, tc.wantText)
			}
		})
	}

	// awsvpc takes a network configuration, described back as given.
	vpc, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("vpc"), TaskDefinition: aws.String("vpc"),
		DesiredCount: aws.Int32(0), NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if nc := vpc.Service.NetworkConfiguration; nc == nil || nc.AwsvpcConfiguration == nil || nc.AwsvpcConfiguration.Subnets[0] != "subnet-1" {
		t.Errorf("networkConfiguration = %+v", nc)
	}

	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("nothing"), DesiredCount: aws.Int32(1)}); apiErrorCode(err) != "ServiceNotFoundException" {
		t.Errorf("update of a missing service: %v", err)
	}
	if _, err := c.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String("nothing")}); apiErrorCode(err) != "ServiceNotFoundException" {
		t.Errorf("delete of a missing service: %v", err)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("vpc"), TaskDefinition: aws.String("gone")}); apiErrorCode(err) != "ClientException" {
		t.Errorf("update to a missing task definition: %v", err)
	}
	d, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"vpc", "never-existed"}})
	if err != nil {
		t.Fatal(err)
	}
	wantMissing := "arn:aws:ecs:" + region + ":" + account + ":service/" + cluster + "/never-existed"
	if len(d.Services) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Arn) != wantMissing || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Errorf("describe = %d services, failures %+v", len(d.Services), d.Failures)
	}
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("s%d", i)
	}
	if _, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: eleven}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("11 services in one describe: %v", err)
	}

	// Another account (namespace) sees nothing of this one's services, even by ARN.
	other := s.newUser("other", true)
	oc := s.ecs(other)
	vpcARN := aws.ToString(vpc.Service.ServiceArn)
	testenv.Eventually(t, "the other user's binding to take effect", func() error {
		d, err = oc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{vpcARN}})
		return err
	})
	if len(d.Services) != 0 || len(d.Failures) != 1 {
		t.Errorf("another namespace described %+v", d.Services)
	}
	if _, err := oc.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String(vpcARN)}); apiErrorCode(err) != "ServiceNotFoundException" {
		t.Errorf("another namespace deleting: %v", err)
	}

	t.Run("AccessDenied", func(t *testing.T) {
		reader := newReadOnlyUser(t, u.Namespace)
		rc := s.ecs(reader)
		// The apiserver's authorizer sees a new binding a moment after it is created.
		testenv.Eventually(t, "the reader's binding to take effect", func() error {
			_, err := rc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"vpc"}})
			return err
		})
		if _, err := rc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("vpc"), DesiredCount: aws.Int32(2)}); apiErrorCode(err) != "AccessDeniedException" {
			t.Errorf("a reader updating: %v", err)
		}
		if _, err := rc.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String("vpc")}); apiErrorCode(err) != "AccessDeniedException" {
			t.Errorf("a reader deleting: %v", err)
		}
		// The denied delete left no INACTIVE record: the service is still ACTIVE.
		if got := describeOne(t, c, cluster, "vpc"); aws.ToString(got.Status) != "ACTIVE" {
			t.Errorf("after a denied delete: %s", aws.ToString(got.Status))
		}
		var records corev1.ConfigMapList
		if err := env.Client.List(ctx, &records, client.InNamespace(u.Namespace), client.HasLabels{"ecs.berth.dev/inactive-service"}); err != nil {
			t.Fatal(err)
		}
		if len(records.Items) != 0 {
			t.Errorf("a denied delete wrote %d INACTIVE records", len(records.Items))
		}
	})
}

// newReadOnlyUser is a credential for a user who may read clusters and services in
// ns but change nothing.
func newReadOnlyUser(t *testing.T, ns string) *user {
	t.Helper()
	ctx := context.Background()
	name := "reader-" + ns
	cred, err := auth.NewCredential(ns, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, cred.Secret(harness.APICredentialsNamespace)); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"clusters", "services", "taskdefinitions"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"controllerrevisions"}, Verbs: []string{"get"}},
	}}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), binding)
		_ = env.Client.Delete(context.Background(), role)
	})
	return &user{Namespace: ns, Name: name, Cred: cred}
}

// TestListServices: ECS's paging (10 by default, at most 100), its filters, and a
// DAEMON service (one task per instance, ECS's DAEMON deployment defaults).
func TestListServices(t *testing.T) {
	s := start(t)
	u := s.newUser("lister", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster := u.Namespace
	newCluster(t, c, cluster, 2, nil)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:1").Obj(), 1)

	for i := range 12 {
		if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(fmt.Sprintf("svc-%02d", i)),
			TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
	}
	daemon, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("agent"),
		TaskDefinition: aws.String("web"), SchedulingStrategy: types.SchedulingStrategyDaemon})
	if err != nil {
		t.Fatal(err)
	}
	if dc := daemon.Service.DeploymentConfiguration; aws.ToInt32(dc.MaximumPercent) != 100 || aws.ToInt32(dc.MinimumHealthyPercent) != 0 {
		t.Errorf("DAEMON deploymentConfiguration = %+v, want ECS's 0/100", dc)
	}

	all := map[string]bool{}
	pages := 0
	var token *string
	for {
		out, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.ServiceArns) > 10 {
			t.Errorf("page of %d, ECS's default is 10", len(out.ServiceArns))
		}
		for _, a := range out.ServiceArns {
			if all[a] {
				t.Errorf("%s listed twice", a)
			}
			all[a] = true
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if len(all) != 13 || pages != 2 {
		t.Errorf("listed %d services in %d pages, want 13 in 2", len(all), pages)
	}
	small, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(5)})
	if err != nil || len(small.ServiceArns) != 5 || small.NextToken == nil {
		t.Errorf("maxResults 5: %v %v", small, err)
	}
	if _, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(101)}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("maxResults 101: %v", err)
	}
	daemons, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), SchedulingStrategy: types.SchedulingStrategyDaemon})
	if err != nil || len(daemons.ServiceArns) != 1 || daemons.ServiceArns[0] != aws.ToString(daemon.Service.ServiceArn) {
		t.Errorf("DAEMON services: %v %v", daemons, err)
	}
	fargate, err := c.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cluster), LaunchType: types.LaunchTypeFargate})
	if err != nil || len(fargate.ServiceArns) != 0 {
		t.Errorf("FARGATE services: %v %v", fargate, err)
	}

	waitStable(t, c, cluster, "agent")
	if got := describeOne(t, c, cluster, "agent"); got.DesiredCount != 2 || got.RunningCount != 2 {
		t.Errorf("DAEMON service on 2 instances: desired %d running %d", got.DesiredCount, got.RunningCount)
	}
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("agent"), DesiredCount: aws.Int32(3)}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("desiredCount on a DAEMON service: %v", err)
	}
}
