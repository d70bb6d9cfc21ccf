package ecsapi

import (
	"testing"

	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestServiceDesiredCount(t *testing.T) {
	scaled := &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 2, MaxCapacity: 5}
	for _, tc := range []struct {
		name string
		spec ecsv1alpha1.ServiceSpec
		st   ecsv1alpha1.ServiceStatus
		want int32
	}{
		{"replica", ecsv1alpha1.ServiceSpec{DesiredCount: ptr.To[int32](3)}, ecsv1alpha1.ServiceStatus{DesiredCount: 1}, 3},
		{"daemon counts instances", ecsv1alpha1.ServiceSpec{SchedulingStrategy: ecsv1alpha1.SchedulingDaemon}, ecsv1alpha1.ServiceStatus{DesiredCount: 4}, 4},
		{"auto scaled, not yet set", ecsv1alpha1.ServiceSpec{AutoScaling: scaled}, ecsv1alpha1.ServiceStatus{}, 2},
		{"auto scaled and set", ecsv1alpha1.ServiceSpec{AutoScaling: scaled, DesiredCount: ptr.To[int32](4)}, ecsv1alpha1.ServiceStatus{}, 4},
	} {
		svc := &ecsv1alpha1.Service{Spec: tc.spec, Status: tc.st}
		if got := serviceDesiredCount(svc); got != tc.want {
			t.Errorf("%s: desiredCount %d, want %d", tc.name, got, tc.want)
		}
	}
}
