package ecsapi

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Scaling activities are the auto scaler's Events on a Service: it records one,
// after the write, for each change of desiredCount it makes. Berth records no
// activity for decisions not to scale, so IncludeNotScaledActivities adds none.

// scalingReasons are the reasons of the auto scaler's Events.
var scalingReasons = map[string]bool{
	ecsv1alpha1.ReasonScaledOut:     true,
	ecsv1alpha1.ReasonScaledIn:      true,
	ecsv1alpha1.ReasonScaledToRange: true,
}

func describeScalingActivities(ctx context.Context, c *Call, in *aas.DescribeScalingActivitiesInput) (*aas.DescribeScalingActivitiesOutput, error) {
	if err := checkTarget(in.ServiceNamespace, in.ScalableDimension, false); err != nil {
		return nil, err
	}
	if in.ScalableDimension != "" && in.ResourceId == nil {
		return nil, invalid("ResourceId", "is required with ScalableDimension")
	}
	services, err := c.activityServices(ctx, in.ResourceId)
	if err != nil {
		return nil, err
	}
	events, err := c.scalingEvents(ctx, services)
	if err != nil {
		return nil, err
	}
	byKey := map[string]aastypes.ScalingActivity{}
	keys := []string{}
	for i := range events {
		e := &events[i]
		id, ok := services[string(e.InvolvedObject.UID)]
		if !ok || !scalingReasons[e.Reason] {
			continue
		}
		key := newestFirstKey(eventTime(e), string(e.UID))
		byKey[key] = activityOut(e, id)
		keys = append(keys, key)
	}
	keys, next, err := autoScalingPageOf(keys, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &aas.DescribeScalingActivitiesOutput{ScalingActivities: make([]aastypes.ScalingActivity, len(keys)), NextToken: next}
	for i, k := range keys {
		out.ScalingActivities[i] = byKey[k]
	}
	return out, nil
}

// activityServices are the services whose activities are asked for, by UID, with
// their resource IDs: the one a ResourceId names (none when it names no service:
// Application Auto Scaling answers no activities), or every one of the caller's.
func (c *Call) activityServices(ctx context.Context, resourceID *string) (map[string]string, error) {
	out := map[string]string{}
	if resourceID == nil {
		services, err := c.replicaServices(ctx)
		if err != nil {
			return nil, err
		}
		for id, svc := range services {
			out[string(svc.UID)] = id
		}
		return out, nil
	}
	ref, err := parseResourceID("ResourceId", *resourceID)
	if err != nil {
		return nil, err
	}
	svc, err := c.targetService(ctx, ref)
	if err != nil || svc == nil {
		return out, err
	}
	out[string(svc.UID)] = ref.id
	return out, nil
}

// scalingEvents lists the Events of the services: by UID for one service, else
// every Event about a Service in the namespace (the caller then keeps Berth's).
func (c *Call) scalingEvents(ctx context.Context, services map[string]string) ([]corev1.Event, error) {
	if len(services) == 0 {
		return nil, nil
	}
	selector := client.MatchingFields{"involvedObject.kind": "Service"}
	if len(services) == 1 {
		for uid := range services {
			selector = client.MatchingFields{"involvedObject.uid": uid}
		}
	}
	var list corev1.EventList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace), selector); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// activityOut is an Event as a scaling activity. The auto scaler's messages say
// what changed, then why ("desiredCount 2 → 4: policy cpu
// ECSServiceAverageCPUUtilization 92 (target 50)"): the first part is the
// activity's Description, the rest its Cause.
func activityOut(e *corev1.Event, resourceID string) aastypes.ScalingActivity {
	description, cause, ok := strings.Cut(e.Message, ": ")
	if !ok {
		cause = e.Reason
	}
	return aastypes.ScalingActivity{
		ActivityId:        aws.String(string(e.UID)),
		ServiceNamespace:  ecsNamespace,
		ResourceId:        aws.String(resourceID),
		ScalableDimension: ecsDesiredCount,
		Description:       aws.String(description),
		Cause:             aws.String(cause),
		StartTime:         aws.Time(eventFirstTime(e)),
		EndTime:           aws.Time(eventTime(e)),
		StatusCode:        aastypes.ScalingActivityStatusCodeSuccessful,
	}
}

// eventFirstTime is when an Event first happened, whichever API wrote it.
func eventFirstTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
