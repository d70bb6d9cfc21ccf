package hollow

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

// taskPhase is what a simulated machine knows of a task, in order.
type taskPhase int

const (
	// phaseAccepted: seen and waiting RunningDelay; its cpu and memory are reserved.
	phaseAccepted taskPhase = iota
	// phaseRunning: reported RUNNING (or adopted so); its containers run.
	phaseRunning
	// phaseStopped: reported STOPPED; it holds nothing. Kept until the cache shows
	// STOPPED too, so a lagging cache does not cause a second write.
	phaseStopped
)

// simTask is one task on a simulated machine. It is guarded by Agent.mu and changed
// only by the worker holding the task's key.
type simTask struct {
	uid    types.UID
	phase  taskPhase
	seenAt time.Time

	// The revision, resolved when the task is first seen (nil spec: not yet).
	revision    int32
	spec        *ecsv1alpha1.TaskDefinitionSpec
	cpu, memory int64

	// bindings are the host ports the task holds.
	bindings []plannedBinding
	// plan and startedAt are fixed by the first start attempt, so that a retried
	// write sends the same status.
	plan      *startPlan
	startedAt *metav1.Time
	// stoppedAt is fixed by the first stop attempt, for the same reason.
	stoppedAt *metav1.Time
}

func (st *simTask) setRevision(res *revision.Resolved, overrides *ecsv1alpha1.TaskOverrides) {
	st.revision = res.Ref.Revision
	st.spec = res.Spec
	st.cpu, st.memory = taskResources(res.Spec, overrides)
}

// action is the next thing to do for a task.
type action int

const (
	actNone action = iota
	// actForget drops the local state: the task is STOPPED in the apiserver.
	actForget
	// actAccept records a newly seen task and waits RunningDelay.
	actAccept
	// actWait waits for RunningDelay to pass.
	actWait
	// actStart reports the task RUNNING (or failed).
	actStart
	// actAdopt takes over a task another agent process reported RUNNING.
	actAdopt
	// actStop stops the task as the control plane asked.
	actStop
)

// nextStep picks what to do for a task from the apiserver's view (task, from the
// cache) and the machine's (local, nil when the task is unknown to it). lastStatus
// only moves forward, and what this process already wrote wins over a cache that has
// not caught up with it.
func nextStep(task *ecsv1alpha1.Task, local *simTask, now time.Time, delay time.Duration) (action, time.Duration) {
	last := task.Status.LastStatus
	switch {
	case last == ecsv1alpha1.TaskStopped:
		return actForget, 0
	case local != nil && local.phase == phaseStopped:
		return actNone, 0
	case task.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped:
		return actStop, 0
	case local != nil && local.phase == phaseRunning:
		return actNone, 0
	case last.Index() >= ecsv1alpha1.TaskRunning.Index():
		return actAdopt, 0
	case local == nil:
		return actAccept, delay
	case now.Before(local.seenAt.Add(delay)):
		return actWait, local.seenAt.Add(delay).Sub(now)
	default:
		return actStart, 0
	}
}

// syncTask moves one task of the cache one step. It returns when to look at the task
// again (0: when it changes).
func (a *Agent) syncTask(ctx context.Context, key types.NamespacedName) (time.Duration, error) {
	task := &ecsv1alpha1.Task{}
	if err := a.cache.Get(ctx, key, task); err != nil {
		if apierrors.IsNotFound(err) {
			a.forgetDeleted(key)
			return 0, nil
		}
		return 0, err
	}
	inst, local, ok := a.taskState(task)
	if !ok {
		return 0, nil
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues(logInstance, inst.name, logTask, klog.KObj(task)))

	now := time.Now()
	act, wait := nextStep(task, local, now, a.cfg.RunningDelay)
	switch act {
	case actForget:
		a.forgetTask(key)
	case actAccept:
		a.acceptTask(ctx, inst, task, now)
		return max(wait, time.Millisecond), nil
	case actWait:
		return wait, nil
	case actStart:
		return 0, a.startTask(ctx, inst, task)
	case actAdopt:
		a.adoptTask(ctx, inst, task)
	case actStop:
		code, reason := userStop(task)
		return 0, a.stopTask(ctx, inst, task, code, reason)
	}
	return 0, nil
}

// taskState finds the simulated instance of a task and a copy of its local state. ok
// is false when no connected instance of this process runs the task.
func (a *Agent) taskState(task *ecsv1alpha1.Task) (inst *instance, local *simTask, ok bool) {
	key := client.ObjectKeyFromObject(task)
	a.mu.Lock()
	defer a.mu.Unlock()
	inst = a.instances[task.Spec.ContainerInstance]
	if old := a.taskIndex[key]; old != nil && (old != inst || old.tasks[key] == nil || old.tasks[key].uid != task.UID) {
		// A different task under the same name (deleted and created again).
		a.forgetLocked(key)
	}
	if inst == nil || inst.disconnected {
		return nil, nil, false
	}
	if st := inst.tasks[key]; st != nil {
		c := *st
		local = &c
	}
	return inst, local, true
}

func (a *Agent) forgetTask(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forgetLocked(key)
}

