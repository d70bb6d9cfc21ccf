package deployment

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestBoundsRoundLikeECS(t *testing.T) {
	cases := []struct {
		desired, minPct, maxPct int32
		wantMin, wantMax        int32
	}{
		{desired: 4, minPct: 50, maxPct: 200, wantMin: 2, wantMax: 8},
		{desired: 3, minPct: 50, maxPct: 150, wantMin: 2, wantMax: 4},  // 1.5 up, 4.5 down
		{desired: 3, minPct: 100, maxPct: 100, wantMin: 3, wantMax: 3}, // no room either way
		{desired: 1, minPct: 1, maxPct: 199, wantMin: 1, wantMax: 1},   // 0.01 up, 1.99 down
		{desired: 10, minPct: 0, maxPct: 110, wantMin: 0, wantMax: 11},
		{desired: 7, minPct: 75, maxPct: 125, wantMin: 6, wantMax: 8}, // 5.25 up, 8.75 down
		{desired: 0, minPct: 100, maxPct: 200, wantMin: 0, wantMax: 0},
		{desired: 100000, minPct: 100, maxPct: 10000, wantMin: 100000, wantMax: 10000000},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d@%d-%d", tc.desired, tc.minPct, tc.maxPct), func(t *testing.T) {
			if got := MinHealthy(tc.desired, tc.minPct); got != tc.wantMin {
				t.Errorf("MinHealthy = %d, want %d", got, tc.wantMin)
			}
			if got := MaxTotal(tc.desired, tc.maxPct); got != tc.wantMax {
				t.Errorf("MaxTotal = %d, want %d", got, tc.wantMax)
			}
		})
	}
}

func TestCircuitBreakerThreshold(t *testing.T) {
	for desired, want := range map[int32]int32{0: 3, 1: 3, 5: 3, 6: 3, 7: 4, 10: 5, 11: 6, 399: 200, 400: 200, 5000: 200} {
		if got := CircuitBreakerThreshold(desired); got != want {
			t.Errorf("CircuitBreakerThreshold(%d) = %d, want %d", desired, got, want)
		}
	}
}

// tasks builds n tasks named prefix-i with the given role and health.
func tasks(prefix string, n int, primary bool, h Health) []Task {
	var out []Task
	for i := 0; i < n; i++ {
		out = append(out, Task{Name: fmt.Sprintf("%s-%d", prefix, i), Primary: primary, Health: h, Age: int64(n - i)})
	}
	return out
}

func join(parts ...[]Task) []Task {
	var out []Task
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestNext(t *testing.T) {
	cases := []struct {
		name      string
		in        Input
		wantStart int32
		wantStop  []string
		wantBlock bool
	}{
		{
			name:      "fresh service starts desired",
			in:        Input{Desired: 3, MinimumHealthyPercent: 100, MaximumPercent: 200},
			wantStart: 3,
		},
		{
			name:      "scale out within max",
			in:        Input{Desired: 5, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: tasks("new", 2, true, Healthy)},
			wantStart: 3,
		},
		{
			name:     "scale in stops pending first, then newest",
			in:       Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: join(tasks("h", 3, true, Healthy), tasks("p", 1, true, Pending))},
			wantStop: []string{"p-0", "h-2"},
		},
		{
			name:      "rollout 100/200 surges all new, keeps old",
			in:        Input{Desired: 3, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: tasks("old", 3, false, Healthy)},
			wantStart: 3,
		},
		{
			name:     "rollout 100/200 retires old once new are healthy",
			in:       Input{Desired: 3, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: join(tasks("old", 3, false, Healthy), tasks("new", 3, true, Healthy))},
			wantStop: []string{"old-0", "old-1", "old-2"},
		},
		{
			name:      "rollout 100/200 waits while new are pending",
			in:        Input{Desired: 3, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: join(tasks("old", 3, false, Healthy), tasks("new", 3, true, Pending))},
			wantBlock: true,
		},
		{
			name:     "rollout 50/100 stops half first (min rounds up: 2 of 4)",
			in:       Input{Desired: 4, MinimumHealthyPercent: 50, MaximumPercent: 100, Tasks: tasks("old", 4, false, Healthy)},
			wantStop: []string{"old-0", "old-1"},
		},
		{
			name:      "rollout 50/100 then starts into the room",
			in:        Input{Desired: 4, MinimumHealthyPercent: 50, MaximumPercent: 100, Tasks: tasks("old", 2, false, Healthy)},
			wantStart: 2,
		},
		{
			name:     "rollout 0/100 stops everything",
			in:       Input{Desired: 2, MinimumHealthyPercent: 0, MaximumPercent: 100, Tasks: tasks("old", 2, false, Healthy)},
			wantStop: []string{"old-0", "old-1"},
		},
		{
			name:      "100/100 cannot move",
			in:        Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 100, Tasks: tasks("old", 2, false, Healthy)},
			wantBlock: true,
		},
		{
			name:      "unhealthy old tasks stop at once",
			in:        Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: join(tasks("old", 2, false, Unhealthy))},
			wantStart: 2,
			wantStop:  []string{"old-0", "old-1"},
		},
		{
			name: "stop-now tasks go regardless of bounds and are replaced",
			in: Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 100, Tasks: []Task{
				{Name: "a", Primary: true, Health: Healthy}, {Name: "b", Primary: true, Health: Unhealthy, StopNow: true},
			}},
			wantStart: 1,
			wantStop:  []string{"b"},
		},
		{
			name: "draining task is replaced first and stopped once the minimum allows",
			in: Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: []Task{
				{Name: "a", Primary: true, Health: Healthy}, {Name: "drained", Primary: true, Replace: true, Health: Healthy},
			}},
			wantStart: 1,
		},
		{
			name: "draining task stops when its replacement is healthy",
			in: Input{Desired: 2, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: []Task{
				{Name: "a", Primary: true, Health: Healthy}, {Name: "drained", Primary: true, Replace: true, Health: Healthy},
				{Name: "b", Primary: true, Health: Healthy},
			}},
			wantStop: []string{"drained"},
		},
		{
			name: "frozen deployment launches nothing and keeps old tasks",
			in: Input{Desired: 3, MinimumHealthyPercent: 100, MaximumPercent: 200, Frozen: true, Tasks: join(
				tasks("old", 3, false, Healthy), tasks("new", 1, true, Pending))},
		},
		{
			name:     "scale to zero stops everything",
			in:       Input{Desired: 0, MinimumHealthyPercent: 100, MaximumPercent: 200, Tasks: join(tasks("new", 2, true, Healthy), tasks("old", 1, false, Healthy))},
			wantStop: []string{"new-1", "new-0", "old-0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Next(tc.in)
			if got.Start != tc.wantStart {
				t.Errorf("Start = %d, want %d", got.Start, tc.wantStart)
			}
			if diff := cmp.Diff(tc.wantStop, got.Stop, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Stop (-want +got):\n%s", diff)
			}
			if (got.Blocked != "") != tc.wantBlock {
				t.Errorf("Blocked = %q, want blocked=%v", got.Blocked, tc.wantBlock)
			}
		})
	}
}
