package wire

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeAAS answers every call of the real Application Auto Scaling SDK client with
// answer, and keeps the body the client sent.
func fakeAAS(t *testing.T, answer func(w http.ResponseWriter)) (*aas.Client, *[]byte) {
	t.Helper()
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, _ = io.ReadAll(r.Body)
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return aas.New(aas.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLEEXAMPLE", "secret", ""),
	}), &sent
}

var ignoreSDKInternals = cmpopts.IgnoreUnexported(
	aas.PutScalingPolicyInput{}, aastypes.TargetTrackingScalingPolicyConfiguration{},
	aastypes.CustomizedMetricSpecification{}, aastypes.MetricDimension{},
	aas.DescribeScalableTargetsOutput{}, aastypes.ScalableTarget{}, aastypes.SuspendedState{},
)

// TestApplicationAutoScalingCodecWithTheSDK: what the SDK's own client sends decodes
// into the input it was given (PascalCase members, nested shapes, floats), and what
// the server encodes is what the client reads back, typed errors included.
func TestApplicationAutoScalingCodecWithTheSDK(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 250e6, time.UTC)
	answer := &aas.DescribeScalableTargetsOutput{ScalableTargets: []aastypes.ScalableTarget{{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String("service/default/web"),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		MinCapacity:       aws.Int32(0), MaxCapacity: aws.Int32(10), CreationTime: &created,
		SuspendedState: &aastypes.SuspendedState{DynamicScalingInSuspended: aws.Bool(true)},
	}}}
	c, sent := fakeAAS(t, func(w http.ResponseWriter) { ApplicationAutoScaling.WriteOutput(w, "req-1", answer) })

	got, err := c.DescribeScalableTargets(context.Background(), &aas.DescribeScalableTargetsInput{ServiceNamespace: aastypes.ServiceNamespaceEcs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(answer.ScalableTargets, got.ScalableTargets, ignoreSDKInternals); diff != "" {
		t.Errorf("the SDK read back (-sent +read):\n%s", diff)
	}

	in := &aas.PutScalingPolicyInput{
		PolicyName: aws.String("cpu"), ServiceNamespace: aastypes.ServiceNamespaceEcs,
		ResourceId: aws.String("service/default/web"), ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(0.75), ScaleOutCooldown: aws.Int32(60), DisableScaleIn: aws.Bool(false),
			CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{
				MetricName: aws.String("queue_depth"), Statistic: aastypes.MetricStatisticSum,
				Dimensions: []aastypes.MetricDimension{{Name: aws.String("queue"), Value: aws.String("jobs")}},
			},
		},
	}
	_, _ = c.PutScalingPolicy(context.Background(), in) // the answer (a list of targets) is not PutScalingPolicy's
	var decoded aas.PutScalingPolicyInput
	if err := ApplicationAutoScaling.Unmarshal(*sent, &decoded); err != nil {
		t.Fatalf("decoding what the SDK sent (%s): %v", *sent, err)
	}
	if diff := cmp.Diff(in, &decoded, ignoreSDKInternals); diff != "" {
		t.Errorf("decoded (-SDK's input +decoded):\n%s", diff)
	}
}

func TestApplicationAutoScalingErrorsWithTheSDK(t *testing.T) {
	cases := []struct {
		sent   *Error
		check  func(error) bool
		status int
	}{
		{Errorf(ObjectNotFoundException, "No scalable target found"), func(err error) bool {
			var e *aastypes.ObjectNotFoundException
			return errors.As(err, &e) && e.ErrorMessage() == "No scalable target found"
		}, 400},
		{ApplicationAutoScaling.InvalidParameter("ResourceId", "is required"), func(err error) bool {
			var e *aastypes.ValidationException
			return errors.As(err, &e) && e.ErrorMessage() == "ResourceId: is required"
		}, 400},
		{Errorf(ConcurrentUpdateException, "retry"), func(err error) bool {
			var e *aastypes.ConcurrentUpdateException
			return errors.As(err, &e) && e.ErrorMessage() == "retry"
		}, 500},
	}
	for _, tc := range cases {
		t.Run(tc.sent.Type, func(t *testing.T) {
			c, _ := fakeAAS(t, func(w http.ResponseWriter) { ApplicationAutoScaling.WriteError(w, "req-1", tc.sent) })
			_, err := c.DeregisterScalableTarget(context.Background(), &aas.DeregisterScalableTargetInput{
				ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String("service/default/web"),
				ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
			})
			if !tc.check(err) {
				t.Errorf("the SDK returned %v (%T), want its typed %s with the message", err, err, tc.sent.Type)
			}
			if got := tc.sent.Status(); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
		})
	}
}

// TestServicesNameTheirOwnErrors: a decoding error is each service's invalid-member
// error; the generic types ECS's helpers make are renamed for Application Auto
// Scaling, and its unknown members are named as its model spells them.
func TestServicesNameTheirOwnErrors(t *testing.T) {
	cases := []struct {
		name string
		s    *Service
		err  error
		want *Error
	}{
		{"ECS unknown member", ECS, ECS.Unmarshal([]byte(`{"clusterName":"a","size":1}`), &ecs.CreateClusterInput{}),
			&Error{Type: InvalidParameterException, Message: "size: unknown member: ECS's model has no such field here"}},
		{"AAS unknown member", ApplicationAutoScaling,
			ApplicationAutoScaling.Unmarshal([]byte(`{"ResourceId":"service/a/b","resourceId":"x"}`), &aas.DeregisterScalableTargetInput{}),
			&Error{Type: ValidationException, Message: "resourceId: unknown member: Application Auto Scaling's model has no such field here"}},
		{"AAS wrong type", ApplicationAutoScaling,
			ApplicationAutoScaling.Unmarshal([]byte(`{"MinCapacity":"1"}`), &aas.RegisterScalableTargetInput{}),
			&Error{Type: ValidationException, Message: "MinCapacity: must be a number"}},
		{"ECS's invalid parameter renamed", ApplicationAutoScaling, InvalidParameter("ResourceId", "bad"),
			&Error{Type: ValidationException, Message: "ResourceId: bad"}},
		{"server fault renamed", ApplicationAutoScaling, errors.New("etcd down"),
			&Error{Type: InternalServiceException, Message: "etcd down"}},
		{"its own types kept", ApplicationAutoScaling, Errorf(ObjectNotFoundException, "gone"),
			&Error{Type: ObjectNotFoundException, Message: "gone"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.s.AsError(tc.err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
