package ecsapi

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestInactiveRecordRoundTrip(t *testing.T) {
	desc := types.Service{
		ServiceArn: aws.String("arn:aws:ecs:eu-west-3:123456789012:service/prod/Web_App"), ServiceName: aws.String("Web_App"),
		Status: aws.String("ACTIVE"), DesiredCount: 3, RunningCount: 3, CreatedAt: aws.Time(t0),
		Deployments: []types.Deployment{{Id: aws.String("d1"), Status: aws.String("PRIMARY")}},
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{}},
	}
	rec := inactiveService{UID: "u1", DeletedAt: t0, Service: desc}
	cm, err := newInactiveRecord("ns", "web-app", rec)
	if err != nil {
		t.Fatal(err)
	}
	if errs := validation.IsDNS1123Subdomain(cm.Name); len(errs) > 0 {
		t.Errorf("record name %q: %v", cm.Name, errs)
	}
	if cm.Labels[labelInactiveService] != "web-app" || cm.Namespace != "ns" {
		t.Errorf("record metadata = %+v", cm.ObjectMeta)
	}
	got, err := readInactiveRecord(cm)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got, cmpopts.IgnoreUnexported(types.Service{}, types.Deployment{}, types.Tag{},
		types.DeploymentConfiguration{}, types.DeploymentCircuitBreaker{})); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}

	inactive := got.describe(false)
	if aws.ToString(inactive.Status) != "INACTIVE" || inactive.DesiredCount != 0 || inactive.RunningCount != 0 ||
		len(inactive.Deployments) != 0 || inactive.Deployments == nil || inactive.Events == nil {
		t.Errorf("INACTIVE description = %+v", inactive)
	}
	if inactive.Tags != nil {
		t.Errorf("tags described without include TAGS: %+v", inactive.Tags)
	}
	if tags := got.describe(true).Tags; len(tags) != 1 {
		t.Errorf("tags with include TAGS = %+v", tags)
	}
	if aws.ToString(inactive.ServiceName) != "Web_App" || aws.ToString(inactive.ServiceArn) != aws.ToString(desc.ServiceArn) {
		t.Errorf("the name and ARN must be the deleted service's: %+v", inactive)
	}

	if _, err := readInactiveRecord(&corev1.ConfigMap{}); err == nil {
		t.Error("a ConfigMap without a record read as one")
	}
}

func TestInactiveRecordExpiry(t *testing.T) {
	rec := inactiveService{DeletedAt: t0}
	tests := []struct {
		now  time.Time
		want bool
	}{
		{now: t0, want: false},
		{now: t0.Add(inactiveServiceTTL - time.Second), want: false},
		{now: t0.Add(inactiveServiceTTL), want: true},
		{now: t0.Add(2 * inactiveServiceTTL), want: true},
	}
	for _, tc := range tests {
		if got := rec.expired(tc.now); got != tc.want {
			t.Errorf("expired at +%s = %t, want %t", tc.now.Sub(t0), got, tc.want)
		}
	}
}
