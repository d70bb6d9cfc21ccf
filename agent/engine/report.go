package engine

import (
	"reflect"
	"sort"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// report is the task's agent-owned status as the worker knows it now.
func (w *worker) report() Report {
	r := Report{
		Task:          w.task,
		UID:           w.uid,
		LastStatus:    w.known.value(),
		HealthStatus:  taskHealth(w.containers),
		PullStartedAt: w.pullStartedAt,
		PullStoppedAt: w.pullStoppedAt,
		StartedAt:     w.startedAt,
		StoppingAt:    w.stoppingAt,
		StoppedAt:     w.stoppedAt,
		StopCode:      w.code,
		StoppedReason: taskrules.TruncateReason(w.reason),
	}
	cs := make([]*container, 0, len(w.containers))
	for i := range w.containers {
		cs = append(cs, &w.containers[i])
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].defIndex < cs[j].defIndex })
	for _, c := range cs {
		r.Containers = append(r.Containers, w.containerReport(c))
	}
	return r
}

func (w *worker) containerReport(c *container) ecsv1alpha1.ContainerStatus {
	s := ecsv1alpha1.ContainerStatus{
		Name:         c.name,
		ImageDigest:  c.digest,
		LastStatus:   c.known.value(),
		HealthStatus: c.health,
		Reason:       taskrules.TruncateReason(c.reason),
		RestartCount: c.restarts,
		AWSLogs:      c.awsLogs,
	}
	if c.exists {
		s.RuntimeID = c.id
	}
	if w.known == taskStopped {
		s.LastStatus = ecsv1alpha1.ContainerStopped
	}
	if c.known == containerStopped && c.exit != nil {
		code := int32(c.exit.Code)
		s.ExitCode = &code
	}
	if c.known == containerRunning {
		s.NetworkBindings = w.networkBindings(c.name)
		s.NetworkInterfaces = w.networkInterfaces()
	}
	return s
}

// publish sends the task's report if it differs from the last one sent. Nothing is
// reported before the task is PENDING, nor once it is forgotten.
func (w *worker) publish() {
	if w.known == taskNone || w.forgetting {
		return
	}
	r := w.report()
	if w.published != nil && reflect.DeepEqual(*w.published, r) {
		return
	}
	// report builds every slice afresh and its timestamps point at values that are
	// never changed, so this one report is shared, read-only, by the worker, Tasks
	// (which copies it out) and the Report callback: a host with tens of thousands of
	// tasks (berth hollow) keeps one copy of each.
	w.published = &r
	w.e.storeReport(w.uid, r)
	w.log.V(1).Info("reporting", logStatus, r.LastStatus, logHealth, r.HealthStatus)
	w.e.cfg.Report(r)
}

// publishStatus publishes only if lastStatus changed since the last report.
func (w *worker) publishStatus() {
	if w.published == nil || w.published.LastStatus != w.known.value() {
		w.publish()
	}
}
