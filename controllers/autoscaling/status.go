package autoscaling

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// What the auto scaler reports: status.autoScaling, the ScalingActive condition and
// the message of its Events, from the spec, the readings and the decision.

// defaultCooldown is ECS's cooldown, for objects the CRD's defaults did not reach.
const defaultCooldown = 300 * time.Second

// scalableTargetOf is the decision's view of svc.
func scalableTargetOf(svc *ecsv1alpha1.Service) scalableTarget {
	as := svc.Spec.AutoScaling
	t := scalableTarget{min: as.MinCapacity, max: as.MaxCapacity, outSuspended: as.ScaleOutSuspended, inSuspended: as.ScaleInSuspended}
	if svc.Spec.DesiredCount != nil {
		t.current, t.set = *svc.Spec.DesiredCount, true
	}
	if st := svc.Status.AutoScaling; st != nil {
		if st.LastScaleOutTime != nil {
			t.lastOut = st.LastScaleOutTime.Time
		}
		if st.LastScaleInTime != nil {
			t.lastIn = st.LastScaleInTime.Time
		}
	}
	return t
}

// policyInput is the decision's view of policy p with its reading.
func newPolicyInput(p *ecsv1alpha1.TargetTrackingPolicy, r reading) policyInput {
	in := policyInput{
		name:             p.Name,
		metric:           metricName(p),
		target:           p.TargetValue.AsApproximateFloat64(),
		reading:          r,
		scaleOutCooldown: cooldown(p.ScaleOutCooldownSeconds),
		scaleInCooldown:  cooldown(p.ScaleInCooldownSeconds),
		disableScaleIn:   p.DisableScaleIn,
	}
	if in.target <= 0 || math.IsNaN(in.target) { // the CRD refuses it; an older object may have it
		in.reading = missing("targetValue %s is not positive", p.TargetValue.String())
	}
	return in
}

func metricName(p *ecsv1alpha1.TargetTrackingPolicy) string {
	if m := p.CustomizedMetric; m != nil {
		if len(m.Labels) == 0 {
			return m.MetricName
		}
		return m.MetricName + formatLabels(m.Labels)
	}
	return string(p.PredefinedMetric)
}

func cooldown(seconds *int32) time.Duration {
	if seconds == nil {
		return defaultCooldown
	}
	return time.Duration(*seconds) * time.Second
}

// newStatus is status.autoScaling after decision d at now: the policies' values and
// asks, the capacity they ask for, and the time of the action d takes. A move into
// the capacity range starts no cooldown, so it leaves the times alone.
func newStatus(old *ecsv1alpha1.AutoScalingStatus, policies []policyInput, d decision, now time.Time) *ecsv1alpha1.AutoScalingStatus {
	st := &ecsv1alpha1.AutoScalingStatus{DesiredCapacity: ptr.To(d.capacity)}
	if old != nil {
		st.LastScaleOutTime, st.LastScaleInTime = old.LastScaleOutTime, old.LastScaleInTime
	}
	for i, p := range policies {
		pm := ecsv1alpha1.PolicyMetric{Policy: p.name, DesiredCapacity: d.desires[i]}
		if p.reading.ok {
			pm.Value = quantity(p.reading.value)
		}
		st.Metrics = append(st.Metrics, pm)
	}
	at := &metav1.Time{Time: now.Truncate(time.Second)}
	switch d.reason {
	case ecsv1alpha1.ReasonScaledOut:
		st.LastScaleOutTime = at
	case ecsv1alpha1.ReasonScaledIn:
		st.LastScaleInTime = at
	}
	return st
}

// laterActions keeps, of two statuses' action times, the later of each: a status
// computed from a stale copy must not move a cooldown back.
func laterActions(st, live *ecsv1alpha1.AutoScalingStatus) {
	if live == nil {
		return
	}
	later := func(a, b *metav1.Time) *metav1.Time {
		if a == nil || (b != nil && b.After(a.Time)) {
			return b
		}
		return a
	}
	st.LastScaleOutTime = later(st.LastScaleOutTime, live.LastScaleOutTime)
	st.LastScaleInTime = later(st.LastScaleInTime, live.LastScaleInTime)
}

// scalingActive is the ScalingActive condition: False while suspension or missing
// readings keep the policies from acting.
func scalingActive(as *ecsv1alpha1.ServiceAutoScaling, policies []policyInput) (metav1.ConditionStatus, string, string) {
	if len(policies) == 0 {
		return metav1.ConditionTrue, ecsv1alpha1.ReasonMetricsAvailable,
			"No target tracking policy: desiredCount is kept within minCapacity and maxCapacity"
	}
	if as.ScaleOutSuspended && as.ScaleInSuspended {
		return metav1.ConditionFalse, ecsv1alpha1.ReasonScalingSuspended,
			"Scale-out and scale-in are suspended: desiredCount is kept within minCapacity and maxCapacity"
	}
	var missingOnes []string
	for _, p := range policies {
		if !p.reading.ok {
			missingOnes = append(missingOnes, fmt.Sprintf("policy %s (%s): %s", p.name, p.metric, p.reading.why))
		}
	}
	if len(missingOnes) > 0 {
		return metav1.ConditionFalse, ecsv1alpha1.ReasonMissingMetrics, strings.Join(missingOnes, "; ")
	}
	return metav1.ConditionTrue, ecsv1alpha1.ReasonMetricsAvailable, "Every policy has a current value"
}

// eventMessage says what d did and why: the move, then every policy's value.
func eventMessage(t scalableTarget, policies []policyInput, d decision) string {
	from := "unset"
	if t.set {
		from = strconv.Itoa(int(t.current))
	}
	msg := fmt.Sprintf("desiredCount %s → %d", from, d.next)
	if d.reason == ecsv1alpha1.ReasonScaledToRange {
		msg += fmt.Sprintf(", within minCapacity %d and maxCapacity %d", t.min, t.max)
	}
	if len(policies) == 0 {
		return msg
	}
	return msg + ": " + describePolicies(policies)
}

// describePolicies lists each policy's value and target, e.g. "policy cpu
// ECSServiceAverageCPUUtilization 92 (target 50)".
func describePolicies(policies []policyInput) string {
	parts := make([]string, 0, len(policies))
	for _, p := range policies {
		value := "no value (" + p.reading.why + ")"
		if p.reading.ok {
			value = formatValue(p.reading.value)
		}
		parts = append(parts, fmt.Sprintf("policy %s %s %s (target %s)", p.name, p.metric, value, formatValue(p.target)))
	}
	return strings.Join(parts, ", ")
}

func formatValue(v float64) string {
	return strconv.FormatFloat(roundValue(v), 'f', -1, 64)
}

// quantity is v with three decimals, or nil when it has no decimal form.
func quantity(v float64) *resource.Quantity {
	q, err := resource.ParseQuantity(formatValue(v))
	if err != nil {
		return nil
	}
	return &q
}
