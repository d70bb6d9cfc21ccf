package ecsapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// errText is an error as the caller sees it ("" for none).
func errText(err error) string {
	if err == nil {
		return ""
	}
	e := wire.ApplicationAutoScaling.AsError(err)
	return e.Type + ": " + e.Message
}

func TestCheckTarget(t *testing.T) {
	cases := []struct {
		name      string
		namespace aastypes.ServiceNamespace
		dimension aastypes.ScalableDimension
		required  bool
		wantErr   string
	}{
		{"ecs desired count", "ecs", "ecs:service:DesiredCount", true, ""},
		{"dimension optional", "ecs", "", false, ""},
		{"dimension required", "ecs", "", true, "ValidationException: ScalableDimension: is required"},
		{"no namespace", "", "", false, "ValidationException: ServiceNamespace: is required"},
		{"another namespace", "dynamodb", "", false, `ValidationException: ServiceNamespace: Berth scales ECS services only (ecs), not "dynamodb"`},
		{"another dimension", "ecs", "dynamodb:table:ReadCapacityUnits", false,
			`ValidationException: ScalableDimension: an ECS service's only scalable dimension is ecs:service:DesiredCount, not "dynamodb:table:ReadCapacityUnits"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := errText(checkTarget(tc.namespace, tc.dimension, tc.required)); got != tc.wantErr {
				t.Errorf("got %q, want %q", got, tc.wantErr)
			}
		})
	}
}

func TestParseResourceID(t *testing.T) {
	cases := []struct {
		id      string
		want    targetRef
		wantErr string
	}{
		{id: "service/default/web", want: targetRef{id: "service/default/web", cluster: "default", service: "web", clusterKube: "default", serviceKube: "web"}},
		{id: "service/Prod_EU/Web_App", want: targetRef{id: "service/Prod_EU/Web_App", cluster: "Prod_EU", service: "Web_App", clusterKube: "prod-eu", serviceKube: "web-app"}},
		{id: "", wantErr: "ValidationException: ResourceId: is required"},
		{id: "service/web", wantErr: `ValidationException: ResourceId: "service/web" is not an ECS service's resource ID: want service/<cluster>/<service>`},
		{id: "table/web/x", wantErr: `ValidationException: ResourceId: "table/web/x" is not an ECS service's resource ID: want service/<cluster>/<service>`},
		{id: "service/default/", wantErr: `ValidationException: ResourceId: "service/default/" is not an ECS service's resource ID: want service/<cluster>/<service>`},
		{id: "service/default/___", wantErr: `ValidationException: ResourceId: "___" has no letters or digits to make a name of`},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			got, err := parseResourceID("ResourceId", tc.id)
			if diff := cmp.Diff(tc.wantErr, errText(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(targetRef{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// service is a REPLICA service, auto scaled when as is set.
func service(desired *int32, as *ecsv1alpha1.ServiceAutoScaling) *ecsv1alpha1.Service {
	svc := &ecsv1alpha1.Service{}
	svc.Name, svc.UID = "web", "0b7c2c56-4a8e-4bb4-9d57-3b1a1f3f4a10"
	svc.Spec.SchedulingStrategy, svc.Spec.DesiredCount, svc.Spec.AutoScaling = ecsv1alpha1.SchedulingReplica, desired, as
	return svc
}

var cpu50 = ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceCPU, TargetValue: resource.MustParse("50")}

func TestRegisterTarget(t *testing.T) {
	cases := []struct {
		name    string
		svc     *ecsv1alpha1.Service
		in      aas.RegisterScalableTargetInput
		want    *ecsv1alpha1.ServiceAutoScaling
		wantErr string
	}{
		{
			name: "new target",
			svc:  service(aws.Int32(2), nil),
			in:   aas.RegisterScalableTargetInput{MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(10)},
			want: &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10},
		},
		{
			name: "new target with suspension; scheduled scaling has nothing to suspend",
			svc:  service(aws.Int32(2), nil),
			in: aas.RegisterScalableTargetInput{MinCapacity: aws.Int32(0), MaxCapacity: aws.Int32(3), RoleARN: aws.String("arn:aws:iam::1:role/x"),
				SuspendedState: &aastypes.SuspendedState{DynamicScalingInSuspended: aws.Bool(true), ScheduledScalingSuspended: aws.Bool(true)}},
			want: &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 0, MaxCapacity: 3, ScaleInSuspended: true},
		},
		{
			name:    "new target needs both bounds",
			svc:     service(aws.Int32(2), nil),
			in:      aas.RegisterScalableTargetInput{MaxCapacity: aws.Int32(10)},
			wantErr: "ValidationException: MinCapacity: MinCapacity and MaxCapacity are required to register a new scalable target",
		},
		{
			name: "an update names one bound and keeps the rest, policies included",
			svc:  service(aws.Int32(2), &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10, ScaleOutSuspended: true, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpu50}}),
			in:   aas.RegisterScalableTargetInput{MaxCapacity: aws.Int32(20)},
			want: &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 20, ScaleOutSuspended: true, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpu50}},
		},
		{
			name: "resume scaling out",
			svc:  service(aws.Int32(2), &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10, ScaleOutSuspended: true, ScaleInSuspended: true}),
			in:   aas.RegisterScalableTargetInput{SuspendedState: &aastypes.SuspendedState{DynamicScalingOutSuspended: aws.Bool(false)}},
			want: &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10, ScaleInSuspended: true},
		},
		{
			name:    "an update cannot put max below min",
			svc:     service(aws.Int32(2), &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 4, MaxCapacity: 10}),
			in:      aas.RegisterScalableTargetInput{MaxCapacity: aws.Int32(3)},
			wantErr: "ValidationException: MaxCapacity: 3 is below MinCapacity 4",
		},
		{
			name:    "negative",
			svc:     service(aws.Int32(2), nil),
			in:      aas.RegisterScalableTargetInput{MinCapacity: aws.Int32(-1), MaxCapacity: aws.Int32(3)},
			wantErr: "ValidationException: MinCapacity: must be between 0 and 100000, not -1",
		},
		{
			name:    "beyond the schema",
			svc:     service(aws.Int32(2), nil),
			in:      aas.RegisterScalableTargetInput{MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(100001)},
			wantErr: "ValidationException: MaxCapacity: must be between 0 and 100000, not 100001",
		},
		{
			name: "daemon",
			svc: func() *ecsv1alpha1.Service {
				s := service(nil, nil)
				s.Spec.SchedulingStrategy = ecsv1alpha1.SchedulingDaemon
				return s
			}(),
			in:      aas.RegisterScalableTargetInput{ResourceId: aws.String("service/default/agent"), MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(3)},
			wantErr: "ValidationException: ResourceId: service/default/agent is a DAEMON service: it runs one task on each instance and has no desired count to scale",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.svc.DeepCopy()
			err := registerTarget(tc.svc, &tc.in)
			if diff := cmp.Diff(tc.wantErr, errText(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				if diff := cmp.Diff(before, tc.svc); diff != "" {
					t.Errorf("a refused registration changed the service:\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(tc.want, tc.svc.Spec.AutoScaling); diff != "" {
				t.Errorf("spec.autoScaling (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before.Spec.DesiredCount, tc.svc.Spec.DesiredCount); diff != "" {
				t.Errorf("registering changed desiredCount:\n%s", diff)
			}
		})
	}
}

func TestDeregisterTarget(t *testing.T) {
	cases := []struct {
		name        string
		svc         *ecsv1alpha1.Service
		wantDesired *int32
		wantErr     error
	}{
		{"keeps the desired count the auto scaler set", service(aws.Int32(7), &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10}), aws.Int32(7), nil},
		{"a count never set is the minimum it ran at", service(nil, &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 3, MaxCapacity: 10}), aws.Int32(3), nil},
		{"not registered", service(aws.Int32(2), nil), aws.Int32(2), errNotScalable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := deregisterTarget(tc.svc); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.svc.Spec.AutoScaling != nil {
				t.Errorf("spec.autoScaling = %+v, want none", tc.svc.Spec.AutoScaling)
			}
			if diff := cmp.Diff(tc.wantDesired, tc.svc.Spec.DesiredCount); diff != "" {
				t.Errorf("desiredCount (-want +got):\n%s", diff)
			}
		})
	}
}

