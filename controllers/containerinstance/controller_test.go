package containerinstance

import (
	"testing"
	"time"
)

// TestObserveTimesLeasesOnTheManagersClock: connectivity depends only on when the
// manager saw the renew time change, never on the agent's timestamps, and a new
// Reconciler (a restarted manager) gives every instance a fresh grace period.
func TestObserveTimesLeasesOnTheManagersClock(t *testing.T) {
	const grace = 40 * time.Second
	t0 := time.Unix(1_000_000, 0)
	// The agent's clock is an hour behind: irrelevant.
	agentTime := t0.Add(-time.Hour)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	type step struct {
		now           time.Time
		renewed       *time.Time
		wantConnected bool
	}
	renew := func(d time.Duration) *time.Time { v := agentTime.Add(d); return &v }
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "no lease", steps: []step{{now: at(0), renewed: nil, wantConnected: false}}},
		{name: "first sight is fresh", steps: []step{{now: at(0), renewed: renew(0), wantConnected: true}}},
		{name: "renewals keep it connected", steps: []step{
			{now: at(0), renewed: renew(0), wantConnected: true},
			{now: at(30 * time.Second), renewed: renew(10 * time.Second), wantConnected: true},
			{now: at(65 * time.Second), renewed: renew(20 * time.Second), wantConnected: true},
		}},
		{name: "no change for the grace disconnects", steps: []step{
			{now: at(0), renewed: renew(0), wantConnected: true},
			{now: at(39 * time.Second), renewed: renew(0), wantConnected: true},
			{now: at(40 * time.Second), renewed: renew(0), wantConnected: false},
		}},
		{name: "a renewal reconnects", steps: []step{
			{now: at(0), renewed: renew(0), wantConnected: true},
			{now: at(50 * time.Second), renewed: renew(0), wantConnected: false},
			{now: at(51 * time.Second), renewed: renew(time.Second), wantConnected: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{Grace: grace, seen: map[string]observation{}}
			for i, s := range tc.steps {
				if got, _ := r.observe("i-1", s.renewed, s.now); got != s.wantConnected {
					t.Fatalf("step %d: connected = %v, want %v", i, got, s.wantConnected)
				}
			}
		})
	}

	t.Run("a restarted manager gives a fresh grace", func(t *testing.T) {
		stale := renew(0) // the agent died long ago, before the manager restarted
		r := &Reconciler{Grace: grace, seen: map[string]observation{}}
		if connected, deadline := r.observe("i-1", stale, at(time.Hour)); !connected || !deadline.Equal(at(time.Hour+grace)) {
			t.Fatalf("connected %v until %v, want a fresh grace until %v", connected, deadline, at(time.Hour+grace))
		}
		if connected, _ := r.observe("i-1", stale, at(time.Hour+grace)); connected {
			t.Fatal("still connected after the fresh grace")
		}
	})
}
