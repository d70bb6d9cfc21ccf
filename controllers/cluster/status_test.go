package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/usage"
)

func TestBlockedMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    clusterUsage
		want string
	}{
		{
			name: "instances and a service",
			u:    clusterUsage{instances: []string{"a", "b"}, services: []string{"default/web"}},
			want: "2 container instances (a, b) and 1 service (default/web) still use this cluster",
		},
		{
			name: "one instance",
			u:    clusterUsage{instances: []string{"a"}},
			want: "1 container instance (a) still uses this cluster",
		},
		{
			name: "services only",
			u:    clusterUsage{services: []string{"x/api", "y/web"}},
			want: "2 services (x/api, y/web) still use this cluster",
		},
		{
			name: "names are capped",
			u:    clusterUsage{instances: []string{"i1", "i2", "i3", "i4", "i5", "i6", "i7"}},
			want: "7 container instances (i1, i2, i3, i4, i5, and 2 more) still use this cluster",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, blockedMessage(&tc.u)); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetDeletionBlocked(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name        string
		deleting    bool
		u           clusterUsage
		wantBlocked bool
		wantNew     bool
	}{
		{name: "live cluster in use", u: clusterUsage{instances: []string{"a"}}},
		{name: "deleted and in use", deleting: true, u: clusterUsage{instances: []string{"a"}}, wantBlocked: true, wantNew: true},
		{name: "deleted with only tasks", deleting: true, u: clusterUsage{tasks: usage.ClusterTasks{Running: 3, Pending: 1}}},
		{name: "deleted and unused", deleting: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 2}}
			if tc.deleting {
				c.DeletionTimestamp = &now
			}
			before := c.DeepCopy()
			setCounts(c, &tc.u)
			setDeletionBlocked(c, &tc.u)
			var got bool
			for _, cond := range c.Status.Conditions {
				if cond.Type == ecsv1alpha1.ClusterConditionDeletionBlocked {
					got = cond.Status == metav1.ConditionTrue && cond.Reason == ecsv1alpha1.ReasonResourcesRemain && cond.ObservedGeneration == 2
				}
			}
			if got != tc.wantBlocked {
				t.Errorf("DeletionBlocked = %v, want %v: %+v", got, tc.wantBlocked, c.Status.Conditions)
			}
			if _, isNew := newlyBlocked(before, c); isNew != tc.wantNew {
				t.Errorf("newlyBlocked = %v, want %v", isNew, tc.wantNew)
			}
			// A second pass with the same facts announces nothing new.
			again := c.DeepCopy()
			setDeletionBlocked(again, &tc.u)
			if _, isNew := newlyBlocked(c, again); isNew {
				t.Errorf("an unchanged DeletionBlocked condition was announced again")
			}
		})
	}
}

func TestSetCounts(t *testing.T) {
	c := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 3}}
	setCounts(c, &clusterUsage{instances: []string{"a", "b"}, services: []string{"n/s", "n/t"}, activeServices: 1, tasks: usage.ClusterTasks{Running: 4, Pending: 2}})
	got := c.Status
	got.Conditions = nil
	want := ecsv1alpha1.ClusterStatus{
		ObservedGeneration: 3, RegisteredContainerInstancesCount: 2, ActiveServicesCount: 1,
		RunningTasksCount: 4, PendingTasksCount: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if len(c.Status.Conditions) != 1 || c.Status.Conditions[0].Type != ecsv1alpha1.ConditionReady ||
		c.Status.Conditions[0].Status != metav1.ConditionTrue || c.Status.Conditions[0].ObservedGeneration != 3 {
		t.Errorf("conditions = %+v, want Ready=True at generation 3", c.Status.Conditions)
	}
}
