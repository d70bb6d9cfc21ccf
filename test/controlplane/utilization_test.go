package controlplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testobj"
)

// utilizationInterval is both the hollow agents' window and the manager's write
// interval in this test.
const utilizationInterval = 2 * time.Second

// TestUtilizationAndCapacity: what hollow agents measure reaches the Service, the
// TaskDefinition and the Cluster as ECS's figures, the cluster's capacity provider
// reservation counts tasks that cannot be placed, and the writes stay within one
// per object per interval. Hollow containers use 16 CPU units and 16 MiB each
// (fake.WithUsage); testobj's container reserves 256 units and 128 MiB.
func TestUtilizationAndCapacity(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	harness.StartManager(t, env, harness.ManagerOptions{HeartbeatGrace: heartbeatGrace, SchedulerWorkers: 4, ServiceWorkers: 2,
		UtilizationInterval: utilizationInterval})
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns, CPU: 1024, Memory: 512,
		UtilizationInterval: utilizationInterval})
	waitConnected(t, agents.Names()...)
	create(t, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}},
		testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj(),
		testobj.Service(ns, "web", "web", 3).Cluster(cluster).Obj())
	steady(t, ns, "web", 3, "")

	waitFor(t, time.Minute, "service, family and cluster utilization of 3 tasks", func() error {
		svc := getService(t, ns, "web")
		if err := wantUtilization(svc.Status.Utilization, 3, 6, 13); err != nil { // 16/256 units, 16/128 MiB
			return fmt.Errorf("service: %w", err)
		}
		var td ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &td); err != nil {
			return err
		}
		if err := wantUtilization(td.Status.Utilization, 3, 6, 13); err != nil {
			return fmt.Errorf("task definition: %w", err)
		}
		c := getCluster(t, cluster)
		u := c.Status.Utilization
		if u == nil {
			return fmt.Errorf("cluster: no utilization")
		}
		// 48 of 2048 units used; 768 of 2048 units and 384 of 1024 MiB reserved.
		if u.Tasks != 3 || ptr.Deref(u.CPUUtilization, -1) != 2 || ptr.Deref(u.CPUReservation, -1) != 38 ||
			ptr.Deref(u.MemoryReservation, -1) != 38 || u.CapacityProviderReservation != 38 || u.Instances != 2 {
			return fmt.Errorf("cluster utilization %+v", *u)
		}
		if cond := meta.FindStatusCondition(c.Status.Conditions, ecsv1alpha1.ClusterConditionCapacityAvailable); cond == nil ||
			cond.Status != metav1.ConditionTrue {
			return fmt.Errorf("CapacityAvailable %+v", cond)
		}
		return nil
	})

	t.Run("writes per interval", func(t *testing.T) {
		// The agents report every 2 s and the figures move each time (measuredAt), so a
		// writer without a bound would write the Service on each of the 2 instances'
		// reports; at most one write per interval is allowed.
		writes := countUtilizationWrites(t, ns, "web", 5*utilizationInterval)
		if writes < 2 || writes > 6 {
			t.Errorf("%d utilization writes of the Service in %s, want 2 to 6 (one per %s)", writes, 5*utilizationInterval, utilizationInterval)
		}
	})

	t.Run("unplaceable tasks", func(t *testing.T) {
		scale(t, ns, "web", 10) // room for 8 (4 per instance by CPU and memory)
		waitFor(t, time.Minute, "CapacityAvailable False with 2 unplaceable tasks", func() error {
			c := getCluster(t, cluster)
			u := c.Status.Utilization
			if u == nil || u.UnplaceableTasks != 2 || u.CapacityProviderReservation != 125 { // 10×256 of 2048
				return fmt.Errorf("cluster utilization %+v", u)
			}
			cond := meta.FindStatusCondition(c.Status.Conditions, ecsv1alpha1.ClusterConditionCapacityAvailable)
			if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != ecsv1alpha1.ReasonTasksUnplaceable {
				return fmt.Errorf("CapacityAvailable %+v", cond)
			}
			return nil
		})
		if v := gaugeValue(t, "berth_cluster_unplaceable_tasks", map[string]string{"cluster": cluster}); v != 2 {
			t.Errorf("berth_cluster_unplaceable_tasks = %v, want 2", v)
		}
		if v := gaugeValue(t, "berth_cluster_capacity_provider_reservation_percent", map[string]string{"cluster": cluster}); v != 125 {
			t.Errorf("berth_cluster_capacity_provider_reservation_percent = %v, want 125", v)
		}
		scale(t, ns, "web", 3)
		waitFor(t, time.Minute, "CapacityAvailable True again", func() error {
			cond := meta.FindStatusCondition(getCluster(t, cluster).Status.Conditions, ecsv1alpha1.ClusterConditionCapacityAvailable)
			if cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Errorf("CapacityAvailable %+v", cond)
			}
			return nil
		})
	})

	t.Run("metrics", func(t *testing.T) {
		if v := gaugeValue(t, "berth_service_memory_utilization_percent", map[string]string{"cluster": cluster, "namespace": ns, "service": "web"}); v != 13 {
			t.Errorf("berth_service_memory_utilization_percent = %v, want 13", v)
		}
		if v := gaugeValue(t, "berth_service_tasks", map[string]string{"namespace": ns, "service": "web", "state": "desired"}); v != 3 {
			t.Errorf("berth_service_tasks{state=desired} = %v, want 3", v)
		}
	})

	t.Run("stopped tasks leave the figures", func(t *testing.T) {
		scale(t, ns, "web", 0)
		waitFor(t, time.Minute, "the service's utilization counts no task", func() error {
			u := getService(t, ns, "web").Status.Utilization
			if u == nil || u.Tasks != 0 || u.CPUUtilization != nil {
				return fmt.Errorf("utilization %+v", u)
			}
			return nil
		})
	})
}

func wantUtilization(u *ecsv1alpha1.Utilization, tasks, cpu, memory int32) error {
	if u == nil {
		return fmt.Errorf("no utilization")
	}
	if u.Tasks != tasks || ptr.Deref(u.CPUUtilization, -1) != cpu || ptr.Deref(u.MemoryUtilization, -1) != memory || u.MeasuredAt == nil {
		return fmt.Errorf("utilization %+v (cpu %v, memory %v), want %d tasks at %d%% CPU and %d%% memory",
			*u, ptr.Deref(u.CPUUtilization, -1), ptr.Deref(u.MemoryUtilization, -1), tasks, cpu, memory)
	}
	return nil
}

// countUtilizationWrites watches the Service for d and counts the updates that
// changed its status.utilization.
func countUtilizationWrites(t *testing.T, ns, name string, d time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &ecsv1alpha1.ServiceList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var last *ecsv1alpha1.Utilization
	writes := -1 // the watch starts with the current object
	for {
		select {
		case <-ctx.Done():
			return writes
		case ev, ok := <-w.ResultChan():
			if !ok {
				return writes
			}
			svc, ok := ev.Object.(*ecsv1alpha1.Service)
			if !ok || svc.Name != name {
				continue
			}
			if u := svc.Status.Utilization; writes < 0 || u != nil && (last == nil || !u.MeasuredAt.Equal(last.MeasuredAt)) {
				writes++
				last = u
			}
		}
	}
}

// gaugeValue is the value of the one series of name with labels in the manager's
// registry (controller-runtime's, which `berth manager` serves).
func gaugeValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Errorf("no series %s%v", name, labels)
	return -1
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
