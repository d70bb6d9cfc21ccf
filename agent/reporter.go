package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/engine"
	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/internal/taskstatus"
)

// DefaultReportWorkers write task statuses in parallel (each task's in order): enough
// for the tasks of one machine.
const DefaultReportWorkers = 4

// Backoff of a failed status write, per task: from reportRetryMin doubling up to
// reportRetryMax. client-go's default controller rate limiter doubles up to 1000 s,
// so after a minute of refused connections a report would wait over a minute more
// once the apiserver is back; capped, every pending report is written within
// reportRetryMax of its return.
const (
	reportRetryMin = 5 * time.Millisecond
	reportRetryMax = 10 * time.Second
)

// transitionalDelay is how long a report of a passing state (PENDING, ACTIVATING,
// STOPPING) waits before it is written. A task that reaches RUNNING (or STOPPED)
// within it costs one status write instead of two or three, as the ECS agent reports
// only RUNNING and STOPPED to its backend; a pull or a stop that lasts longer still
// shows as PENDING or STOPPING after this delay. RUNNING and STOPPED are written at
// once.
const transitionalDelay = time.Second

// reporter writes the engines' reports to the tasks' status. Reports are batched per
// task: a newer report replaces one not yet written, so a burst of transitions costs
// one write. Each write is a server-side apply of the agent's whole part of the
// status with the task's UID as a precondition, through the client of the task's
// instance, so it never erases the manager's fields and never lands on a re-created
// task of the same name.
type reporter struct {
	cache   client.Reader
	queue   workqueue.TypedRateLimitingInterface[types.NamespacedName]
	workers int

	mu      sync.Mutex
	pending map[types.NamespacedName]pendingReport
}

// pendingReport is a report waiting to be written, with the instance it is from.
type pendingReport struct {
	inst *Instance
	rep  engine.Report
}

func newReporter(cache client.Reader, workers int) *reporter {
	return &reporter{
		cache: cache, workers: workers, pending: map[types.NamespacedName]pendingReport{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(newReportLimiter(),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "agent-reports"}),
	}
}

// newReportLimiter is the per-task backoff of failed status writes.
func newReportLimiter() workqueue.TypedRateLimiter[types.NamespacedName] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](reportRetryMin, reportRetryMax)
}

// enqueue is an engine's Report callback.
func (r *reporter) enqueue(inst *Instance, rep engine.Report) {
	r.mu.Lock()
	r.pending[rep.Task] = pendingReport{inst: inst, rep: rep} // read-only, see engine.Config.Report
	r.mu.Unlock()
	if transitional(rep.LastStatus) {
		r.queue.AddAfter(rep.Task, transitionalDelay)
		return
	}
	r.queue.Add(rep.Task)
}

// transitional reports whether a task passes through status s on its way to RUNNING
// or STOPPED.
func transitional(s ecsv1alpha1.TaskStatusValue) bool {
	return s != ecsv1alpha1.TaskRunning && s != ecsv1alpha1.TaskStopped
}

func (r *reporter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.next(ctx) {
			}
		}()
	}
	wg.Wait()
}

func (r *reporter) shutDown() { r.queue.ShutDown() }

func (r *reporter) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	r.mu.Lock()
	p, ok := r.pending[key]
	delete(r.pending, key)
	r.mu.Unlock()
	if !ok {
		r.queue.Forget(key)
		return true
	}
	if err := r.write(ctx, p.inst, p.rep); err != nil {
		if ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "writing task status; retrying", logTask, key.String(), logInstance, p.inst.name)
		}
		r.mu.Lock()
		if _, newer := r.pending[key]; !newer {
			r.pending[key] = p
		}
		r.mu.Unlock()
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

func (r *reporter) write(ctx context.Context, inst *Instance, rep engine.Report) error {
	var t ecsv1alpha1.Task
	if err := r.cache.Get(ctx, rep.Task, &t); err != nil {
		return client.IgnoreNotFound(err) // deleted: nothing to report to
	}
	if t.UID != rep.UID {
		return nil // a newer task of the same name
	}
	if rep.LastStatus == ecsv1alpha1.TaskStopped && taskrules.DeletedWhenStopped(&t) {
		err := r.delete(ctx, inst, &t)
		if !apierrors.IsForbidden(err) {
			return err
		}
		// A role or admission policy older than this agent (an upgrade in progress)
		// refuses the delete: report STOPPED as before, and collection deletes it.
		ctrl.LoggerFrom(ctx).Info("may not delete a stopped task its service does not keep; reporting it STOPPED",
			logTask, rep.Task.String(), logInstance, inst.name, logReason, err.Error())
	}
	return r.apply(ctx, inst, &t, StatusFromReport(&t, rep))
}

// delete ends a stopped task its service will not keep (taskrules.DeletedWhenStopped)
// with one write, where a STOPPED report would be deleted right after. The UID
// precondition keeps it off a re-created task of the same name; the watch's delete
// event then has the engine remove the containers.
func (r *reporter) delete(ctx context.Context, inst *Instance, t *ecsv1alpha1.Task) error {
	uid := t.UID
	err := inst.c.Delete(ctx, &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}},
		client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // deleted already, or deleted and re-created
	}
	if err != nil {
		return fmt.Errorf("deleting stopped task %s: %w", t.Name, err) // wrapped: the caller tells Forbidden apart
	}
	ctrl.LoggerFrom(ctx).V(1).Info("deleted stopped task its service does not keep", logTask, client.ObjectKeyFromObject(t).String(), logInstance, inst.name)
	return nil
}

