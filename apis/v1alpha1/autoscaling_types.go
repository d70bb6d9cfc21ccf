package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service auto scaling condition types and reasons.
const (
	// ServiceConditionScalingActive is True while the auto scaler has the metrics
	// its policies need, False (with the reason) while it cannot act on them.
	ServiceConditionScalingActive = "ScalingActive"

	ReasonMetricsAvailable = "MetricsAvailable"
	ReasonMissingMetrics   = "MissingMetrics"
	ReasonScalingSuspended = "ScalingSuspended"

	// Event reasons of the auto scaler's actions.
	ReasonScaledOut     = "ScaledOut"
	ReasonScaledIn      = "ScaledIn"
	ReasonScaledToRange = "ScaledToRange"
)

// PredefinedMetric names one of ECS's predefined target tracking metrics.
// +kubebuilder:validation:Enum=ECSServiceAverageCPUUtilization;ECSServiceAverageMemoryUtilization
type PredefinedMetric string

const (
	// MetricServiceCPU is the service's CPUUtilization (status.utilization).
	MetricServiceCPU PredefinedMetric = "ECSServiceAverageCPUUtilization"
	// MetricServiceMemory is the service's MemoryUtilization.
	MetricServiceMemory PredefinedMetric = "ECSServiceAverageMemoryUtilization"
)

// MetricStatistic combines the series a customized metric selects.
// +kubebuilder:validation:Enum=Average;Sum;Maximum;Minimum
type MetricStatistic string

const (
	StatisticAverage MetricStatistic = "Average"
	StatisticSum     MetricStatistic = "Sum"
	StatisticMaximum MetricStatistic = "Maximum"
	StatisticMinimum MetricStatistic = "Minimum"
)

// ServiceAutoScaling is ECS Service Auto Scaling for a REPLICA service: Application
// Auto Scaling's scalable target (minimum and maximum capacity, suspension) and its
// target tracking policies, run by the manager. It sets spec.desiredCount through
// the scale subresource; no other autoscaler (HPA, KEDA) may drive the same
// Service. See docs/autoscaling.md.
// +kubebuilder:validation:XValidation:rule="self.maxCapacity >= self.minCapacity",message="maxCapacity must not be below minCapacity",fieldPath=".maxCapacity"
type ServiceAutoScaling struct {
	// minCapacity is the fewest tasks the auto scaler leaves the service with.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MinCapacity int32 `json:"minCapacity"`

	// maxCapacity is the most tasks the auto scaler gives the service.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MaxCapacity int32 `json:"maxCapacity"`

	// scaleOutSuspended and scaleInSuspended stop the policies from adding or
	// removing tasks (Application Auto Scaling's DynamicScalingOutSuspended and
	// DynamicScalingInSuspended); desiredCount is still kept within the capacity
	// bounds.
	// +optional
	ScaleOutSuspended bool `json:"scaleOutSuspended,omitempty"`
	// +optional
	ScaleInSuspended bool `json:"scaleInSuspended,omitempty"`

	// targetTracking policies keep a metric at a target. The service scales out when
	// any policy asks for more tasks, and in only when every policy allows fewer.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	TargetTracking []TargetTrackingPolicy `json:"targetTracking,omitempty"`
}

// TargetTrackingPolicy is a target tracking scaling policy.
// +kubebuilder:validation:XValidation:rule="has(self.predefinedMetric) != has(self.customizedMetric)",message="set exactly one of predefinedMetric and customizedMetric"
// +kubebuilder:validation:XValidation:rule="quantity(string(self.targetValue)).isGreaterThan(quantity('0'))",message="targetValue must be positive",fieldPath=".targetValue"
type TargetTrackingPolicy struct {
	// name of the policy, unique in the service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	Name string `json:"name"`

	// predefinedMetric is ECSServiceAverageCPUUtilization or
	// ECSServiceAverageMemoryUtilization, in percent.
	// +optional
	PredefinedMetric PredefinedMetric `json:"predefinedMetric,omitempty"`

	// customizedMetric is a metric of the manager's Prometheus endpoint.
	// +optional
	CustomizedMetric *CustomizedMetric `json:"customizedMetric,omitempty"`

	// targetValue is the value the policy keeps the metric at (a percentage for
	// the predefined metrics), e.g. 50 or "0.5"; positive.
	// +required
	TargetValue resource.Quantity `json:"targetValue"`

	// scaleOutCooldownSeconds: after a scale-out, further scale-outs wait this
	// long (default 300, as ECS).
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	ScaleOutCooldownSeconds *int32 `json:"scaleOutCooldownSeconds,omitempty"`

	// scaleInCooldownSeconds: after any scaling action, scale-ins wait this long
	// (default 300, as ECS).
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	ScaleInCooldownSeconds *int32 `json:"scaleInCooldownSeconds,omitempty"`

	// disableScaleIn: the policy never removes tasks; other policies and manual
	// changes still may.
	// +optional
	DisableScaleIn bool `json:"disableScaleIn,omitempty"`
}

// CustomizedMetric selects series of the manager's Prometheus metrics (its
// /metrics endpoint) by name and labels. A gauge is used as it is; a counter as its
// rate per second between two evaluations. The metric should fall as tasks are
// added (a per-task figure, such as requests per task).
type CustomizedMetric struct {
	// metricName is the Prometheus metric name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_:][a-zA-Z0-9_:]*$`
	MetricName string `json:"metricName"`

	// labels the series must have (exact values).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels,omitempty"`

	// statistic combines the selected series: Average (default), Sum, Maximum or
	// Minimum.
	// +optional
	// +kubebuilder:default=Average
	Statistic MetricStatistic `json:"statistic,omitempty"`
}

// AutoScalingStatus is what the auto scaler last saw and did.
type AutoScalingStatus struct {
	// metrics are the policies' current values.
	// +optional
	// +listType=map
	// +listMapKey=policy
	// +kubebuilder:validation:MaxItems=10
	Metrics []PolicyMetric `json:"metrics,omitempty"`

	// desiredCapacity is the task count the policies ask for now, within the
	// capacity bounds.
	// +optional
	DesiredCapacity *int32 `json:"desiredCapacity,omitempty"`

	// lastScaleOutTime and lastScaleInTime are the auto scaler's last actions, from
	// which the cooldowns run.
	// +optional
	LastScaleOutTime *metav1.Time `json:"lastScaleOutTime,omitempty"`
	// +optional
	LastScaleInTime *metav1.Time `json:"lastScaleInTime,omitempty"`
}

// PolicyMetric is a target tracking policy's current metric value.
type PolicyMetric struct {
	// policy is the policy's name.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Policy string `json:"policy"`

	// value is the metric's current value; absent when it has none.
	// +optional
	Value *resource.Quantity `json:"value,omitempty"`

	// desiredCapacity is the task count this policy asks for.
	// +optional
	DesiredCapacity *int32 `json:"desiredCapacity,omitempty"`
}
