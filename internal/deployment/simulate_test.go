package deployment

import (
	"fmt"
	"testing"
)

// simulate runs a rolling deployment to completion: each round it applies the plan,
// then every pending task becomes healthy. It checks the bounds after every action
// and returns the number of rounds, or an error naming the violated invariant.
func simulate(desired, minPct, maxPct int32, old int) (int, error) {
	minHealthy, maxTotal := MinHealthy(desired, minPct), MaxTotal(desired, maxPct)
	var live []Task
	for i := 0; i < old; i++ {
		live = append(live, Task{Name: fmt.Sprintf("old-%d", i), Health: Healthy, Age: int64(1000 + i)})
	}
	next := 0
	for round := 1; round <= 1000; round++ {
		healthyBefore := countHealthy(live)
		totalBefore := len(live)
		plan := Next(Input{Desired: desired, MinimumHealthyPercent: minPct, MaximumPercent: maxPct, Tasks: live})
		stop := map[string]bool{}
		for _, n := range plan.Stop {
			stop[n] = true
		}
		var kept []Task
		for _, t := range live {
			if !stop[t.Name] {
				kept = append(kept, t)
			}
		}
		live = kept
		if h := countHealthy(live); h < int(minHealthy) && h < healthyBefore {
			return round, fmt.Errorf("round %d: healthy dropped to %d below the minimum %d", round, h, minHealthy)
		}
		for i := int32(0); i < plan.Start; i++ {
			live = append(live, Task{Name: fmt.Sprintf("new-%d", next), Primary: true, Health: Pending, Age: int64(-next)})
			next++
		}
		if len(live) > int(maxTotal) && len(live) > totalBefore {
			return round, fmt.Errorf("round %d: %d live tasks above the maximum %d", round, len(live), maxTotal)
		}
		done := len(live) == int(desired)
		for _, t := range live {
			done = done && t.Primary && t.Health == Healthy
		}
		if done {
			return round, nil
		}
		if plan.Start == 0 && len(plan.Stop) == 0 && countPending(live) == 0 {
			return round, fmt.Errorf("round %d: stuck (%s)", round, plan.Blocked)
		}
		for i := range live {
			live[i].Health = Healthy
		}
	}
	return 1000, fmt.Errorf("no convergence in 1000 rounds")
}

func countHealthy(ts []Task) int {
	n := 0
	for _, t := range ts {
		if t.Health == Healthy {
			n++
		}
	}
	return n
}

func countPending(ts []Task) int {
	n := 0
	for _, t := range ts {
		if t.Health == Pending {
			n++
		}
	}
	return n
}

func TestRolloutsConvergeWithinBounds(t *testing.T) {
	cases := []struct {
		desired, minPct, maxPct int32
		old                     int
	}{
		{3, 100, 200, 3}, {10, 100, 150, 10}, {4, 50, 100, 4}, {7, 75, 125, 7}, {5, 0, 100, 5},
		{1, 100, 200, 1}, {10, 90, 110, 10}, {6, 50, 200, 2}, {2, 100, 200, 6}, {0, 100, 200, 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d@%d-%d-from-%d", tc.desired, tc.minPct, tc.maxPct, tc.old), func(t *testing.T) {
			if _, err := simulate(tc.desired, tc.minPct, tc.maxPct, tc.old); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// FuzzRollout checks the invariants for any desired count and percentages that the
// API accepts and that leave room to move (100/100 legitimately cannot).
func FuzzRollout(f *testing.F) {
	f.Add(int32(3), int32(100), int32(200), 3)
	f.Add(int32(4), int32(50), int32(100), 4)
	f.Add(int32(7), int32(75), int32(125), 2)
	f.Fuzz(func(t *testing.T, desired, minPct, maxPct int32, old int) {
		if desired < 0 || desired > 300 || minPct < 0 || minPct > 100 || maxPct < 100 || maxPct > 400 || old < 0 || old > 300 {
			t.Skip()
		}
		if MinHealthy(desired, minPct) == MaxTotal(desired, maxPct) && old > 0 && desired > 0 {
			t.Skip() // no room in either direction: ECS cannot deploy this either
		}
		if _, err := simulate(desired, minPct, maxPct, old); err != nil {
			t.Fatalf("desired %d min %d max %d old %d: %v", desired, minPct, maxPct, old, err)
		}
	})
}
