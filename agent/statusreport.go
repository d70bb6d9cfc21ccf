package agent

import "time"

// DefaultStatusInterval is how long an instance's usage (running and pending task
// counts, remaining resources) may go unwritten while its tasks change. At a
// thousand instances every write of it costs the apiserver about five Task creates
// (a server-side apply of the whole status, measured in issue 16's placement
// profile), and every instance writes it once per interval while tasks churn, so the
// interval is the fleet's largest lever on the apiserver after the tasks
// themselves: 30 s took placement from 126 to 176 tasks/s on 1,000 hollow
// instances. Placement does not read these figures (the scheduler counts from
// tasks), and an instance that has just emptied says so at once (statusDue).
const DefaultStatusInterval = 30 * time.Second

// statusCheckEvery is how often an instance looks whether its usage is due.
const statusCheckEvery = time.Second

// usageState is what an instance remembers of its last usage write.
type usageState struct {
	written time.Time
	// busy is whether tasks ran or waited on it at the last write.
	busy bool
}

// statusDue tells whether an instance writes its usage now: a utilization window
// ended, the interval has passed since the last write, or the instance has just
// emptied, which drain scripts wait for (runningTasksCount 0) and which should not
// wait out the interval. busy is asked only when the answer depends on it (the last
// write was busy and the interval has not passed), so an idle instance does not sum
// its usage every check.
func statusDue(now time.Time, last usageState, interval time.Duration, utilizationReady bool, busy func() bool) bool {
	switch {
	case utilizationReady, last.written.IsZero(), now.Sub(last.written) >= interval:
		return true
	case last.busy:
		return !busy()
	}
	return false
}
