package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// c builds a container for next's tables: essential, without a startTimeout, and
// started at t0 when running.
func timeout(d time.Duration) func(*container) { return func(c *container) { c.startTimeout = d } }

func c(name string, known containerStatus, opts ...func(*container)) container {
	ct := container{
		name: name, id: "uid-" + name, essential: true, known: known,
		health: ecsv1alpha1.HealthUnknown,
	}
	if known == containerRunning {
		ct.started, ct.startedAt = true, t0
	}
	for _, o := range opts {
		o(&ct)
	}
	return ct
}

func nonEssential(c *container) { c.essential = false }

func stopUnderWay(c *container) { c.stopping = true }

func exitedWith(code int) func(*container) {
	return func(c *container) {
		c.started, c.startedAt = true, t0
		c.exit = &runtime.ExitStatus{Code: code, ExitedAt: t0.Add(time.Minute)}
	}
}

func dependsOn(name string, cond ecsv1alpha1.DependencyCondition) func(*container) {
	return func(c *container) {
		c.dependsOn = append(c.dependsOn, ecsv1alpha1.ContainerDependency{ContainerName: name, Condition: cond})
	}
}

func withCheck(h ecsv1alpha1.HealthStatus) func(*container) {
	return func(c *container) {
		c.check = &healthCheck{argv: []string{"true"}, interval: 5 * time.Second, timeout: 2 * time.Second, retries: 3}
		c.health = h
	}
}

func restarting(period time.Duration, ignored ...int) func(*container) {
	return func(c *container) { c.restart = &restartPolicy{period: period, ignored: ignored} }
}

func reason(r string) func(*container) { return func(c *container) { c.reason = r } }

func fatal(c *container) { c.fatal = true }

