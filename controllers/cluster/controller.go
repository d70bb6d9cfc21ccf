// Package cluster keeps each Cluster's status counts (instances, services, running and
// pending tasks) and holds a deleted Cluster until no container instance or service
// uses it any more.
package cluster

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/usage"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=clusters,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=clusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;services;tasks,verbs=get;list;watch

// Reconciler counts what runs in each Cluster and guards its deletion.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Usage counts each cluster's running and pending tasks from the Task informer;
	// shared with the TaskDefinition controller. SetupWithManager makes one when nil.
	Usage *usage.Tracker
	// Window is how long a change of a cluster's task counts waits, joining every
	// other change in the meantime, before the cluster is recounted
	// (usage.DefaultWindow when zero).
	Window time.Duration
}

// SetupWithManager watches Clusters and the instances and services that name them,
// and the task counts the tracker keeps. A task event never recounts anything: it
// moves the tracker's counts by its difference, and a burst of them collapses, within
// the window, into one pass and at most one status write.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	var err error
	if r.Usage, r.Window, err = usage.Prepare(mgr.GetCache(), r.Usage, r.Window); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("cluster").
		For(&ecsv1alpha1.Cluster{}, builder.WithPredicates(clusterChanged())).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(clusterOf),
			builder.WithPredicates(createOrDelete())).
		Watches(&ecsv1alpha1.Service{}, handler.EnqueueRequestsFromMapFunc(clusterOf),
			builder.WithPredicates(serviceCountChanged())).
		WatchesRawSource(r.Usage.ClusterChanges(r.Window)).
		Complete(r)
}

// Reconcile ensures the finalizer, recounts, writes the status if it changed and,
// for a deleted Cluster that nothing uses any more, releases the finalizer.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c ecsv1alpha1.Cluster
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("cluster", klog.KObj(&c))
	ctx = ctrl.LoggerInto(ctx, log)
	deleting := !c.DeletionTimestamp.IsZero()
	if deleting && !controllerutil.ContainsFinalizer(&c, ecsv1alpha1.ClusterFinalizer) {
		return ctrl.Result{}, nil // released already; another finalizer keeps it
	}
	if err := r.ensureFinalizer(ctx, &c); err != nil {
		return ctrl.Result{}, err
	}
	before := c.DeepCopy()

	u, err := r.usage(ctx, c.Name)
	if err != nil {
		setReconcileError(&c, err)
		return ctrl.Result{}, errors.Join(err, r.patchStatus(ctx, before, &c))
	}
	setCounts(&c, u)
	setDeletionBlocked(&c, u)
	setCapacityAvailable(&c)
	if err := r.patchStatus(ctx, before, &c); err != nil {
		return ctrl.Result{}, err
	}
	// Only after the status write, so the Event never says more than the status shows.
	if msg, ok := newlyBlocked(before, &c); ok {
		log.Info("cluster deletion blocked", "reason", msg)
		r.Recorder.Eventf(&c, nil, corev1.EventTypeWarning, ecsv1alpha1.ReasonResourcesRemain, "Delete", "%s", msg)
	}
	if deleting && !u.blocksDeletion() {
		return ctrl.Result{}, r.releaseFinalizer(ctx, &c)
	}
	return ctrl.Result{}, nil
}

// patchStatus writes status only when it changed. The manager is the only writer of
// Cluster status, so a plain merge patch cannot erase anyone else's write.
func (r *Reconciler) patchStatus(ctx context.Context, before, c *ecsv1alpha1.Cluster) error {
	if equality.Semantic.DeepEqual(before.Status, c.Status) {
		return nil
	}
	return r.Client.Status().Patch(ctx, c, client.MergeFrom(before), client.FieldOwner(ecsv1alpha1.FieldManagerManager))
}

func clusterOf(_ context.Context, o client.Object) []reconcile.Request {
	var name string
	switch x := o.(type) {
	case *ecsv1alpha1.ContainerInstance:
		name = x.Spec.Cluster
	case *ecsv1alpha1.Service:
		name = x.Spec.Cluster
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
}

// clusterChanged passes Cluster events that need a pass: creation, spec changes,
// deletion and finalizer edits. Status writes (this controller's own) do not.
func clusterChanged() predicate.Predicate {
	return predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero() ||
				!equality.Semantic.DeepEqual(o.GetFinalizers(), n.GetFinalizers()) ||
				capacityChanged(o, n)
		},
	})
}

// createOrDelete passes only creations and deletions: an instance's spec.cluster is
// immutable, so its heartbeats and resource updates never change a count.
func createOrDelete() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// serviceCountChanged passes creations, deletions and the start of a deletion (a
// service being deleted is no longer active).
func serviceCountChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
