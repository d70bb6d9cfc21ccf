// Package task is the manager's part of a task's lifecycle. Agents own a task's
// runtime state; the manager finishes tasks no agent will ever report on (stopped
// before placement, or bound to an instance that is not registered; finish.go) and
// deletes stopped standalone tasks after the cluster's retention period (collect.go).
// A service's stopped tasks are collected by the service controller, by the same rule.
package task

import (
	"context"
	"time"

	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;clusters,verbs=get;list;watch

// Reconciler finishes and collects tasks.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
}

// SetupWithManager watches tasks and instance deletions.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("task").
		For(&ecsv1alpha1.Task{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*ecsv1alpha1.Task), e.ObjectNew.(*ecsv1alpha1.Task)
				return o.Spec.DesiredStatus != n.Spec.DesiredStatus || o.Status.LastStatus != n.Status.LastStatus ||
					o.Spec.ContainerInstance != n.Spec.ContainerInstance
			},
		})).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(r.tasksOnInstance),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(event.UpdateEvent) bool { return false },
			})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// Reconcile collects a stopped task, or finishes one no agent will report on.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var t ecsv1alpha1.Task
	if err := r.Client.Get(ctx, req.NamespacedName, &t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("task", klog.KObj(&t)))
	if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
		return r.collect(ctx, &t)
	}
	return r.finishUnreported(ctx, &t)
}

// tasksOnInstance requeues the tasks bound to a deleted instance.
func (r *Reconciler) tasksOnInstance(ctx context.Context, o client.Object) []reconcile.Request {
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.MatchingFields{index.TaskInstance: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing tasks of instance", "instance", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(tasks.Items))
	for i := range tasks.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tasks.Items[i])})
	}
	return out
}
