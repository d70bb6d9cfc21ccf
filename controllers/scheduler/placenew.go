package scheduler

import (
	"errors"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
)

// Tasks created already placed: a Service's tasks are placed before they are created,
// as ECS's service scheduler does, so a service task costs its create and its agent's
// reports, and a service never creates a task no instance has room for. The placement
// is the scheduler's own: the same engine, the same assume cache (a task placed here
// holds its room at once, and its informer event confirms it), the same explanations.

// PlaceNew places tasks about to be created, all of revision res, in order: each one
// placed gets spec.containerInstance (and spec.gpuAssignments) and holds its room in
// the engine until Unplace or its informer events. errs[i] is nil for a placed task,
// an *placement.UnplaceableError when no instance has room, or another error for an
// invalid request. With alike (tasks that differ only in name), the first task that
// finds no room ends the batch: the others get placement.ErrNotTried without the work of
// explaining the same refusal again.
func (s *Scheduler) PlaceNew(tasks []*ecsv1alpha1.Task, res *revision.Resolved, alike bool) []error {
	errs := make([]error, len(tasks))
	for i, t := range tasks {
		req, err := s.request(t, res)
		if err != nil {
			errs[i] = err
			continue
		}
		decision, err := s.Engine.Place(req)
		if err == nil {
			t.Spec.ContainerInstance = decision.Instance
			t.Spec.GPUAssignments, err = gpuAssignments(res, decision)
		}
		if err != nil {
			s.Engine.Forget(req.Key)
			errs[i] = err
			var unplaceable *placement.UnplaceableError
			if alike && errors.As(err, &unplaceable) {
				for j := i + 1; j < len(tasks); j++ {
					errs[j] = placement.ErrNotTried
				}
				return errs
			}
		}
	}
	return errs
}

// Unplace releases the room PlaceNew held for a task that was not created.
func (s *Scheduler) Unplace(t *ecsv1alpha1.Task) { s.Engine.Forget(keyOf(t)) }

// Synced reports whether the engine holds every instance and every bound task of the
// cache (once SetupWithManager fed it from the informers): placing before that could
// overcommit an instance.
func (s *Scheduler) Synced() bool {
	for _, r := range s.synced {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// OnRoom registers f, called with a cluster's name whenever room may have appeared
// in it: an instance joined or changed, a task stopped or went away. It must not
// block.
func (s *Scheduler) OnRoom(f func(cluster string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roomListeners = append(s.roomListeners, f)
}
