// Package engine is the task engine of `berth agent`: it is given the tasks bound to
// this instance, each with its resolved task definition revision, and drives their
// containers through a runtime.Runtime, reporting each task's status as it changes.
// It has no Kubernetes client: the agent feeds it (Update, Forget) and writes its
// reports.
//
// The design is the Amazon ECS agent's: one worker goroutine per task, known and
// desired status as ordered enums, and a pure function (next) that picks the next
// transition from what the worker knows; the worker executes it, learns the outcome
// and asks again. Runtime events, health check results and desired states reach a
// worker through its mailbox, so a worker's state has a single owner. On restart the
// engine first rebuilds its state from the runtime (Recover: containers carry their
// task in labels), adopting running containers, before any new work is accepted.
package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// DefaultStateDir is StateDir when Config leaves it empty.
const DefaultStateDir = "/var/lib/berth"

// Backoff of re-subscribing to runtime events.
const (
	eventsBackoffMin = time.Second
	eventsBackoffMax = 30 * time.Second
)

// Engine runs the tasks of one container instance. Its methods are safe for
// concurrent use.
type Engine struct {
	cfg      Config
	rt       runtime.Runtime
	clock    clock.Clock
	log      logr.Logger
	stateDir string

	// epoch counts Lists of the runtime. A container records the epoch of its last
	// change, so a List taken before that change never undoes it.
	epoch atomic.Uint64

	// volMu serialises the instance's shared volumes (sharedVolumeUp, SharedVolumes).
	volMu   sync.Mutex
	mu      sync.Mutex
	workers map[types.UID]*worker
	// byID maps container IDs to their task, for runtime events.
	byID map[string]types.UID
	// reports are the last reports sent, per task.
	reports map[types.UID]Report
	// cleaned are the STOPPED tasks whose containers Cleanup removed.
	cleaned map[types.UID]bool
	// forgotten remembers for a while the tasks Forget removed, so that a late
	// Update never starts a deleted task again.
	forgotten map[types.UID]time.Time
	// recovered is what Recover found per task, until the task's worker takes it.
	recovered    map[types.UID][]runtime.ContainerInfo
	recoverEpoch uint64
	didRecover   bool
	// runCtx is Run's context while it runs; workers start only then.
	runCtx context.Context
	wg     sync.WaitGroup
}

// New returns an engine. Call Run to start it; Recover may be called before.
func New(cfg Config) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Report == nil {
		cfg.Report = func(Report) {}
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Dirs == nil {
		cfg.Dirs = osDirs{}
	}
	stateDir := cfg.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	return &Engine{
		cfg:       cfg,
		rt:        cfg.Runtime,
		clock:     cfg.Clock,
		log:       cfg.Log,
		stateDir:  stateDir,
		workers:   map[types.UID]*worker{},
		byID:      map[string]types.UID{},
		reports:   map[types.UID]Report{},
		cleaned:   map[types.UID]bool{},
		forgotten: map[types.UID]time.Time{},
		recovered: map[types.UID][]runtime.ContainerInfo{},
	}
}

// Update gives the engine the newest desired state of a task. It never blocks: a
// newer desired state replaces one the task's worker has not taken yet, except that
// a stop is never dropped.
func (e *Engine) Update(d Desired) {
	if d.UID == "" {
		e.log.Error(nil, "ignoring a task without UID", logTask, d.Task.String())
		return
	}
	e.mu.Lock()
	if _, gone := e.forgotten[d.UID]; gone {
		e.mu.Unlock()
		e.log.V(1).Info("ignoring an update of a forgotten task", logTask, d.Task.String(), logTaskUID, d.UID)
		return
	}
	w := e.workerLocked(d.UID)
	if d.Spec != nil {
		for _, c := range d.Spec.ContainerDefinitions {
			e.byID[runtime.ContainerID(string(d.UID), c.Name)] = d.UID
		}
		if needsPause(d.Spec) {
			e.byID[pauseID(d.UID)] = d.UID // its exit stops the task
		}
	}
	e.mu.Unlock()
	w.mb.putDesired(d)
}

// Forget is for a task whose object is gone: its containers are stopped (in reverse
// dependency order, each within its stopTimeout) and deleted with its volumes and
// logs, and the engine forgets it. No report follows. It also removes containers of
// tasks the engine does not know, found in the runtime.
func (e *Engine) Forget(uid types.UID) {
	e.mu.Lock()
	w := e.workerLocked(uid)
	e.mu.Unlock()
	w.mb.putForget()
}

