// Package containerinstance times agent heartbeats and keeps each instance's
// scheduling state. Agents renew a Lease (berth-node-lease/<instance>) about every 10
// seconds; the manager notes, on its own clock, when it last saw the renew time change
// and declares the agent disconnected once it has not changed for the grace period.
// The agent's timestamps are never compared with the manager's clock, so clock skew
// between machines does not matter, and after a manager restart every instance gets a
// fresh grace period before it can be declared lost.
package containerinstance

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/inventory"
)

// DefaultGrace is how long an agent may go without renewing its lease before it is
// disconnected; Kubernetes uses 40 s for nodes.
const DefaultGrace = 40 * time.Second

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances/status,verbs=get;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;create

// Reconciler keeps ContainerInstance connectivity and scheduling status.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Grace is the heartbeat grace period (default DefaultGrace).
	Grace time.Duration
	// Now is the manager's clock; tests inject one.
	Now func() time.Time

	mu sync.Mutex
	// seen maps an instance to the lease renew time last observed and when, on the
	// manager's clock, it was observed to change. Empty after a restart: every
	// instance starts with a fresh grace period.
	seen map[string]observation
}

type observation struct {
	renewTime time.Time
	at        time.Time
}

// SetupWithManager watches instances and their leases.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Grace == 0 {
		r.Grace = DefaultGrace
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	r.seen = map[string]observation{}
	if err := mgr.Add(ensureLeaseNamespace{c: mgr.GetClient()}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("containerinstance").
		For(&ecsv1alpha1.ContainerInstance{}).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(instanceOfLease),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetNamespace() == ecsv1alpha1.NodeLeaseNamespace
			}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

func instanceOfLease(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetName()}}}
}

// Reconcile recomputes an instance's connectivity and status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ci ecsv1alpha1.ContainerInstance
	if err := r.Client.Get(ctx, req.NamespacedName, &ci); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("containerInstance", klog.KObj(&ci))
	now := r.Now()

	var lease coordinationv1.Lease
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: ci.Name}, &lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("reading lease: %w", err)
	}
	var renewed *time.Time
	if err == nil && lease.Spec.RenewTime != nil {
		t := lease.Spec.RenewTime.Time
		renewed = &t
	}
	connected, deadline := r.observe(ci.Name, renewed, now)

	wasConnected := ci.Status.AgentConnected
	st := desiredStatus(&ci, connected, renewed != nil, now, r.Grace)
	if statusChanged(&ci, st) {
		ac := ecsac.ContainerInstance(ci.Name).WithStatus(st)
		if err := r.Client.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerManager), client.ForceOwnership); err != nil {
			return ctrl.Result{}, fmt.Errorf("writing status: %w", err)
		}
		if wasConnected != connected {
			if connected {
				log.Info("agent connected")
				r.Recorder.Eventf(&ci, nil, "Normal", ecsv1alpha1.ReasonLeaseRenewed, "Heartbeat", "Agent connected: lease renewed")
			} else {
				log.Info("agent disconnected", "grace", r.Grace)
				r.Recorder.Eventf(&ci, nil, "Warning", ecsv1alpha1.ReasonLeaseExpired, "Heartbeat",
					"Agent disconnected: lease not renewed for %s", r.Grace)
			}
		}
	}
	if connected {
		// A clock deadline: nothing else would wake us if the agent goes quiet.
		return ctrl.Result{RequeueAfter: deadline.Sub(now) + 100*time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// observe records a lease renew time and reports whether the agent is connected, and
// until when, on the manager's clock.
func (r *Reconciler) observe(name string, renewed *time.Time, now time.Time) (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if renewed == nil {
		delete(r.seen, name)
		return false, time.Time{}
	}
	o, ok := r.seen[name]
	if !ok || !o.renewTime.Equal(*renewed) {
		o = observation{renewTime: *renewed, at: now}
		r.seen[name] = o
	}
	deadline := o.at.Add(r.Grace)
	return now.Before(deadline), deadline
}

func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	delete(r.seen, name)
	r.mu.Unlock()
}

// desiredStatus is the manager's part of an instance's status.
func desiredStatus(ci *ecsv1alpha1.ContainerInstance, connected, hasLease bool, now time.Time, grace time.Duration) *ecsac.ContainerInstanceStatusApplyConfiguration {
	state := inventory.Status(ci)
	var connCond, readyCond = conditionArgs{}, conditionArgs{}
	switch {
	case connected:
		connCond = conditionArgs{metav1.ConditionTrue, ecsv1alpha1.ReasonLeaseRenewed, "The agent renews its lease"}
	case !hasLease:
		connCond = conditionArgs{metav1.ConditionFalse, ecsv1alpha1.ReasonAwaitingAgent, "No lease in " + ecsv1alpha1.NodeLeaseNamespace + ": the agent has not started"}
	default:
		connCond = conditionArgs{metav1.ConditionFalse, ecsv1alpha1.ReasonLeaseExpired, fmt.Sprintf("The agent has not renewed its lease for %s", grace)}
	}
	runtimeReady := meta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady)
	switch {
	case !connected:
		readyCond = conditionArgs{metav1.ConditionFalse, connCond.reason, "Not ready: " + connCond.msg}
	case state != ecsv1alpha1.InstanceActive:
		readyCond = conditionArgs{metav1.ConditionFalse, string(state), fmt.Sprintf("The instance is %s", state)}
	case !runtimeReady:
		readyCond = conditionArgs{metav1.ConditionFalse, ecsv1alpha1.ReasonRuntimeDown, "The agent does not report its container runtime ready"}
	default:
		readyCond = conditionArgs{metav1.ConditionTrue, ecsv1alpha1.ReasonReconcileComplete, "The instance accepts tasks"}
	}
	return ecsac.ContainerInstanceStatus().
		WithStatus(state).
		WithAgentConnected(connected).
		WithConditions(
			conditions.Apply(ci.Status.Conditions, ci.Generation, ecsv1alpha1.InstanceConditionConnected, connCond.status, connCond.reason, connCond.msg, now),
			conditions.Apply(ci.Status.Conditions, ci.Generation, ecsv1alpha1.ConditionReady, readyCond.status, readyCond.reason, readyCond.msg, now),
		)
}

type conditionArgs struct {
	status metav1.ConditionStatus
	reason string
	msg    string
}

// statusChanged compares the manager's fields only, so an unchanged instance costs
// no write.
func statusChanged(ci *ecsv1alpha1.ContainerInstance, st *ecsac.ContainerInstanceStatusApplyConfiguration) bool {
	if ci.Status.Status != *st.Status || ci.Status.AgentConnected != *st.AgentConnected {
		return true
	}
	for _, want := range st.Conditions {
		got := meta.FindStatusCondition(ci.Status.Conditions, *want.Type)
		if got == nil || got.Status != *want.Status || got.Reason != *want.Reason || got.Message != *want.Message ||
			got.ObservedGeneration != *want.ObservedGeneration {
			return true
		}
	}
	return false
}

// ensureLeaseNamespace creates the namespace agents put their leases in, once the
// manager starts (agents cannot create namespaces with their narrow permissions).
type ensureLeaseNamespace struct{ c client.Client }

func (e ensureLeaseNamespace) Start(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.NodeLeaseNamespace}}
	for {
		err := e.c.Create(ctx, ns)
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		ctrl.LoggerFrom(ctx).Error(err, "creating the lease namespace; retrying", "namespace", ecsv1alpha1.NodeLeaseNamespace)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

// NeedLeaderElection: any replica may create the namespace.
func (ensureLeaseNamespace) NeedLeaderElection() bool { return false }
