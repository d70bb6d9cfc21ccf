package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// reasonEssentialExited is ECS's stoppedReason for EssentialContainerExited.
const reasonEssentialExited = taskrules.StoppedReasonEssentialExited

// stepKind is the kind of transition next picks.
type stepKind int

const (
	// stepWait: nothing to do until something happens (an exit, a health result, a
	// new desired status) or until step.until, when that is set.
	stepWait stepKind = iota
	// stepAdvance moves the task to step.status.
	stepAdvance
	// stepPull pulls the image of step.container.
	stepPull
	// stepCreate creates step.container.
	stepCreate
	// stepStart starts step.container for the first time.
	stepStart
	// stepRestart starts step.container again after it exited (restart policy).
	stepRestart
	// stepAbandon gives up on starting step.container: its dependencies cannot be
	// met. It becomes STOPPED with step.reason, never having run.
	stepAbandon
	// stepStopTask begins stopping the task with step.code and step.reason; an empty
	// code means the control plane's (Desired.StopCode).
	stepStopTask
	// stepStopContainer begins stopping step.container (SIGTERM, then SIGKILL after
	// its stopTimeout) in the background.
	stepStopContainer
	// stepNetworkUp sets up the task's bridge network, before its containers are
	// created (or, after an agent restart, finds it again).
	stepNetworkUp
	// stepNetworkDown tears the task's bridge network down once its containers
	// stopped.
	stepNetworkDown
	// stepVolumesUp makes the task's volumes (or finds them again after an agent
	// restart) before its containers are created.
	stepVolumesUp
	// stepPauseUp creates and starts the task's pause container, whose namespaces
	// its containers join (pidMode or ipcMode task), before they are created.
	stepPauseUp
	// stepPauseDown stops and removes the pause container once the task's
	// containers stopped.
	stepPauseDown
)

var stepNames = [...]string{"Wait", "Advance", "Pull", "Create", "Start", "Restart", "Abandon", "StopTask", "StopContainer",
	"NetworkUp", "NetworkDown", "VolumesUp", "PauseUp", "PauseDown"}

func (k stepKind) String() string { return stepNames[k] }

// step is the next transition of a task.
type step struct {
	kind      stepKind
	container string
	status    taskStatus
	code      ecsv1alpha1.StopCode
	reason    string
	until     time.Time
}

// taskFacts is what next needs to know about the task besides its containers.
type taskFacts struct {
	known   taskStatus
	desired desiredStatus
	now     time.Time
	// invalid says why this agent cannot run the task at all ("" when it can).
	invalid string
	// net is where the task's bridge network is.
	net netState
	// vols is where the task's volumes are.
	vols volState
	// pause is where the task's pause container is; pauseExited tells that it
	// exited, which ends the task.
	pause       pauseState
	pauseExited bool
}

// netState is where a task's bridge network is, in order.
type netState int

const (
	// netNone: the engine gives the task no network (host or none mode).
	netNone netState = iota
	// netWanted: a bridge task whose network this worker has not set up; it may
	// exist from before an agent restart.
	netWanted
	// netUp: set up; the containers join its namespace.
	netUp
	// netReleased: torn down (a failed teardown is left to Forget and Cleanup).
	netReleased
)

// pauseState is where a task's pause container is, in order (as netState).
type pauseState int

const (
	// pauseNone: the task's containers share no namespace of the task.
	pauseNone pauseState = iota
	// pauseWanted: needed, and not started by this worker; it may exist from
	// before an agent restart.
	pauseWanted
	// pauseUp: running; the containers created from now on join its namespaces.
	pauseUp
	// pauseReleased: removed (a failed removal is left to Forget and Cleanup).
	pauseReleased
)

// container is the engine's knowledge of one container of a task. The task's worker
// owns it; next only reads it.
type container struct {
	// Fixed by the task definition (with overrides).
	name         string
	id           string
	image        string
	essential    bool
	dependsOn    []ecsv1alpha1.ContainerDependency
	check        *healthCheck
	restart      *restartPolicy
	startTimeout time.Duration
	stopTimeout  time.Duration
	// defIndex is the container's position in containerDefinitions, the order of
	// reports.
	defIndex int
	// awsLogs names an awslogs container's log stream in its reports.
	awsLogs *ecsv1alpha1.AWSLogStream

	known containerStatus
	// started is true once its process has run (also when adopted after a restart).
	started bool
	// startedAt is its last start; zero when it was adopted running.
	startedAt time.Time
	pid       uint32
	exit      *runtime.ExitStatus
	oomSeen   bool
	// reason explains a stop: OOMKilled, a pull, create or start error, a dependency
	// that cannot be met.
	reason string
	// fatal: its failure fails the task whether it is essential or not (pull and
	// create errors).
	fatal    bool
	health   ecsv1alpha1.HealthStatus
	restarts int32
	digest   string
	// exists is true once the container exists in the runtime.
	exists bool
	// stopping is true while a stop of its process is under way (in the background:
	// its result comes back as an eventStopped).
	stopping bool
	// epoch is the engine epoch of its last change, so a List taken before that
	// change cannot undo it (see worker.observe).
	epoch uint64
	// generation counts starts; health results of an older process are dropped.
	generation int
}

