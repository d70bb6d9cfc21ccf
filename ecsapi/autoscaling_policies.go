package ecsapi

import (
	"context"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"k8s.io/apimachinery/pkg/api/resource"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// Scaling policies are the entries of spec.autoScaling.targetTracking, by name.
// Only target tracking is served: step scaling acts on CloudWatch alarms and
// predictive scaling on CloudWatch's forecasts, neither of which Berth has.

// Bounds of the schema (apis/v1alpha1/autoscaling_types.go).
const (
	maxPolicies      = 10
	maxPolicyName    = 128
	maxMetricLabels  = 16
	maxCooldown      = 86400
	minTargetValue   = 1e-9 // quantities keep nine decimal places
	maxTargetValue   = 1e15
	targetTrackingIn = "TargetTrackingScalingPolicyConfiguration"
)

var (
	policyNamePattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	metricNamePattern  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	metricLabelPattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func putScalingPolicy(ctx context.Context, c *Call, in *aas.PutScalingPolicyInput) (*aas.PutScalingPolicyOutput, error) {
	ref, err := scalableTarget(in.ServiceNamespace, in.ScalableDimension, in.ResourceId)
	if err != nil {
		return nil, err
	}
	name := aws.ToString(in.PolicyName)
	policy, err := targetTrackingPolicy(name, in)
	if err != nil {
		return nil, err
	}
	svc, err := c.updateService(ctx, ref, noTarget(ref), func(svc *ecsv1alpha1.Service) error {
		return upsertPolicy(svc.Spec.AutoScaling, policy)
	})
	if err != nil {
		return nil, err
	}
	return &aas.PutScalingPolicyOutput{
		PolicyARN: aws.String(c.ARN.scalingPolicy(svc, ref.id, name)),
		Alarms:    []aastypes.Alarm{},
	}, nil
}

// upsertPolicy replaces the policy of the same name, or adds it.
func upsertPolicy(as *ecsv1alpha1.ServiceAutoScaling, p ecsv1alpha1.TargetTrackingPolicy) error {
	if as == nil {
		return errNotScalable
	}
	for i := range as.TargetTracking {
		if as.TargetTracking[i].Name == p.Name {
			as.TargetTracking[i] = p
			return nil
		}
	}
	if len(as.TargetTracking) >= maxPolicies {
		return wire.Errorf(wire.LimitExceededException, "a scalable target has at most %d scaling policies", maxPolicies)
	}
	as.TargetTracking = append(as.TargetTracking, p)
	return nil
}

// targetTrackingPolicy is the policy a PutScalingPolicy asks for.
func targetTrackingPolicy(name string, in *aas.PutScalingPolicyInput) (ecsv1alpha1.TargetTrackingPolicy, error) {
	var p ecsv1alpha1.TargetTrackingPolicy
	switch {
	case name == "":
		return p, invalid("PolicyName", "is required")
	case len(name) > maxPolicyName || !policyNamePattern.MatchString(name):
		return p, invalid("PolicyName", "%q: Berth's policy names are 1 to %d letters, digits, '_', '.' and '-'", name, maxPolicyName)
	case in.PolicyType != aastypes.PolicyTypeTargetTrackingScaling:
		policyType := in.PolicyType
		if policyType == "" {
			policyType = aastypes.PolicyTypeStepScaling // Application Auto Scaling's default
		}
		return p, invalid("PolicyType", "%s: Berth supports TargetTrackingScaling only (step and predictive scaling need CloudWatch alarms and forecasts)", policyType)
	case in.StepScalingPolicyConfiguration != nil:
		return p, invalid("StepScalingPolicyConfiguration", "Berth supports TargetTrackingScaling only")
	case in.PredictiveScalingPolicyConfiguration != nil:
		return p, invalid("PredictiveScalingPolicyConfiguration", "Berth supports TargetTrackingScaling only")
	case in.TargetTrackingScalingPolicyConfiguration == nil:
		return p, invalid(targetTrackingIn, "is required for a TargetTrackingScaling policy")
	}
	cfg := in.TargetTrackingScalingPolicyConfiguration
	p.Name = name
	var err error
	if p.TargetValue, err = targetValue(cfg.TargetValue); err != nil {
		return p, err
	}
	if p.ScaleOutCooldownSeconds, err = cooldown("ScaleOutCooldown", cfg.ScaleOutCooldown); err != nil {
		return p, err
	}
	if p.ScaleInCooldownSeconds, err = cooldown("ScaleInCooldown", cfg.ScaleInCooldown); err != nil {
		return p, err
	}
	p.DisableScaleIn = aws.ToBool(cfg.DisableScaleIn)
	return p, trackedMetric(&p, cfg)
}

func targetValue(v *float64) (resource.Quantity, error) {
	const member = targetTrackingIn + ".TargetValue"
	switch {
	case v == nil:
		return resource.Quantity{}, invalid(member, "is required")
	case *v < minTargetValue || *v > maxTargetValue:
		return resource.Quantity{}, invalid(member, "must be between %g and %g, not %g", minTargetValue, maxTargetValue, *v)
	}
	q, err := resource.ParseQuantity(strconv.FormatFloat(*v, 'f', -1, 64))
	if err != nil {
		return resource.Quantity{}, invalid(member, "%g: %v", *v, err)
	}
	return q, nil
}

func cooldown(name string, v *int32) (*int32, error) {
	if v != nil && (*v < 0 || *v > maxCooldown) {
		return nil, invalid(targetTrackingIn+"."+name, "must be between 0 and %d seconds, not %d", maxCooldown, *v)
	}
	return v, nil
}

// trackedMetric sets the policy's metric: one of ECS's two predefined service
// metrics, or a metric of the manager's Prometheus endpoint.
func trackedMetric(p *ecsv1alpha1.TargetTrackingPolicy, cfg *aastypes.TargetTrackingScalingPolicyConfiguration) error {
	const predefinedIn = targetTrackingIn + ".PredefinedMetricSpecification"
	switch pre, custom := cfg.PredefinedMetricSpecification, cfg.CustomizedMetricSpecification; {
	case pre != nil && custom != nil:
		return invalid(targetTrackingIn, "set one of PredefinedMetricSpecification and CustomizedMetricSpecification, not both")
	case pre == nil && custom == nil:
		return invalid(targetTrackingIn, "set PredefinedMetricSpecification or CustomizedMetricSpecification")
	case custom != nil:
		m, err := customizedMetric(custom)
		p.CustomizedMetric = m
		return err
	case aws.ToString(pre.ResourceLabel) != "":
		return invalid(predefinedIn+".ResourceLabel", "is for ALBRequestCountPerTarget, which Berth does not serve")
	}
	switch t := cfg.PredefinedMetricSpecification.PredefinedMetricType; t {
	case aastypes.MetricTypeECSServiceAverageCPUUtilization:
		p.PredefinedMetric = ecsv1alpha1.MetricServiceCPU
	case aastypes.MetricTypeECSServiceAverageMemoryUtilization:
		p.PredefinedMetric = ecsv1alpha1.MetricServiceMemory
	case aastypes.MetricTypeALBRequestCountPerTarget:
		return invalid(predefinedIn+".PredefinedMetricType", "Berth has no load balancer request counts (its load balancers are Kubernetes Services); track a CustomizedMetricSpecification of your own instead")
	case aastypes.MetricTypeECSServiceAverageCPUUtilizationHighResolution, aastypes.MetricTypeECSServiceAverageMemoryUtilizationHighResolution:
		return invalid(predefinedIn+".PredefinedMetricType", "%s: Berth measures utilization once per --utilization-interval; use ECSServiceAverageCPUUtilization or ECSServiceAverageMemoryUtilization", t)
	case "":
		return invalid(predefinedIn+".PredefinedMetricType", "is required")
	default:
		return invalid(predefinedIn+".PredefinedMetricType", "%q is not an ECS service metric: Berth tracks ECSServiceAverageCPUUtilization and ECSServiceAverageMemoryUtilization", t)
	}
	return nil
}

// customizedMetric maps a CloudWatch metric to a Prometheus one: the name is the
// metric's, the dimensions its labels. Namespace and Unit are CloudWatch's and are
// ignored.
func customizedMetric(in *aastypes.CustomizedMetricSpecification) (*ecsv1alpha1.CustomizedMetric, error) {
	const member = targetTrackingIn + ".CustomizedMetricSpecification"
	name := aws.ToString(in.MetricName)
	switch {
	case len(in.Metrics) > 0:
		return nil, invalid(member+".Metrics", "metric math is not supported: name one metric with MetricName")
	case name == "":
		return nil, invalid(member+".MetricName", "is required")
	case len(name) > 200 || !metricNamePattern.MatchString(name):
		return nil, invalid(member+".MetricName", "%q is not a Prometheus metric name", name)
	case len(in.Dimensions) > maxMetricLabels:
		return nil, invalid(member+".Dimensions", "at most %d", maxMetricLabels)
	}
	m := &ecsv1alpha1.CustomizedMetric{MetricName: name}
	for i, d := range in.Dimensions {
		label := aws.ToString(d.Name)
		if !metricLabelPattern.MatchString(label) {
			return nil, invalid(member+".Dimensions["+strconv.Itoa(i)+"].Name", "%q is not a Prometheus label name", label)
		}
		if _, dup := m.Labels[label]; dup {
			return nil, invalid(member+".Dimensions["+strconv.Itoa(i)+"].Name", "%q is named twice", label)
		}
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[label] = aws.ToString(d.Value)
	}
	switch in.Statistic {
	case "", aastypes.MetricStatisticAverage:
		m.Statistic = ecsv1alpha1.StatisticAverage
	case aastypes.MetricStatisticSum, aastypes.MetricStatisticMaximum, aastypes.MetricStatisticMinimum:
		m.Statistic = ecsv1alpha1.MetricStatistic(in.Statistic)
	default:
		return nil, invalid(member+".Statistic", "%q: Berth combines series by Average, Sum, Maximum or Minimum", in.Statistic)
	}
	return m, nil
}

// policyConfigOut describes a policy as Application Auto Scaling's configuration.
func policyConfigOut(p *ecsv1alpha1.TargetTrackingPolicy) *aastypes.TargetTrackingScalingPolicyConfiguration {
	// The quantity's exact decimal, not its nearest binary approximation plus noise.
	target, _ := strconv.ParseFloat(p.TargetValue.AsDec().String(), 64)
	out := &aastypes.TargetTrackingScalingPolicyConfiguration{
		TargetValue:      aws.Float64(target),
		ScaleOutCooldown: p.ScaleOutCooldownSeconds,
		ScaleInCooldown:  p.ScaleInCooldownSeconds,
		DisableScaleIn:   aws.Bool(p.DisableScaleIn),
	}
	if p.PredefinedMetric != "" {
		out.PredefinedMetricSpecification = &aastypes.PredefinedMetricSpecification{
			PredefinedMetricType: aastypes.MetricType(p.PredefinedMetric),
		}
	}
	if m := p.CustomizedMetric; m != nil {
		spec := &aastypes.CustomizedMetricSpecification{MetricName: aws.String(m.MetricName), Statistic: aastypes.MetricStatistic(m.Statistic)}
		if spec.Statistic == "" {
			spec.Statistic = aastypes.MetricStatisticAverage
		}
		labels := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			labels = append(labels, k)
		}
		sort.Strings(labels)
		for _, k := range labels {
			spec.Dimensions = append(spec.Dimensions, aastypes.MetricDimension{Name: aws.String(k), Value: aws.String(m.Labels[k])})
		}
		out.CustomizedMetricSpecification = spec
	}
	return out
}

// policyOut describes one policy of a service. A policy was created, as far as
// Berth knows, when its service was.
func policyOut(arns ARNs, svc *ecsv1alpha1.Service, id string, p *ecsv1alpha1.TargetTrackingPolicy) aastypes.ScalingPolicy {
	return aastypes.ScalingPolicy{
		PolicyARN:                                aws.String(arns.scalingPolicy(svc, id, p.Name)),
		PolicyName:                               aws.String(p.Name),
		PolicyType:                               aastypes.PolicyTypeTargetTrackingScaling,
		ServiceNamespace:                         ecsNamespace,
		ResourceId:                               aws.String(id),
		ScalableDimension:                        ecsDesiredCount,
		Alarms:                                   []aastypes.Alarm{},
		CreationTime:                             aws.Time(svc.CreationTimestamp.Time),
		TargetTrackingScalingPolicyConfiguration: policyConfigOut(p),
	}
}

func describeScalingPolicies(ctx context.Context, c *Call, in *aas.DescribeScalingPoliciesInput) (*aas.DescribeScalingPoliciesOutput, error) {
	if err := checkTarget(in.ServiceNamespace, in.ScalableDimension, false); err != nil {
		return nil, err
	}
	if len(in.PolicyNames) > autoScalingPage {
		return nil, invalid("PolicyNames", "at most %d per call", autoScalingPage)
	}
	services, err := c.replicaServices(ctx)
	if err != nil {
		return nil, err
	}
	type found struct {
		id     string
		policy *ecsv1alpha1.TargetTrackingPolicy
	}
	byKey := map[string]found{}
	keys := []string{}
	for id, svc := range services {
		if svc.Spec.AutoScaling == nil || (in.ResourceId != nil && *in.ResourceId != id) {
			continue
		}
		for i := range svc.Spec.AutoScaling.TargetTracking {
			p := &svc.Spec.AutoScaling.TargetTracking[i]
			if len(in.PolicyNames) > 0 && !slices.Contains(in.PolicyNames, p.Name) {
				continue
			}
			key := id + "\x00" + p.Name
			byKey[key] = found{id: id, policy: p}
			keys = append(keys, key)
		}
	}
	keys, next, err := autoScalingPageOf(keys, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &aas.DescribeScalingPoliciesOutput{ScalingPolicies: make([]aastypes.ScalingPolicy, len(keys)), NextToken: next}
	for i, k := range keys {
		f := byKey[k]
		out.ScalingPolicies[i] = policyOut(c.ARN, services[f.id], f.id, f.policy)
	}
	return out, nil
}

func deleteScalingPolicy(ctx context.Context, c *Call, in *aas.DeleteScalingPolicyInput) (*aas.DeleteScalingPolicyOutput, error) {
	ref, err := scalableTarget(in.ServiceNamespace, in.ScalableDimension, in.ResourceId)
	if err != nil {
		return nil, err
	}
	name := aws.ToString(in.PolicyName)
	if name == "" {
		return nil, invalid("PolicyName", "is required")
	}
	missing := wire.Errorf(wire.ObjectNotFoundException,
		"No scaling policy found for service namespace: %s, resource ID: %s, scalable dimension: %s, policy name: %s",
		ecsNamespace, ref.id, ecsDesiredCount, name)
	_, err = c.updateService(ctx, ref, missing, func(svc *ecsv1alpha1.Service) error {
		return removePolicy(svc.Spec.AutoScaling, name)
	})
	if err != nil {
		return nil, err
	}
	return &aas.DeleteScalingPolicyOutput{}, nil
}

// removePolicy removes the named policy.
func removePolicy(as *ecsv1alpha1.ServiceAutoScaling, name string) error {
	if as == nil {
		return errNotScalable
	}
	i := slices.IndexFunc(as.TargetTracking, func(p ecsv1alpha1.TargetTrackingPolicy) bool { return p.Name == name })
	if i < 0 {
		return errNotScalable
	}
	as.TargetTracking = slices.Delete(as.TargetTracking, i, i+1)
	if len(as.TargetTracking) == 0 {
		as.TargetTracking = nil
	}
	return nil
}
