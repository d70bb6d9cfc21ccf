// Package autoscaling is ECS Service Auto Scaling: for each Service with
// spec.autoScaling, Application Auto Scaling's target tracking policies move
// spec.desiredCount, through the scale subresource, between minCapacity and
// maxCapacity. See docs/autoscaling.md.
//
// One file per concern, each with its table test: policy.go (the decision: each
// policy's ask, how policies combine, cooldowns, suspension, the capacity range),
// metrics.go (where values come from: status.utilization, or a series of the
// manager's Prometheus registry), status.go (status.autoScaling, the ScalingActive
// condition and the Events' messages) and series.go (the auto scaler's own series).
//
// The auto scaler writes spec.desiredCount (field manager berth-autoscaler) and,
// in Service status, only autoScaling and the ScalingActive condition; the service
// controller writes the rest of status and the utilization controller
// status.utilization (docs/architecture.md).
package autoscaling

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

// Defaults of the Reconciler's zero values.
const (
	// DefaultStaleAfter: a utilization older than this is no reading. The
	// utilization controller refreshes it about once a minute, so three minutes
	// survive two missed refreshes.
	DefaultStaleAfter = 3 * time.Minute
	// DefaultEvaluationInterval is how often customized metrics are read, as
	// CloudWatch's one-minute metric period.
	DefaultEvaluationInterval = time.Minute
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/scale,verbs=update
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/status,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconciler auto scales Services.
type Reconciler struct {
	Client client.Client
	// APIReader reads a Service past the cache when a status write conflicts
	// (default: Client).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Gatherer holds the customized metrics: the manager's registry
	// (controller-runtime's metrics.Registry, the default); tests inject one.
	Gatherer prometheus.Gatherer
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// StaleAfter: a status.utilization measured longer ago is no reading
	// (DefaultStaleAfter).
	StaleAfter time.Duration
	// EvaluationInterval: how often customized metrics are read
	// (DefaultEvaluationInterval). Seconds are fine for tests.
	EvaluationInterval time.Duration
	// MaxConcurrentReconciles bounds parallel services (default 2).
	MaxConcurrentReconciles int

	once   sync.Once
	custom *customSource
}

func (r *Reconciler) setDefaults() {
	if r.APIReader == nil {
		r.APIReader = r.Client
	}
	if r.Gatherer == nil {
		r.Gatherer = metrics.Registry
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.StaleAfter == 0 {
		r.StaleAfter = DefaultStaleAfter
	}
	if r.EvaluationInterval == 0 {
		r.EvaluationInterval = DefaultEvaluationInterval
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 2
	}
	r.custom = newCustomSource(r.Gatherer, r.EvaluationInterval)
}

// SetupWithManager watches Services, for the changes the auto scaler acts on.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.once.Do(r.setDefaults)
	return ctrl.NewControllerManagedBy(mgr).
		Named("autoscaling").
		For(&ecsv1alpha1.Service{}, builder.WithPredicates(scalingInputsChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// scalingInputsChanged passes the Service events that can change a decision: a new
// autoScaling (or its removal, to clear status), a new utilization measurement and
// a new desiredCount. The auto scaler's and the service controller's status writes
// pass nothing; customized metrics are read on the reconciler's timer.
func scalingInputsChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			svc, ok := e.Object.(*ecsv1alpha1.Service)
			return ok && (svc.Spec.AutoScaling != nil || svc.Status.AutoScaling != nil)
		},
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*ecsv1alpha1.Service)
			svc, okNew := e.ObjectNew.(*ecsv1alpha1.Service)
			if !okOld || !okNew || (old.Spec.AutoScaling == nil && svc.Spec.AutoScaling == nil) {
				return false
			}
			return !equality.Semantic.DeepEqual(old.Spec.AutoScaling, svc.Spec.AutoScaling) ||
				!ptr.Equal(old.Spec.DesiredCount, svc.Spec.DesiredCount) ||
				!measuredAt(old).Equal(measuredAt(svc))
		},
		DeleteFunc: func(e event.DeleteEvent) bool {
			svc, ok := e.Object.(*ecsv1alpha1.Service)
			return ok && svc.Spec.AutoScaling != nil
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func measuredAt(svc *ecsv1alpha1.Service) time.Time {
	if u := svc.Status.Utilization; u != nil && u.MeasuredAt != nil {
		return u.MeasuredAt.Time
	}
	return time.Time{}
}

// Reconcile reads the policies' metrics, decides, writes desiredCount when the
// decision moves it, then status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.once.Do(r.setDefaults)
	var svc ecsv1alpha1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(&svc))
	ctx = ctrl.LoggerInto(ctx, log)
	if svc.Spec.AutoScaling == nil || svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, r.clearStatus(ctx, &svc)
	}
	if !svc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	now := r.Now()
	policies, due := r.readPolicies(&svc, now)
	target := scalableTargetOf(&svc)
	d := decide(target, policies, now)
	if d.reason != "" {
		if err := r.scale(ctx, &svc, d.next); err != nil {
			return ctrl.Result{}, err
		}
		r.record(ctx, &svc, target, policies, d)
	}
	desiredCapacity.WithLabelValues(svc.Namespace, svc.Name).Set(float64(d.capacity))
	status, reason, msg := scalingActive(svc.Spec.AutoScaling, policies)
	if err := r.writeStatus(ctx, &svc, newStatus(svc.Status.AutoScaling, policies, d, now), status, reason, msg); err != nil {
		return ctrl.Result{}, err
	}
	if due.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: max(due.Sub(now), time.Second)}, nil
}

