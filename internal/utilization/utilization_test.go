package utilization

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		used, of int64
		want     *int32
	}{
		{0, 0, nil},
		{10, -1, nil},
		{0, 100, ptr.To[int32](0)},
		{512, 1024, ptr.To[int32](50)},
		{3072, 1024, ptr.To[int32](300)}, // CPU units are a share: use may exceed them
		{1, 3, ptr.To[int32](33)},
		{2, 3, ptr.To[int32](67)},
	} {
		if diff := cmp.Diff(tc.want, Percent(tc.used, tc.of)); diff != "" {
			t.Errorf("Percent(%d, %d) (-want +got):\n%s", tc.used, tc.of, diff)
		}
	}
}

func TestTotalsSumBeforeDividing(t *testing.T) {
	early := metav1.NewTime(time.Unix(100, 0))
	late := metav1.NewTime(time.Unix(160, 0))
	var tot Totals
	// One task at 100% of 256 units, one at 0% of 768: ECS's service figure is
	// 256/1024 = 25%, not the 50% a mean of percentages would say.
	tot.Add(&ecsv1alpha1.UtilizationGroup{Tasks: 1, CPUUsed: 256, CPUReserved: 256, MemoryUsed: 64, MemoryReserved: 128}, late)
	tot.Add(&ecsv1alpha1.UtilizationGroup{Tasks: 1, CPUUsed: 0, CPUReserved: 768, MemoryUsed: 0, MemoryReserved: 384}, early)
	want := ecsv1alpha1.Utilization{
		CPUUtilization: ptr.To[int32](25), MemoryUtilization: ptr.To[int32](13),
		CPUUsed: 256, CPUReserved: 1024, MemoryUsed: 64, MemoryReserved: 512, Tasks: 2, MeasuredAt: &late,
	}
	if diff := cmp.Diff(want, tot.Status()); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
}

func TestCapacityProviderReservation(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Capacity
		want int32
	}{
		{"nothing at all", Capacity{}, 100},
		{"tasks wait and no instance", Capacity{WaitingCPU: 256, Unplaceable: 1}, 200},
		{"half full", Capacity{RegisteredCPU: 2048, RegisteredMemory: 4096, PlacedCPU: 1024, PlacedMemory: 1024}, 50},
		{"memory is scarcer", Capacity{RegisteredCPU: 2048, RegisteredMemory: 1000, PlacedCPU: 512, PlacedMemory: 900}, 90},
		{"waiting tasks count", Capacity{RegisteredCPU: 1024, RegisteredMemory: 1024, PlacedCPU: 1024, WaitingCPU: 512, Unplaceable: 2}, 150},
		{"an unplaceable task is never room to spare", Capacity{RegisteredCPU: 8192, RegisteredMemory: 8192, PlacedCPU: 100, WaitingCPU: 10, Unplaceable: 1}, 101},
		{"empty instances", Capacity{RegisteredCPU: 1024, RegisteredMemory: 1024}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.CapacityProviderReservation(); got != tc.want {
				t.Errorf("CapacityProviderReservation = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestClusterStatusDividesByRegistered(t *testing.T) {
	c := Capacity{Instances: 2, RegisteredCPU: 4096, RegisteredMemory: 2048, PlacedCPU: 1024, PlacedMemory: 512}
	got := c.ClusterStatus(Totals{Tasks: 4, CPUUsed: 1024, CPUReserved: 1024, MemoryUsed: 256, MemoryReserved: 512})
	if *got.CPUUtilization != 25 || *got.MemoryUtilization != 13 || *got.CPUReservation != 25 || *got.MemoryReservation != 25 ||
		got.CapacityProviderReservation != 25 || got.Instances != 2 {
		t.Errorf("ClusterStatus = %+v", got)
	}
}

func TestWindowAverage(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(1000+s), 0) }
	for _, tc := range []struct {
		name            string
		samples         []Sample
		wantCPU, wantMB int64
		wantOK          bool
	}{
		{"one sample is no rate", []Sample{{At: at(0), CPU: time.Second}}, 0, 0, false},
		{"no time between samples", []Sample{{At: at(0)}, {At: at(0), CPU: time.Second}}, 0, 0, false},
		{"half a core", []Sample{
			{At: at(0), CPU: 10 * time.Second, MemoryBytes: 10 << 20},
			{At: at(10), CPU: 15 * time.Second, MemoryBytes: 30 << 20},
			{At: at(20), CPU: 20 * time.Second, MemoryBytes: 20 << 20},
		}, 512, 20, true},
		{"a restart counts from zero", []Sample{
			{At: at(0), CPU: 50 * time.Second},
			{At: at(10), CPU: 60 * time.Second}, // 10 s of CPU
			{At: at(20), CPU: 5 * time.Second},  // restarted: 5 s since
			{At: at(40), CPU: 10 * time.Second}, // 5 s more
		}, 512, 0, true},
		{"idle", []Sample{{At: at(0), CPU: time.Second}, {At: at(60), CPU: time.Second}}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w Window
			for _, s := range tc.samples {
				w.Add(s)
			}
			cpu, mem, ok := w.Average()
			if cpu != tc.wantCPU || mem != tc.wantMB || ok != tc.wantOK {
				t.Errorf("Average = %d units, %d MiB, %v; want %d, %d, %v", cpu, mem, ok, tc.wantCPU, tc.wantMB, tc.wantOK)
			}
		})
	}
}
