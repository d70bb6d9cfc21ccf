package agent

import (
	"testing"
	"time"
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