// readPolicies reads every policy's metric. due is when a reading changes without
// an event saying so (a customized metric is due, a utilization turns stale), or
// zero.
func (r *Reconciler) readPolicies(svc *ecsv1alpha1.Service, now time.Time) (policies []policyInput, due time.Time) {
	tracking := svc.Spec.AutoScaling.TargetTracking
	var custom []*ecsv1alpha1.CustomizedMetric
	for i := range tracking {
		if m := tracking[i].CustomizedMetric; m != nil {
			custom = append(custom, m)
		}
	}
	var customReadings map[string]reading
	if len(custom) > 0 {
		customReadings, due = r.custom.read(client.ObjectKeyFromObject(svc), custom, now)
	} else {
		r.custom.forget(client.ObjectKeyFromObject(svc))
	}
	for i := range tracking {
		p := &tracking[i]
		var rd reading
		if p.CustomizedMetric != nil {
			rd = customReadings[metricKey(p.CustomizedMetric)]
		} else {
			rd = predefinedReading(svc.Status.Utilization, p.PredefinedMetric, now, r.StaleAfter)
			if rd.ok { // one second past the deadline, so it is stale then
				due = earliestSet(due, rd.at.Add(r.StaleAfter+time.Second))
			}
		}
		policies = append(policies, newPolicyInput(p, rd))
	}
	return policies, due
}

func earliestSet(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return earliest(a, b)
}

// scale sets desiredCount through the scale subresource, as `kubectl scale` does. The
// Scale carries the resourceVersion the decision was made on, so a Service changed
// since (a manual scale, a new policy) fails the write instead of being overwritten
// with a decision about what it was.
func (r *Reconciler) scale(ctx context.Context, svc *ecsv1alpha1.Service, n int32) error {
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name, ResourceVersion: svc.ResourceVersion},
		Spec:       autoscalingv1.ScaleSpec{Replicas: n},
	}
	if err := r.Client.SubResource("scale").Update(ctx, svc, client.WithSubResourceBody(scale),
		client.FieldOwner(ecsv1alpha1.FieldManagerAutoScaler)); err != nil {
		return fmt.Errorf("setting desiredCount to %d through the scale subresource: %w", n, err)
	}
	svc.Spec.DesiredCount = &n
	svc.ResourceVersion = scale.ResourceVersion
	return nil
}

// record reports an action that was written: an Event with every policy's value,
// the log and the actions counter.
func (r *Reconciler) record(ctx context.Context, svc *ecsv1alpha1.Service, t scalableTarget, policies []policyInput, d decision) {
	msg := eventMessage(t, policies, d)
	r.Recorder.Eventf(svc, nil, corev1.EventTypeNormal, d.reason, "Scale", "%s", msg)
	direction := "out"
	if d.next < t.current {
		direction = "in"
	}
	actions.WithLabelValues(svc.Namespace, svc.Name, direction).Inc()
	ctrl.LoggerFrom(ctx).Info("scaled", "reason", d.reason, "desiredCount", d.next, "message", msg)
}

// writeStatus writes status.autoScaling and the ScalingActive condition with a merge
// patch. The patch carries an optimistic lock because the condition list is shared
// with the service controller and a merge patch replaces the whole list. On a
// conflict it re-reads the Service past the cache and writes again: after an action
// the record of its time is what holds the cooldown, so it must not be lost to the
// service controller reacting to the new desiredCount. The later action times of
// the two copies win.
func (r *Reconciler) writeStatus(ctx context.Context, svc *ecsv1alpha1.Service, st *ecsv1alpha1.AutoScalingStatus,
	status metav1.ConditionStatus, reason, msg string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		before := svc.DeepCopy()
		laterActions(st, before.Status.AutoScaling)
		svc.Status.AutoScaling = st.DeepCopy()
		conditions.Set(&svc.Status.Conditions, svc.Generation, ecsv1alpha1.ServiceConditionScalingActive, status, reason, msg)
		if equality.Semantic.DeepEqual(before.Status, svc.Status) {
			return nil
		}
		err := r.Client.Status().Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(ecsv1alpha1.FieldManagerAutoScaler))
		if apierrors.IsConflict(err) {
			if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(svc), svc); getErr != nil {
				return getErr
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("writing status.autoScaling: %w", err)
	}
	return nil
}

// clearStatus removes what the auto scaler wrote from a service no longer auto
// scaled.
func (r *Reconciler) clearStatus(ctx context.Context, svc *ecsv1alpha1.Service) error {
	if svc.Status.AutoScaling == nil && meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive) == nil {
		return nil
	}
	before := svc.DeepCopy()
	svc.Status.AutoScaling = nil
	meta.RemoveStatusCondition(&svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive)
	if err := r.Client.Status().Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(ecsv1alpha1.FieldManagerAutoScaler)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("clearing status.autoScaling: %w", err)
	}
	return nil
}

// forget drops what the auto scaler keeps of a service.
func (r *Reconciler) forget(key types.NamespacedName) {
	r.custom.forget(key)
	forgetSeries(key.Namespace, key.Name)
}