// forgetDeleted drops a task deleted from the apiserver, unless its instance is
// disconnected: that machine does not know yet and keeps running it until Reconnect.
func (a *Agent) forgetDeleted(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if inst := a.taskIndex[key]; inst != nil && inst.disconnected {
		return
	}
	a.forgetLocked(key)
}

// forgetLocked drops a task from its instance and frees what it held.
func (a *Agent) forgetLocked(key types.NamespacedName) {
	inst := a.taskIndex[key]
	if inst == nil {
		return
	}
	delete(a.taskIndex, key)
	if st := inst.tasks[key]; st != nil {
		inst.ports.release(key, st.bindings)
		delete(inst.tasks, key)
		a.markDirty(inst)
	}
}

// track records a task on its instance. Callers hold Agent.mu.
func (a *Agent) track(inst *instance, key types.NamespacedName, st *simTask) {
	inst.tasks[key] = st
	a.taskIndex[key] = inst
}

// acceptTask records a newly seen task and reserves its resources.
func (a *Agent) acceptTask(ctx context.Context, inst *instance, task *ecsv1alpha1.Task, now time.Time) {
	res, err := a.resolve(ctx, task)
	if err != nil {
		// Resolved again at start, which reports a revision that stays missing.
		ctrl.LoggerFrom(ctx).V(1).Info("revision not resolved yet", logReason, err.Error())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if inst.gone {
		return
	}
	st := &simTask{uid: task.UID, phase: phaseAccepted, seenAt: now}
	if err == nil {
		st.setRevision(res, task.Spec.Overrides)
	}
	a.track(inst, client.ObjectKeyFromObject(task), st)
	a.markDirty(inst)
}

// startTask starts the task's simulated containers and reports it RUNNING in one
// status write, or STOPPED when it cannot start.
func (a *Agent) startTask(ctx context.Context, inst *instance, task *ecsv1alpha1.Task) error {
	key := client.ObjectKeyFromObject(task)
	a.mu.Lock()
	st := inst.tasks[key]
	resolved := st != nil && st.spec != nil
	a.mu.Unlock()
	if st == nil {
		return nil
	}
	if !resolved {
		res, err := a.resolve(ctx, task)
		if isPermanent(err) {
			return a.stopTask(ctx, inst, task, ecsv1alpha1.StopTaskFailedToStart, "hollow: "+err.Error())
		}
		if err != nil {
			return err
		}
		a.mu.Lock()
		st.setRevision(res, task.Spec.Overrides)
		a.mu.Unlock()
	}

	a.mu.Lock()
	if inst.gone {
		a.mu.Unlock()
		return nil
	}
	if st.plan == nil {
		bindings, err := inst.ports.allocate(key, st.spec)
		if err != nil {
			a.mu.Unlock()
			return a.stopTask(ctx, inst, task, ecsv1alpha1.StopTaskFailedToStart, "hollow: "+err.Error())
		}
		plan := planStart(&a.cfg, task.UID, st.spec, bindings)
		at := metav1.Now().Rfc3339Copy()
		st.bindings, st.plan, st.startedAt = bindings, &plan, &at
	}
	plan, startedAt, rev := *st.plan, *st.startedAt, st.revision
	a.mu.Unlock()

	log := ctrl.LoggerFrom(ctx)
	if plan.failed {
		log.V(1).Info("essential container exited (simulated failure)")
		return a.stopTask(ctx, inst, task, ecsv1alpha1.StopEssentialContainerExited, stoppedReasonEssentialExited)
	}
	if err := a.applyTaskStatus(ctx, task, runningStatus(task, rev, startedAt, plan)); err != nil {
		return err
	}
	a.mu.Lock()
	st.phase = phaseRunning
	a.markDirty(inst)
	a.mu.Unlock()
	log.V(1).Info("task running", logRevision, rev)
	return nil
}

// stopTask stops the task's simulated containers and reports it STOPPED.
func (a *Agent) stopTask(ctx context.Context, inst *instance, task *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string) error {
	key := client.ObjectKeyFromObject(task)
	a.mu.Lock()
	if inst.gone {
		a.mu.Unlock()
		return nil
	}
	st := inst.tasks[key]
	if st == nil {
		// Stopped before this machine saw it start.
		st = &simTask{uid: task.UID, phase: phaseAccepted, seenAt: time.Now()}
		a.track(inst, key, st)
	}
	if st.stoppedAt == nil {
		at := metav1.Now().Rfc3339Copy()
		st.stoppedAt = &at
	}
	o := stopOutcome{code: code, reason: reason, at: *st.stoppedAt, startedAt: st.startedAt, revision: st.revision}
	if o.startedAt == nil {
		o.startedAt = task.Status.StartedAt
	}
	switch {
	case st.plan != nil:
		o.containers = stoppedContainers(st.plan.containers)
	case len(task.Status.Containers) > 0:
		o.containers = stoppedContainers(task.Status.Containers)
	}
	spec := st.spec
	a.mu.Unlock()
	if o.containers == nil && spec == nil {
		// Stopped before this machine resolved it: list its containers as never run.
		if res, err := a.resolve(ctx, task); err == nil {
			spec = res.Spec
			if res.Ref.Pinned() && o.revision == 0 {
				o.revision = res.Ref.Revision
			}
		}
	}
	if o.containers == nil && spec != nil {
		o.containers = neverRanContainers(spec)
	}

	if err := a.applyTaskStatus(ctx, task, stoppedStatus(task, o)); err != nil {
		return err
	}
	a.mu.Lock()
	st.phase = phaseStopped
	inst.ports.release(key, st.bindings)
	st.bindings = nil
	a.markDirty(inst)
	a.mu.Unlock()
	ctrl.LoggerFrom(ctx).V(1).Info("task stopped", logStopCode, code, logReason, reason)
	return nil
}

// adoptTask takes over a task that an earlier agent process reported RUNNING (or
// later): its containers still run, so its ports and resources are held again and
// nothing is written.
func (a *Agent) adoptTask(ctx context.Context, inst *instance, task *ecsv1alpha1.Task) {
	res, err := a.resolve(ctx, task)
	log := ctrl.LoggerFrom(ctx)
	if err != nil {
		log.Info("adopting a running task without its revision: its resources are not counted", logReason, err.Error())
	}
	key := client.ObjectKeyFromObject(task)
	a.mu.Lock()
	defer a.mu.Unlock()
	if inst.gone {
		return
	}
	st := &simTask{
		uid:    task.UID,
		phase:  phaseRunning,
		seenAt: time.Now(),
		plan: &startPlan{
			containers: append([]ecsv1alpha1.ContainerStatus(nil), task.Status.Containers...),
			health:     task.Status.HealthStatus,
		},
		revision: task.Status.TaskDefinitionRevision,
	}
	if task.Status.StartedAt != nil {
		at := *task.Status.StartedAt
		st.startedAt = &at
	}
	if err == nil {
		st.setRevision(res, task.Spec.Overrides)
	}
	for _, c := range task.Status.Containers {
		for _, b := range c.NetworkBindings {
			st.bindings = append(st.bindings, plannedBinding{container: c.Name, binding: b, static: isStaticBinding(st.spec, c.Name, b)})
		}
	}
	if err := inst.ports.reserve(key, st.bindings); err != nil {
		log.Info("adopted task shares host ports with another task", logReason, err.Error())
	}
	a.track(inst, key, st)
	a.markDirty(inst)
	log.V(1).Info("adopted running task")
}

// adoptTasks rebuilds the simulated machines from the cache before any new work, as
// a restarted agent finds its containers again.
func (a *Agent) adoptTasks(ctx context.Context) {
	var list ecsv1alpha1.TaskList
	if err := a.cache.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing tasks to adopt")
		return
	}
	n := 0
	for i := range list.Items {
		task := &list.Items[i]
		last := task.Status.LastStatus
		if last.Index() < ecsv1alpha1.TaskRunning.Index() || last == ecsv1alpha1.TaskStopped {
			continue
		}
		inst, local, ok := a.taskState(task)
		if !ok || local != nil {
			continue
		}
		a.adoptTask(ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues(logInstance, inst.name, logTask, klog.KObj(task))), inst, task)
		n++
	}
	if n > 0 {
		ctrl.LoggerFrom(ctx).Info("adopted running tasks", "tasks", n)
	}
}

