package utilization

import (
	"math"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// CPUUnitsPerCore is ECS's CPU unit: 1024 to a core.
const CPUUnitsPerCore = 1024

// Totals adds up the use and reservations of a group of tasks.
type Totals struct {
	Tasks                      int32
	CPUUsed, CPUReserved       int64
	MemoryUsed, MemoryReserved int64
	// MeasuredAt is the newest window end among what was added.
	MeasuredAt metav1.Time
}

// Add counts group g, measured in a window ending at end.
func (t *Totals) Add(g *ecsv1alpha1.UtilizationGroup, end metav1.Time) {
	t.Tasks += g.Tasks
	t.CPUUsed += g.CPUUsed
	t.CPUReserved += g.CPUReserved
	t.MemoryUsed += g.MemoryUsed
	t.MemoryReserved += g.MemoryReserved
	if end.After(t.MeasuredAt.Time) {
		t.MeasuredAt = end
	}
}

// Percent is used in percent of of, rounded to the nearest integer; nil when of is
// not positive (a group that reserves nothing has no utilization).
func Percent(used, of int64) *int32 {
	if of <= 0 {
		return nil
	}
	p := math.Round(float64(used) * 100 / float64(of))
	p = min(p, math.MaxInt32)
	v := int32(p)
	return &v
}

// Status is t as a Service's or TaskDefinition's status.utilization.
func (t Totals) Status() ecsv1alpha1.Utilization {
	u := ecsv1alpha1.Utilization{
		CPUUtilization:    Percent(t.CPUUsed, t.CPUReserved),
		MemoryUtilization: Percent(t.MemoryUsed, t.MemoryReserved),
		CPUUsed:           t.CPUUsed, CPUReserved: t.CPUReserved,
		MemoryUsed: t.MemoryUsed, MemoryReserved: t.MemoryReserved,
		Tasks: t.Tasks,
	}
	if !t.MeasuredAt.IsZero() {
		at := t.MeasuredAt
		u.MeasuredAt = &at
	}
	return u
}

// Capacity is what a cluster's ACTIVE instances registered and what its tasks
// reserve of it.
type Capacity struct {
	Instances int32
	// RegisteredCPU and RegisteredMemory are what the instances registered.
	RegisteredCPU, RegisteredMemory int64
	// PlacedCPU and PlacedMemory are what the tasks placed on them reserve.
	PlacedCPU, PlacedMemory int64
	// WaitingCPU and WaitingMemory are what the tasks that no instance has room
	// for reserve; Unplaceable counts them.
	WaitingCPU, WaitingMemory int64
	Unplaceable               int32
}

// CapacityProviderReservation is ECS's idea for a cluster: the capacity every task
// needs (placed or waiting) in percent of the capacity the instances have, by the
// scarcer of CPU and memory. As ECS does, it is 100 with neither tasks nor
// instances, and 200 when tasks wait and no instance is there to run them.
func (c Capacity) CapacityProviderReservation() int32 {
	needCPU, needMemory := c.PlacedCPU+c.WaitingCPU, c.PlacedMemory+c.WaitingMemory
	if c.RegisteredCPU <= 0 && c.RegisteredMemory <= 0 {
		if needCPU > 0 || needMemory > 0 || c.Unplaceable > 0 {
			return 200
		}
		return 100
	}
	var worst int32
	for _, p := range []*int32{Percent(needCPU, c.RegisteredCPU), Percent(needMemory, c.RegisteredMemory)} {
		if p != nil && *p > worst {
			worst = *p
		}
	}
	// Tasks that fit nowhere need an instance even when their reservation is small
	// beside the total (a static host port, a GPU): never report room to spare.
	if c.Unplaceable > 0 && worst <= 100 {
		worst = 101
	}
	return worst
}

// ClusterStatus is the cluster's status.utilization: t is its tasks' use.
func (c Capacity) ClusterStatus(t Totals) ecsv1alpha1.ClusterUtilization {
	u := t.Status()
	// A cluster's utilization is against what its instances registered, not what its
	// tasks reserve (ECS's cluster CPUUtilization).
	u.CPUUtilization = Percent(t.CPUUsed, c.RegisteredCPU)
	u.MemoryUtilization = Percent(t.MemoryUsed, c.RegisteredMemory)
	return ecsv1alpha1.ClusterUtilization{
		Utilization:                 u,
		CPUReservation:              Percent(c.PlacedCPU, c.RegisteredCPU),
		MemoryReservation:           Percent(c.PlacedMemory, c.RegisteredMemory),
		CapacityProviderReservation: c.CapacityProviderReservation(),
		UnplaceableTasks:            c.Unplaceable,
		RegisteredCPU:               c.RegisteredCPU,
		RegisteredMemory:            c.RegisteredMemory,
		Instances:                   c.Instances,
	}
}
