package cluster

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// setCapacityAvailable turns the capacity figures the utilization writer keeps in
// status.utilization into the CapacityAvailable condition: False while tasks wait
// for room or the tasks need more than the instances have, as ECS's capacity
// providers would scale out.
func setCapacityAvailable(c *ecsv1alpha1.Cluster) {
	u := c.Status.Utilization
	switch {
	case u == nil:
		setCondition(c, ecsv1alpha1.ClusterConditionCapacityAvailable, metav1.ConditionUnknown, ecsv1alpha1.ReasonNotMeasured,
			"No capacity figures yet")
	case u.UnplaceableTasks > 0:
		setCondition(c, ecsv1alpha1.ClusterConditionCapacityAvailable, metav1.ConditionFalse, ecsv1alpha1.ReasonTasksUnplaceable,
			fmt.Sprintf("%d task(s) wait because no instance has room; capacity provider reservation %d%% of %d instance(s)",
				u.UnplaceableTasks, u.CapacityProviderReservation, u.Instances))
	case u.CapacityProviderReservation > 100:
		setCondition(c, ecsv1alpha1.ClusterConditionCapacityAvailable, metav1.ConditionFalse, ecsv1alpha1.ReasonCapacityExceeded,
			fmt.Sprintf("The tasks need %d%% of the capacity of %d instance(s)", u.CapacityProviderReservation, u.Instances))
	default:
		setCondition(c, ecsv1alpha1.ClusterConditionCapacityAvailable, metav1.ConditionTrue, ecsv1alpha1.ReasonCapacityFits,
			fmt.Sprintf("The tasks reserve %d%% of the capacity of %d instance(s)", u.CapacityProviderReservation, u.Instances))
	}
}

// capacityChanged passes the Cluster status writes that can change
// CapacityAvailable, and no other (the utilization writer refreshes use figures
// every interval; they do not move the condition).
func capacityChanged(o, n client.Object) bool {
	oc, ok1 := o.(*ecsv1alpha1.Cluster)
	nc, ok2 := n.(*ecsv1alpha1.Cluster)
	if !ok1 || !ok2 {
		return false
	}
	ou, nu := oc.Status.Utilization, nc.Status.Utilization
	if (ou == nil) != (nu == nil) {
		return true
	}
	return ou != nil && (ou.UnplaceableTasks != nu.UnplaceableTasks ||
		ou.CapacityProviderReservation != nu.CapacityProviderReservation || ou.Instances != nu.Instances)
}