// failed reports a task that cannot start (a missing revision or Secret) as STOPPED
// with TaskFailedToStart.
func (r *reporter) failed(ctx context.Context, inst *Instance, t *ecsv1alpha1.Task, reason string) error {
	if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
		return nil
	}
	now := time.Now()
	rep := engine.Report{Task: client.ObjectKeyFromObject(t), UID: t.UID, LastStatus: ecsv1alpha1.TaskStopped,
		HealthStatus: ecsv1alpha1.HealthUnknown, StoppingAt: &now, StoppedAt: &now,
		StopCode: ecsv1alpha1.StopTaskFailedToStart, StoppedReason: reason}
	ctrl.LoggerFrom(ctx).Info("task cannot start", logTask, rep.Task.String(), logReason, reason)
	return r.apply(ctx, inst, t, StatusFromReport(t, rep))
}

func (r *reporter) apply(ctx context.Context, inst *Instance, t *ecsv1alpha1.Task, st *ecsac.TaskStatusApplyConfiguration) error {
	ac := ecsac.Task(t.Name, t.Namespace).WithUID(t.UID).WithStatus(st)
	err := inst.c.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerAgent), client.ForceOwnership)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // deleted, or deleted and re-created: this report is moot
	}
	if err != nil {
		return fmt.Errorf("applying status of task %s: %w", t.Name, err)
	}
	return nil
}

// StatusFromReport is the agent's whole part of the status: the engine's report plus
// the revision, the creation time and the Running/Stopped conditions. The benchmarks
// (TaskWriteCost) price this very write.
func StatusFromReport(t *ecsv1alpha1.Task, rep engine.Report) *ecsac.TaskStatusApplyConfiguration {
	st := ecsac.TaskStatus().WithLastStatus(rep.LastStatus)
	if rep.HealthStatus != "" {
		st.WithHealthStatus(rep.HealthStatus)
	}
	if n := revision.OfTask(t); n > 0 {
		st.WithTaskDefinitionRevision(n)
	}
	created := t.CreationTimestamp
	if t.Status.CreatedAt != nil {
		created = *t.Status.CreatedAt
	}
	st.WithCreatedAt(created)
	for name, at := range map[string]*time.Time{"pullStartedAt": rep.PullStartedAt, "pullStoppedAt": rep.PullStoppedAt,
		"startedAt": rep.StartedAt, "stoppingAt": rep.StoppingAt, "stoppedAt": rep.StoppedAt} {
		if at == nil {
			continue
		}
		mt := metav1.NewTime(*at)
		switch name {
		case "pullStartedAt":
			st.WithPullStartedAt(mt)
		case "pullStoppedAt":
			st.WithPullStoppedAt(mt)
		case "startedAt":
			st.WithStartedAt(mt)
		case "stoppingAt":
			st.WithStoppingAt(mt)
		case "stoppedAt":
			st.WithStoppedAt(mt)
		}
	}
	if rep.StopCode != "" {
		st.WithStopCode(rep.StopCode)
	}
	if rep.StoppedReason != "" {
		st.WithStoppedReason(taskrules.TruncateReason(rep.StoppedReason))
	}
	for i := range rep.Containers {
		st.WithContainers(taskstatus.Container(&rep.Containers[i]))
	}
	st.WithConditions(taskConditions(t, rep)...)
	return st
}

// taskConditions are the agent's conditions: Placed, Running (for `kubectl wait
// --for=condition=Running`) and, once stopped, Stopped with the stop code as reason.
func taskConditions(t *ecsv1alpha1.Task, rep engine.Report) []*metav1ac.ConditionApplyConfiguration {
	now := time.Now()
	// Placed, as the task's own record of where it went: the binding is a single
	// write of the spec (the scheduler's, or the Service's create), and this report
	// is the first status write after it.
	out := []*metav1ac.ConditionApplyConfiguration{
		conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionTrue, ecsv1alpha1.ReasonPlaced,
			"Placed on container instance "+t.Spec.ContainerInstance, now),
	}
	switch rep.LastStatus {
	case ecsv1alpha1.TaskRunning:
		out = append(out, conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionRunning, metav1.ConditionTrue, "Started", "The task's essential containers are running", now))
	case ecsv1alpha1.TaskStopped:
		reason := string(rep.StopCode)
		if reason == "" {
			reason = "Stopped"
		}
		msg := rep.StoppedReason
		if msg == "" {
			msg = "The task stopped"
		}
		out = append(out,
			conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionRunning, metav1.ConditionFalse, "Stopped", "The task stopped", now),
			conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionStopped, metav1.ConditionTrue, reason, msg, now))
	default:
		out = append(out, conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionRunning, metav1.ConditionFalse, ecsv1alpha1.ReasonStarting,
			"The task is "+string(rep.LastStatus), now))
	}
	return out
}
