package autoscaling

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestNewStatus(t *testing.T) {
	earlier := &metav1.Time{Time: now.Add(-time.Hour)}
	old := &ecsv1alpha1.AutoScalingStatus{LastScaleOutTime: earlier, LastScaleInTime: earlier}
	at := &metav1.Time{Time: now}
	policies := []policyInput{policy("cpu", 92.25, 50), noReading("mem")}
	desires := []*int32{ptr.To[int32](4), nil}
	metrics := []ecsv1alpha1.PolicyMetric{
		{Policy: "cpu", Value: ptr.To(resource.MustParse("92.25")), DesiredCapacity: ptr.To[int32](4)},
		{Policy: "mem"},
	}
	tests := []struct {
		name   string
		reason string
		want   *ecsv1alpha1.AutoScalingStatus
	}{
		{name: "no action keeps the times", want: &ecsv1alpha1.AutoScalingStatus{Metrics: metrics, DesiredCapacity: ptr.To[int32](4),
			LastScaleOutTime: earlier, LastScaleInTime: earlier}},
		{name: "a scale-out starts its cooldowns", reason: ecsv1alpha1.ReasonScaledOut, want: &ecsv1alpha1.AutoScalingStatus{Metrics: metrics,
			DesiredCapacity: ptr.To[int32](4), LastScaleOutTime: at, LastScaleInTime: earlier}},
		{name: "a scale-in starts its cooldown", reason: ecsv1alpha1.ReasonScaledIn, want: &ecsv1alpha1.AutoScalingStatus{Metrics: metrics,
			DesiredCapacity: ptr.To[int32](4), LastScaleOutTime: earlier, LastScaleInTime: at}},
		{name: "a move into range starts none", reason: ecsv1alpha1.ReasonScaledToRange, want: &ecsv1alpha1.AutoScalingStatus{Metrics: metrics,
			DesiredCapacity: ptr.To[int32](4), LastScaleOutTime: earlier, LastScaleInTime: earlier}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decision{reason: tc.reason, capacity: 4, desires: desires}
			// Status keeps seconds: a sub-second clock is truncated.
			got := newStatus(old, policies, d, now.Add(300*time.Millisecond))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("newStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLaterActions(t *testing.T) {
	early, late := &metav1.Time{Time: now.Add(-time.Hour)}, &metav1.Time{Time: now}
	st := &ecsv1alpha1.AutoScalingStatus{LastScaleOutTime: early, LastScaleInTime: late}
	laterActions(st, &ecsv1alpha1.AutoScalingStatus{LastScaleOutTime: late, LastScaleInTime: early})
	want := &ecsv1alpha1.AutoScalingStatus{LastScaleOutTime: late, LastScaleInTime: late}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("laterActions (-want +got):\n%s", diff)
	}
}

func TestScalingActive(t *testing.T) {
	stale := policy("mem", 0, 60)
	stale.metric, stale.reading = string(ecsv1alpha1.MetricServiceMemory), missing("no running task to measure")
	tests := []struct {
		name       string
		as         ecsv1alpha1.ServiceAutoScaling
		policies   []policyInput
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
	}{
		{name: "every policy has a value", policies: []policyInput{policy("cpu", 1, 50)},
			wantStatus: metav1.ConditionTrue, wantReason: ecsv1alpha1.ReasonMetricsAvailable, wantMsg: "Every policy has a current value"},
		{name: "a policy without a value", policies: []policyInput{policy("cpu", 1, 50), stale},
			wantStatus: metav1.ConditionFalse, wantReason: ecsv1alpha1.ReasonMissingMetrics,
			wantMsg: "policy mem (ECSServiceAverageMemoryUtilization): no running task to measure"},
		{name: "both directions suspended", as: ecsv1alpha1.ServiceAutoScaling{ScaleOutSuspended: true, ScaleInSuspended: true},
			policies: []policyInput{stale}, wantStatus: metav1.ConditionFalse, wantReason: ecsv1alpha1.ReasonScalingSuspended,
			wantMsg: "Scale-out and scale-in are suspended: desiredCount is kept within minCapacity and maxCapacity"},
		{name: "one direction suspended is still active", as: ecsv1alpha1.ServiceAutoScaling{ScaleInSuspended: true},
			policies: []policyInput{policy("cpu", 1, 50)}, wantStatus: metav1.ConditionTrue, wantReason: ecsv1alpha1.ReasonMetricsAvailable,
			wantMsg: "Every policy has a current value"},
		{name: "no policy", wantStatus: metav1.ConditionTrue, wantReason: ecsv1alpha1.ReasonMetricsAvailable,
			wantMsg: "No target tracking policy: desiredCount is kept within minCapacity and maxCapacity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, reason, msg := scalingActive(&tc.as, tc.policies)
			if diff := cmp.Diff([]string{string(tc.wantStatus), tc.wantReason, tc.wantMsg}, []string{string(status), reason, msg}); diff != "" {
				t.Errorf("scalingActive (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventMessage(t *testing.T) {
	cpu := policy("cpu", 92, 50)
	cpu.metric = string(ecsv1alpha1.MetricServiceCPU)
	rps := policy("rps", 10.0/3, 5)
	rps.metric = `requests_total{path="/"}`
	mem := noReading("mem")
	mem.metric = string(ecsv1alpha1.MetricServiceMemory)
	tests := []struct {
		name     string
		target   scalableTarget
		policies []policyInput
		d        decision
		want     string
	}{
		{name: "scale-out", target: target(2, 1, 10), policies: []policyInput{cpu}, d: decision{next: 4, reason: ecsv1alpha1.ReasonScaledOut},
			want: "desiredCount 2 → 4: policy cpu ECSServiceAverageCPUUtilization 92 (target 50)"},
		{name: "every policy's value", target: target(2, 1, 10), policies: []policyInput{cpu, rps, mem},
			d: decision{next: 4, reason: ecsv1alpha1.ReasonScaledOut},
			want: "desiredCount 2 → 4: policy cpu ECSServiceAverageCPUUtilization 92 (target 50), " +
				`policy rps requests_total{path="/"} 3.333 (target 5), policy mem ECSServiceAverageMemoryUtilization no value (none) (target 50)`},
		{name: "into range", target: target(12, 1, 10), d: decision{next: 10, reason: ecsv1alpha1.ReasonScaledToRange},
			want: "desiredCount 12 → 10, within minCapacity 1 and maxCapacity 10"},
		{name: "unset", target: target(0, 2, 10, unset), policies: []policyInput{mem}, d: decision{next: 2, reason: ecsv1alpha1.ReasonScaledToRange},
			want: "desiredCount unset → 2, within minCapacity 2 and maxCapacity 10: policy mem ECSServiceAverageMemoryUtilization no value (none) (target 50)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, eventMessage(tc.target, tc.policies, tc.d)); diff != "" {
				t.Errorf("eventMessage (-want +got):\n%s", diff)
			}
		})
	}
}
