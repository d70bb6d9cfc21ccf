package taskdefinition

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/internal/validation"
)

// defaultRevisionHistoryLimit is how many INACTIVE revisions are kept when the spec
// does not say.
const defaultRevisionHistoryLimit = 10

// state is what one reconcile learns, passed from phase to phase.
type state struct {
	td *ecsv1alpha1.TaskDefinition
	// stop ends the reconcile after the current phase (invalid spec).
	stop bool
	// revisions of this family that this TaskDefinition owns, oldest first.
	revisions []appsv1.ControllerRevision
	// deregistrations are the revisions deregistered through the ECS API.
	deregistrations revision.Deregistrations
	// created is set when this reconcile registered a revision.
	created *appsv1.ControllerRevision
	// rejected is the reason a spec that was not rejected before (or for another
	// reason) is rejected now: the moment to tell the user, once, in an Event.
	rejected string
	// inUse holds the revision numbers a non-stopped Task or a Service uses.
	inUse map[int32]bool
	// services of the namespace that name the family, in spec or in a deployment.
	services []ecsv1alpha1.Service
}

func (s *state) latest() *appsv1.ControllerRevision {
	if len(s.revisions) == 0 {
		return nil
	}
	return &s.revisions[len(s.revisions)-1]
}

// validate runs the checks CEL cannot express. An invalid spec registers no revision.
func (r *Reconciler) validate(ctx context.Context, s *state) error {
	setHonoured(s.td)
	errs := validation.TaskDefinitionSpec(field.NewPath("spec"), &s.td.Spec)
	if len(errs) == 0 {
		setAccepted(s.td, nil)
		return nil
	}
	was := meta.FindStatusCondition(s.td.Status.Conditions, ecsv1alpha1.ConditionAccepted)
	setAccepted(s.td, errs)
	s.stop = true
	now := meta.FindStatusCondition(s.td.Status.Conditions, ecsv1alpha1.ConditionAccepted)
	if newlyRejected(was, now) {
		// Reconciles of an unchanged invalid spec (a task or service of the family
		// changed) say nothing new.
		ctrl.LoggerFrom(ctx).Info("task definition rejected", "reason", now.Message)
		s.rejected = now.Message
	}
	return nil
}

// newlyRejected reports whether the Accepted condition turned False, or changed its
// message while False.
func newlyRejected(was, now *metav1.Condition) bool {
	if now == nil || now.Status != metav1.ConditionFalse {
		return false
	}
	return was == nil || was.Status != metav1.ConditionFalse || was.Message != now.Message
}

// loadRevisions lists the ControllerRevisions this TaskDefinition owns.
func (r *Reconciler) loadRevisions(ctx context.Context, s *state) error {
	var list appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &list, client.InNamespace(s.td.Namespace),
		client.MatchingLabels{ecsv1alpha1.LabelFamily: s.td.Name}); err != nil {
		return fmt.Errorf("listing revisions: %w", err)
	}
	for _, cr := range list.Items {
		// Revisions of an earlier TaskDefinition of the same name are being garbage
		// collected; they are not this family's history.
		if metav1.IsControlledBy(&cr, s.td) {
			s.revisions = append(s.revisions, cr)
		}
	}
	sort.Slice(s.revisions, func(i, j int) bool { return s.revisions[i].Revision < s.revisions[j].Revision })
	return nil
}

// loadDeregistrations reads the revisions deregistered (or to delete) through the
// ECS API.
func (r *Reconciler) loadDeregistrations(_ context.Context, s *state) error {
	d, err := revision.ReadDeregistrations(s.td)
	if err != nil {
		return err
	}
	s.deregistrations = d
	return nil
}

// registerRevision stores the spec as revision N+1 unless the latest revision already
// holds it. Comparing with the latest only (not every revision) is what ECS does: a
// spec changed back to an older content is a new revision, never a reused number.
func (r *Reconciler) registerRevision(ctx context.Context, s *state) error {
	hash := revision.Hash(&s.td.Spec)
	latest := s.latest()
	if latest != nil && latest.Annotations[ecsv1alpha1.AnnotationHash] == hash {
		return nil
	}
	n := s.td.Status.LatestRevision
	if latest != nil && int32(latest.Revision) > n {
		n = int32(latest.Revision)
	}
	n++
	cr, err := revision.Snapshot(s.td, n)
	if err != nil {
		return err
	}
	if err := r.Client.Create(ctx, cr, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating revision %s: %w", cr.Name, err)
		}
		// Another manager, or this one before a restart, got there first; the name is
		// deterministic, so it is the same revision if the content matches.
		var existing appsv1.ControllerRevision
		if gerr := r.Client.Get(ctx, client.ObjectKeyFromObject(cr), &existing); gerr != nil {
			return fmt.Errorf("reading existing revision %s: %w", cr.Name, gerr)
		}
		if !metav1.IsControlledBy(&existing, s.td) || existing.Annotations[ecsv1alpha1.AnnotationHash] != hash {
			return fmt.Errorf("revision %s already exists with other content; retrying once the cache catches up", cr.Name)
		}
		cr = &existing
	} else {
		s.created = cr
		ctrl.LoggerFrom(ctx).Info("registered revision", "revision", n, "hash", hash)
	}
	s.revisions = append(s.revisions, *cr)
	return nil
}