// workerLocked returns the task's worker, making (and, when running, starting) one.
func (e *Engine) workerLocked(uid types.UID) *worker {
	if w, ok := e.workers[uid]; ok {
		return w
	}
	w := newWorker(e, uid)
	e.workers[uid] = w
	if e.runCtx != nil {
		e.wg.Add(1)
		go w.run(e.runCtx)
	}
	return w
}

// Recover rebuilds the engine's state from the runtime: the containers of every
// task, found by their berth.dev/task-uid label, and the tasks that have a bridge
// network (Network.Recover). Each task's worker takes them over
// when its first Update arrives: running containers are adopted (never started
// again), created ones are started if the task is still desired RUNNING, an essential
// container that exited while the agent was away stops its task. Tasks found this
// way that no Update claims are listed by Unclaimed, for the agent to Forget those
// whose objects are gone.
//
// Run calls Recover itself (after subscribing to events, so no exit is missed) unless
// it was called before; a later call re-lists the runtime like a resync.
func (e *Engine) Recover(ctx context.Context) error {
	e.mu.Lock()
	done := e.didRecover
	e.mu.Unlock()
	if done {
		return e.resync(ctx)
	}
	epoch, groups, err := e.list(ctx)
	if err != nil {
		return err
	}
	if err := e.recoverNetworks(ctx, groups); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recovered, e.recoverEpoch, e.didRecover = groups, epoch, true
	for uid, infos := range groups {
		e.workerLocked(uid)
		for _, info := range infos {
			e.byID[info.ID] = uid
		}
	}
	e.log.Info("recovered containers from the runtime", logCount, len(groups))
	return nil
}

// list takes a List of the runtime, grouped by task, with its epoch.
func (e *Engine) list(ctx context.Context) (uint64, map[types.UID][]runtime.ContainerInfo, error) {
	epoch := e.epoch.Add(1)
	infos, err := e.rt.List(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("listing containers: %w", err)
	}
	groups := map[types.UID][]runtime.ContainerInfo{}
	for _, info := range infos {
		if uid := info.Labels[runtime.LabelTaskUID]; uid != "" {
			groups[types.UID(uid)] = append(groups[types.UID(uid)], info)
		}
	}
	return epoch, groups, nil
}

// resync tells every worker what a new List of the runtime shows.
func (e *Engine) resync(ctx context.Context) error {
	epoch, groups, err := e.list(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	workers := make([]*worker, 0, len(e.workers))
	for _, w := range e.workers {
		workers = append(workers, w)
	}
	e.mu.Unlock()
	// Outside e.mu: a message to a parked worker starts it, which takes e.mu.
	for _, w := range workers {
		byID := map[string]runtime.ContainerInfo{}
		for _, info := range groups[w.uid] {
			byID[info.ID] = info
		}
		w.mb.putEvent(event{kind: eventObserved, observed: byID, epoch: epoch})
	}
	return nil
}

// takeRecovered hands a task's share of Recover's List to its worker.
func (e *Engine) takeRecovered(uid types.UID) ([]runtime.ContainerInfo, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	infos := e.recovered[uid]
	delete(e.recovered, uid)
	return infos, e.recoverEpoch
}

// Unclaimed returns the tasks that Recover found in the runtime and that no Update
// has claimed since: the agent forgets those whose objects no longer exist.
func (e *Engine) Unclaimed() []types.UID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]types.UID, 0, len(e.recovered))
	for uid := range e.recovered {
		out = append(out, uid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Run runs the engine until ctx ends: it subscribes to runtime events, recovers (if
// Recover was not called), starts the task workers and feeds them events. When the
// event stream breaks it subscribes again and re-lists the runtime so no exit is
// missed. Containers keep running when Run returns, as they do when the agent
// restarts. Run returns an error only if the first List of the runtime fails.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := e.rt.Events(ctx)
	if err := e.Recover(ctx); err != nil {
		canceled := ctx.Err() != nil
		cancel()
		drain(events)
		if canceled {
			return nil
		}
		return err
	}
	e.startWorkers(ctx)
	defer func() {
		cancel()
		e.stopWorkers()
	}()

	backoff := eventsBackoffMin
	for {
		err := e.consume(ctx, events, errs)
		if ctx.Err() != nil {
			return nil
		}
		e.log.Error(err, "runtime event stream ended, subscribing again", "backoff", backoff.String())
		t := e.clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		backoff = min(2*backoff, eventsBackoffMax)
		events, errs = e.rt.Events(ctx)
		if err := e.resync(ctx); err != nil {
			e.log.Error(err, "re-listing the runtime")
		} else {
			backoff = eventsBackoffMin
		}
	}
}

func drain(events <-chan runtime.Event) {
	go func() {
		for range events {
		}
	}()
}

func (e *Engine) startWorkers(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runCtx = ctx
	for _, w := range e.workers {
		e.wg.Add(1)
		go w.run(ctx)
	}
}

// wake starts the goroutine of parked worker w; while the engine does not run, the
// worker stays parked (startWorkers starts every worker), and a forgotten worker
// stays gone.
func (e *Engine) wake(w *worker) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workers[w.uid] != w || e.runCtx == nil {
		w.mb.unpark()
		return
	}
	e.wg.Add(1)
	go w.run(e.runCtx)
}

// stopWorkers waits until no worker runs, then ends the health checks of every task:
// after it, nothing of the engine runs but its containers.
func (e *Engine) stopWorkers() {
	e.mu.Lock()
	e.runCtx = nil
	e.mu.Unlock()
	e.wg.Wait()
	e.mu.Lock()
	workers := make([]*worker, 0, len(e.workers))
	for _, w := range e.workers {
		workers = append(workers, w)
	}
	e.mu.Unlock()
	for _, w := range workers {
		w.stopHealthChecks()
	}
}

// consume dispatches events until the stream ends (its error) or ctx ends.
func (e *Engine) consume(ctx context.Context, events <-chan runtime.Event, errs <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				select {
				case err := <-errs:
					if err != nil {
						return err
					}
				default:
				}
				return errors.New("runtime event stream closed")
			}
			e.dispatch(ev)
		case err, ok := <-errs:
			if ok && err != nil {
				return err
			}
			errs = nil // closed: the events channel closes too
		}
	}
}

