package ecsapi

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/ecsimport"
	"github.com/berthdev/berth/test/testobj"
)

// autoScaling is the SDK's Application Auto Scaling client signed with u's
// credential, at the same endpoint as ECS. Retries are off: a test sees each answer
// as sent.
func (s *stack) autoScaling(u *user) *aas.Client {
	return aas.New(aas.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(u.Cred.AccessKeyID, u.Cred.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

// The target of every call: an ECS service's desired count.
const (
	ecsNS   = aastypes.ServiceNamespaceEcs
	desired = aastypes.ScalableDimensionECSServiceDesiredCount
)

var (
	quantityEqual = cmp.Comparer(func(a, b apiresource.Quantity) bool { return a.Cmp(b) == 0 })
	sdkInternals  = cmpopts.IgnoreUnexported(aastypes.ScalableTarget{}, aastypes.SuspendedState{}, aastypes.ScalingPolicy{},
		aastypes.TargetTrackingScalingPolicyConfiguration{}, aastypes.PredefinedMetricSpecification{},
		aastypes.CustomizedMetricSpecification{}, aastypes.MetricDimension{}, aastypes.ScalingActivity{})
)

// getService reads a Service as the apiserver has it.
func getService(t *testing.T, ns, name string) *ecsv1alpha1.Service {
	t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

// TestApplicationAutoScaling drives a service's auto scaling as an ECS user's
// script does, with the SDK's Application Auto Scaling client on Berth's endpoint:
// register the service as a scalable target, put target tracking policies, describe
// them, read the scaling activities, delete a policy, deregister. Every step is
// checked against the Service's spec.autoScaling, which is what the manager acts
// on. The cluster and service have ECS names that are no Kubernetes names.
func TestApplicationAutoScaling(t *testing.T) {
	s := start(t)
	u := s.newUser("scaler", true)
	c, as := s.ecs(u), s.autoScaling(u)
	ctx := context.Background()
	cluster := "Scale_" + u.Namespace
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: ecsimport.KubeName(cluster, 63)}})
	})
	putFamily(t, testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:1").Obj(), 1)
	for _, in := range []*ecs.CreateServiceInput{
		{ServiceName: aws.String("Web_App"), DesiredCount: aws.Int32(2)},
		{ServiceName: aws.String("idle"), DesiredCount: aws.Int32(1)},
		{ServiceName: aws.String("agent"), SchedulingStrategy: types.SchedulingStrategyDaemon},
	} {
		in.Cluster, in.TaskDefinition = aws.String(cluster), aws.String("web")
		if _, err := c.CreateService(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	web := "service/" + cluster + "/Web_App"

	registered, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ecsNS, ResourceId: aws.String(web), ScalableDimension: desired,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(10),
	})
	if err != nil {
		t.Fatal(err)
	}
	targetARN := regexp.MustCompile(`^arn:aws:application-autoscaling:` + region + `:` + account + `:scalable-target/[0-9a-f]{32}$`)
	if !targetARN.MatchString(aws.ToString(registered.ScalableTargetARN)) {
		t.Errorf("ScalableTargetARN = %s", aws.ToString(registered.ScalableTargetARN))
	}
	// An update names what changes; suspension is kept on the spec.
	if _, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: ecsNS, ResourceId: aws.String(web), ScalableDimension: desired, MaxCapacity: aws.Int32(20),
		SuspendedState: &aastypes.SuspendedState{DynamicScalingOutSuspended: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}

	cpu := &aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
		PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization},
		ScaleOutCooldown:              aws.Int32(60), ScaleInCooldown: aws.Int32(60)}
	queue := &aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(2.5),
		CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("queue_depth"), Namespace: aws.String("MyApp"),
			Statistic: aastypes.MetricStatisticSum, Dimensions: []aastypes.MetricDimension{{Name: aws.String("queue"), Value: aws.String("jobs")}}},
		DisableScaleIn: aws.Bool(true)}
	policyARN := regexp.MustCompile(`^arn:aws:autoscaling:` + region + `:` + account +
		`:scalingPolicy:[0-9a-f-]{36}:resource/ecs/` + regexp.QuoteMeta(web) + `:policyName/(cpu|queue)$`)
	for name, cfg := range map[string]*aastypes.TargetTrackingScalingPolicyConfiguration{"cpu": cpu, "queue": queue} {
		put, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{PolicyName: aws.String(name), ServiceNamespace: ecsNS,
			ResourceId: aws.String(web), ScalableDimension: desired, PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
			TargetTrackingScalingPolicyConfiguration: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if !policyARN.MatchString(aws.ToString(put.PolicyARN)) || put.Alarms == nil || len(put.Alarms) != 0 {
			t.Errorf("PutScalingPolicy %s answered ARN %s, alarms %v", name, aws.ToString(put.PolicyARN), put.Alarms)
		}
	}

	wantSpec := &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 20, ScaleOutSuspended: true,
		TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{
			{Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceCPU, TargetValue: apiresource.MustParse("50"),
				ScaleOutCooldownSeconds: aws.Int32(60), ScaleInCooldownSeconds: aws.Int32(60)},
			{Name: "queue", TargetValue: apiresource.MustParse("2.5"), DisableScaleIn: true,
				CustomizedMetric: &ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "jobs"}, Statistic: ecsv1alpha1.StatisticSum},
				// The schema's defaults, as ECS's.
				ScaleOutCooldownSeconds: aws.Int32(300), ScaleInCooldownSeconds: aws.Int32(300)},
		}}
	svc := getService(t, u.Namespace, "web-app")
	sortPolicies := cmpopts.SortSlices(func(a, b ecsv1alpha1.TargetTrackingPolicy) bool { return a.Name < b.Name })
	if diff := cmp.Diff(wantSpec, svc.Spec.AutoScaling, quantityEqual, sortPolicies); diff != "" {
		t.Errorf("the Service's spec.autoScaling (-want +got):\n%s", diff)
	}
	if aws.ToInt32(svc.Spec.DesiredCount) != 2 {
		t.Errorf("desiredCount = %v, want 2: registering leaves the count to the auto scaler", svc.Spec.DesiredCount)
	}

	t.Run("describe the target", func(t *testing.T) {
		got, err := as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ecsNS})
		if err != nil {
			t.Fatal(err)
		}
		want := []aastypes.ScalableTarget{{ServiceNamespace: ecsNS, ResourceId: aws.String(web), ScalableDimension: desired,
			MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(20), CreationTime: aws.Time(svc.CreationTimestamp.Time),
			RoleARN:           aws.String("arn:aws:iam::" + account + ":role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"),
			ScalableTargetARN: registered.ScalableTargetARN,
			SuspendedState: &aastypes.SuspendedState{DynamicScalingInSuspended: aws.Bool(false), DynamicScalingOutSuspended: aws.Bool(true),
				ScheduledScalingSuspended: aws.Bool(false)}}}
		if diff := cmp.Diff(want, got.ScalableTargets, sdkInternals); diff != "" {
			t.Errorf("DescribeScalableTargets (-want +got):\n%s", diff)
		}
		other, err := as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ecsNS,
			ResourceIds: []string{"service/" + cluster + "/idle"}})
		if err != nil || len(other.ScalableTargets) != 0 {
			t.Errorf("a service that is not registered is described: %+v, %v", other, err)
		}
	})

	t.Run("describe the policies as put", func(t *testing.T) {
		got, err := as.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ecsNS, ResourceId: aws.String(web)})
		if err != nil {
			t.Fatal(err)
		}
		queueOut := *queue
		queueOut.CustomizedMetricSpecification = &aastypes.CustomizedMetricSpecification{MetricName: aws.String("queue_depth"),
			Statistic: aastypes.MetricStatisticSum, Dimensions: queue.CustomizedMetricSpecification.Dimensions} // no CloudWatch namespace
		queueOut.ScaleOutCooldown, queueOut.ScaleInCooldown = aws.Int32(300), aws.Int32(300)
		cpuOut := *cpu
		cpuOut.DisableScaleIn = aws.Bool(false)
		var want []aastypes.ScalingPolicy
		for _, p := range []struct {
			name string
			cfg  *aastypes.TargetTrackingScalingPolicyConfiguration
		}{{"cpu", &cpuOut}, {"queue", &queueOut}} {
			want = append(want, aastypes.ScalingPolicy{PolicyName: aws.String(p.name), PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
				ServiceNamespace: ecsNS, ResourceId: aws.String(web), ScalableDimension: desired, Alarms: []aastypes.Alarm{},
				CreationTime: aws.Time(svc.CreationTimestamp.Time), TargetTrackingScalingPolicyConfiguration: p.cfg})
		}
		if diff := cmp.Diff(want, got.ScalingPolicies, sdkInternals, cmpopts.IgnoreFields(aastypes.ScalingPolicy{}, "PolicyARN")); diff != "" {
			t.Errorf("DescribeScalingPolicies (-want +got):\n%s", diff)
		}
		// One page of one, then the rest: the SDK's paginator walks them.
		var names []string
		pages := aas.NewDescribeScalingPoliciesPaginator(as, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ecsNS, MaxResults: aws.Int32(1)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.ScalingPolicies {
				names = append(names, aws.ToString(p.PolicyName))
			}
		}
		if diff := cmp.Diff([]string{"cpu", "queue"}, names); diff != "" {
			t.Errorf("paged policies (-want +got):\n%s", diff)
		}
	})

	t.Run("errors name the member", func(t *testing.T) {
		idle := "service/" + cluster + "/idle"
		target := func(id string) (*string, aastypes.ServiceNamespace, aastypes.ScalableDimension) {
			return aws.String(id), ecsNS, desired
		}
		call := map[string]func() error{
			"register a service that does not exist": func() error {
				id, ns, dim := target("service/" + cluster + "/nothing")
				_, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
				return err
			},
			"register a DAEMON service": func() error {
				id, ns, dim := target("service/" + cluster + "/agent")
				_, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
				return err
			},
			"register with max below min": func() error {
				id, ns, dim := target(web)
				_, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim, MinCapacity: aws.Int32(30)})
				return err
			},
			"another service namespace": func() error {
				_, err := as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: aastypes.ServiceNamespaceDynamodb})
				return err
			},
			"a resource ID of another shape": func() error {
				_, ns, dim := target("")
				_, err := as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ResourceId: aws.String("table/orders"), ServiceNamespace: ns, ScalableDimension: dim})
				return err
			},
			"a policy for a service not registered": func() error {
				id, ns, dim := target(idle)
				_, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{PolicyName: aws.String("cpu"), ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim,
					PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: cpu})
				return err
			},
			"step scaling": func() error {
				id, ns, dim := target(web)
				_, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{PolicyName: aws.String("steps"), ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim,
					PolicyType: aastypes.PolicyTypeStepScaling, StepScalingPolicyConfiguration: &aastypes.StepScalingPolicyConfiguration{}})
				return err
			},
			"ALB request count": func() error {
				id, ns, dim := target(web)
				_, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{PolicyName: aws.String("alb"), ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim,
					PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
						TargetValue: aws.Float64(100), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeALBRequestCountPerTarget}}})
				return err
			},
			"delete a policy that does not exist": func() error {
				id, ns, dim := target(web)
				_, err := as.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("nothing"), ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim})
				return err
			},
			"deregister a service not registered": func() error {
				id, ns, dim := target(idle)
				_, err := as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim})
				return err
			},
			"a next token this API never gave": func() error {
				_, err := as.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ecsNS, NextToken: aws.String("%%%")})
				return err
			},
			"scheduled scaling": func() error {
				id, ns, dim := target(web)
				_, err := as.PutScheduledAction(ctx, &aas.PutScheduledActionInput{ScheduledActionName: aws.String("night"), Schedule: aws.String("cron(0 22 * * ? *)"),
					ResourceId: id, ServiceNamespace: ns, ScalableDimension: dim})
				return err
			},
		}
		tests := []struct {
			name, wantCode, wantText string
		}{
			{"register a service that does not exist", "ValidationException", "ResourceId: ECS service doesn't exist: service/" + cluster + "/nothing"},
			{"register a DAEMON service", "ValidationException", "ResourceId: service/" + cluster + "/agent is a DAEMON service"},
			{"register with max below min", "ValidationException", "MaxCapacity: 20 is below MinCapacity 30"},
			{"another service namespace", "ValidationException", `ServiceNamespace: Berth scales ECS services only (ecs), not "dynamodb"`},
			{"a resource ID of another shape", "ValidationException", `ResourceId: "table/orders" is not an ECS service's resource ID`},
			{"a policy for a service not registered", "ObjectNotFoundException", "No scalable target found for service namespace: ecs, resource ID: service/" + cluster + "/idle"},
			{"step scaling", "ValidationException", "PolicyType: StepScaling: Berth supports TargetTrackingScaling only"},
			{"ALB request count", "ValidationException", "PredefinedMetricType: Berth has no load balancer request counts"},
			{"delete a policy that does not exist", "ObjectNotFoundException", "policy name: nothing"},
			{"deregister a service not registered", "ObjectNotFoundException", "resource ID: service/" + cluster + "/idle"},
			{"a next token this API never gave", "InvalidNextTokenException", "NextToken"},
			{"scheduled scaling", "ValidationException", "PutScheduledAction is not supported by Berth"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := call[tc.name]()
				if apiErrorCode(err) != tc.wantCode || !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("got %v, want %s saying %q", err, tc.wantCode, tc.wantText)
				}
			})
		}
		if diff := cmp.Diff(wantSpec, getService(t, u.Namespace, "web-app").Spec.AutoScaling, quantityEqual, sortPolicies); diff != "" {
			t.Errorf("a refused call changed spec.autoScaling (-want +got):\n%s", diff)
		}
		reader := newReadOnlyUser(t, u.Namespace)
		_, err := s.autoScaling(reader).DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("cpu"),
			ResourceId: aws.String(web), ServiceNamespace: ecsNS, ScalableDimension: desired})
		if apiErrorCode(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "application-autoscaling:DeleteScalingPolicy") {
			t.Errorf("a user without patch on services: %v, want AccessDeniedException naming application-autoscaling:DeleteScalingPolicy", err)
		}
	})

	t.Run("scaling activities are the auto scaler's events", func(t *testing.T) {
		t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
		idle := getService(t, u.Namespace, "idle")
		record := []struct {
			on      *ecsv1alpha1.Service
			reason  string
			message string
			at      time.Time
		}{
			{svc, ecsv1alpha1.ReasonScaledOut, "desiredCount 2 → 4: policy cpu ECSServiceAverageCPUUtilization 92 (target 50)", t0},
			{svc, ecsv1alpha1.ReasonScaledIn, "desiredCount 4 → 3: policy cpu ECSServiceAverageCPUUtilization 31 (target 50)", t0.Add(10 * time.Minute)},
			{svc, "DeploymentCompleted", "not an activity", t0.Add(20 * time.Minute)},
			{idle, ecsv1alpha1.ReasonScaledToRange, "desiredCount 0 → 1, within minCapacity 1 and maxCapacity 3", t0.Add(5 * time.Minute)},
		}
		uids := make([]string, len(record))
		for i, r := range record {
			e := &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Namespace: u.Namespace, GenerateName: r.on.Name + "."},
				InvolvedObject: corev1.ObjectReference{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Service",
					Namespace: u.Namespace, Name: r.on.Name, UID: r.on.UID},
				Reason: r.reason, Message: r.message, Type: corev1.EventTypeNormal, Count: 1,
				FirstTimestamp: metav1.NewTime(r.at), LastTimestamp: metav1.NewTime(r.at),
				Source: corev1.EventSource{Component: "berth-manager"},
			}
			if err := env.Client.Create(ctx, e); err != nil {
				t.Fatal(err)
			}
			uids[i] = string(e.UID)
		}
		activity := func(i int, id, description, cause string) aastypes.ScalingActivity {
			at := record[i].at
			return aastypes.ScalingActivity{ActivityId: aws.String(uids[i]), ServiceNamespace: ecsNS, ResourceId: aws.String(id),
				ScalableDimension: desired, Description: aws.String(description), Cause: aws.String(cause),
				StartTime: &at, EndTime: &at, StatusCode: aastypes.ScalingActivityStatusCodeSuccessful}
		}
		scaledIn := activity(1, web, "desiredCount 4 → 3", "policy cpu ECSServiceAverageCPUUtilization 31 (target 50)")
		ranged := activity(3, "service/"+cluster+"/idle", "desiredCount 0 → 1, within minCapacity 1 and maxCapacity 3", "ScaledToRange")
		scaledOut := activity(0, web, "desiredCount 2 → 4", "policy cpu ECSServiceAverageCPUUtilization 92 (target 50)")

		got, err := as.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ecsNS, ResourceId: aws.String(web), ScalableDimension: desired})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]aastypes.ScalingActivity{scaledIn, scaledOut}, got.ScalingActivities, sdkInternals); diff != "" {
			t.Errorf("the service's activities, newest first (-want +got):\n%s", diff)
		}
		var all []aastypes.ScalingActivity
		pages := aas.NewDescribeScalingActivitiesPaginator(as, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ecsNS, MaxResults: aws.Int32(1)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.ScalingActivities...)
		}
		if diff := cmp.Diff([]aastypes.ScalingActivity{scaledIn, ranged, scaledOut}, all, sdkInternals); diff != "" {
			t.Errorf("every service's activities, a page of one at a time (-want +got):\n%s", diff)
		}
	})

	t.Run("delete a policy, then deregister", func(t *testing.T) {
		if _, err := as.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{PolicyName: aws.String("queue"),
			ResourceId: aws.String(web), ServiceNamespace: ecsNS, ScalableDimension: desired}); err != nil {
			t.Fatal(err)
		}
		got := getService(t, u.Namespace, "web-app").Spec.AutoScaling
		if got == nil || len(got.TargetTracking) != 1 || got.TargetTracking[0].Name != "cpu" || got.MaxCapacity != 20 {
			t.Errorf("after deleting queue, spec.autoScaling = %+v, want the target with cpu alone", got)
		}
		before := getService(t, u.Namespace, "web-app").Spec.DesiredCount
		if _, err := as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{
			ResourceId: aws.String(web), ServiceNamespace: ecsNS, ScalableDimension: desired}); err != nil {
			t.Fatal(err)
		}
		after := getService(t, u.Namespace, "web-app")
		if after.Spec.AutoScaling != nil || aws.ToInt32(after.Spec.DesiredCount) != aws.ToInt32(before) || before == nil {
			t.Errorf("after deregistering: autoScaling %+v, desiredCount %v (was %v); want none, and the count kept",
				after.Spec.AutoScaling, after.Spec.DesiredCount, before)
		}
		left, err := as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ecsNS})
		if err != nil || len(left.ScalableTargets) != 0 {
			t.Errorf("targets after deregistering: %+v, %v", left, err)
		}
		if _, err := as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{
			ResourceId: aws.String(web), ServiceNamespace: ecsNS, ScalableDimension: desired}); apiErrorCode(err) != "ObjectNotFoundException" {
			t.Errorf("deregistering again: %v, want ObjectNotFoundException", err)
		}
	})
}