// putInput is a PutScalingPolicy of a target tracking policy named cpu.
func putInput(cfg *aastypes.TargetTrackingScalingPolicyConfiguration) *aas.PutScalingPolicyInput {
	return &aas.PutScalingPolicyInput{PolicyName: aws.String("cpu"), PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: cfg}
}

func predefined(t aastypes.MetricType) *aastypes.PredefinedMetricSpecification {
	return &aastypes.PredefinedMetricSpecification{PredefinedMetricType: t}
}

func TestTargetTrackingPolicy(t *testing.T) {
	cases := []struct {
		name    string
		in      *aas.PutScalingPolicyInput
		want    ecsv1alpha1.TargetTrackingPolicy
		wantErr string
	}{
		{
			name: "the brief's CPU policy",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
				PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilization"), ScaleOutCooldown: aws.Int32(60), ScaleInCooldown: aws.Int32(60)}),
			want: ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceCPU, TargetValue: resource.MustParse("50"),
				ScaleOutCooldownSeconds: aws.Int32(60), ScaleInCooldownSeconds: aws.Int32(60)},
		},
		{
			name: "memory, scale-in disabled, cooldowns left to the default",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(72.5),
				PredefinedMetricSpecification: predefined("ECSServiceAverageMemoryUtilization"), DisableScaleIn: aws.Bool(true)}),
			want: ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceMemory, TargetValue: resource.MustParse("72.5"), DisableScaleIn: true},
		},
		{
			name: "customized: dimensions are labels, the CloudWatch namespace and unit are dropped",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(0.5),
				CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("queue_depth"), Namespace: aws.String("MyApp"),
					Unit: aws.String("Count"), Statistic: "Maximum",
					Dimensions: []aastypes.MetricDimension{{Name: aws.String("queue"), Value: aws.String("jobs")}}}}),
			want: ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", TargetValue: resource.MustParse("0.5"),
				CustomizedMetric: &ecsv1alpha1.CustomizedMetric{MetricName: "queue_depth", Labels: map[string]string{"queue": "jobs"}, Statistic: ecsv1alpha1.StatisticMaximum}},
		},
		{
			name: "customized without a statistic averages",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(10),
				CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("inflight")}}),
			want: ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", TargetValue: resource.MustParse("10"),
				CustomizedMetric: &ecsv1alpha1.CustomizedMetric{MetricName: "inflight", Statistic: ecsv1alpha1.StatisticAverage}},
		},
		{
			name:    "ALB request count",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(100), PredefinedMetricSpecification: predefined("ALBRequestCountPerTarget")}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType: Berth has no load balancer request counts (its load balancers are Kubernetes Services); track a CustomizedMetricSpecification of your own instead",
		},
		{
			name:    "high resolution",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50), PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilizationHighResolution")}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType: ECSServiceAverageCPUUtilizationHighResolution: Berth measures utilization once per --utilization-interval; use ECSServiceAverageCPUUtilization or ECSServiceAverageMemoryUtilization",
		},
		{
			name:    "another service's metric",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50), PredefinedMetricSpecification: predefined("DynamoDBReadCapacityUtilization")}),
			wantErr: `ValidationException: TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType: "DynamoDBReadCapacityUtilization" is not an ECS service metric: Berth tracks ECSServiceAverageCPUUtilization and ECSServiceAverageMemoryUtilization`,
		},
		{
			name:    "step scaling",
			in:      &aas.PutScalingPolicyInput{PolicyName: aws.String("cpu"), PolicyType: aastypes.PolicyTypeStepScaling, StepScalingPolicyConfiguration: &aastypes.StepScalingPolicyConfiguration{}},
			wantErr: "ValidationException: PolicyType: StepScaling: Berth supports TargetTrackingScaling only (step and predictive scaling need CloudWatch alarms and forecasts)",
		},
		{
			name:    "no policy type is Application Auto Scaling's default, step scaling",
			in:      &aas.PutScalingPolicyInput{PolicyName: aws.String("cpu")},
			wantErr: "ValidationException: PolicyType: StepScaling: Berth supports TargetTrackingScaling only (step and predictive scaling need CloudWatch alarms and forecasts)",
		},
		{
			name:    "no configuration",
			in:      putInput(nil),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration: is required for a TargetTrackingScaling policy",
		},
		{
			name:    "no target value",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilization")}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.TargetValue: is required",
		},
		{
			name:    "target value zero",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(0), PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilization")}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.TargetValue: must be between 1e-09 and 1e+15, not 0",
		},
		{
			name:    "cooldown",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50), ScaleInCooldown: aws.Int32(86401), PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilization")}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.ScaleInCooldown: must be between 0 and 86400 seconds, not 86401",
		},
		{
			name:    "no metric",
			in:      putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50)}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration: set PredefinedMetricSpecification or CustomizedMetricSpecification",
		},
		{
			name: "metric math",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
				CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{Metrics: []aastypes.TargetTrackingMetricDataQuery{{Id: aws.String("m1")}}}}),
			wantErr: "ValidationException: TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics: metric math is not supported: name one metric with MetricName",
		},
		{
			name: "sample count",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
				CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("x"), Statistic: "SampleCount"}}),
			wantErr: `ValidationException: TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Statistic: "SampleCount": Berth combines series by Average, Sum, Maximum or Minimum`,
		},
		{
			name: "dimension that is no label name",
			in: putInput(&aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
				CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("x"),
					Dimensions: []aastypes.MetricDimension{{Name: aws.String("ok"), Value: aws.String("1")}, {Name: aws.String("Service-Name"), Value: aws.String("web")}}}}),
			wantErr: `ValidationException: TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Dimensions[1].Name: "Service-Name" is not a Prometheus label name`,
		},
		{
			name: "policy name Berth cannot keep",
			in: &aas.PutScalingPolicyInput{PolicyName: aws.String("ECSServiceAverageCPUUtilization:service/c/web"), PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
				TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{}},
			wantErr: `ValidationException: PolicyName: "ECSServiceAverageCPUUtilization:service/c/web": Berth's policy names are 1 to 128 letters, digits, '_', '.' and '-'`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := targetTrackingPolicy(aws.ToString(tc.in.PolicyName), tc.in)
			if diff := cmp.Diff(tc.wantErr, errText(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestPolicyDescribedAsPut: a policy is described with the configuration it was put
// with, less what Berth drops (CloudWatch's namespace and unit) and plus the
// defaults it applies.
func TestPolicyDescribedAsPut(t *testing.T) {
	cases := []*aastypes.TargetTrackingScalingPolicyConfiguration{
		{TargetValue: aws.Float64(50), PredefinedMetricSpecification: predefined("ECSServiceAverageCPUUtilization"),
			ScaleOutCooldown: aws.Int32(60), ScaleInCooldown: aws.Int32(120), DisableScaleIn: aws.Bool(true)},
		{TargetValue: aws.Float64(0.333333333), ScaleOutCooldown: aws.Int32(0), ScaleInCooldown: aws.Int32(300), DisableScaleIn: aws.Bool(false),
			CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{MetricName: aws.String("queue_depth"), Statistic: "Sum",
				Dimensions: []aastypes.MetricDimension{{Name: aws.String("a"), Value: aws.String("1")}, {Name: aws.String("b"), Value: aws.String("")}}}},
	}
	for _, cfg := range cases {
		p, err := targetTrackingPolicy("p", putInput(cfg))
		if err != nil {
			t.Fatal(err)
		}
		got := policyConfigOut(&p)
		if diff := cmp.Diff(cfg, got, cmpopts.IgnoreUnexported(aastypes.TargetTrackingScalingPolicyConfiguration{},
			aastypes.PredefinedMetricSpecification{}, aastypes.CustomizedMetricSpecification{}, aastypes.MetricDimension{})); diff != "" {
			t.Errorf("(-put +described):\n%s", diff)
		}
	}
}

func TestUpsertAndRemovePolicy(t *testing.T) {
	cpu80 := cpu50
	cpu80.TargetValue = resource.MustParse("80")
	mem := ecsv1alpha1.TargetTrackingPolicy{Name: "mem", PredefinedMetric: ecsv1alpha1.MetricServiceMemory, TargetValue: resource.MustParse("60")}
	full := &ecsv1alpha1.ServiceAutoScaling{}
	for i := range maxPolicies {
		p := cpu50
		p.Name = "p" + string(rune('a'+i))
		full.TargetTracking = append(full.TargetTracking, p)
	}
	cases := []struct {
		name    string
		as      *ecsv1alpha1.ServiceAutoScaling
		change  func(*ecsv1alpha1.ServiceAutoScaling) error
		want    []ecsv1alpha1.TargetTrackingPolicy
		wantErr string
	}{
		{"add", &ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpu50}},
			func(as *ecsv1alpha1.ServiceAutoScaling) error { return upsertPolicy(as, mem) },
			[]ecsv1alpha1.TargetTrackingPolicy{cpu50, mem}, ""},
		{"replace by name, in place", &ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpu50, mem}},
			func(as *ecsv1alpha1.ServiceAutoScaling) error { return upsertPolicy(as, cpu80) },
			[]ecsv1alpha1.TargetTrackingPolicy{cpu80, mem}, ""},
		{"an eleventh", full.DeepCopy(),
			func(as *ecsv1alpha1.ServiceAutoScaling) error { return upsertPolicy(as, mem) },
			full.TargetTracking, "LimitExceededException: a scalable target has at most 10 scaling policies"},
		{"replacing in a full target", full.DeepCopy(),
			func(as *ecsv1alpha1.ServiceAutoScaling) error {
				p := full.TargetTracking[3]
				p.DisableScaleIn = true
				return upsertPolicy(as, p)
			},
			func() []ecsv1alpha1.TargetTrackingPolicy {
				l := full.DeepCopy().TargetTracking
				l[3].DisableScaleIn = true
				return l
			}(), ""},
		{"remove", &ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpu50, mem}},
			func(as *ecsv1alpha1.ServiceAutoScaling) error { return removePolicy(as, "cpu") },
			[]ecsv1alpha1.TargetTrackingPolicy{mem}, ""},
		{"remove the last", &ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{mem}},
			func(as *ecsv1alpha1.ServiceAutoScaling) error { return removePolicy(as, "mem") },
			nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.change(tc.as)
			if diff := cmp.Diff(tc.wantErr, errText(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, tc.as.TargetTracking); diff != "" {
				t.Errorf("targetTracking (-want +got):\n%s", diff)
			}
		})
	}
	for name, err := range map[string]error{
		"put without a target":    upsertPolicy(nil, cpu50),
		"delete without a target": removePolicy(nil, "cpu"),
		"delete a missing policy": removePolicy(&ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{mem}}, "cpu"),
	} {
		if !errors.Is(err, errNotScalable) {
			t.Errorf("%s: err = %v, want errNotScalable (answered ObjectNotFoundException)", name, err)
		}
	}
}