// restartPolicy is a container's restartPolicy with defaults applied.
type restartPolicy struct {
	ignored []int
	period  time.Duration
}

// next picks the next transition of a task from what the engine knows. It is pure:
// the worker executes the step, updates its knowledge and asks again. containers are
// in start order (dependencies first); stopping walks them backwards.
func next(t taskFacts, cs []container) step {
	if t.known >= taskStopping || t.desired == desiredStopped {
		return nextStop(t, cs)
	}
	if t.invalid != "" {
		return step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: t.invalid}
	}
	if t.pauseExited {
		return step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonPauseExited}
	}
	if s, ok := nextAfterExit(cs); ok {
		return s
	}
	if t.known < taskPending {
		return step{kind: stepAdvance, status: taskPending}
	}
	if c := firstIn(cs, containerNone); c != nil {
		return step{kind: stepPull, container: c.name}
	}
	if t.known < taskActivating {
		return step{kind: stepAdvance, status: taskActivating}
	}
	if t.net == netWanted {
		return step{kind: stepNetworkUp}
	}
	if t.vols == volWanted {
		return step{kind: stepVolumesUp}
	}
	if t.pause == pauseWanted && firstIn(cs, containerPulled) != nil {
		// Only when there is a container to create: after an agent restart the
		// running ones were created with its namespaces already.
		return step{kind: stepPauseUp}
	}
	if c := firstIn(cs, containerPulled); c != nil {
		return step{kind: stepCreate, container: c.name}
	}
	return nextStart(t, cs)
}

// nextStop stops running containers, removes the pause container, tears the task's
// network down, then declares the task STOPPED. As ECS's agent does, a container is
// stopped once no running container depends on it (dependents before their
// dependencies), and containers that do not depend on each other stop at the same
// time, each on its own stopTimeout: a sidecar with stopTimeout 2 is killed after
// 2 s even while a neighbour takes its 30. Stops run in the background; their
// results come back as events, so this waits while any is under way.
func nextStop(t taskFacts, cs []container) step {
	if t.known < taskStopping {
		return step{kind: stepStopTask}
	}
	running := false
	for i := len(cs) - 1; i >= 0; i-- {
		c := &cs[i]
		if c.known != containerRunning {
			continue
		}
		running = true
		if !c.stopping && !dependedOnByRunning(c.name, cs) {
			return step{kind: stepStopContainer, container: c.name}
		}
	}
	if running {
		return step{kind: stepWait}
	}
	if t.known < taskStopped {
		// The pause container goes last: when it ends, the kernel kills whatever
		// is left in the PID namespace it holds.
		if t.pause == pauseWanted || t.pause == pauseUp {
			return step{kind: stepPauseDown}
		}
		if t.net == netWanted || t.net == netUp {
			return step{kind: stepNetworkDown}
		}
		return step{kind: stepAdvance, status: taskStopped}
	}
	return step{kind: stepWait}
}

// nextAfterExit handles stopped containers: a fatal failure or an essential
// container that will not restart stops the task; a container whose restart policy
// allows it is restarted; a non-essential one that exited is left alone.
func nextAfterExit(cs []container) (step, bool) {
	for i := range cs {
		c := &cs[i]
		if c.known != containerStopped {
			continue
		}
		switch {
		case c.fatal:
			return step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: c.reason}, true
		case canRestart(c):
			return step{kind: stepRestart, container: c.name}, true
		case !c.essential:
			continue
		case !c.started:
			return step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: c.reason}, true
		default:
			return step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}, true
		}
	}
	return step{}, false
}

// canRestart applies the restart policy to a stopped container, as ECS's agent does:
// not for an ignored exit code, and only if it ran at least restartAttemptPeriod
// since its last start (which stops crash loops). A container adopted after an agent
// restart has no known start time and may restart.
func canRestart(c *container) bool {
	p := c.restart
	if p == nil || !c.started || c.exit == nil {
		return false
	}
	if slices.Contains(p.ignored, c.exit.Code) {
		return false
	}
	if c.startedAt.IsZero() || c.exit.ExitedAt.IsZero() {
		return true
	}
	return c.exit.ExitedAt.Sub(c.startedAt) >= p.period
}