// dispatch hands a runtime event to the worker of the container's task.
func (e *Engine) dispatch(ev runtime.Event) {
	e.mu.Lock()
	w := e.workers[e.byID[ev.ContainerID]]
	e.mu.Unlock()
	if w == nil {
		e.log.V(2).Info("event for a container of no known task", logContainer, ev.ContainerID)
		return
	}
	switch ev.Type {
	case runtime.EventExit:
		w.mb.putEvent(event{kind: eventExit, id: ev.ContainerID, pid: ev.Pid, exit: ev.Exit})
	case runtime.EventOOM:
		w.mb.putEvent(event{kind: eventOOM, id: ev.ContainerID})
	}
}

func (e *Engine) storeReport(uid types.UID, r Report) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.workers[uid]; ok {
		e.reports[uid] = r
	}
}

// forgetMemory is how long a forgotten task's UID is remembered.
const forgetMemory = time.Hour

// remove drops a forgotten task.
func (e *Engine) remove(uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	for u, at := range e.forgotten {
		if now.Sub(at) > forgetMemory {
			delete(e.forgotten, u)
		}
	}
	e.forgotten[uid] = now
	delete(e.workers, uid)
	delete(e.reports, uid)
	delete(e.cleaned, uid)
	delete(e.recovered, uid)
	for id, u := range e.byID {
		if u == uid {
			delete(e.byID, id)
		}
	}
}

// Tasks returns the last report of every task the engine runs or ran, by task name.
func (e *Engine) Tasks() []Report {
	e.mu.Lock()
	out := make([]Report, 0, len(e.reports))
	for _, r := range e.reports {
		out = append(out, r.DeepCopy())
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Task != out[j].Task {
			return out[i].Task.String() < out[j].Task.String()
		}
		return out[i].UID < out[j].UID
	})
	return out
}

// LastStatuses is the last status of every task the engine knows, by UID: what
// counting them needs, without the copies and the sort of Tasks. The instance sums
// its usage from it every second while tasks run.
func (e *Engine) LastStatuses() map[types.UID]ecsv1alpha1.TaskStatusValue {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[types.UID]ecsv1alpha1.TaskStatusValue, len(e.reports))
	for uid, r := range e.reports {
		out[uid] = r.LastStatus
	}
	return out
}

