package engine

import (
	"context"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// pulled is an image pulled for a task, with the digest it resolved to.
type pulled struct{ image, digest string }

// worker drives one task. Its goroutine owns every field below mb; the rest of the
// engine reaches it only through mb.
type worker struct {
	e   *Engine
	uid types.UID
	mb  *mailbox
	log taskLogger

	// in is nil until the first Desired arrives.
	in         *taskInput
	task       types.NamespacedName
	auth       map[string]*runtime.Auth
	desired    desiredStatus
	stopCode   ecsv1alpha1.StopCode
	stopReason string
	invalid    string
	forgetting bool
	// early are events that arrived before the task was set up.
	early []event

	known      taskStatus
	containers []container // in start order
	// pulls are the images pulled for the task (a few at most): each is pulled once.
	pulls []pulled
	// net is where the task's bridge network is; bindings are its published ports
	// by container name, once it is up.
	net      netState
	bindings map[string][]ecsv1alpha1.NetworkBinding
	// ip is an awsvpc task's address, once its network is up.
	ip string
	// vols is where the task's volumes are.
	vols volState
	// pause is where the task's pause container is (pidMode or ipcMode task);
	// pauseExited is set once it exited.
	pause       pauseState
	pauseExited bool

	pullStartedAt, pullStoppedAt, startedAt, stoppingAt, stoppedAt *time.Time
	// code and reason of the stop, fixed when stopping begins.
	code   ecsv1alpha1.StopCode
	reason string

	// published is the last report sent (or what the API showed when the task was
	// learnt after a restart).
	published *Report
	// retryAt delays the next step after a runtime call failed.
	retryAt  time.Time
	failures int

	healthCancel map[string]context.CancelFunc
	healthWG     sync.WaitGroup
}

func newWorker(e *Engine, uid types.UID) *worker {
	w := &worker{
		e:   e,
		uid: uid,
	}
	w.mb = newMailbox(func() { e.wake(w) })
	w.log = taskLogger{l: e.log, w: w}
	return w
}

// run drives the task until it has nothing to do but wait for news (a runtime event,
// a health check result, a new desired state), until ctx ends, or until the task is
// forgotten. A worker with nothing to do parks: its goroutine ends, and the next
// message to its mailbox starts a new one (Engine.wake). A task that runs steadily
// costs no goroutine, so an instance with tens of thousands of tasks (berth hollow)
// holds no stack for each; the worker's state lives on in the struct.
func (w *worker) run(ctx context.Context) {
	defer w.e.wg.Done()
	for ctx.Err() == nil {
		w.drain(ctx)
		if w.forgetting {
			w.forget(ctx)
			return
		}
		if w.in == nil {
			if w.mb.park() {
				return
			}
			continue
		}
		if w.e.clock.Now().Before(w.retryAt) {
			w.publish()
			w.wait(ctx, w.retryAt)
			continue
		}
		s := next(w.facts(), w.containers)
		if s.kind != stepWait {
			w.log.V(2).Info("next step", logStep, s.kind.String(), logContainer, s.container, logStatus, w.known.String())
		}
		if s.kind == stepWait && s.until.IsZero() {
			w.publish()
			if w.mb.park() {
				return
			}
			continue
		}
		w.do(ctx, s)
	}
}

func (w *worker) facts() taskFacts {
	return taskFacts{known: w.known, desired: w.desired, now: w.e.clock.Now(), invalid: w.invalid, net: w.net, vols: w.vols, pause: w.pause, pauseExited: w.pauseExited}
}

// do executes one step. A report goes out whenever the worker waits, and before the
// calls that may take long (pulls, stops) when lastStatus changed, so a burst of quick
// transitions is one report and the API still shows PENDING and STOPPING while they
// last.
func (w *worker) do(ctx context.Context, s step) {
	c := w.container(s.container)
	switch s.kind {
	case stepWait:
		w.publish()
		w.wait(ctx, s.until)
	case stepAdvance:
		w.advance(s.status)
	case stepPull:
		w.publishStatus()
		w.pull(ctx, c)
	case stepCreate:
		w.create(ctx, c)
	case stepStart, stepRestart:
		w.start(ctx, c, s.kind == stepRestart)
	case stepAbandon:
		w.log.Info("container cannot start", logContainer, c.name, logReason, s.reason)
		c.known, c.reason = containerStopped, s.reason
		w.touch(c)
	case stepStopTask:
		w.beginStop(s.code, s.reason)
	case stepStopContainer:
		w.publishStatus()
		w.stopContainer(ctx, c)
	case stepNetworkUp:
		w.networkUp(ctx)
	case stepNetworkDown:
		w.networkDown(ctx)
	case stepVolumesUp:
		w.volumesUp()
	case stepPauseUp:
		w.pauseUp(ctx)
	case stepPauseDown:
		w.pauseDown(ctx)
	}
}

// wait blocks until the mailbox has something, until is reached (when set) or ctx
// ends.
func (w *worker) wait(ctx context.Context, until time.Time) {
	var timeout <-chan time.Time
	if !until.IsZero() {
		d := until.Sub(w.e.clock.Now())
		if d <= 0 {
			return
		}
		t := w.e.clock.NewTimer(d)
		defer t.Stop()
		timeout = t.C()
	}
	select {
	case <-w.mb.notify:
	case <-timeout:
	case <-ctx.Done():
	}
}

// drain applies what the mailbox holds: the desired state first, so that events
// find the task's containers.
func (w *worker) drain(ctx context.Context) {
	d, evs, forget := w.mb.take()
	if d != nil {
		w.setDesired(ctx, *d)
	}
	for i := range evs {
		w.apply(ctx, &evs[i])
	}
	if forget {
		w.forgetting = true
	}
}

func (w *worker) container(name string) *container {
	for i := range w.containers {
		if w.containers[i].name == name {
			return &w.containers[i]
		}
	}
	return nil
}

func (w *worker) containerByID(id string) *container {
	for i := range w.containers {
		if w.containers[i].id == id {
			return &w.containers[i]
		}
	}
	return nil
}

// setDesired takes a new desired state. The first one sets the task up.
func (w *worker) setDesired(ctx context.Context, d Desired) {
	if w.in == nil {
		if d.Spec == nil && d.DesiredStatus != ecsv1alpha1.DesiredStopped {
			w.log.Error(nil, "ignoring a task without its task definition", logTask, d.Task.String())
			return
		}
		w.setUp(ctx, &d)
	}
	if desiredStatusOf(d.DesiredStatus) > w.desired {
		w.desired = desiredStopped
		w.stopCode, w.stopReason = d.StopCode, d.StopReason
		w.log.V(1).Info("task desired stopped", logStopCode, d.StopCode)
	}
	w.in.env, w.auth = d.Env, d.Auth
}

// setUp builds the task's containers from its definition, then takes over what the
// API last showed (d.Status) and what Recover found in the runtime.
func (w *worker) setUp(ctx context.Context, d *Desired) {
	infos, epoch := w.e.takeRecovered(w.uid)
	spec := d.Spec
	if spec == nil {
		spec = specFromRuntime(infos)
	}
	w.task = d.Task
	w.in = &taskInput{
		uid: w.uid, task: d.Task, revision: d.Revision, spec: spec, overrides: d.Overrides,
		stateDir: w.e.stateDir, cluster: w.e.cfg.Cluster, instance: w.e.cfg.Instance, resolvConf: w.e.cfg.ResolvConf,
		gpus: d.GPUs, devDir: w.e.cfg.DevDir, digests: d.ImageDigests, level: d.ContainerPolicy,
	}
	cs, err := newContainers(w.in)
	switch {
	case err != nil:
		w.invalid = err.Error()
	case d.Spec != nil:
		w.invalid = unsupported(spec, w.e.cfg.Network != nil, w.e.cfg.PauseBinary != "")
	}
	if w.e.cfg.Network != nil && (d.Spec == nil || ownNetwork(spec)) {
		// Without its definition the task is only stopped: a network it may have
		// from before a restart is torn down all the same.
		w.net = netWanted
	}
	if d.Spec != nil && wantsVolumes(spec) {
		w.vols = volWanted
	}
	if (d.Spec != nil && needsPause(spec)) || hasPause(infos) {
		// Without its definition too, so a pause container from before a restart
		// is removed with the task.
		w.pause = pauseWanted
	}
	w.containers = cs
	if d.Status != nil {
		w.seed(d.Status)
		w.seedBindings(d.Status)
		r := w.report()
		w.published = &r
		if r.LastStatus != "" {
			w.e.storeReport(w.uid, r)
		}
	}
	w.merge(ctx, infos, epoch)
	early := w.early
	w.early = nil
	for i := range early {
		w.apply(ctx, &early[i])
	}
}

// specFromRuntime is a stand-in definition for a task that is to be stopped and
// whose definition is not available: its containers as found in the runtime.
func specFromRuntime(infos []runtime.ContainerInfo) *ecsv1alpha1.TaskDefinitionSpec {
	spec := &ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeNone}
	for _, info := range infos {
		if name := info.Labels[runtime.LabelContainer]; name != "" && !runtime.IsPause(info.Labels) {
			spec.ContainerDefinitions = append(spec.ContainerDefinitions, ecsv1alpha1.ContainerDefinition{Name: name, Image: info.Image})
		}
	}
	sort.Slice(spec.ContainerDefinitions, func(i, j int) bool {
		return spec.ContainerDefinitions[i].Name < spec.ContainerDefinitions[j].Name
	})
	return spec
}