func TestActivityOut(t *testing.T) {
	first := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	last := first.Add(time.Minute)
	cases := []struct {
		name  string
		event corev1.Event
		want  aastypes.ScalingActivity
	}{
		{
			name: "the auto scaler's event (events.k8s.io, with a series)",
			event: corev1.Event{ObjectMeta: metav1.ObjectMeta{UID: "e1"}, Reason: ecsv1alpha1.ReasonScaledOut,
				Message:   "desiredCount 2 → 4: policy cpu ECSServiceAverageCPUUtilization 92 (target 50)",
				EventTime: metav1.NewMicroTime(first), Series: &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(last)}},
			want: aastypes.ScalingActivity{ActivityId: aws.String("e1"), Description: aws.String("desiredCount 2 → 4"),
				Cause: aws.String("policy cpu ECSServiceAverageCPUUtilization 92 (target 50)"), StartTime: &first, EndTime: &last},
		},
		{
			name: "no cause in the message: the reason",
			event: corev1.Event{ObjectMeta: metav1.ObjectMeta{UID: "e2"}, Reason: ecsv1alpha1.ReasonScaledToRange,
				Message: "desiredCount 12 → 10, within minCapacity 1 and maxCapacity 10", FirstTimestamp: metav1.NewTime(first), LastTimestamp: metav1.NewTime(first)},
			want: aastypes.ScalingActivity{ActivityId: aws.String("e2"), Description: aws.String("desiredCount 12 → 10, within minCapacity 1 and maxCapacity 10"),
				Cause: aws.String("ScaledToRange"), StartTime: &first, EndTime: &first},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.ServiceNamespace, tc.want.ScalableDimension, tc.want.ResourceId = "ecs", "ecs:service:DesiredCount", aws.String("service/default/web")
			tc.want.StatusCode = aastypes.ScalingActivityStatusCodeSuccessful
			got := activityOut(&tc.event, "service/default/web")
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(aastypes.ScalingActivity{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutoScalingARNs(t *testing.T) {
	arns := ARNs{Region: "eu-west-1", Account: "123456789012"}
	svc := service(aws.Int32(1), nil)
	policy := arns.scalingPolicy(svc, "service/prod/web", "cpu")
	shape := regexp.MustCompile(`^arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}:resource/ecs/service/prod/web:policyName/cpu$`)
	if !shape.MatchString(policy) {
		t.Errorf("policy ARN %s is not of the shape %s", policy, shape)
	}
	if again := arns.scalingPolicy(svc.DeepCopy(), "service/prod/web", "cpu"); again != policy {
		t.Errorf("policy ARN not deterministic: %s, then %s", policy, again)
	}
	other := svc.DeepCopy()
	other.UID = "another-uid"
	if arns.scalingPolicy(other, "service/prod/web", "cpu") == policy {
		t.Error("a service created again under the same name must get new policy ARNs")
	}
	target := arns.scalableTarget(svc)
	if !regexp.MustCompile(`^arn:aws:application-autoscaling:eu-west-1:123456789012:scalable-target/[0-9a-f]{32}$`).MatchString(target) {
		t.Errorf("scalable target ARN %s", target)
	}
	if want := "arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"; arns.autoScalingRole() != want {
		t.Errorf("role %s, want %s", arns.autoScalingRole(), want)
	}
}

// TestDocsListEveryAutoScalingAction: the Application Auto Scaling section of
// docs/ecs-api.md names every action of its model, the served ones before its "Not
// served" list and the others in it.
func TestDocsListEveryAutoScalingAction(t *testing.T) {
	raw, err := os.ReadFile("../docs/ecs-api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Application Auto Scaling\n")
	if !ok {
		t.Fatal(`docs/ecs-api.md has no "## Application Auto Scaling" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	served, notServed, ok := strings.Cut(section, "Not served (")
	if !ok {
		t.Fatal(`the Application Auto Scaling section has no "Not served (" list`)
	}
	for action := range autoScalingKnown {
		name := "`" + action + "`"
		_, isServed := autoScalingOperations[action]
		switch {
		case isServed && !strings.Contains(served, name):
			t.Errorf("%s is served but not listed among the served actions", action)
		case !isServed && !strings.Contains(notServed, name):
			t.Errorf("%s is not served and not listed in the Not served list with why", action)
		}
	}
	for action := range autoScalingOperations {
		if !autoScalingKnown[action] {
			t.Errorf("%s is served but is no action of Application Auto Scaling's model", action)
		}
	}
}

// TestActionsNotServed: an action of either model that Berth does not serve is
// refused in that service's words, naming the action; a name that is no action of
// it is UnknownOperationException. Each is counted under its own label.
func TestActionsNotServed(t *testing.T) {
	s := New(Options{Config: Config{Region: "us-east-1", AccountID: "000000000000"}, AnonymousNamespace: "default", Log: logr.Discard()})
	cases := []struct {
		target     string
		wantStatus int
		wantBody   map[string]string
		wantMetric string
	}{
		{"AnyScaleFrontendService.PutScheduledAction", 400,
			map[string]string{"__type": "ValidationException", "Message": "PutScheduledAction is not supported by Berth (docs/ecs-api.md lists the actions it serves)"},
			`berth_ecs_api_requests_total{action="application-autoscaling:PutScheduledAction",code="ValidationException"} 1`},
		{"AnyScaleFrontendService.ScaleEverything", 400,
			map[string]string{"__type": "UnknownOperationException", "Message": "ScaleEverything is not an Application Auto Scaling action"},
			`berth_ecs_api_requests_total{action="application-autoscaling:ScaleEverything",code="UnknownOperationException"} 1`},
		{"AmazonEC2ContainerServiceV20141113.ExecuteCommand", 400,
			map[string]string{"__type": "UnsupportedFeatureException", "message": "ExecuteCommand is not supported by Berth's ECS API, which has no Session Manager: run `berth exec TASK -- COMMAND` (docs/exec.md) for tasks started with enableExecuteCommand"},
			`berth_ecs_api_requests_total{action="ExecuteCommand",code="UnsupportedFeatureException"} 1`},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
			r.Header.Set("X-Amz-Target", tc.target)
			r.Header.Set("Content-Type", wire.ContentType)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("answer %q: %v", w.Body, err)
			}
			if w.Code != tc.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantBody, body); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			m := httptest.NewRecorder()
			s.MetricsHandler().ServeHTTP(m, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if !strings.Contains(m.Body.String(), tc.wantMetric) {
				t.Errorf("metrics have no %s", tc.wantMetric)
			}
		})
	}
}
