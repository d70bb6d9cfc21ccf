// Package task is the manager's part of a task's lifecycle. Agents own a task's
// runtime state; the manager finishes tasks no agent will ever report on (stopped
// before placement, or bound to an instance that was deregistered) and deletes stopped
// tasks after the cluster's retention period, keeping each service's most recent one.
package task

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/taskrules"
)

const (
	// defaultRetention applies when the task's Cluster object does not exist.
	defaultRetention = 24 * time.Hour
	// bindGrace is how long a task bound at creation (StartTask) may name an instance
	// the cache does not know yet before it is stopped as unreachable.
	bindGrace = 30 * time.Second
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;clusters,verbs=get;list;watch

// Reconciler finishes and collects tasks.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Now is the clock; tests inject one.
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

// Reconcile finishes a task no agent will report on, or collects a stopped one.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var t ecsv1alpha1.Task
	if err := r.Client.Get(ctx, req.NamespacedName, &t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("task", klog.KObj(&t)))
	if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
		return r.collect(ctx, &t)
	}
	if t.Spec.ContainerInstance == "" {
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
			reason := t.Spec.StopReason
			if reason == "" {
				reason = "Stopped before it was placed"
			}
			return ctrl.Result{}, r.finish(ctx, &t, stopCodeOf(&t), reason)
		}
		return ctrl.Result{}, nil
	}
	var ci ecsv1alpha1.ContainerInstance
	err := r.Client.Get(ctx, client.ObjectKey{Name: t.Spec.ContainerInstance}, &ci)
	if apierrors.IsNotFound(err) {
		if wait := t.CreationTimestamp.Add(bindGrace).Sub(r.Now()); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return ctrl.Result{}, r.finish(ctx, &t, ecsv1alpha1.StopInstanceUnreachable,
			fmt.Sprintf("Container instance %s is not registered", t.Spec.ContainerInstance))
	}
	return ctrl.Result{}, err
}

func stopCodeOf(t *ecsv1alpha1.Task) ecsv1alpha1.StopCode {
	if t.Spec.StopCode != "" {
		return t.Spec.StopCode
	}
	return ecsv1alpha1.StopUserInitiated
}

// finish reports a task STOPPED on behalf of an agent that will never do it.
func (r *Reconciler) finish(ctx context.Context, t *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string) error {
	now := metav1.NewTime(r.Now())
	st := ecsac.TaskStatus().
		WithLastStatus(ecsv1alpha1.TaskStopped).
		WithStopCode(code).
		WithStoppedReason(taskrules.TruncateReason(reason)).
		WithStoppedAt(now).
		WithConditions(
			conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionStopped, metav1.ConditionTrue, string(code), reason, now.Time),
		)
	if t.Status.CreatedAt == nil {
		st.WithCreatedAt(t.CreationTimestamp)
	}
	if t.Status.StoppingAt == nil {
		st.WithStoppingAt(now)
	}
	if err := r.Client.Status().Apply(ctx, ecsac.Task(t.Name, t.Namespace).WithStatus(st),
		client.FieldOwner(ecsv1alpha1.FieldManagerManager), client.ForceOwnership); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("marking task stopped: %w", err))
	}
	ctrl.LoggerFrom(ctx).Info("task stopped by the control plane", "stopCode", code, "reason", reason)
	r.Recorder.Eventf(t, nil, "Normal", string(code), "Stop", "%s", reason)
	return nil
}

// collect deletes a stopped task once the cluster's retention period has passed,
// unless it is its service's most recent stopped task.
func (r *Reconciler) collect(ctx context.Context, t *ecsv1alpha1.Task) (ctrl.Result, error) {
	retention := defaultRetention
	var cluster ecsv1alpha1.Cluster
	if err := r.Client.Get(ctx, client.ObjectKey{Name: t.Spec.Cluster}, &cluster); err == nil {
		if s := cluster.Spec.StoppedTaskRetentionSeconds; s != nil {
			retention = time.Duration(*s) * time.Second
		}
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	stopped := t.CreationTimestamp.Time
	if t.Status.StoppedAt != nil {
		stopped = t.Status.StoppedAt.Time
	}
	if wait := stopped.Add(retention).Sub(r.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if svc := t.Labels[ecsv1alpha1.LabelService]; svc != "" {
		newest, err := r.newestStopped(ctx, t.Namespace, svc)
		if err != nil {
			return ctrl.Result{}, err
		}
		if newest == t.Name {
			return ctrl.Result{}, nil // a newer stopped task requeues this one
		}
	}
	uid := t.UID
	if err := r.Client.Delete(ctx, t, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("deleting stopped task: %w", err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("deleted stopped task after retention", "retention", retention)
	return ctrl.Result{}, nil
}

func (r *Reconciler) newestStopped(ctx context.Context, ns, service string) (string, error) {
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.InNamespace(ns), client.MatchingFields{index.TaskService: service},
		client.UnsafeDisableDeepCopy); err != nil {
		return "", err
	}
	var newest string
	var at time.Time
	for i := range tasks.Items {
		t := &tasks.Items[i]
		if t.Status.LastStatus != ecsv1alpha1.TaskStopped || t.Status.StoppedAt == nil {
			continue
		}
		if newest == "" || t.Status.StoppedAt.After(at) || (t.Status.StoppedAt.Equal(&metav1.Time{Time: at}) && t.Name > newest) {
			newest, at = t.Name, t.Status.StoppedAt.Time
		}
	}
	return newest, nil
}

func (r *Reconciler) tasksOnInstance(ctx context.Context, o client.Object) []reconcile.Request {
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.MatchingFields{index.TaskInstance: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(tasks.Items))
	for i := range tasks.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tasks.Items[i])})
	}
	return out
}
