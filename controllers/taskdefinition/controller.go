// Package taskdefinition registers TaskDefinition revisions: every change of a
// TaskDefinition's spec becomes an immutable, numbered ControllerRevision; re-applying
// an unchanged spec writes nothing; superseded revisions that nothing uses turn
// INACTIVE and are pruned beyond spec.revisionHistoryLimit. Revisions deregistered
// through the ECS API (internal/revision's Deregistrations) are INACTIVE whatever uses
// them, and those whose deletion was asked for are pruned once nothing uses them. It
// also reports, as the RolledOut condition, whether every Service following the
// family has completed a deployment of the latest revision.
package taskdefinition

import (
	"context"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/usage"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=taskdefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=taskdefinitions/status,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks;services,verbs=get;list;watch

// Reconciler registers revisions for TaskDefinitions.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Usage counts, per family, the tasks that keep each revision in use; shared
	// with the Cluster controller. SetupWithManager makes one when nil.
	Usage *usage.Tracker
	// Window is how long a change of a family's revisions in use waits, joining
	// every other change in the meantime, before the family is reconciled
	// (usage.DefaultWindow when zero).
	Window time.Duration
}

// SetupWithManager watches TaskDefinitions, their ControllerRevisions, the Services
// that use revisions or follow a family, and the tracker's revisions in use.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	var err error
	if r.Usage, r.Window, err = usage.Prepare(mgr.GetCache(), r.Usage, r.Window); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("taskdefinition").
		// The deregistration records are an annotation, which leaves the generation as
		// it is, and they decide revision status and pruning.
		For(&ecsv1alpha1.TaskDefinition{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, deregistrationsChanged()))).
		Owns(&appsv1.ControllerRevision{}).
		// A revision's ACTIVE/INACTIVE state depends on whether any task uses it: the
		// tracker wakes a family only when a revision starts or stops being used, not
		// on every task of it that starts or stops.
		WatchesRawSource(r.Usage.FamilyChanges(r.Window)).
		// A Service's status changes with every task it counts; only its reference
		// and its deployments' revisions, roles and rollout states matter here.
		Watches(&ecsv1alpha1.Service{}, handler.EnqueueRequestsFromMapFunc(familiesOfService),
			builder.WithPredicates(serviceRolloutChanged())).
		Complete(r)
}

// Reconcile registers the current spec as a revision when it changed, then recomputes
// the revision list, prunes old revisions and judges the rollout of the latest one.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var td ecsv1alpha1.TaskDefinition
	if err := r.Client.Get(ctx, req.NamespacedName, &td); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !td.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owner references delete the revisions
	}
	log := ctrl.LoggerFrom(ctx).WithValues("taskDefinition", klog.KObj(&td))
	ctx = ctrl.LoggerInto(ctx, log)
	before := td.DeepCopy()

	s := &state{td: &td}
	for _, phase := range []func(context.Context, *state) error{
		r.validate,
		r.loadRevisions,
		r.loadDeregistrations,
		r.registerRevision,
		r.loadServices,
		r.markUsage,
		r.prune,
	} {
		if err := phase(ctx, s); err != nil {
			setReconcileError(&td, err)
			if perr := r.patchStatus(ctx, before, &td); perr != nil {
				log.Error(perr, "writing status after error")
			}
			return ctrl.Result{}, err
		}
		if s.stop {
			break
		}
	}
	if !s.stop {
		computeStatus(s)
	}
	setRolledOut(&td, s.services)
	if err := r.patchStatus(ctx, before, &td); err != nil {
		return ctrl.Result{}, err
	}
	if s.rejected != "" {
		r.Recorder.Eventf(&td, nil, "Warning", ecsv1alpha1.ReasonInvalidSpec, "Validate", "%s", s.rejected)
	}
	if s.created != nil {
		// Only after the status write that records it, so the Event never announces a
		// revision that status does not show.
		r.Recorder.Eventf(&td, nil, "Normal", ecsv1alpha1.ReasonRevisionCreated, "Register",
			"Registered revision %s:%d", td.Name, s.created.Revision)
	}
	return ctrl.Result{}, nil
}

// patchStatus writes status only when it changed, so an unchanged spec (a GitOps
// re-sync) costs no write.
func (r *Reconciler) patchStatus(ctx context.Context, before, td *ecsv1alpha1.TaskDefinition) error {
	if equality.Semantic.DeepEqual(before.Status, td.Status) {
		return nil
	}
	// The optimistic lock makes a write computed from a stale cache fail (and requeue)
	// instead of overwriting a newer revision list.
	return r.Client.Status().Patch(ctx, td, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(ecsv1alpha1.FieldManagerManager))
}

// familiesOfService maps a Service to the TaskDefinitions (named as their families) it
// names: the keys under which the ServiceFamily index finds it again.
func familiesOfService(_ context.Context, o client.Object) []reconcile.Request {
	s := o.(*ecsv1alpha1.Service)
	fams := index.ServiceFamilies(s)
	out := make([]reconcile.Request, 0, len(fams))
	for _, fam := range fams {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: s.Namespace, Name: fam}})
	}
	return out
}

// deregistrationsChanged passes TaskDefinition updates that change the deregistration
// records.
func deregistrationsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetAnnotations()[ecsv1alpha1.AnnotationDeregistered] !=
				e.ObjectNew.GetAnnotations()[ecsv1alpha1.AnnotationDeregistered]
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// serviceRolloutChanged passes the Service updates that can change which revisions are
// in use or the RolledOut condition: spec.taskDefinition, the deletion mark, and each
// deployment's revision, role (PRIMARY, ACTIVE, INACTIVE) and rollout state. A
// Service's status changes its counts with every task transition; those updates pass
// nothing, so they cost no reconcile (and so no write). Creations and deletions pass.
func serviceRolloutChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.Service), e.ObjectNew.(*ecsv1alpha1.Service)
			return o.Spec.TaskDefinition != n.Spec.TaskDefinition ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
				!slices.EqualFunc(o.Status.Deployments, n.Status.Deployments, sameRollout)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// sameRollout compares what this controller reads of a deployment.
func sameRollout(a, b ecsv1alpha1.Deployment) bool {
	return a.TaskDefinition == b.TaskDefinition && a.Status == b.Status && a.RolloutState == b.RolloutState
}
