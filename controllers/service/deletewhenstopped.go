package service

import (
	"time"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// deletedWhenStopped picks, of a pass's stops (most urgent first), the tasks whose
// agents delete them once they have stopped instead of reporting STOPPED
// (spec.deleteWhenStopped): the planned stops (scale-in, replacement) the history
// will not keep (deployment.History.Unkept), given the recent stops it kept already.
// A stop the service judged (an unhealthy task, an unreachable or draining instance,
// a daemon task out of place) always reports STOPPED: its reason is what a user
// looks for, and an unhealthy stop is a failure the circuit breaker counts. The last
// planned stops of the pass are the ones kept.
func deletedWhenStopped(stops []string, byName map[string]*liveTask, h deployment.History, recent int) map[string]bool {
	var planned []string
	for _, name := range stops {
		if lt := byName[name]; lt != nil && lt.stopCode == "" {
			planned = append(planned, name)
		}
	}
	n := h.Unkept(len(planned), recent)
	out := make(map[string]bool, n)
	for _, name := range planned[:n] {
		out[name] = true
	}
	return out
}

// recentKeptStops counts the tasks the history keeps from recent stops: asked to
// stop without deleteWhenStopped, and still stopping or stopped within
// deployment.KeptStopsWindow of now.
func recentKeptStops(tasks []*ecsv1alpha1.Task, now time.Time) int {
	n := 0
	for _, t := range tasks {
		if t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped || t.Spec.DeleteWhenStopped || !t.DeletionTimestamp.IsZero() {
			continue
		}
		if t.Status.LastStatus != ecsv1alpha1.TaskStopped || now.Sub(deployment.StoppedAt(t)) < deployment.KeptStopsWindow {
			n++
		}
	}
	return n
}