// loadServices reads the Services that name the family, through the ServiceFamily
// index rather than a list of every Service. They are read-only here: the cache's
// objects are not copied.
func (r *Reconciler) loadServices(ctx context.Context, s *state) error {
	var services ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &services, client.InNamespace(s.td.Namespace),
		client.MatchingFields{index.ServiceFamily: s.td.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing services of the family: %w", err)
	}
	s.services = services.Items
	return nil
}

// markUsage finds the revisions that Services and non-stopped Tasks still use. The
// tasks' share is the tracker's count, kept from the Task informer's events: reading
// it costs the same whatever the number of tasks of the family.
func (r *Reconciler) markUsage(_ context.Context, s *state) error {
	s.inUse = map[int32]bool{}
	for _, n := range r.Usage.RevisionsInUse(usage.Family{Namespace: s.td.Namespace, Name: s.td.Name}) {
		s.inUse[n] = true
	}
	mark := func(ref string) {
		if parsed, err := revision.ParseRef(ref); err == nil && parsed.Family == s.td.Name && parsed.Pinned() {
			s.inUse[parsed.Revision] = true
		}
	}
	for _, svc := range s.services {
		mark(svc.Spec.TaskDefinition)
		for _, d := range svc.Status.Deployments {
			if d.Status != ecsv1alpha1.DeploymentInactive {
				mark(d.TaskDefinition)
			}
		}
	}
	return nil
}

// prune deletes the revisions whose deletion was asked for once nothing uses them,
// and the oldest superseded, unused ones beyond the history limit.
func (r *Reconciler) prune(ctx context.Context, s *state) error {
	drop := s.prunable()
	for i := range s.revisions {
		if !drop[i] {
			continue
		}
		cr := &s.revisions[i]
		if err := r.Client.Delete(ctx, cr, client.Preconditions{UID: &cr.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("pruning revision %s: %w", cr.Name, err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("pruned revision", "revision", cr.Revision)
	}
	kept := s.revisions[:0]
	for i, cr := range s.revisions {
		if !drop[i] {
			kept = append(kept, cr)
		}
	}
	s.revisions = kept
	return nil
}

// prunable picks the revisions to delete, by index into s.revisions.
func (s *state) prunable() map[int]bool {
	limit := defaultRevisionHistoryLimit
	if l := s.td.Spec.RevisionHistoryLimit; l != nil {
		limit = int(*l)
	}
	drop := map[int]bool{}
	var history []int // oldest first
	for i := range s.revisions {
		switch s.retention(&s.revisions[i]) {
		case revision.DeleteNow:
			drop[i] = true
		case revision.KeepWithinHistory:
			history = append(history, i)
		}
	}
	if excess := len(history) - limit; excess > 0 {
		for _, i := range history[:excess] {
			drop[i] = true
		}
	}
	return drop
}

func (s *state) retention(cr *appsv1.ControllerRevision) revision.Retention {
	n := int32(cr.Revision)
	return revision.Retain(s.deregistrations.Lifecycle(n), cr == s.latest(), s.inUse[n])
}

func (s *state) status(cr *appsv1.ControllerRevision) ecsv1alpha1.RevisionStatus {
	n := int32(cr.Revision)
	return revision.Status(s.deregistrations.Lifecycle(n), cr == s.latest(), s.inUse[n])
}

// computeStatus writes the revision list (newest first) and the conditions.
func computeStatus(s *state) {
	td := s.td
	latest := s.latest()
	if latest != nil && int32(latest.Revision) > td.Status.LatestRevision {
		td.Status.LatestRevision = int32(latest.Revision)
	}
	revs := make([]ecsv1alpha1.TaskDefinitionRevision, 0, len(s.revisions))
	for i := len(s.revisions) - 1; i >= 0; i-- {
		cr := &s.revisions[i]
		st := s.status(cr)
		revs = append(revs, ecsv1alpha1.TaskDefinitionRevision{
			Revision:  int32(cr.Revision),
			Hash:      cr.Annotations[ecsv1alpha1.AnnotationHash],
			Status:    st,
			CreatedAt: cr.CreationTimestamp,
		})
	}
	td.Status.Revisions = revs
	// A stable reason: flipping it on the reconcile after a registration would cost a
	// write; the Event says a revision was created.
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionTrue, ecsv1alpha1.ReasonRevisionCurrent,
		"The spec is revision "+td.Name+":"+strconv.Itoa(int(td.Status.LatestRevision)))
	td.Status.ObservedGeneration = td.Generation
}
