package service

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// Stopped-task collection for a service's tasks. The rule (deployment.History) is the
// one the task controller applies to standalone tasks; the service controller applies
// it to its own tasks because it alone knows what its decisions still count: the
// failures of a deployment in progress (circuit breaker) and the recent failures of
// the primary deployment (launch backoff). The task controller leaves service tasks
// alone.

// collectStoppedTasks deletes the stopped tasks the service's history no longer
// keeps, and requeues the service when the next kept one's retention period ends.
func (r *Reconciler) collectStoppedTasks(ctx context.Context, s *state) error {
	byName := map[string]*ecsv1alpha1.Task{}
	var stopped []deployment.StoppedTask
	for _, t := range s.tasks {
		if t.Status.LastStatus != ecsv1alpha1.TaskStopped || !t.DeletionTimestamp.IsZero() {
			continue
		}
		byName[t.Name] = t
		stopped = append(stopped, deployment.StoppedTaskOf(t, failed(t)))
	}
	collect, next := s.history().Collect(stopped, s.now)
	if !next.IsZero() {
		s.requeueAt(next)
	}
	key := client.ObjectKeyFromObject(s.svc).String()
	collect = slices.DeleteFunc(collect, func(name string) bool {
		// Deleted by an earlier pass; the cache has not shown it gone yet.
		return r.Expectations.Deleted(key, name, byName[name].UID, s.now)
	})
	done, err := parallel(ctx, len(collect), func(i int) error {
		t := byName[collect[i]]
		uid := t.UID
		if err := r.Client.Delete(ctx, &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}},
			client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting stopped task %s: %w", t.Name, err)
		}
		return nil
	})
	deleted := make(map[string]types.UID, len(collect))
	for i, ok := range done {
		if ok {
			deleted[collect[i]] = byName[collect[i]].UID
		}
	}
	r.Expectations.ExpectDeletes(key, deleted, s.now)
	if len(deleted) > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("deleted stopped tasks", "count", len(deleted))
	}
	return err
}

// history is the service's stopped-task policy: the cluster's retention period, the
// service's stoppedTaskHistoryLimit (at least one, so the newest always stays) and
// the failures its decisions still count.
func (s *state) history() deployment.History {
	var retention *int32
	if s.cluster != nil {
		retention = s.cluster.Spec.StoppedTaskRetentionSeconds
	}
	h := deployment.History{
		Retention:  deployment.Retention(retention),
		Limit:      max(1, int(valueOr(s.svc.Spec.StoppedTaskHistoryLimit, defaultStoppedTaskHistoryLimit))),
		KeepNewest: true,
	}
	if s.primary == nil {
		return h
	}
	if cb := s.svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker; cb != nil && cb.Enable &&
		s.primary.RolloutState == ecsv1alpha1.RolloutInProgress {
		h.Exempt = append(h.Exempt, deployment.Exemption{Deployment: s.primary.ID, Count: deployment.CircuitBreakerThreshold(s.desired)})
	}
	h.Exempt = append(h.Exempt, deployment.Exemption{
		Deployment: s.primary.ID, Count: launchBackoffKeep(), Since: s.now.Add(-launchBackoffWindow),
	})
	return h
}
