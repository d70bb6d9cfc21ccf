// Package service converges ECS Services: a REPLICA service keeps desiredCount tasks
// of its task definition running, a DAEMON service one task per matching instance,
// and a change of revision (or a forceNewDeployment token) rolls out as a deployment
// bounded by minimumHealthyPercent and maximumPercent, with ECS's circuit breaker.
//
// Task names are deterministic (service, deployment, slot, attempt), so a manager
// restarted with a stale cache, or two managers at once, collide on AlreadyExists
// instead of creating extra tasks: leader election alone does not fence.
package service

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
)

// Finalizer holds a deleted Service until its tasks have stopped.
const Finalizer = "ecs.berth.dev/stop-tasks"

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/finalizers,verbs=update
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;clusters;taskdefinitions,verbs=get;list;watch

// Reconciler converges Services.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Resolver *revision.Resolver
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// MaxConcurrentReconciles bounds parallel services (default 4).
	MaxConcurrentReconciles int
	// Expectations remember the tasks this manager just created or stopped, so a
	// reconcile on a cache that has not caught up does not repeat the writes.
	Expectations *expectations.Store
}

// SetupWithManager watches Services, their Tasks, the instances of their clusters,
// their TaskDefinitions and their Clusters' container policies.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	if r.Expectations == nil {
		r.Expectations = expectations.New()
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("service").
		For(&ecsv1alpha1.Service{}).
		Owns(&ecsv1alpha1.Task{}, builder.WithPredicates(taskChanged())).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(r.servicesInCluster),
			builder.WithPredicates(instanceChanged())).
		Watches(&ecsv1alpha1.TaskDefinition{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfFamily),
			builder.WithPredicates(latestRevisionChanged())).
		Watches(&ecsv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfCluster),
			builder.WithPredicates(containerPolicyChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// Reconcile runs one step of the service's convergence.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var svc ecsv1alpha1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.Expectations.Forget(req.String())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(&svc))
	ctx = ctrl.LoggerInto(ctx, log)

	if !svc.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &svc)
	}
	if !controllerutil.ContainsFinalizer(&svc, Finalizer) {
		patch := client.MergeFrom(svc.DeepCopy())
		controllerutil.AddFinalizer(&svc, Finalizer)
		if err := r.Client.Patch(ctx, &svc, patch, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}

	before := svc.DeepCopy()
	s := newState(&svc, r.Now())
	for _, phase := range []func(context.Context, *state) error{
		r.loadWorld,
		r.resolveTarget,
		r.ensureDeployment,
		r.classifyTasks,
		r.judgeDeployments,
		r.converge,
		r.collectStoppedTasks,
	} {
		if err := phase(ctx, s); err != nil {
			s.emit(r.Recorder, false)
			return ctrl.Result{}, err
		}
	}
	computeStatus(s)
	if !equality.Semantic.DeepEqual(before.Status, svc.Status) {
		// The optimistic lock matters here: deployments are state, and a write based on a
		// stale read (or a second manager) must fail and retry rather than overwrite.
		if err := r.Client.Status().Patch(ctx, &svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
			s.emit(r.Recorder, false)
			return ctrl.Result{}, fmt.Errorf("writing status: %w", err)
		}
	}
	s.emit(r.Recorder, true)
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// finalize stops the service's tasks and releases the Service once they stopped.
func (r *Reconciler) finalize(ctx context.Context, svc *ecsv1alpha1.Service) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(svc, Finalizer) {
		return ctrl.Result{}, nil
	}
	s := newState(svc, r.Now())
	if err := r.loadWorld(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	waiting := 0
	for _, t := range s.tasks {
		if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
			continue
		}
		if t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
			if err := r.stopTask(ctx, t, ecsv1alpha1.StopServiceSchedulerInitiated, "Service deleted"); err != nil {
				return ctrl.Result{}, err
			}
		}
		// A task on an instance that is gone or unreachable cannot report STOPPED; its
		// agent stops the containers of deleted tasks when it returns.
		if inst, ok := s.instances[t.Spec.ContainerInstance]; ok && inst.Status.AgentConnected {
			waiting++
		}
	}
	if waiting > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("waiting for tasks to stop before deleting the service", "tasks", waiting)
		return ctrl.Result{}, nil // task updates requeue us
	}
	patch := client.MergeFrom(svc.DeepCopy())
	controllerutil.RemoveFinalizer(svc, Finalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, svc, patch, client.FieldOwner(ecsv1alpha1.FieldManagerManager)))
}

func (r *Reconciler) servicesInCluster(ctx context.Context, o client.Object) []reconcile.Request {
	ci := o.(*ecsv1alpha1.ContainerInstance)
	var list ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &list, client.MatchingFields{index.ServiceCluster: ci.Spec.Cluster}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing services of cluster", "cluster", ci.Spec.Cluster)
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return out
}

func (r *Reconciler) servicesOfFamily(ctx context.Context, o client.Object) []reconcile.Request {
	var list ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing services", "namespace", o.GetNamespace())
		return nil
	}
	var out []reconcile.Request
	for _, s := range list.Items {
		if index.Family(s.Spec.TaskDefinition) == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
		}
	}
	return out
}

// taskChanged passes the task changes that can change a service's decisions.
func taskChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.Task), e.ObjectNew.(*ecsv1alpha1.Task)
			return o.Status.LastStatus != n.Status.LastStatus ||
				o.Status.HealthStatus != n.Status.HealthStatus ||
				o.Spec.DesiredStatus != n.Spec.DesiredStatus ||
				o.Spec.ContainerInstance != n.Spec.ContainerInstance ||
				o.Status.StopCode != n.Status.StopCode
		},
	}
}

// instanceChanged passes instance changes that matter to placement and health.
func instanceChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.ContainerInstance), e.ObjectNew.(*ecsv1alpha1.ContainerInstance)
			return o.Status.Status != n.Status.Status || o.Status.AgentConnected != n.Status.AgentConnected ||
				o.Spec.Draining != n.Spec.Draining || !equality.Semantic.DeepEqual(o.Spec.Attributes, n.Spec.Attributes) ||
				!equality.Semantic.DeepEqual(o.Status.Attributes, n.Status.Attributes)
		},
	}
}

func latestRevisionChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			return e.ObjectOld.(*ecsv1alpha1.TaskDefinition).Status.LatestRevision !=
				e.ObjectNew.(*ecsv1alpha1.TaskDefinition).Status.LatestRevision
		},
	}
}