// Cleanup deletes the containers, volumes and logs of tasks that have been STOPPED
// for longer than olderThan. The tasks stay known (and reported by Tasks) until
// Forget.
func (e *Engine) Cleanup(ctx context.Context, olderThan time.Duration) error {
	cutoff := e.clock.Now().Add(-olderThan)
	var due []Report
	e.mu.Lock()
	for uid, r := range e.reports {
		if r.LastStatus == ecsv1alpha1.TaskStopped && r.StoppedAt != nil && r.StoppedAt.Before(cutoff) && !e.cleaned[uid] {
			due = append(due, r)
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, r := range due {
		if err := e.removeTask(ctx, r.UID, r.Task, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		e.mu.Lock()
		if _, ok := e.workers[r.UID]; ok {
			e.cleaned[r.UID] = true
		}
		e.mu.Unlock()
		e.log.V(1).Info("cleaned up stopped task", logTask, r.Task.String(), logTaskUID, r.UID)
	}
	return errors.Join(errs...)
}

// removeTask deletes every container of the task (stopping running ones first,
// within stopTimeouts[id] or the default), its volumes and its logs. task may be
// empty when unknown: the containers' labels tell.
func (e *Engine) removeTask(ctx context.Context, uid types.UID, task types.NamespacedName, stopTimeouts map[string]time.Duration) error {
	infos, err := e.rt.List(ctx, map[string]string{runtime.LabelTaskUID: string(uid)})
	if err != nil {
		return fmt.Errorf("listing containers of task %s: %w", uid, err)
	}
	var errs []error
	for _, info := range infos {
		if info.Status == runtime.StatusRunning {
			timeout, ok := stopTimeouts[info.ID]
			if !ok {
				timeout = defaultStopTimeout
			}
			if _, err := e.rt.Stop(ctx, info.ID, timeout); err != nil && !errors.Is(err, runtime.ErrNotFound) && !errors.Is(err, runtime.ErrNotStarted) {
				e.log.Error(err, "stopping container before deleting it", logContainer, info.ID)
			}
		}
		if err := e.rt.Delete(ctx, info.ID); err != nil {
			errs = append(errs, fmt.Errorf("deleting container %s: %w", info.ID, err))
		}
		if task.Name == "" {
			task = taskFromLabel(info.Labels[runtime.LabelTask])
		}
	}
	errs = append(errs, e.removeTaskDirs(uid, task)...)
	if e.cfg.Network != nil {
		if err := e.cfg.Network.Teardown(ctx, uid); err != nil {
			errs = append(errs, fmt.Errorf("tearing down the network of task %s: %w", uid, err))
		}
	}
	return errors.Join(errs...)
}

// removeTaskDirs removes the task's volumes and logs. A tmpfs volume is unmounted
// first: RemoveAll would empty it and then fail on the mount point, leaving the
// mount behind; when unmounting fails, the volumes are left for the next attempt.
func (e *Engine) removeTaskDirs(uid types.UID, task types.NamespacedName) []error {
	var errs []error
	var dirs []string
	if err := e.cfg.Dirs.UnmountAll(volumesDir(e.stateDir, uid)); err != nil {
		errs = append(errs, fmt.Errorf("unmounting the volumes of task %s: %w", uid, err))
	} else {
		dirs = append(dirs, volumesDir(e.stateDir, uid))
	}
	if task.Name != "" {
		dirs = append(dirs, logsDir(e.stateDir, task, uid))
	}
	for _, d := range dirs {
		if err := e.cfg.Dirs.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", d, err))
		}
	}
	return errs
}

func taskFromLabel(v string) types.NamespacedName {
	ns, name, ok := strings.Cut(v, "/")
	if !ok {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: ns, Name: name}
}

// forget stops and deletes the task's containers in reverse dependency order, then
// drops the task. It retries until it succeeds or ctx ends (the agent forgets again
// after a restart).
func (w *worker) forget(ctx context.Context) {
	w.stopHealthChecks()
	timeouts := map[string]time.Duration{}
	for i := len(w.containers) - 1; i >= 0; i-- {
		c := &w.containers[i]
		timeouts[c.id] = c.stopTimeout
		if c.known != containerRunning {
			continue
		}
		if _, err := w.e.rt.Stop(ctx, c.id, c.stopTimeout); err != nil && ctx.Err() == nil &&
			!errors.Is(err, runtime.ErrNotFound) && !errors.Is(err, runtime.ErrNotStarted) {
			w.log.Error(err, "stopping container of a forgotten task", logContainer, c.name)
		}
	}
	for ctx.Err() == nil {
		err := w.e.removeTask(ctx, w.uid, w.task, timeouts)
		if err == nil {
			break
		}
		w.log.Error(err, "removing a forgotten task, will retry")
		w.backOff()
		w.wait(ctx, w.retryAt)
	}
	if ctx.Err() != nil {
		return
	}
	w.log.V(1).Info("forgot task")
	w.e.remove(w.uid)
}