// nextStart starts created containers whose dependencies are met, in start order,
// and declares the task RUNNING once every essential container has started.
func nextStart(t taskFacts, cs []container) step {
	byName := make(map[string]*container, len(cs))
	for i := range cs {
		byName[cs[i].name] = &cs[i]
	}
	var until time.Time
	for i := range cs {
		c := &cs[i]
		if c.known != containerCreated || c.started {
			continue
		}
		met, blocked, deadline := dependencies(c, byName, t.now)
		switch {
		case blocked != "":
			return step{kind: stepAbandon, container: c.name, reason: blocked}
		case met:
			return step{kind: stepStart, container: c.name}
		case deadline.IsZero():
			// No dependency times out: wait for what it waits on to happen.
		case until.IsZero() || deadline.Before(until):
			until = deadline
		}
	}
	if t.known < taskRunning && essentialsStarted(cs) {
		return step{kind: stepAdvance, status: taskRunning}
	}
	return step{kind: stepWait, until: until}
}

// dependedOnByRunning tells whether a running container depends on the named one
// (dependsOn, or a link: the container's dependencies).
func dependedOnByRunning(name string, cs []container) bool {
	for i := range cs {
		if cs[i].known != containerRunning {
			continue
		}
		for _, d := range cs[i].dependsOn {
			if d.ContainerName == name {
				return true
			}
		}
	}
	return false
}

func essentialsStarted(cs []container) bool {
	for i := range cs {
		if cs[i].essential && !cs[i].started {
			return false
		}
	}
	return true
}

func firstIn(cs []container, s containerStatus) *container {
	for i := range cs {
		if cs[i].known == s {
			return &cs[i]
		}
	}
	return nil
}

// dependencies evaluates c's dependsOn: met when every condition holds; blocked (with
// the reason) when one can never hold, or a dependency did not reach it within the
// dependency's own startTimeout counted from its start (ECS's rule: the timeout
// belongs to the container depended on, and a dependency without one is waited
// for as long as it takes); otherwise waiting, until deadline when one times out.
func dependencies(c *container, byName map[string]*container, now time.Time) (met bool, blocked string, deadline time.Time) {
	met = true
	for i := range c.dependsOn {
		d := &c.dependsOn[i]
		dep := byName[d.ContainerName]
		ok, reason := condition(d, dep)
		if reason != "" {
			return false, reason, time.Time{}
		}
		if ok {
			continue
		}
		met = false
		if d.Condition == ecsv1alpha1.DependencyStart || !dep.started || dep.startTimeout <= 0 || dep.startedAt.IsZero() {
			continue
		}
		due := dep.startedAt.Add(dep.startTimeout)
		if !now.Before(due) {
			return false, fmt.Sprintf("dependency %s did not reach %s within its startTimeout of %s", dep.name, d.Condition, dep.startTimeout), time.Time{}
		}
		if deadline.IsZero() || due.Before(deadline) {
			deadline = due
		}
	}
	if met {
		return true, "", time.Time{}
	}
	return false, "", deadline
}

// condition tells whether dep has reached d's condition, or why it never will.
func condition(d *ecsv1alpha1.ContainerDependency, dep *container) (met bool, blocked string) {
	if dep == nil {
		return false, fmt.Sprintf("dependency %s is not a container of the task", d.ContainerName)
	}
	stopped := dep.known == containerStopped
	if stopped && !dep.started {
		return false, fmt.Sprintf("dependency %s did not start", dep.name)
	}
	switch d.Condition {
	case ecsv1alpha1.DependencyStart:
		return dep.started, ""
	case ecsv1alpha1.DependencyComplete:
		return stopped, ""
	case ecsv1alpha1.DependencySuccess:
		switch {
		case !stopped:
			return false, ""
		case dep.exit == nil:
			return false, fmt.Sprintf("dependency %s exited with an unknown code", dep.name)
		case dep.exit.Code != 0:
			return false, fmt.Sprintf("dependency %s exited with code %d", dep.name, dep.exit.Code)
		}
		return true, ""
	case ecsv1alpha1.DependencyHealthy:
		switch {
		case dep.check == nil:
			return false, fmt.Sprintf("dependency %s has no health check", dep.name)
		case dep.health == ecsv1alpha1.HealthHealthy && dep.known == containerRunning:
			return true, ""
		case stopped:
			return false, fmt.Sprintf("dependency %s exited before it was healthy", dep.name)
		}
		return false, ""
	}
	return false, fmt.Sprintf("dependency %s has an unknown condition %q", dep.name, d.Condition)
}
