package bench

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCPUFigures: the CPU per 1,000 tasks of a measurement against its raw Task
// baseline, with the manager's share estimated by taking away the harness's cost per
// create, and the servers' idle CPU scaled to the measurement's length.
func TestCPUFigures(t *testing.T) {
	base := taskBaseline{n: 2000, cpu: serverCPU{apiserver: 4, etcd: 1, self: 2, wall: 5}}
	tests := []struct {
		name            string
		used, idle      serverCPU
		tasks, created  int
		wantAPI, wantMg map[string]float64
	}{{
		name: "placement: the harness created every task",
		used: serverCPU{apiserver: 30, etcd: 6, self: 12, wall: 20}, idle: serverCPU{apiserver: 1, etcd: 0.5, wall: 10},
		tasks: 10000, created: 10000,
		wantAPI: map[string]float64{
			"Value": 3, "less idle": 2.8, "etcd": 0.6, "etcd less idle": 0.5, "apiserver+etcd": 3.6, "idle (CPU s/min)": 6,
		},
		// 12 s less 10,000 creates at 1 ms each.
		wantMg: map[string]float64{"Value": 0.2, "manager+harness": 1.2},
	}, {
		name: "scale-out: the harness created none",
		used: serverCPU{apiserver: 10, etcd: 2, self: 5, wall: 10}, idle: serverCPU{apiserver: 2, etcd: 1, wall: 2},
		tasks: 5000, created: 0,
		wantAPI: map[string]float64{
			"Value": 2, "less idle": 0, "etcd": 0.4, "etcd less idle": 0, "apiserver+etcd": 2.4, "idle (CPU s/min)": 60,
		},
		wantMg: map[string]float64{"Value": 1, "manager+harness": 1},
	}, {
		name:  "an estimate below zero is zero, never negative",
		used:  serverCPU{apiserver: 1, etcd: 1, self: 0.5, wall: 1},
		tasks: 1000, created: 1000,
		wantAPI: map[string]float64{
			"Value": 1, "less idle": 1, "etcd": 1, "etcd less idle": 1, "apiserver+etcd": 2, "idle (CPU s/min)": 0,
		},
		wantMg: map[string]float64{"Value": 0, "manager+harness": 0.5},
	}}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			figs := cpuFigures(PlacementThroughput, tc.used, tc.idle, tc.tasks, tc.created, base, "placed")
			if len(figs) != 2 {
				t.Fatalf("%d figures, want 2", len(figs))
			}
			if diff := cmp.Diff(tc.wantAPI, figs[0].Values, approx); diff != "" {
				t.Errorf("apiserver values (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMg, figs[1].Values, approx); diff != "" {
				t.Errorf("manager values (-want +got):\n%s", diff)
			}
			// Baselines: 2 s of apiserver CPU for 2,000 creates is 2 s per 1,000.
			if got := figs[0].Baseline.Values["Value"]; math.Abs(got-2) > 1e-9 {
				t.Errorf("apiserver baseline %v, want 2", got)
			}
			if got := figs[1].Baseline.Values["harness"]; math.Abs(got-1) > 1e-9 {
				t.Errorf("harness baseline %v, want 1", got)
			}
		})
	}
}