func TestNext(t *testing.T) {
	running := taskFacts{known: taskRunning, now: t0.Add(time.Minute)}
	activating := taskFacts{known: taskActivating, now: t0.Add(time.Minute)}
	stopping := taskFacts{known: taskStopping, now: t0}
	tests := []struct {
		name       string
		facts      taskFacts
		containers []container
		want       step
	}{
		// Starting.
		{"new task starts pulling", taskFacts{now: t0}, []container{c("app", containerNone)},
			step{kind: stepAdvance, status: taskPending}},
		{"unsupported task fails before anything", taskFacts{now: t0, invalid: "networkMode bridge needs a task network, which this agent does not have"}, []container{c("app", containerNone)},
			step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: "networkMode bridge needs a task network, which this agent does not have"}},
		{"pending pulls the first image not pulled", taskFacts{known: taskPending}, []container{c("db", containerPulled), c("app", containerNone)},
			step{kind: stepPull, container: "app"}},
		{"all pulled: activating", taskFacts{known: taskPending}, []container{c("db", containerPulled), c("app", containerPulled)},
			step{kind: stepAdvance, status: taskActivating}},
		{"activating creates", activating, []container{c("db", containerCreated), c("app", containerPulled)},
			step{kind: stepCreate, container: "app"}},
		{"created without dependencies starts", activating, []container{c("app", containerCreated)},
			step{kind: stepStart, container: "app"}},
		{"a dependency starts first", activating, []container{c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart)), c("db", containerCreated)},
			step{kind: stepStart, container: "db"}},
		{"START met", activating, []container{c("db", containerRunning), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepStart, container: "app"}},
		{"START met by a container that exited", activating, []container{c("db", containerStopped, nonEssential, exitedWith(0)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepStart, container: "app"}},
		{"START of a container that never started", activating, []container{c("db", containerStopped, nonEssential, reason("CannotStartContainerError: boom")), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepAbandon, container: "app", reason: "dependency db did not start"}},
		{"COMPLETE waits for the exit, without a startTimeout as long as it takes", activating, []container{c("init", containerRunning, nonEssential), c("app", containerCreated, dependsOn("init", ecsv1alpha1.DependencyComplete))},
			step{kind: stepWait}},
		{"COMPLETE met by any exit", activating, []container{c("init", containerStopped, nonEssential, exitedWith(3)), c("app", containerCreated, dependsOn("init", ecsv1alpha1.DependencyComplete))},
			step{kind: stepStart, container: "app"}},
		{"SUCCESS met by exit 0", activating, []container{c("init", containerStopped, nonEssential, exitedWith(0)), c("app", containerCreated, dependsOn("init", ecsv1alpha1.DependencySuccess))},
			step{kind: stepStart, container: "app"}},
		{"SUCCESS never met after a non-zero exit", activating, []container{c("init", containerStopped, nonEssential, exitedWith(1)), c("app", containerCreated, dependsOn("init", ecsv1alpha1.DependencySuccess))},
			step{kind: stepAbandon, container: "app", reason: "dependency init exited with code 1"}},
		{"SUCCESS waits while it runs", activating, []container{c("init", containerRunning, nonEssential), c("app", containerCreated, dependsOn("init", ecsv1alpha1.DependencySuccess))},
			step{kind: stepWait}},
		{"HEALTHY waits for the check", activating, []container{c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepWait}},
		{"HEALTHY waits through UNHEALTHY", activating, []container{c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnhealthy)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepWait}},
		{"HEALTHY met", activating, []container{c("db", containerRunning, withCheck(ecsv1alpha1.HealthHealthy)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepStart, container: "app"}},
		{"HEALTHY without a check is never met", activating, []container{c("db", containerRunning), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepAbandon, container: "app", reason: "dependency db has no health check"}},
		{"HEALTHY never met once the dependency exited", activating, []container{c("db", containerStopped, nonEssential, withCheck(ecsv1alpha1.HealthUnknown), exitedWith(0)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepAbandon, container: "app", reason: "dependency db exited before it was healthy"}},
		{"the dependency's startTimeout, from its start, bounds the wait", activating, []container{
			c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown), timeout(2*time.Minute)),
			c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepWait, until: t0.Add(2 * time.Minute)}},
		{"the dependency's startTimeout passed", taskFacts{known: taskActivating, now: t0.Add(time.Minute)}, []container{
			c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown), timeout(time.Minute)),
			c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepAbandon, container: "app", reason: "dependency db did not reach HEALTHY within its startTimeout of 1m0s"}},
		{"the waiting container's own startTimeout does not bound its wait", taskFacts{known: taskActivating, now: t0.Add(time.Hour)}, []container{
			c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown)),
			c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy), timeout(10*time.Second))},
			step{kind: stepWait}},
		{"START is met on start: no timeout applies", activating, []container{
			c("db", containerCreated, timeout(time.Second)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepStart, container: "db"}},
		{"the earliest deadline wins", taskFacts{known: taskActivating, now: t0}, []container{
			c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown), timeout(3*time.Minute)),
			c("cache", containerRunning, withCheck(ecsv1alpha1.HealthUnknown), timeout(10*time.Second)),
			c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyHealthy)),
			c("web", containerCreated, dependsOn("cache", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepWait, until: t0.Add(10 * time.Second)}},
		{"unknown dependency", activating, []container{c("app", containerCreated, dependsOn("ghost", ecsv1alpha1.DependencyStart))},
			step{kind: stepAbandon, container: "app", reason: "dependency ghost is not a container of the task"}},
		{"essentials started: RUNNING while a non-essential waits", activating, []container{c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown)), c("report", containerCreated, nonEssential, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepAdvance, status: taskRunning}},
		{"running waits for the non-essential's dependency", running, []container{c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown)), c("report", containerCreated, nonEssential, dependsOn("db", ecsv1alpha1.DependencyHealthy))},
			step{kind: stepWait}},
		{"running and nothing to do", running, []container{c("db", containerRunning), c("app", containerRunning)},
			step{kind: stepWait}},
		{"a container missing after a restart is pulled again, without going back", running, []container{c("db", containerRunning), c("app", containerNone, nonEssential)},
			step{kind: stepPull, container: "app"}},

		// Exits and failures.
		{"essential exit stops the task", running, []container{c("db", containerRunning), c("app", containerStopped, exitedWith(1))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}},
		{"essential exit during activation", activating, []container{c("db", containerStopped, exitedWith(0)), c("app", containerCreated, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}},
		{"non-essential exit is only reported", running, []container{c("db", containerRunning), c("sidecar", containerStopped, nonEssential, exitedWith(1))},
			step{kind: stepWait}},
		{"essential that never started fails the task", activating, []container{c("app", containerStopped, reason("dependency db exited with code 1"))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: "dependency db exited with code 1"}},
		{"a pull failure fails the task even for a non-essential", taskFacts{known: taskPending}, []container{c("app", containerPulled), c("side", containerStopped, nonEssential, fatal, reason("CannotPullContainerError: 401 Unauthorized"))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: "CannotPullContainerError: 401 Unauthorized"}},
		{"a non-essential that cannot start is only reported", running, []container{c("app", containerRunning), c("side", containerStopped, nonEssential, reason("dependency app did not start"))},
			step{kind: stepWait}},

		// Restart policy.
		{"restart after running long enough", running, []container{c("app", containerStopped, exitedWith(1), restarting(time.Minute))},
			step{kind: stepRestart, container: "app"}},
		{"no restart for an ignored exit code", running, []container{c("app", containerStopped, exitedWith(0), restarting(0, 0))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}},
		{"no restart before restartAttemptPeriod", running, []container{c("app", containerStopped, exitedWith(1), restarting(5*time.Minute))},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}},
		{"restart of an adopted container (start unknown)", running, []container{c("app", containerStopped, exitedWith(1), restarting(5*time.Minute), func(c *container) { c.startedAt = time.Time{} })},
			step{kind: stepRestart, container: "app"}},
		{"restart of a non-essential", running, []container{c("app", containerRunning), c("side", containerStopped, nonEssential, exitedWith(2), restarting(0))},
			step{kind: stepRestart, container: "side"}},
		{"no restart without an exit status", running, []container{c("app", containerStopped, restarting(0), func(c *container) { c.started, c.reason = true, reasonLost })},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonEssentialExited}},
		{"no restart while stopping", stopping, []container{c("app", containerStopped, exitedWith(1), restarting(0))},
			step{kind: stepAdvance, status: taskStopped}},

		// Bridge network.
		{"pulled: the network comes before any create", taskFacts{known: taskActivating, net: netWanted}, []container{c("app", containerPulled)},
			step{kind: stepNetworkUp}},
		{"pulls come before the network", taskFacts{known: taskPending, net: netWanted}, []container{c("app", containerNone)},
			step{kind: stepPull, container: "app"}},
		{"network up: create", taskFacts{known: taskActivating, net: netUp}, []container{c("app", containerPulled)},
			step{kind: stepCreate, container: "app"}},
		{"after a restart a running task finds its network again", taskFacts{known: taskRunning, net: netWanted}, []container{c("app", containerRunning)},
			step{kind: stepNetworkUp}},
		{"a failed network setup fails the task", taskFacts{known: taskActivating, net: netWanted, invalid: reasonNetworkFailed + "boom"}, []container{c("app", containerPulled)},
			step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: reasonNetworkFailed + "boom"}},
		{"containers stop before the network goes", taskFacts{known: taskStopping, net: netUp}, []container{c("app", containerRunning)},
			step{kind: stepStopContainer, container: "app"}},
		{"the network goes before STOPPED", taskFacts{known: taskStopping, net: netUp}, []container{c("app", containerStopped, exitedWith(143))},
			step{kind: stepNetworkDown}},
		{"a network never set up is torn down too (it may be from before a restart)", taskFacts{known: taskStopping, net: netWanted}, []container{c("app", containerNone)},
			step{kind: stepNetworkDown}},
		{"network released: STOPPED", taskFacts{known: taskStopping, net: netReleased}, []container{c("app", containerStopped, exitedWith(143))},
			step{kind: stepAdvance, status: taskStopped}},

		// Pause container (pidMode or ipcMode task).
		{"the pause container starts after the network, before any create", taskFacts{known: taskActivating, net: netUp, pause: pauseWanted}, []container{c("app", containerPulled)},
			step{kind: stepPauseUp}},
		{"the network comes before the pause container", taskFacts{known: taskActivating, net: netWanted, pause: pauseWanted}, []container{c("app", containerPulled)},
			step{kind: stepNetworkUp}},
		{"pause up: create", taskFacts{known: taskActivating, pause: pauseUp}, []container{c("app", containerPulled)},
			step{kind: stepCreate, container: "app"}},
		{"after a restart running containers need no pause step", taskFacts{known: taskRunning, pause: pauseWanted}, []container{c("app", containerRunning)},
			step{kind: stepWait}},
		{"a failed pause container fails the task", taskFacts{known: taskActivating, pause: pauseWanted, invalid: reasonPauseFailed + "boom"}, []container{c("app", containerPulled)},
			step{kind: stepStopTask, code: ecsv1alpha1.StopTaskFailedToStart, reason: reasonPauseFailed + "boom"}},
		{"containers stop before the pause container", taskFacts{known: taskStopping, pause: pauseUp}, []container{c("app", containerRunning)},
			step{kind: stepStopContainer, container: "app"}},
		{"the pause container goes before the network", taskFacts{known: taskStopping, net: netUp, pause: pauseUp}, []container{c("app", containerStopped, exitedWith(143))},
			step{kind: stepPauseDown}},
		{"a pause container found after a restart is removed too", taskFacts{known: taskStopping, pause: pauseWanted}, []container{c("app", containerNone)},
			step{kind: stepPauseDown}},
		{"a pause container that exited stops the task", taskFacts{known: taskRunning, pause: pauseUp, pauseExited: true}, []container{c("app", containerRunning)},
			step{kind: stepStopTask, code: ecsv1alpha1.StopEssentialContainerExited, reason: reasonPauseExited}},
		{"a stopping task whose pause container exited stops its containers", taskFacts{known: taskStopping, pause: pauseUp, pauseExited: true}, []container{c("app", containerRunning)},
			step{kind: stepStopContainer, container: "app"}},
		{"pause released: STOPPED", taskFacts{known: taskStopping, pause: pauseReleased}, []container{c("app", containerStopped, exitedWith(143))},
			step{kind: stepAdvance, status: taskStopped}},

		// Stopping.
		{"desired STOPPED begins the stop", taskFacts{known: taskRunning, desired: desiredStopped}, []container{c("db", containerRunning), c("app", containerRunning)},
			step{kind: stepStopTask}},
		{"desired STOPPED before anything ran", taskFacts{desired: desiredStopped}, []container{c("app", containerNone)},
			step{kind: stepStopTask}},
		{"desired STOPPED wins over an unsupported task", taskFacts{desired: desiredStopped, invalid: "networkMode bridge needs a task network, which this agent does not have"}, []container{c("app", containerNone)},
			step{kind: stepStopTask}},
		{"dependents stop first", stopping, []container{c("db", containerRunning), c("app", containerRunning, dependsOn("db", ecsv1alpha1.DependencyStart))},
			step{kind: stepStopContainer, container: "app"}},
		{"then their dependencies", stopping, []container{c("db", containerRunning), c("app", containerStopped, exitedWith(143))},
			step{kind: stepStopContainer, container: "db"}},
		{"a dependency waits while its dependent's stop is under way", stopping, []container{c("db", containerRunning), c("app", containerRunning, dependsOn("db", ecsv1alpha1.DependencyStart), stopUnderWay)},
			step{kind: stepWait}},
		{"independent containers stop together: the second while the first's is under way", stopping, []container{c("side", containerRunning), c("app", containerRunning, stopUnderWay)},
			step{kind: stepStopContainer, container: "side"}},
		{"all stops under way: wait for their results", stopping, []container{c("side", containerRunning, stopUnderWay), c("app", containerRunning, stopUnderWay)},
			step{kind: stepWait}},
		{"a dependency stops once its last running dependent is gone", stopping, []container{c("db", containerRunning), c("a", containerStopped, exitedWith(0), dependsOn("db", ecsv1alpha1.DependencyStart)), c("b", containerRunning, dependsOn("db", ecsv1alpha1.DependencyStart), stopUnderWay)},
			step{kind: stepWait}},
		{"created containers are left as they are", stopping, []container{c("db", containerStopped, exitedWith(143)), c("app", containerCreated)},
			step{kind: stepAdvance, status: taskStopped}},
		{"stopped", taskFacts{known: taskStopped}, []container{c("app", containerStopped, exitedWith(0))},
			step{kind: stepWait}},
		{"a STOPPED task's running container is stopped", taskFacts{known: taskStopped}, []container{c("app", containerRunning)},
			step{kind: stepStopContainer, container: "app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := next(tc.facts, tc.containers)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("next() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextExhaustive walks every combination of task status, desired status and the
// states of two containers (essential or not, dependent or not, with or without a
// restart policy and health) and checks next's invariants; then it plays each
// combination to the end with an idealized runtime and checks that the task settles
// without ever moving backwards.
func TestNextExhaustive(t *testing.T) {
	exits := []func(*container){
		func(*container) {},
		exitedWith(0),
		exitedWith(1),
	}
	var cases int
	pairs := containerPairs(exits)
	for known := taskNone; known <= taskStopped; known++ {
		for desired := desiredRunning; desired <= desiredStopped; desired++ {
			for net := netNone; net <= netReleased; net++ {
				for vols := volNone; vols <= volReady; vols++ {
					for pause := pauseNone; pause <= pauseReleased; pause++ {
						for _, exited := range []bool{false, true} {
							for _, pair := range pairs {
								cases++
								facts := taskFacts{known: known, desired: desired, now: t0.Add(time.Minute), net: net, vols: vols, pause: pause, pauseExited: exited}
								checkStep(t, facts, pair)
								play(t, facts, pair)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations", cases)
}

// containerPairs enumerates a db and an app container, app depending on db.
func containerPairs(exits []func(*container)) [][]container {
	var out [][]container
	conds := []ecsv1alpha1.DependencyCondition{"", ecsv1alpha1.DependencyStart, ecsv1alpha1.DependencySuccess, ecsv1alpha1.DependencyHealthy}
	for dbKnown := containerNone; dbKnown <= containerStopped; dbKnown++ {
		for appKnown := containerNone; appKnown <= containerStopped; appKnown++ {
			for _, dbEssential := range []bool{true, false} {
				for _, cond := range conds {
					for ei, exit := range exits {
						for _, restart := range []bool{false, true} {
							db := c("db", dbKnown, withCheck(ecsv1alpha1.HealthHealthy))
							db.essential = dbEssential
							app := c("app", appKnown)
							if cond != "" {
								dependsOn("db", cond)(&app)
							}
							if dbKnown == containerStopped {
								exit(&db)
							}
							if appKnown == containerStopped && ei > 0 {
								exitedWith(ei - 1)(&app)
							}
							if restart {
								restarting(0)(&app)
							}
							out = append(out, []container{db, app})
						}
					}
				}
			}
		}
	}
	return out
}

func checkStep(t *testing.T, facts taskFacts, cs []container) {
	t.Helper()
	s := next(facts, cs)
	if s2 := next(facts, cs); s2 != s {
		t.Fatalf("next is not deterministic: %+v then %+v", s, s2)
	}
	fail := func(msg string) {
		t.Helper()
		t.Errorf("%s: known=%s desired=%s containers=%s: got %+v", msg, facts.known, facts.desired, describe(cs), s)
	}
	stopping := facts.known >= taskStopping || facts.desired == desiredStopped
	var target *container
	for i := range cs {
		if cs[i].name == s.container {
			target = &cs[i]
		}
	}
	switch s.kind {
	case stepAdvance:
		if s.status <= facts.known {
			fail("advance does not move forward")
		}
		if stopping && s.status != taskStopped {
			fail("a stopping task only advances to STOPPED")
		}
	case stepPull, stepCreate, stepStart, stepRestart, stepAbandon:
		if stopping {
			fail("a task being stopped starts nothing")
		}
		want := map[stepKind]containerStatus{stepPull: containerNone, stepCreate: containerPulled, stepStart: containerCreated, stepRestart: containerStopped, stepAbandon: containerCreated}[s.kind]
		if target == nil || target.known != want {
			fail("step targets a container in the wrong state")
		}
	case stepStopContainer:
		if !stopping || target == nil || target.known != containerRunning {
			fail("only running containers of a stopping task are stopped")
		}
	case stepStopTask:
		if facts.known >= taskStopping {
			fail("a stop begins once")
		}
	case stepNetworkUp:
		if stopping || facts.net != netWanted {
			fail("only a running task sets up a network it wants")
		}
	case stepNetworkDown:
		if !stopping || (facts.net != netWanted && facts.net != netUp) || anyIn(cs, containerRunning) {
			fail("a network is torn down once the task's containers stopped")
		}
		if facts.pause == pauseWanted || facts.pause == pauseUp {
			fail("the network goes after the pause container")
		}
	case stepPauseUp:
		if stopping || facts.pause != pauseWanted || !anyIn(cs, containerPulled) {
			fail("only a running task with a container to create starts the pause container it wants")
		}
	case stepPauseDown:
		if !stopping || (facts.pause != pauseWanted && facts.pause != pauseUp) || anyIn(cs, containerRunning) {
			fail("the pause container is removed once the task's containers stopped")
		}
	}
	if facts.pauseExited && (s.kind == stepPull || s.kind == stepCreate || s.kind == stepStart || s.kind == stepRestart || s.kind == stepPauseUp) {
		fail("a task whose pause container exited starts nothing")
	}
	if s.kind == stepCreate && facts.pause == pauseWanted {
		fail("containers are created only once the pause container holds the namespaces they join")
	}
	if (s.kind == stepCreate || s.kind == stepStart) && facts.net == netWanted {
		fail("containers are created and started only in the task's network")
	}
	if s.kind == stepCreate && facts.vols == volWanted {
		fail("containers are created only once the task's volumes are made")
	}
	if s.kind == stepVolumesUp && (stopping || facts.vols != volWanted || facts.net == netWanted) {
		fail("only a running task makes the volumes it wants, in its network")
	}
}

func anyIn(cs []container, s containerStatus) bool { return firstIn(cs, s) != nil }

func describe(cs []container) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("[%s %s essential=%t started=%t deps=%v]", c.name, c.known, c.essential, c.started, c.dependsOn)
	}
	return s
}

// play executes steps on an idealized runtime (every call succeeds at once, health
// checks pass) until next waits without a deadline, and checks that the task status
// never moves backwards and that the play ends.
func play(t *testing.T, facts taskFacts, in []container) {
	t.Helper()
	cs := make([]container, len(in))
	copy(cs, in)
	for i := 0; i < 50; i++ {
		s := next(facts, cs)
		var target *container
		for j := range cs {
			if cs[j].name == s.container {
				target = &cs[j]
			}
		}
		switch s.kind {
		case stepWait:
			if s.until.IsZero() {
				return
			}
			facts.now = s.until
		case stepAdvance:
			if s.status <= facts.known {
				t.Fatalf("status moved from %s to %s", facts.known, s.status)
			}
			if s.status == taskStopped && (facts.net == netWanted || facts.net == netUp) {
				t.Fatalf("STOPPED with the network %d not torn down", facts.net)
			}
			if s.status == taskStopped && (facts.pause == pauseWanted || facts.pause == pauseUp) {
				t.Fatalf("STOPPED with the pause container %d not removed", facts.pause)
			}
			facts.known = s.status
		case stepNetworkUp:
			facts.net = netUp
		case stepNetworkDown:
			facts.net = netReleased
		case stepVolumesUp:
			facts.vols = volReady
		case stepPauseUp:
			facts.pause = pauseUp
		case stepPauseDown:
			facts.pause = pauseReleased
		case stepPull:
			target.known = containerPulled
		case stepCreate:
			target.known = containerCreated
		case stepStart, stepRestart:
			target.known, target.started, target.startedAt, target.exit = containerRunning, true, facts.now, nil
			if target.check != nil {
				target.health = ecsv1alpha1.HealthHealthy
			}
		case stepAbandon:
			target.known, target.reason = containerStopped, s.reason
		case stepStopTask:
			facts.known = taskStopping
		case stepStopContainer:
			target.known, target.exit = containerStopped, &runtime.ExitStatus{Code: 143, ExitedAt: facts.now}
		}
	}
	t.Fatalf("no settled state after 50 steps from known=%s desired=%s %s", facts.known, facts.desired, describe(in))
}
