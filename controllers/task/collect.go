package task

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// Collection of stopped standalone tasks, by the rule the service controller applies
// to a service's tasks (deployment.History): a standalone task has no history limit
// and nothing counts it, so it goes when the cluster's retention period ends.

// collect deletes a stopped standalone task once its retention period has passed. A
// service's task is its service controller's to collect: only it knows which of them
// its circuit breaker and launch backoff still count.
func (r *Reconciler) collect(ctx context.Context, t *ecsv1alpha1.Task) (ctrl.Result, error) {
	if ownedByService(t) {
		return ctrl.Result{}, nil
	}
	var cluster ecsv1alpha1.Cluster
	var seconds *int32
	if err := r.Client.Get(ctx, client.ObjectKey{Name: t.Spec.Cluster}, &cluster); err == nil {
		seconds = cluster.Spec.StoppedTaskRetentionSeconds
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("reading cluster %s: %w", t.Spec.Cluster, err)
	}
	retention := deployment.Retention(seconds)
	now := r.Now()
	collect, next := deployment.History{Retention: retention}.Collect([]deployment.StoppedTask{deployment.StoppedTaskOf(t, false)}, now)
	if len(collect) == 0 {
		return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
	}
	uid := t.UID
	if err := r.Client.Delete(ctx, t, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("deleting stopped task: %w", err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("deleted stopped task after retention", "retention", retention)
	return ctrl.Result{}, nil
}

// ownedByService reports whether a Service controls the task.
func ownedByService(t *ecsv1alpha1.Task) bool {
	ref := metav1.GetControllerOf(t)
	if ref == nil || ref.Kind != "Service" {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == ecsv1alpha1.GroupVersion.Group
}
