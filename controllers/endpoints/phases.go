package endpoints

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// members lists the Service's tasks from the cache and looks up, for those that can
// have endpoints, their instance and (when their health status does not decide)
// whether their revision has health checks. The tasks are the cache's own objects:
// they are only read.
func (r *Reconciler) members(ctx context.Context, svc *ecsv1alpha1.Service) ([]member, error) {
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.InNamespace(svc.Namespace),
		client.MatchingFields{index.TaskService: svc.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing tasks: %w", err)
	}
	instances := map[string]*ecsv1alpha1.ContainerInstance{}
	var out []member
	for i := range tasks.Items {
		t := &tasks.Items[i]
		if !listed(t) {
			continue
		}
		name := t.Spec.ContainerInstance
		ci, seen := instances[name]
		if !seen {
			var err error
			if ci, err = r.instance(ctx, name); err != nil {
				return nil, err
			}
			instances[name] = ci
		}
		m := member{task: t, instance: ci}
		if ci != nil && needsHealthChecks(t) {
			var err error
			if m.checks, err = r.healthChecks(ctx, t); err != nil {
				return nil, err
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// instance reads a container instance, or nil when it does not exist (its tasks then
// have no address to publish).
func (r *Reconciler) instance(ctx context.Context, name string) (*ecsv1alpha1.ContainerInstance, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ci); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading container instance %s: %w", name, err)
	}
	return ci, nil
}

// healthChecks resolves the task's revision (revision.TaskRef) and says whether an essential container of it has a
// health check. A revision that cannot be found is checksUnknown: the endpoint is not ready.
func (r *Reconciler) healthChecks(ctx context.Context, t *ecsv1alpha1.Task) (healthChecks, error) {
	ref, err := revision.TaskRef(t)
	if err != nil {
		return checksUnknown, nil
	}
	if !ref.Pinned() {
		return checksUnknown, nil // not resolved yet; "the latest" may differ by now
	}
	res, err := r.Resolver.Resolve(ctx, t.Namespace, ref)
	if err != nil {
		if revision.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).V(1).Info("revision not found; endpoint not ready", "task", t.Name, "reason", err.Error())
			return checksUnknown, nil
		}
		return checksUnknown, fmt.Errorf("resolving the revision of task %s: %w", t.Name, err)
	}
	if taskrules.EssentialHealthChecks(res.Spec) {
		return checksPresent, nil
	}
	return checksNone, nil
}

// coreServices reads the core Services the load balancers name; missing ones map to
// nil.
func (r *Reconciler) coreServices(ctx context.Context, svc *ecsv1alpha1.Service) (map[string]*corev1.Service, error) {
	out := map[string]*corev1.Service{}
	for _, lb := range svc.Spec.LoadBalancers {
		if _, done := out[lb.ServiceName]; done {
			continue
		}
		core := &corev1.Service{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: svc.Namespace, Name: lb.ServiceName}, core); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("reading Service %s/%s: %w", svc.Namespace, lb.ServiceName, err)
			}
			core = nil
		}
		out[lb.ServiceName] = core
	}
	return out, nil
}

// ownedSlices lists the EndpointSlices this controller wrote for the Service. Slices
// of other managers, and those of an earlier Service of the same name, are left alone.
func (r *Reconciler) ownedSlices(ctx context.Context, svc *ecsv1alpha1.Service) ([]discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(svc.Namespace), client.MatchingLabels{
		discoveryv1.LabelManagedBy: ManagedBy,
		ecsv1alpha1.LabelService:   svc.Name,
	}); err != nil {
		return nil, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	out := list.Items[:0]
	for _, s := range list.Items {
		if metav1.IsControlledBy(&s, svc) {
			out = append(out, s)
		}
	}
	return out, nil
}

// apply makes the existing slices match the desired ones: creates (when create is
// set) and updates first, so that a renamed slice never leaves a gap, then deletes
// what is no longer needed.
func (r *Reconciler) apply(ctx context.Context, existing []discoveryv1.EndpointSlice, desired []*discoveryv1.EndpointSlice, create bool) error {
	have := make(map[string]*discoveryv1.EndpointSlice, len(existing))
	for i := range existing {
		have[existing[i].Name] = &existing[i]
	}
	log := ctrl.LoggerFrom(ctx)
	for _, want := range desired {
		cur, ok := have[want.Name]
		delete(have, want.Name)
		if !ok {
			if !create {
				continue
			}
			if err := r.create(ctx, want); err != nil {
				return err
			}
			log.V(1).Info("created EndpointSlice", "endpointSlice", want.Name, "endpoints", len(want.Endpoints))
			continue
		}
		if sameContent(cur, want) {
			continue
		}
		if err := r.update(ctx, cur, want); err != nil {
			return err
		}
		log.V(1).Info("updated EndpointSlice", "endpointSlice", want.Name, "endpoints", len(want.Endpoints))
	}
	for _, stale := range have {
		if err := r.Client.Delete(ctx, stale, client.Preconditions{UID: &stale.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting EndpointSlice %s: %w", stale.Name, err)
		}
		log.V(1).Info("deleted EndpointSlice", "endpointSlice", stale.Name)
	}
	return nil
}

// create writes a new slice. AlreadyExists means the cache has not seen an earlier
// write yet (the name is deterministic), or that a slice of the same name belongs to
// someone else; either way the existing one is read and, if ours, updated.
func (r *Reconciler) create(ctx context.Context, want *discoveryv1.EndpointSlice) error {
	err := r.Client.Create(ctx, want.DeepCopy(), client.FieldOwner(ecsv1alpha1.FieldManagerManager))
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("creating EndpointSlice %s: %w", want.Name, err)
		}
		return nil
	}
	var cur discoveryv1.EndpointSlice
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &cur); err != nil {
		return fmt.Errorf("reading EndpointSlice %s after AlreadyExists: %w", want.Name, err)
	}
	owner := metav1.GetControllerOf(want)
	if c := metav1.GetControllerOf(&cur); c == nil || c.UID != owner.UID || !managedByBerth(&cur) {
		return fmt.Errorf("EndpointSlice %s/%s exists and is not managed by this Service; retrying until it is gone", want.Namespace, want.Name)
	}
	if sameContent(&cur, want) {
		return nil
	}
	return r.update(ctx, &cur, want)
}

// update replaces the slice's content; the resourceVersion of cur makes it fail
// (and retry) if the slice changed since it was read.
func (r *Reconciler) update(ctx context.Context, cur, want *discoveryv1.EndpointSlice) error {
	next := cur.DeepCopy()
	next.Labels = want.Labels
	next.OwnerReferences = want.OwnerReferences
	next.Endpoints = want.Endpoints
	next.Ports = want.Ports
	if err := r.Client.Update(ctx, next, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		return fmt.Errorf("updating EndpointSlice %s: %w", want.Name, err)
	}
	return nil
}

// sameContent compares what this controller writes. The address type is part of the
// name, so it never differs for slices of the same name.
func sameContent(cur, want *discoveryv1.EndpointSlice) bool {
	return cur.AddressType == want.AddressType &&
		equality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) &&
		equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) &&
		equality.Semantic.DeepEqual(cur.Ports, want.Ports)
}