// touch records that c changed now (see Engine.epoch).
func (w *worker) touch(c *container) { c.epoch = w.e.epoch.Load() }

// advance moves the task forward to s, stamping the lifecycle's timestamps.
func (w *worker) advance(s taskStatus) {
	if s <= w.known {
		return
	}
	now := w.e.clock.Now()
	switch s {
	case taskPending:
		w.pullStartedAt = stamp(w.pullStartedAt, now)
	case taskActivating:
		if w.pullStartedAt != nil {
			w.pullStoppedAt = stamp(w.pullStoppedAt, now)
		}
	case taskRunning:
		w.startedAt = stamp(w.startedAt, now)
	case taskStopped:
		w.stoppedAt = stamp(w.stoppedAt, now)
		w.stopHealthChecks()
	}
	w.log.V(1).Info("task status", logStatus, s.String())
	w.known = s
}

func stamp(old *time.Time, now time.Time) *time.Time {
	if old != nil {
		return old
	}
	return &now
}

// beginStop starts stopping the task. An empty code is the control plane's stop.
func (w *worker) beginStop(code ecsv1alpha1.StopCode, reason string) {
	if code == "" {
		code, reason = w.stopCode, w.stopReason
		if code == "" {
			code = ecsv1alpha1.StopUserInitiated
		}
		if reason == "" {
			reason = taskrules.DefaultStoppedReason(code)
		}
	}
	w.code, w.reason = code, reason
	w.stoppingAt = stamp(w.stoppingAt, w.e.clock.Now())
	w.known = taskStopping
	if code == ecsv1alpha1.StopUserInitiated || code == ecsv1alpha1.StopServiceSchedulerInitiated {
		w.log.V(1).Info("stopping task", logStopCode, code, logReason, reason)
	} else {
		w.log.Info("stopping task", logStopCode, code, logReason, reason)
	}
}
