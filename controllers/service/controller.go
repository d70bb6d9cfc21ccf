// Package service converges ECS Services: a REPLICA service keeps desiredCount tasks
// of its task definition running, a DAEMON service one task per matching instance,
// and a change of revision (or a forceNewDeployment token) rolls out as a deployment
// bounded by minimumHealthyPercent and maximumPercent, with ECS's circuit breaker.
//
// Task names are deterministic (service, deployment, slot, attempt), so a manager
// restarted with a stale cache, or two managers at once, collide on AlreadyExists
// instead of creating extra tasks: leader election alone does not fence.
//
// One file per policy, each with its table test: classify.go (what each live task
// contributes, instance and health judgment), daemon.go (DAEMON eligibility and
// slots), rollout.go (rollout states and the circuit breaker), converge.go (stops and
// starts from internal/deployment's planner), launch.go (launch backoff and slow-start
// batches), naming.go (task names, slots and attempts), digests.go (image digests a
// deployment pins, versionConsistency), collect.go (stopped-task history) and
// policy.go (the cluster's container policy).
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

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/wakeup"
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
	// MaxWritesPerPass bounds the creates, and the stops, of one pass
	// (DefaultMaxWritesPerPass when 0).
	MaxWritesPerPass int
	// Expectations remember the tasks this manager just created or stopped, so a
	// reconcile on a cache that has not caught up does not repeat the writes.
	Expectations *expectations.Store
	// Placer places tasks before they are created (place.go). Without one, tasks are
	// created unbound and whatever scheduler runs binds them.
	Placer Placer

	// short holds the services short of room, woken through wakeups.
	short   shortOfRoom
	wakeups wakeup.Source
}

// SetupWithManager watches Services, their Tasks, the instances of their clusters,
// their TaskDefinitions and their Clusters' settings.
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
	r.wakeups.Name = "services short of room"
	r.short.wakeups = &r.wakeups
	if r.Placer != nil {
		r.Placer.OnRoom(r.short.room)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("service").
		WatchesRawSource(&r.wakeups).
		For(&ecsv1alpha1.Service{}).
		Owns(&ecsv1alpha1.Task{}, builder.WithPredicates(taskChanged())).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(r.servicesInCluster),
			builder.WithPredicates(instanceChanged())).
		Watches(&ecsv1alpha1.TaskDefinition{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfFamily),
			builder.WithPredicates(latestRevisionChanged())).
		Watches(&ecsv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfCluster),
			builder.WithPredicates(clusterSettingsChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// Reconcile runs one step of the service's convergence.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var svc ecsv1alpha1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.Expectations.Forget(req.String())
			r.short.set(req.NamespacedName, "", false)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(&svc))
	ctx = ctrl.LoggerInto(ctx, log)

	if !svc.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &svc)
	}
	if err := r.ensureFinalizer(ctx, &svc); err != nil {
		return ctrl.Result{}, err
	}

	before := svc.DeepCopy()
	s := newState(&svc, r.Now())
	for _, phase := range []func(context.Context, *state) error{
		r.loadWorld,
		r.resolveTarget,
		r.ensureDeployment,
		r.classifyTasks,
		r.pinImageDigests,
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
	if err := r.writeStatus(ctx, before, &svc); err != nil {
		s.emit(r.Recorder, false)
		return ctrl.Result{}, err
	}
	s.emit(r.Recorder, true)
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// ensureFinalizer adds the finalizer that stops a deleted service's tasks. A merge
// patch replaces the whole finalizer list, so it carries an optimistic lock: computed
// from a stale cache it would drop a finalizer someone else added meanwhile.
func (r *Reconciler) ensureFinalizer(ctx context.Context, svc *ecsv1alpha1.Service) error {
	if controllerutil.ContainsFinalizer(svc, Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(svc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(svc, Finalizer)
	if err := r.Client.Patch(ctx, svc, patch, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// writeStatus writes the status when this pass changed it. The optimistic lock
// matters: deployments are state, and a write based on a stale read (or a second
// manager) must fail and retry rather than overwrite.
func (r *Reconciler) writeStatus(ctx context.Context, before, svc *ecsv1alpha1.Service) error {
	if equality.Semantic.DeepEqual(before.Status, svc.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
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
	var stop []*ecsv1alpha1.Task
	waiting := 0
	for _, t := range s.tasks {
		if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
			continue
		}
		if t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
			stop = append(stop, t)
		}
		// A task on an instance that is gone or unreachable cannot report STOPPED; its
		// agent stops the containers of deleted tasks when it returns.
		if inst, ok := s.instances[t.Spec.ContainerInstance]; ok && inst.Status.AgentConnected {
			waiting++
		}
	}
	if _, err := parallel(ctx, len(stop), func(i int) error {
		// The Service's tasks go with it (their owner reference): none is kept.
		return r.stopTask(ctx, stop[i], ecsv1alpha1.StopServiceSchedulerInitiated, "Service deleted", true)
	}); err != nil {
		return ctrl.Result{}, err
	}
	if waiting > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("waiting for tasks to stop before deleting the service", "tasks", waiting)
		return ctrl.Result{}, nil // task updates requeue us
	}
	// With the optimistic lock for the reason ensureFinalizer gives.
	patch := client.MergeFromWithOptions(svc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(svc, Finalizer)
	if err := r.Client.Patch(ctx, svc, patch, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("removing finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}
