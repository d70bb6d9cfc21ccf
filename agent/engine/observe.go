package engine

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// Container reasons set by the engine.
const (
	reasonOOMKilled = taskrules.ContainerReasonOOM
	// reasonOOMKilledBefore is what agents before ECS's wording reported; a status
	// recorded by one still means an OOM kill.
	reasonOOMKilledBefore = "OOMKilled"
	reasonLost            = "ContainerLost: the container is not in the runtime anymore"
)

// apply takes one event into the worker's knowledge.
func (w *worker) apply(ctx context.Context, ev *event) {
	if w.in == nil {
		// Not set up yet (a task found by Recover, waiting for its Update): keep the
		// event for after the set-up, which starts from Recover's older List.
		w.early = append(w.early, *ev)
		return
	}
	if ev.kind == eventObserved {
		w.resync(ctx, ev.observed, ev.epoch)
		return
	}
	if ev.kind == eventExit && ev.id == pauseID(w.uid) {
		w.pauseGone()
		return
	}
	c := w.containerByID(ev.id)
	if c != nil && ev.kind == eventStopped {
		w.stopReturned(ctx, c, ev)
		return
	}
	if c == nil || c.known != containerRunning {
		return
	}
	w.applyToRunning(c, ev)
}

// applyToRunning takes a runtime or health event of a running container.
func (w *worker) applyToRunning(c *container, ev *event) {
	switch ev.kind {
	case eventExit:
		// An exit of an earlier process (before a restart) is old news.
		if ev.pid != 0 && c.pid != 0 && ev.pid != c.pid {
			return
		}
		w.exited(c, ev.exit)
	case eventOOM:
		c.oomSeen = true
	case eventHealth:
		if ev.generation == c.generation && c.health != ev.health {
			w.log.V(1).Info("container health", logContainer, c.name, logHealth, ev.health)
			c.health = ev.health
		}
	}
}

// exited records the end of c's process (exit is nil when its status is unknown).
func (w *worker) exited(c *container, exit *runtime.ExitStatus) {
	c.known, c.pid, c.reason = containerStopped, 0, ""
	if exit != nil {
		e := *exit
		e.OOMKilled = e.OOMKilled || c.oomSeen
		c.exit = &e
		if e.OOMKilled {
			c.reason = reasonOOMKilled
		}
		w.log.V(1).Info("container exited", logContainer, c.name, logExitCode, e.Code, logReason, c.reason)
	}
	w.stopHealthCheck(c)
	w.touch(c)
}

// lost records that c, which ran, is gone from the runtime.
func (w *worker) lost(c *container) {
	w.log.Info("container lost", logContainer, c.name)
	c.known, c.pid, c.exit, c.reason = containerStopped, 0, nil, reasonLost
	w.stopHealthCheck(c)
	w.touch(c)
}

// seed takes over what the API showed of a task this engine learns about after a
// restart: lastStatus (never to go below it), timestamps, the stop, and per
// container what ran. merge then checks the containers against the runtime.
func (w *worker) seed(st *ecsv1alpha1.TaskStatus) {
	w.known = taskStatusOf(st.LastStatus)
	w.pullStartedAt = timeOf(st.PullStartedAt)
	w.pullStoppedAt = timeOf(st.PullStoppedAt)
	w.startedAt = timeOf(st.StartedAt)
	w.stoppingAt = timeOf(st.StoppingAt)
	w.stoppedAt = timeOf(st.StoppedAt)
	w.code, w.reason = st.StopCode, st.StoppedReason
	for _, cs := range st.Containers {
		c := w.container(cs.Name)
		if c == nil {
			continue
		}
		c.restarts, c.digest, c.reason = cs.RestartCount, cs.ImageDigest, cs.Reason
		c.exists = cs.RuntimeID != ""
		if cs.HealthStatus != "" && c.check != nil {
			c.health = cs.HealthStatus
		}
		switch cs.LastStatus {
		case ecsv1alpha1.ContainerRunning:
			c.known, c.started = containerRunning, true
		case ecsv1alpha1.ContainerStopped:
			c.known, c.started = containerStopped, cs.ExitCode != nil
			if cs.ExitCode != nil {
				c.exit = &runtime.ExitStatus{Code: int(*cs.ExitCode), OOMKilled: cs.Reason == reasonOOMKilled || cs.Reason == reasonOOMKilledBefore}
			}
		}
	}
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// merge takes over the containers Recover found for the task (a List at epoch).
// Running ones are adopted, never started again; a container the API showed running
// that is gone or no longer runs has exited while the agent was away.
func (w *worker) merge(ctx context.Context, infos []runtime.ContainerInfo, epoch uint64) {
	byID := make(map[string]runtime.ContainerInfo, len(infos))
	for _, info := range infos {
		byID[info.ID] = info
	}
	if w.known == taskStopped && !anyRunning(byID) {
		return // nothing left to do for this task
	}
	if info, ok := byID[pauseID(w.uid)]; ok && info.Status == runtime.StatusStopped {
		w.pauseGone() // it exited while the agent was away
	}
	for i := range w.containers {
		c := &w.containers[i]
		info, ok := byID[c.id]
		switch {
		case ok:
			w.adopt(ctx, c, info)
		case c.known == containerRunning:
			w.lost(c)
		case c.known != containerStopped:
			c.known, c.exists = containerNone, false
		}
		c.epoch = epoch
	}
}

func anyRunning(infos map[string]runtime.ContainerInfo) bool {
	for _, info := range infos {
		if info.Status == runtime.StatusRunning || info.Status == runtime.StatusUnknown {
			return true
		}
	}
	return false
}

// adopt takes c's state from the runtime.
func (w *worker) adopt(ctx context.Context, c *container, info runtime.ContainerInfo) {
	c.exists = true
	switch info.Status {
	case runtime.StatusCreated:
		switch {
		case c.known == containerRunning:
			// The API showed it running; its process is gone.
			w.lost(c)
		case c.known != containerStopped:
			c.known = containerCreated
		}
	case runtime.StatusStopped:
		if c.known != containerStopped || c.exit == nil {
			c.known, c.started = containerRunning, true
			w.exited(c, info.Exit)
		}
	default:
		// Running, or unknown (its shim is gone): adopted as running, so it is never
		// started twice; stopping it will tell.
		w.log.V(1).Info("adopting running container", logContainer, c.name)
		c.known, c.started, c.pid, c.startedAt = containerRunning, true, info.Pid, time.Time{}
		w.startHealthCheck(ctx, c)
	}
}

// resync reconciles the worker's knowledge with a List of the runtime taken at
// epoch, after the event stream was interrupted: exits it missed, containers that
// disappeared. Containers changed since epoch are left alone.
func (w *worker) resync(ctx context.Context, infos map[string]runtime.ContainerInfo, epoch uint64) {
	if w.known == taskStopped {
		return
	}
	for i := range w.containers {
		c := &w.containers[i]
		if c.epoch >= epoch || !c.exists {
			continue
		}
		info, ok := infos[c.id]
		switch {
		case !ok && (c.known == containerRunning || c.known == containerCreated):
			w.lost(c)
		case !ok:
		case info.Status == runtime.StatusStopped && c.known == containerRunning:
			w.exited(c, info.Exit)
		case info.Status == runtime.StatusRunning && c.known == containerCreated:
			c.known, c.started, c.pid = containerRunning, true, info.Pid
			w.startHealthCheck(ctx, c)
			w.touch(c)
		}
	}
}
