package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/wakeup"
)

// Placing before creating: as ECS's service scheduler does, a service's tasks are
// placed before they are created, so they are created bound (one write each) and a
// service never creates a task that no instance has room for. The shortfall shows as
// ECS shows it: in pendingCount, on the TasksPlaced condition with the per-reason
// counts, and in a Warning Event when the reasons change. When room may have appeared
// in the cluster (the Placer says so), the services short of room there are requeued.

// Placer places tasks before they are created: the scheduler (controllers/scheduler),
// with its engine and assume cache.
type Placer interface {
	// PlaceNew sets spec.containerInstance on each task it places; see
	// scheduler.PlaceNew.
	PlaceNew(tasks []*ecsv1alpha1.Task, res *revision.Resolved, alike bool) []error
	// Unplace releases the room of a placed task that was not created.
	Unplace(t *ecsv1alpha1.Task)
	// Synced reports whether the placer knows every instance and bound task.
	Synced() bool
	// OnRoom registers a function called when room may have appeared in a cluster.
	OnRoom(func(cluster string))
}

// placeSyncRetry is when a pass that found the placer not yet synced tries again.
const placeSyncRetry = time.Second

// shortRoomRetry is when a service short of room is tried again if no event of its
// cluster came first: a safety net for what OnRoom does not cover.
const shortRoomRetry = 30 * time.Second

// shortOfRoom holds, per cluster, the services that could not place every task they
// need, to requeue when room may have appeared there.
type shortOfRoom struct {
	mu        sync.Mutex
	byCluster map[string]map[types.NamespacedName]bool
	wakeups   *wakeup.Source
}

// set records whether the service is short of room in the cluster.
func (w *shortOfRoom) set(key types.NamespacedName, cluster string, short bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !short {
		for _, set := range w.byCluster {
			delete(set, key)
		}
		return
	}
	if w.byCluster == nil {
		w.byCluster = map[string]map[types.NamespacedName]bool{}
	}
	if w.byCluster[cluster] == nil {
		w.byCluster[cluster] = map[types.NamespacedName]bool{}
	}
	w.byCluster[cluster][key] = true
}

// room requeues the services short of room in the cluster.
func (w *shortOfRoom) room(cluster string) {
	w.mu.Lock()
	reqs := make([]reconcile.Request, 0, len(w.byCluster[cluster]))
	for key := range w.byCluster[cluster] {
		reqs = append(reqs, reconcile.Request{NamespacedName: key})
	}
	w.mu.Unlock()
	if len(reqs) > 0 {
		w.wakeups.Add(reqs...)
	}
}

// placeNew places the tasks about to be created and returns those placed. It records
// the shortfall (s.unplaced, s.unplacedWhy) for status, and the service as short of
// room for a requeue when room appears. wanted is how many the plan starts, of which
// tasks are this pass's share (MaxWritesPerPass): once one finds no room, all that
// were wanted and not placed are short, not only this pass's.
func (r *Reconciler) placeNew(ctx context.Context, s *state, tasks []*ecsv1alpha1.Task, wanted int32) ([]*ecsv1alpha1.Task, error) {
	if r.Placer == nil || len(tasks) == 0 {
		r.short.set(client.ObjectKeyFromObject(s.svc), s.svc.Spec.Cluster, false)
		return tasks, nil
	}
	if !r.Placer.Synced() {
		s.requeueAt(s.now.Add(placeSyncRetry))
		return nil, nil
	}
	ref, err := revision.ParseRef(s.primary.TaskDefinition)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", s.primary.ID, err)
	}
	res, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	daemon := s.svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon
	errs := r.Placer.PlaceNew(tasks, res, !daemon)
	placed := tasks[:0:0]
	for i, err := range errs {
		var unplaceable *placement.UnplaceableError
		switch {
		case err == nil:
			placed = append(placed, tasks[i])
			continue
		case errors.As(err, &unplaceable):
			if s.unplacedWhy == nil {
				s.unplacedWhy = unplaceable
			}
		case s.unplacedInvalid == "" && !errors.Is(err, placement.ErrNotTried):
			s.unplacedInvalid = err.Error()
		}
		s.unplaced++
	}
	short := s.unplaced > 0
	if short {
		s.unplaced = max(wanted-int32(len(placed)), s.unplaced)
	}
	r.short.set(client.ObjectKeyFromObject(s.svc), s.svc.Spec.Cluster, short)
	if short {
		s.requeueAt(s.now.Add(shortRoomRetry))
		ctrl.LoggerFrom(ctx).V(1).Info("tasks not placed", "unplaced", s.unplaced, "placed", len(placed))
	}
	return placed, nil
}

// splitCreated splits tasks into those created (named in created) and the rest.
func splitCreated(tasks []*ecsv1alpha1.Task, created []string) (made, notMade []*ecsv1alpha1.Task) {
	names := make(map[string]bool, len(created))
	for _, name := range created {
		names[name] = true
	}
	for _, t := range tasks {
		if names[t.Name] {
			made = append(made, t)
		} else {
			notMade = append(notMade, t)
		}
	}
	return made, notMade
}

// countInstances counts the created tasks per instance they were placed on.
func (s *state) countInstances(made []*ecsv1alpha1.Task) {
	for _, t := range made {
		if t.Spec.ContainerInstance != "" {
			if s.startedOn == nil {
				s.startedOn = map[string]int{}
			}
			s.startedOn[t.Spec.ContainerInstance]++
		}
	}
}
