package cluster

import (
	"context"
	"fmt"
	"sort"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/usage"
)

// clusterUsage is what uses a cluster: instances and services from the cache, task
// counts from the usage tracker.
type clusterUsage struct {
	// instances and services name every object whose spec.cluster is the cluster,
	// sorted; services as namespace/name. Objects being deleted are included: they
	// still use the cluster until they are gone.
	instances []string
	services  []string
	// activeServices excludes services being deleted (ECS's DRAINING services).
	activeServices int32
	tasks          usage.ClusterTasks
}

// blocksDeletion reports whether the cluster must outlive its deletion. Tasks alone
// do not block: without instances they cannot run, and without services nothing
// replaces them.
func (u *clusterUsage) blocksDeletion() bool {
	return len(u.instances) > 0 || len(u.services) > 0
}

// usage lists the instances and services that name the cluster, from the cache's
// indexes without deep copies (they are few, and only read), and reads its task
// counts from the tracker: a cluster can hold tens of thousands of tasks, and a pass
// must cost the same whatever their number.
func (r *Reconciler) usage(ctx context.Context, cluster string) (*clusterUsage, error) {
	u := &clusterUsage{}
	var instances ecsv1alpha1.ContainerInstanceList
	if err := r.Client.List(ctx, &instances, client.MatchingFields{index.InstanceCluster: cluster},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing container instances: %w", err)
	}
	for i := range instances.Items {
		u.instances = append(u.instances, instances.Items[i].Name)
	}
	sort.Strings(u.instances)

	var services ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &services, client.MatchingFields{index.ServiceCluster: cluster},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	for i := range services.Items {
		s := &services.Items[i]
		u.services = append(u.services, s.Namespace+"/"+s.Name)
		if s.DeletionTimestamp.IsZero() {
			u.activeServices++
		}
	}
	sort.Strings(u.services)
	u.tasks = r.Usage.Cluster(cluster)
	return u, nil
}

// ensureFinalizer adds the cluster's finalizer to a live Cluster. The patch carries
// an optimistic lock because a merge patch replaces the whole finalizer list: without
// it, a write computed from a stale cache could drop another controller's finalizer.
func (r *Reconciler) ensureFinalizer(ctx context.Context, c *ecsv1alpha1.Cluster) error {
	if !c.DeletionTimestamp.IsZero() || controllerutil.ContainsFinalizer(c, ecsv1alpha1.ClusterFinalizer) {
		return nil
	}
	before := c.DeepCopy()
	controllerutil.AddFinalizer(c, ecsv1alpha1.ClusterFinalizer)
	if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// releaseFinalizer lets a deleted Cluster go.
func (r *Reconciler) releaseFinalizer(ctx context.Context, c *ecsv1alpha1.Cluster) error {
	before := c.DeepCopy()
	if !controllerutil.RemoveFinalizer(c, ecsv1alpha1.ClusterFinalizer) {
		return nil
	}
	if err := r.Client.Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(ecsv1alpha1.FieldManagerManager)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	ctrl.LoggerFrom(ctx).Info("cluster no longer in use; finalizer removed")
	return nil
}
