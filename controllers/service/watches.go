package service

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
)

// The watches that requeue a service, and the predicates that keep them to the
// changes its decisions read.

func (r *Reconciler) servicesInCluster(ctx context.Context, o client.Object) []reconcile.Request {
	return r.servicesOfClusterNamed(ctx, o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster)
}

// servicesOfCluster requeues the services of a Cluster whose settings changed (or
// that appeared or went away, which changes the defaults that apply).
func (r *Reconciler) servicesOfCluster(ctx context.Context, o client.Object) []reconcile.Request {
	return r.servicesOfClusterNamed(ctx, o.GetName())
}

func (r *Reconciler) servicesOfClusterNamed(ctx context.Context, cluster string) []reconcile.Request {
	var list ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &list, client.MatchingFields{index.ServiceCluster: cluster}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing services of cluster", "cluster", cluster)
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
		UpdateFunc: func(e event.UpdateEvent) bool {
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
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.ContainerInstance), e.ObjectNew.(*ecsv1alpha1.ContainerInstance)
			return o.Status.Status != n.Status.Status || o.Status.AgentConnected != n.Status.AgentConnected ||
				o.Spec.Draining != n.Spec.Draining || !equality.Semantic.DeepEqual(o.Spec.Attributes, n.Spec.Attributes) ||
				!equality.Semantic.DeepEqual(o.Status.Attributes, n.Status.Attributes)
		},
	}
}

func latestRevisionChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.(*ecsv1alpha1.TaskDefinition).Status.LatestRevision !=
				e.ObjectNew.(*ecsv1alpha1.TaskDefinition).Status.LatestRevision
		},
	}
}

// clusterSettingsChanged passes Cluster updates that change what a service reads from
// its Cluster: the container policy, the instance unreachable grace period and the
// stopped-task retention period (whose deadlines a service requeues itself for).
func clusterSettingsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.Cluster), e.ObjectNew.(*ecsv1alpha1.Cluster)
			return !equality.Semantic.DeepEqual(o.Spec.ContainerPolicy, n.Spec.ContainerPolicy) ||
				!equality.Semantic.DeepEqual(o.Spec.InstanceUnreachableGracePeriodSeconds, n.Spec.InstanceUnreachableGracePeriodSeconds) ||
				!equality.Semantic.DeepEqual(o.Spec.StoppedTaskRetentionSeconds, n.Spec.StoppedTaskRetentionSeconds)
		},
	}
}
