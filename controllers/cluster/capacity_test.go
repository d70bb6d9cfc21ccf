package cluster

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestSetCapacityAvailable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		u          *ecsv1alpha1.ClusterUtilization
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"not measured", nil, metav1.ConditionUnknown, ecsv1alpha1.ReasonNotMeasured},
		{"fits", &ecsv1alpha1.ClusterUtilization{CapacityProviderReservation: 60, Instances: 2}, metav1.ConditionTrue, ecsv1alpha1.ReasonCapacityFits},
		{"exactly full fits", &ecsv1alpha1.ClusterUtilization{CapacityProviderReservation: 100, Instances: 2}, metav1.ConditionTrue, ecsv1alpha1.ReasonCapacityFits},
		{"over", &ecsv1alpha1.ClusterUtilization{CapacityProviderReservation: 130, Instances: 2}, metav1.ConditionFalse, ecsv1alpha1.ReasonCapacityExceeded},
		{"unplaceable wins", &ecsv1alpha1.ClusterUtilization{CapacityProviderReservation: 130, UnplaceableTasks: 3}, metav1.ConditionFalse, ecsv1alpha1.ReasonTasksUnplaceable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &ecsv1alpha1.Cluster{Status: ecsv1alpha1.ClusterStatus{Utilization: tc.u}}
			setCapacityAvailable(c)
			got := meta.FindStatusCondition(c.Status.Conditions, ecsv1alpha1.ClusterConditionCapacityAvailable)
			if got == nil || got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Errorf("CapacityAvailable = %+v, want %s %s", got, tc.wantStatus, tc.wantReason)
			}
		})
	}
}

func TestCapacityChanged(t *testing.T) {
	at := func(cpr, unplaceable int32, used int64) *ecsv1alpha1.Cluster {
		return &ecsv1alpha1.Cluster{Status: ecsv1alpha1.ClusterStatus{Utilization: &ecsv1alpha1.ClusterUtilization{
			CapacityProviderReservation: cpr, UnplaceableTasks: unplaceable, Utilization: ecsv1alpha1.Utilization{CPUUsed: used}}}}
	}
	for _, tc := range []struct {
		name string
		o, n *ecsv1alpha1.Cluster
		want bool
	}{
		{"use figures only", at(50, 0, 10), at(50, 0, 900), false},
		{"reservation", at(50, 0, 10), at(120, 0, 10), true},
		{"unplaceable", at(50, 0, 10), at(50, 1, 10), true},
		{"first figures", &ecsv1alpha1.Cluster{}, at(50, 0, 10), true},
	} {
		if got := capacityChanged(tc.o, tc.n); got != tc.want {
			t.Errorf("%s: capacityChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}
