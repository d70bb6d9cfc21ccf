package agent

import (
	"testing"
	"time"

	"github.com/berthdev/berth/agent/metrics"
)

func TestStatusDue(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	busy := usageState{written: t0, busy: true}
	idle := usageState{written: t0}
	for _, tc := range []struct {
		name        string
		last        usageState
		after       time.Duration
		busy, ready bool
		want        bool
	}{
		{"first report", usageState{}, 0, true, false, true},
		{"busy, within the interval", busy, 10 * time.Second, true, false, false},
		{"busy, the interval passed", busy, 30 * time.Second, true, false, true},
		{"just emptied", busy, time.Second, false, false, true},
		{"idle and still idle", idle, time.Second, false, false, false},
		{"idle, then busy: waits for the interval", idle, time.Second, true, false, false},
		{"a utilization window ended", busy, time.Second, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusDue(t0.Add(tc.after), tc.last, 30*time.Second, tc.ready, func() bool { return tc.busy }); got != tc.want {
				t.Errorf("statusDue = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBusyInstanceWritesOncePerWindow plays ten minutes of a busy instance with the
// default intervals, checked every second as reportUsage does: its usage rides the
// utilization windows, one write each, and the interval never adds a second write
// just before a window closes (as it would at an interval of one window or less).
func TestBusyInstanceWritesOncePerWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	// The sampler started 17.4 s into the first minute, off the checks, and a
	// window closes up to 1.4 s late (it reads every container's stats first).
	closes := map[time.Duration]bool{}
	for k := range 10 {
		closes[17400*time.Millisecond+time.Duration(k)*metrics.DefaultInterval+time.Duration(k%3)*700*time.Millisecond] = true
	}
	var last usageState
	writes, windows := 0, 0
	for at := time.Duration(0); at <= 10*time.Minute; at += 100 * time.Millisecond {
		ready := closes[at]
		if ready {
			windows++
		}
		if !ready && at%statusCheckEvery != 0 {
			continue
		}
		if statusDue(t0.Add(at), last, DefaultStatusInterval, ready, func() bool { return true }) {
			writes++
			last = usageState{written: t0.Add(at), busy: true}
		}
	}
	// The first check writes (nothing written yet), then each window once.
	if want := 1 + windows; writes != want {
		t.Errorf("%d writes in 10 minutes with %d windows, want %d", writes, windows, want)
	}
}
