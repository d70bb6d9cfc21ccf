package deployment

import (
	"sort"
	"time"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Stopped-task history: which stopped tasks stay visible and which are deleted. It is
// one rule for the service controller (a service's tasks) and the task controller
// (standalone tasks), so the two never disagree about a task: each deleted what the
// other still needed before, for the circuit breaker's count of a deployment in
// progress was deleted at the cluster's retention period.

// DefaultStoppedTaskRetention is the retention period when a task's Cluster object
// does not exist (the schema defaults stoppedTaskRetentionSeconds to the same day).
const DefaultStoppedTaskRetention = 24 * time.Hour

// Retention is the retention period that stoppedTaskRetentionSeconds sets; nil for
// the default.
func Retention(seconds *int32) time.Duration {
	if seconds == nil {
		return DefaultStoppedTaskRetention
	}
	return time.Duration(*seconds) * time.Second
}

// StoppedTask is a stopped task as collection sees it.
type StoppedTask struct {
	Name string
	// StoppedAt is when it stopped (its creation time when it never recorded one).
	StoppedAt time.Time
	// Deployment is the service deployment that started it; "" for standalone tasks.
	Deployment string
	// Failed marks a failure the circuit breaker and the launch backoff count.
	Failed bool
}

// StoppedAt is when a task stopped, or its creation time when it never said (a task
// stopped by an older manager, or written by hand).
func StoppedAt(t *ecsv1alpha1.Task) time.Time {
	if t.Status.StoppedAt != nil {
		return t.Status.StoppedAt.Time
	}
	return t.CreationTimestamp.Time
}

// StoppedTaskOf is a stopped task as collection sees it; failed says whether the
// circuit breaker counts it.
func StoppedTaskOf(t *ecsv1alpha1.Task, failed bool) StoppedTask {
	return StoppedTask{Name: t.Name, StoppedAt: StoppedAt(t), Deployment: t.Labels[ecsv1alpha1.LabelDeployment], Failed: failed}
}

// Exemption keeps the newest Count failed tasks of Deployment that stopped at or after
// Since (any time when zero), whatever the limit and the retention period: a decision
// still counts them, and deleting them would reset its count.
type Exemption struct {
	Deployment string
	Count      int32
	Since      time.Time
}

// History bounds one owner's stopped tasks: a service's, or a single standalone task.
type History struct {
	// Retention is how long a stopped task stays (the cluster's
	// stoppedTaskRetentionSeconds).
	Retention time.Duration
	// Limit is how many stopped tasks stay at most, exempt ones not counted
	// (a service's stoppedTaskHistoryLimit); 0 means no limit.
	Limit int
	// KeepNewest keeps the most recent stopped task past the retention period, so a
	// service always shows why its last task stopped.
	KeepNewest bool
	// Exempt are the failed tasks decisions still count.
	Exempt []Exemption
}

// Collect returns the names of the stopped tasks to delete now, newest first, and when
// the next kept task's retention period ends (zero when no kept task's will).
// Tasks beyond the limit go at once; the rest when their retention period ends.
func (h History) Collect(tasks []StoppedTask, now time.Time) (collect []string, next time.Time) {
	sorted := append([]StoppedTask(nil), tasks...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].StoppedAt.Equal(sorted[j].StoppedAt) {
			return sorted[i].StoppedAt.After(sorted[j].StoppedAt)
		}
		return sorted[i].Name > sorted[j].Name // a fixed order, so every pass agrees
	})
	exempt := h.exempt(sorted)
	kept := 0
	for i, t := range sorted {
		switch {
		case exempt[i]:
			continue
		case h.KeepNewest && i == 0:
		case h.Limit > 0 && kept >= h.Limit:
			collect = append(collect, t.Name)
			continue
		default:
			deadline := t.StoppedAt.Add(h.Retention)
			if !now.Before(deadline) {
				collect = append(collect, t.Name)
				continue
			}
			if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
		}
		kept++
	}
	return collect, next
}

// exempt marks, per task of newestFirst, whether an exemption keeps it. Each exemption
// keeps its own newest Count matches, so two exemptions over the same tasks do not
// eat into each other's count.
func (h History) exempt(newestFirst []StoppedTask) []bool {
	out := make([]bool, len(newestFirst))
	for _, e := range h.Exempt {
		left := e.Count
		for i, t := range newestFirst {
			if left <= 0 {
				break
			}
			if t.Failed && t.Deployment == e.Deployment && !t.StoppedAt.Before(e.Since) {
				out[i] = true
				left--
			}
		}
	}
	return out
}

// KeptStopsWindow is how far apart the stops a burst keeps are: while stops come in
// passes, one after another (a rollout, a long scale-in), the history keeps its
// limit of them per window and no more (Unkept).
const KeptStopsWindow = time.Minute

// Unkept is how many of n tasks the owner stops together now the history will not
// keep once they have stopped. They will be newer than every stopped task it keeps,
// so it could keep its limit of them; but recent (the stops it already kept that are
// still in flight, or stopped within KeptStopsWindow) take their place first, so a
// burst of passes keeps its limit once per window, not once per pass. The kept ones
// are then at most a window older than the newest stop. With a zero retention
// period only the newest one is kept (KeepNewest).
//
// The service scheduler has its agents delete that many of its planned stops instead
// of reporting them STOPPED (spec.deleteWhenStopped): collection would delete them
// right after, so a replaced task costs no status write of its last state.
func (h History) Unkept(n, recent int) int {
	keep := n
	if h.Limit > 0 {
		keep = min(n, max(0, h.Limit-recent))
	}
	if h.Retention <= 0 {
		keep = 0
		if h.KeepNewest {
			keep = min(n, 1)
		}
	}
	return n - keep
}