// applyTaskStatus writes the agent's part of a task's status with server-side apply.
// The UID makes the write fail rather than land on a task created again under the
// same name.
func (a *Agent) applyTaskStatus(ctx context.Context, task *ecsv1alpha1.Task, status *ecsac.TaskStatusApplyConfiguration) error {
	ac := ecsac.Task(task.Name, task.Namespace).WithUID(task.UID).WithStatus(status)
	err := a.client.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerAgent), client.ForceOwnership)
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return nil // deleted: the watch says so next
	case apierrors.IsInvalid(err):
		// Retrying the same write cannot help (for example the control plane moved
		// lastStatus past it); the next change of the task is looked at afresh.
		ctrl.LoggerFrom(ctx).Error(err, "task status rejected")
		return nil
	default:
		return fmt.Errorf("writing status of task %s/%s: %w", task.Namespace, task.Name, err)
	}
}

// permanentError is a failure to start that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p *permanentError
	return err != nil && (errors.As(err, &p) || revision.IsNotFound(err))
}

// resolve finds the revision a task runs: status.taskDefinitionRevision when the
// manager resolved it, else the pinned `family:N`, else the family's latest.
func (a *Agent) resolve(ctx context.Context, task *ecsv1alpha1.Task) (*revision.Resolved, error) {
	ref, err := revision.ParseRef(task.Spec.TaskDefinition)
	if err != nil {
		return nil, &permanentError{err}
	}
	if n := task.Status.TaskDefinitionRevision; n > 0 {
		ref.Revision = n
	}
	res, err := a.cachedRevisions.Resolve(ctx, task.Namespace, ref)
	if revision.IsNotFound(err) {
		// The revisions are a separate watch that may lag behind the task's: read the
		// apiserver before failing the task.
		res, err = a.liveRevisions.Resolve(ctx, task.Namespace, ref)
	}
	return res, err
}
