package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestDependsOnStartAndHealthy(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("db", image("db")).Last(checked(5, 3, 0, "CMD-SHELL", "pg_isready")).
		Container("app", image("app")).DependsOn("db", ecsv1alpha1.DependencyHealthy).Port(8080, 8080).
		Container("side", image("side")).DependsOn("app", ecsv1alpha1.DependencyStart).Last(notEssential).
		Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)

	r := h.waitFor(d.UID, "db running", containerIs("db", ecsv1alpha1.ContainerRunning))
	if r.LastStatus != ecsv1alpha1.TaskActivating || containerOf(r, "app").LastStatus != ecsv1alpha1.ContainerPending {
		t.Fatalf("while db is not healthy: %s", dump(r))
	}
	if n := h.rt.Count("Start", id(d, "app")); n != 0 {
		t.Fatalf("app started %d times before db was healthy", n)
	}

	h.stepUntil(time.Second, "RUNNING", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskRunning
	})
	r = h.waitFor(d.UID, "side running", containerIs("side", ecsv1alpha1.ContainerRunning))
	if r.HealthStatus != ecsv1alpha1.HealthHealthy {
		t.Errorf("task health = %s, want HEALTHY", r.HealthStatus)
	}
	if diff := cmp.Diff([]string{id(d, "db"), id(d, "app"), id(d, "side")}, h.rt.CallIDs("Start")); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	if r.PullStartedAt == nil || r.PullStoppedAt == nil || r.StartedAt == nil || r.StoppingAt != nil {
		t.Errorf("timestamps: %+v", r)
	}
	app := containerOf(r, "app")
	wantApp := ecsv1alpha1.ContainerStatus{
		Name: "app", RuntimeID: id(d, "app"), ImageDigest: fake.Digest(image("app")), LastStatus: ecsv1alpha1.ContainerRunning,
		HealthStatus:    ecsv1alpha1.HealthUnknown,
		NetworkBindings: []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP}},
	}
	if diff := cmp.Diff(wantApp, app); diff != "" {
		t.Errorf("app status (-want +got):\n%s", diff)
	}
	for _, call := range h.rt.Calls() {
		if call.Method == "Exec" {
			if diff := cmp.Diff([]string{"/bin/sh", "-c", "pg_isready"}, call.Cmd); diff != "" || call.Timeout != 2*time.Second {
				t.Errorf("health check exec %v timeout %s", call.Cmd, call.Timeout)
			}
		}
	}
	// One report per state that lasts: pulling, waiting for db, running.
	if diff := cmp.Diff([]ecsv1alpha1.TaskStatusValue{ecsv1alpha1.TaskPending, ecsv1alpha1.TaskActivating, ecsv1alpha1.TaskRunning}, h.rec.statuses(d.UID)); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if got := h.eng.Tasks(); len(got) != 1 || got[0].LastStatus != ecsv1alpha1.TaskRunning {
		t.Errorf("Tasks() = %v", got)
	}
	if diff := cmp.Diff(map[types.UID]ecsv1alpha1.TaskStatusValue{d.UID: ecsv1alpha1.TaskRunning}, h.eng.LastStatuses()); diff != "" {
		t.Errorf("LastStatuses (-want +got):\n%s", diff)
	}
}

func TestDependencySuccessFails(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("migrate", image("migrate")).Last(notEssential).
		Container("app", image("app")).DependsOn("migrate", ecsv1alpha1.DependencySuccess).
		Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "migrate running", containerIs("migrate", ecsv1alpha1.ContainerRunning))
	if err := h.rt.Exit(id(d, "migrate"), 1); err != nil {
		t.Fatal(err)
	}
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	const want = "dependency migrate exited with code 1"
	if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != want {
		t.Errorf("stop: %s", dump(r))
	}
	if got := containerOf(r, "app"); got.Reason != want || got.ExitCode != nil || got.LastStatus != ecsv1alpha1.ContainerStopped {
		t.Errorf("app: %+v", got)
	}
	if exitCode(r, "migrate") != 1 {
		t.Errorf("migrate: %+v", containerOf(r, "migrate"))
	}
	if n := h.rt.Count("Start", id(d, "app")); n != 0 {
		t.Errorf("app started %d times", n)
	}
}

// TestStartTimeout: the dependency's startTimeout, counted from its start, bounds
// how long the container that waits for it to be HEALTHY waits (ECS's rule).
func TestStartTimeout(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("db", image("db")).Last(checked(5, 3, 0, "CMD", "/bin/check")).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.StartTimeout = ptr.To[int32](20) }).
		Container("app", image("app")).DependsOn("db", ecsv1alpha1.DependencyHealthy).
		Obj().Spec
	d := desired("web-1", &spec)
	h.rt.ScriptExec(id(d, "db"), fake.ExecResult{Code: 1})
	h.eng.Update(d)
	h.waitFor(d.UID, "db running", containerIs("db", ecsv1alpha1.ContainerRunning))
	elapsed := h.stepUntil(time.Second, "STOPPED", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskStopped
	})
	r, _ := h.rec.last(d.UID)
	if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != "dependency db did not reach HEALTHY within its startTimeout of 20s" {
		t.Errorf("stop: %s", dump(r))
	}
	if elapsed < 20*time.Second || elapsed > 25*time.Second {
		t.Errorf("failed after %s, want about the 20s startTimeout", elapsed)
	}
	if exitCode(r, "db") != fake.ExitSIGTERM {
		t.Errorf("db was not stopped: %+v", containerOf(r, "db"))
	}
	if containerOf(r, "db").HealthStatus != ecsv1alpha1.HealthUnhealthy {
		t.Errorf("db health: %+v", containerOf(r, "db"))
	}
}

func TestHealthCheckRetriesAndStartPeriod(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Last(checked(5, 3, 12, "CMD", "/bin/check", "--ready")).Obj().Spec
	d := desired("web-1", &spec)
	appID := id(d, "app")
	h.rt.ScriptExec(appID, fake.ExecResult{Code: 1})
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

	// Checks at 5s and 10s fall in the 12s start period; 15s, 20s and 25s count.
	for i := 1; i <= 5; i++ {
		h.tick(5 * time.Second)
		h.waitUntil("a check", func() bool { return h.rt.Count("Exec", appID) == i })
		r, _ := h.rec.last(d.UID)
		if i < 5 && r.HealthStatus != ecsv1alpha1.HealthUnknown {
			t.Fatalf("after %d failed checks: %s", i, dump(r))
		}
	}
	r := h.waitFor(d.UID, "UNHEALTHY", func(r Report) bool { return r.HealthStatus == ecsv1alpha1.HealthUnhealthy })
	if r.LastStatus != ecsv1alpha1.TaskRunning || containerOf(r, "app").HealthStatus != ecsv1alpha1.HealthUnhealthy {
		t.Errorf("unhealthy: %s", dump(r))
	}
	for _, c := range h.rt.Calls() {
		if c.Method == "Exec" && (!cmp.Equal(c.Cmd, []string{"/bin/check", "--ready"}) || c.Timeout != 2*time.Second) {
			t.Errorf("exec %v timeout %s, want [/bin/check --ready] 2s", c.Cmd, c.Timeout)
		}
	}

	// A success makes it healthy again; a check that hangs past its timeout fails.
	h.rt.ScriptExec(appID, fake.ExecResult{Code: 0}, fake.ExecResult{Hang: true})
	h.tick(5 * time.Second)
	h.waitFor(d.UID, "HEALTHY", func(r Report) bool { return r.HealthStatus == ecsv1alpha1.HealthHealthy })
	h.stepUntil(time.Second, "UNHEALTHY after timeouts", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.HealthStatus == ecsv1alpha1.HealthUnhealthy
	})
	var health []ecsv1alpha1.HealthStatus
	for _, r := range h.rec.all(d.UID) {
		health = append(health, r.HealthStatus)
	}
	want := []ecsv1alpha1.HealthStatus{ecsv1alpha1.HealthUnknown, ecsv1alpha1.HealthUnknown, ecsv1alpha1.HealthUnhealthy, ecsv1alpha1.HealthHealthy, ecsv1alpha1.HealthUnhealthy}
	if diff := cmp.Diff(want, health); diff != "" {
		t.Errorf("a report per health change, none otherwise (-want +got):\n%s", diff)
	}
}

func TestEssentialExitStopsTask(t *testing.T) {
	tests := []struct {
		name       string
		exit       func(rt *fake.Runtime, id string) error
		wantCode   int32
		wantReason string
	}{
		{"exit code", func(rt *fake.Runtime, id string) error { return rt.Exit(id, 3) }, 3, ""},
		{"OOM killed", (*fake.Runtime).OOM, fake.ExitSIGKILL, "OutOfMemoryError: Container killed due to memory usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			spec := taskDef().
				Container("app", image("app")).
				Container("side", image("side")).Last(notEssential).
				Obj().Spec
			d := desired("web-1", &spec)
			h.eng.Update(d)
			h.waitFor(d.UID, "RUNNING", func(r Report) bool {
				return r.LastStatus == ecsv1alpha1.TaskRunning && containerOf(r, "side").LastStatus == ecsv1alpha1.ContainerRunning
			})
			if err := tc.exit(h.rt, id(d, "app")); err != nil {
				t.Fatal(err)
			}
			r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
			if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || r.StoppedReason != "Essential container in task exited" {
				t.Errorf("stop: %s", dump(r))
			}
			app := containerOf(r, "app")
			if exitCode(r, "app") != tc.wantCode || app.Reason != tc.wantReason {
				t.Errorf("app: %s", dump(r))
			}
			if exitCode(r, "side") != fake.ExitSIGTERM {
				t.Errorf("side was not stopped with SIGTERM: %s", dump(r))
			}
			if r.StoppingAt == nil || r.StoppedAt == nil {
				t.Errorf("timestamps: stoppingAt %v stoppedAt %v", r.StoppingAt, r.StoppedAt)
			}
		})
	}
}

func TestNonEssentialExit(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("app", image("app")).
		Container("side", image("side")).Last(notEssential).
		Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	if err := h.rt.Exit(id(d, "side"), 1); err != nil {
		t.Fatal(err)
	}
	r := h.waitFor(d.UID, "side stopped", containerIs("side", ecsv1alpha1.ContainerStopped))
	if r.LastStatus != ecsv1alpha1.TaskRunning || exitCode(r, "side") != 1 || r.StopCode != "" {
		t.Errorf("after a non-essential exit: %s", dump(r))
	}
	if n := h.rt.Count("Stop", ""); n != 0 {
		t.Errorf("%d Stop calls, want none", n)
	}
}

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		name        string
		policy      ecsv1alpha1.ContainerRestartPolicy
		ranFor      time.Duration
		exit        int
		wantRestart bool
	}{
		{"restarts in place", ecsv1alpha1.ContainerRestartPolicy{Enabled: true, RestartAttemptPeriod: ptr.To[int32](0)}, 0, 1, true},
		{"after restartAttemptPeriod", ecsv1alpha1.ContainerRestartPolicy{Enabled: true, RestartAttemptPeriod: ptr.To[int32](60)}, 61 * time.Second, 1, true},
		{"not before restartAttemptPeriod", ecsv1alpha1.ContainerRestartPolicy{Enabled: true, RestartAttemptPeriod: ptr.To[int32](60)}, 30 * time.Second, 1, false},
		{"default period is 300s", ecsv1alpha1.ContainerRestartPolicy{Enabled: true}, 299 * time.Second, 1, false},
		{"ignored exit code", ecsv1alpha1.ContainerRestartPolicy{Enabled: true, IgnoredExitCodes: []int32{0}, RestartAttemptPeriod: ptr.To[int32](0)}, 0, 0, false},
		{"disabled", ecsv1alpha1.ContainerRestartPolicy{Enabled: false}, time.Hour, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			policy := tc.policy
			spec := taskDef().Container("app", image("app")).
				Last(func(c *ecsv1alpha1.ContainerDefinition) { c.RestartPolicy = &policy }).Obj().Spec
			d := desired("web-1", &spec)
			h.eng.Update(d)
			h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
			h.clk.Step(tc.ranFor)
			if err := h.rt.Exit(id(d, "app"), tc.exit); err != nil {
				t.Fatal(err)
			}
			if !tc.wantRestart {
				r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
				if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || exitCode(r, "app") != int32(tc.exit) || h.rt.Count("Start", id(d, "app")) != 1 {
					t.Errorf("want the task stopped: %s", dump(r))
				}
				return
			}
			r := h.waitFor(d.UID, "restart", func(r Report) bool { return containerOf(r, "app").RestartCount == 1 })
			if r.LastStatus != ecsv1alpha1.TaskRunning || containerOf(r, "app").LastStatus != ecsv1alpha1.ContainerRunning || h.rt.Count("Start", id(d, "app")) != 2 {
				t.Errorf("want app restarted in place: %s", dump(r))
			}
		})
	}
}

// TestStopIndependentContainersInParallel: containers that do not depend on each
// other stop at the same time, each on its own stopTimeout, as ECS's agent stops
// them (its functional test ContainerOrderingGranularStopTimeout): the sidecar that
// ignores SIGTERM is killed after its 2 s while the app still has 20.
func TestStopIndependentContainersInParallel(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("app", image("app")).Last(func(c *ecsv1alpha1.ContainerDefinition) { c.StopTimeout = ptr.To[int32](20) }).
		Container("side", image("side")).Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Essential, c.StopTimeout = ptr.To(false), ptr.To[int32](2) }).
		Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	for _, name := range []string{"app", "side"} {
		if err := h.rt.SetIgnoreSIGTERM(id(d, name), true); err != nil {
			t.Fatal(err)
		}
	}
	h.eng.Update(stopped(d, ecsv1alpha1.StopUserInitiated, "done"))
	h.waitUntil("SIGTERM to both", func() bool {
		return len(h.rt.Signals(id(d, "app"))) == 1 && len(h.rt.Signals(id(d, "side"))) == 1
	})
	sideGone := h.stepUntil(time.Second, "side stopped", func() bool {
		r, _ := h.rec.last(d.UID)
		return containerOf(r, "side").LastStatus == ecsv1alpha1.ContainerStopped
	})
	if sideGone < 2*time.Second || sideGone >= 20*time.Second {
		t.Errorf("side stopped after %s, want its own 2s stopTimeout", sideGone)
	}
	if r, _ := h.rec.last(d.UID); containerOf(r, "app").LastStatus != ecsv1alpha1.ContainerRunning {
		t.Errorf("app stopped with side, want it on its 20s stopTimeout: %s", dump(r))
	}
	appGone := sideGone + h.stepUntil(time.Second, "STOPPED", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskStopped
	})
	if appGone < 20*time.Second {
		t.Errorf("app stopped after %s, before its 20s stopTimeout", appGone)
	}
	r, _ := h.rec.last(d.UID)
	for _, name := range []string{"app", "side"} {
		if got := exitCode(r, name); got != fake.ExitSIGKILL {
			t.Errorf("%s exit code %d, want %d (killed)", name, got, fake.ExitSIGKILL)
		}
	}
}

func TestStopReverseOrderWithKill(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().
		Container("db", image("db")).
		Container("app", image("app")).DependsOn("db", ecsv1alpha1.DependencyStart).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.StopTimeout = ptr.To[int32](10) }).
		Container("side", image("side")).DependsOn("app", ecsv1alpha1.DependencyStart).
		Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	if err := h.rt.SetIgnoreSIGTERM(id(d, "app"), true); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.SetTermExitCode(id(d, "db"), 0); err != nil {
		t.Fatal(err)
	}

	h.eng.Update(stopped(d, ecsv1alpha1.StopServiceSchedulerInitiated, "scaling in"))
	r := h.waitFor(d.UID, "STOPPING", hasStatus(ecsv1alpha1.TaskStopping))
	if r.StoppingAt == nil || r.StopCode != ecsv1alpha1.StopServiceSchedulerInitiated {
		t.Errorf("stopping: %s", dump(r))
	}
	h.waitUntil("SIGTERM to app", func() bool { return len(h.rt.Signals(id(d, "app"))) == 1 })
	elapsed := h.stepUntil(time.Second, "STOPPED", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskStopped
	})
	r, _ = h.rec.last(d.UID)
	if elapsed < 10*time.Second {
		t.Errorf("app was killed after %s, before its 10s stopTimeout", elapsed)
	}
	if diff := cmp.Diff([]string{id(d, "side"), id(d, "app"), id(d, "db")}, h.rt.CallIDs("Stop")); diff != "" {
		t.Errorf("stop order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{fake.SIGTERM, fake.SIGKILL}, h.rt.Signals(id(d, "app"))); diff != "" {
		t.Errorf("app signals (-want +got):\n%s", diff)
	}
	want := map[string]int32{"side": fake.ExitSIGTERM, "app": fake.ExitSIGKILL, "db": 0}
	for name, code := range want {
		if got := exitCode(r, name); got != code {
			t.Errorf("%s exit code %d, want %d", name, got, code)
		}
	}
	if r.StopCode != ecsv1alpha1.StopServiceSchedulerInitiated || r.StoppedReason != "scaling in" || r.StoppedAt == nil {
		t.Errorf("stopped: %s", dump(r))
	}
	// Each container's exit is reported as it happens (stops run in parallel), all
	// while the task is STOPPING.
	want2 := []ecsv1alpha1.TaskStatusValue{ecsv1alpha1.TaskPending, ecsv1alpha1.TaskRunning, ecsv1alpha1.TaskStopping, ecsv1alpha1.TaskStopped}
	if diff := cmp.Diff(want2, slices.Compact(h.rec.statuses(d.UID))); diff != "" {
		t.Errorf("reports: STOPPING while stopping, then STOPPED (-want +got):\n%s", diff)
	}
	for _, c := range h.rt.Calls() {
		if c.Method == "Stop" && c.ID == id(d, "app") && c.Timeout != 10*time.Second {
			t.Errorf("app stopped with timeout %s, want 10s", c.Timeout)
		}
		if c.Method == "Stop" && c.ID == id(d, "db") && c.Timeout != 30*time.Second {
			t.Errorf("db stopped with timeout %s, want the 30s default", c.Timeout)
		}
	}
}

func TestStopDefaultsAndNeverRunsAgain(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	h.eng.Update(stopped(d, "", ""))
	h.eng.Update(d) // a stale RUNNING after the stop
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopUserInitiated || r.StoppedReason != "Task stopped by user" {
		t.Errorf("stop: %s", dump(r))
	}
	h.eng.Update(d)
	h.eng.Update(stopped(d, "", ""))
	time.Sleep(20 * time.Millisecond)
	if n := h.rt.Count("Start", ""); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	want := []ecsv1alpha1.TaskStatusValue{ecsv1alpha1.TaskPending, ecsv1alpha1.TaskRunning, ecsv1alpha1.TaskStopping, ecsv1alpha1.TaskStopped}
	if diff := cmp.Diff(want, h.rec.statuses(d.UID)); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestStopBeforeRun(t *testing.T) {
	// Both updates arrive before Run: the newer RUNNING does not drop the stop.
	h := newHarness(t)
	h.kill()
	h.create()
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(stopped(d, ecsv1alpha1.StopUserInitiated, "changed my mind"))
	h.eng.Update(d)
	h.run()
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StoppedReason != "changed my mind" || h.rt.Count("Pull", "") != 0 {
		t.Errorf("stop: %s, %d pulls", dump(r), h.rt.Count("Pull", ""))
	}
	if diff := cmp.Diff([]ecsv1alpha1.TaskStatusValue{ecsv1alpha1.TaskStopped}, h.rec.statuses(d.UID)); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestStopInterruptsPull(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	release := h.rt.HoldPulls(image("app"))
	defer release()
	h.eng.Update(d)
	h.waitFor(d.UID, "PENDING", hasStatus(ecsv1alpha1.TaskPending))
	h.eng.Update(stopped(d, "", ""))
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopUserInitiated || containerOf(r, "app").Reason != "" || h.rt.Count("Create", "") != 0 {
		t.Errorf("stop during pull: %s", dump(r))
	}
}

func TestPullErrors(t *testing.T) {
	tests := []struct {
		name       string
		image      string
		err        error
		wantReason string
	}{
		{"registry refuses", image("app"),
			&runtime.ImageError{Ref: image("app"), Kind: runtime.ImageUnauthorized, Reason: "401 Unauthorized: authentication required"},
			"CannotPullContainerError: 401 Unauthorized: authentication required"},
		{"malformed reference", "Shop/App:1", nil,
			"CannotPullContainerError: invalid image reference \"Shop/App:1\": invalid reference format: repository name (App) must be lowercase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.err != nil {
				h.rt.FailPull(tc.image, tc.err)
			}
			spec := taskDef().Container("app", tc.image).Container("side", image("side")).Obj().Spec
			d := desired("web-1", &spec)
			h.eng.Update(d)
			r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
			if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != tc.wantReason {
				t.Errorf("stop: %s", dump(r))
			}
			if got := containerOf(r, "app"); got.Reason != tc.wantReason || got.LastStatus != ecsv1alpha1.ContainerStopped {
				t.Errorf("app: %+v", got)
			}
			if n := h.rt.Count("Create", ""); n != 0 {
				t.Errorf("%d creates after a failed pull", n)
			}
			want := []ecsv1alpha1.TaskStatusValue{ecsv1alpha1.TaskPending, ecsv1alpha1.TaskStopped}
			if diff := cmp.Diff(want, h.rec.statuses(d.UID)); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPullRetriesAndAuth(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PullPolicy = runtime.PullAlways })
	spec := taskDef().
		Container("app", image("app")).
		Container("app2", image("app")).
		Container("hub", "busybox:1.36").
		Obj().Spec
	d := desired("web-1", &spec)
	creds := &runtime.Auth{Username: "robot", Password: "pw"}
	d.Auth = map[string]*runtime.Auth{"registry.example": creds}
	h.rt.FailPull(image("app"), &runtime.ImageError{Kind: runtime.ImageUnavailable, Reason: "503 Service Unavailable"})
	h.eng.Update(d)
	h.waitUntil("the first pull", func() bool { return h.rt.Count("Pull", image("app")) == 1 })
	h.rt.FailPull(image("app"), nil)
	h.tick(pullBackoff)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	var pulls []fake.Call
	for _, c := range h.rt.Calls() {
		if c.Method == "Pull" {
			pulls = append(pulls, c)
		}
	}
	want := []fake.Call{
		{Method: "Pull", ID: image("app"), Auth: creds, Policy: runtime.PullAlways},
		{Method: "Pull", ID: image("app"), Auth: creds, Policy: runtime.PullAlways},
		{Method: "Pull", ID: "busybox:1.36", Policy: runtime.PullAlways},
	}
	if diff := cmp.Diff(want, pulls); diff != "" {
		t.Errorf("pulls: one retry, one pull per image, credentials for their registry only (-want +got):\n%s", diff)
	}
}

func TestAuthFor(t *testing.T) {
	robot, hub := &runtime.Auth{Username: "robot"}, &runtime.Auth{Username: "hub"}
	tests := []struct {
		ref  string
		auth map[string]*runtime.Auth
		want *runtime.Auth
	}{
		{"registry.example/shop/app:1", map[string]*runtime.Auth{"registry.example": robot}, robot},
		{"registry.example:5000/app:1", map[string]*runtime.Auth{"registry.example": robot}, nil},
		{"busybox:1", map[string]*runtime.Auth{"registry.example": robot}, nil},
		{"busybox:1", map[string]*runtime.Auth{"docker.io": hub}, hub},
		{"team/app:1", map[string]*runtime.Auth{"": hub}, hub},
		{"docker.io/team/app:1", map[string]*runtime.Auth{"https://index.docker.io/v1/": hub}, hub},
		{"Not A Ref", map[string]*runtime.Auth{"": hub}, nil},
	}
	for _, tc := range tests {
		w := &worker{auth: tc.auth}
		if got := w.authFor(tc.ref); got != tc.want {
			t.Errorf("authFor(%q) with %v = %v, want %v", tc.ref, tc.auth, got, tc.want)
		}
	}
}

func TestUnsupportedNetworkMode(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Network(ecsv1alpha1.NetworkModeBridge).Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != "networkMode bridge needs a task network, which this agent does not have" {
		t.Errorf("stop: %s", dump(r))
	}
	if n := len(h.rt.Calls()); n != 1 { // the List of Recover
		t.Errorf("%d runtime calls, want only Recover's List: %v", n, h.rt.Calls())
	}
	if n := len(h.rec.all(d.UID)); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
}

func TestContainerFailures(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(rt *fake.Runtime, d Desired)
		wantReason string
	}{
		{"create", func(rt *fake.Runtime, d Desired) { rt.FailCreate(id(d, "app"), os.ErrPermission) },
			"CannotCreateContainerError: permission denied"},
		{"start", func(rt *fake.Runtime, d Desired) { rt.FailStart(id(d, "app"), os.ErrInvalid) },
			"CannotStartContainerError: invalid argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			spec := taskDef().Container("app", image("app")).Obj().Spec
			d := desired("web-1", &spec)
			tc.fail(h.rt, d)
			h.eng.Update(d)
			r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
			if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || r.StoppedReason != tc.wantReason || containerOf(r, "app").Reason != tc.wantReason {
				t.Errorf("stop: %s", dump(r))
			}
		})
	}
}

// runToRunning starts a two-container task whose app waits for db to be healthy.
func runToRunning(t *testing.T, h *harness) Desired {
	t.Helper()
	spec := taskDef().
		Container("db", image("db")).Last(checked(5, 3, 0, "CMD", "/bin/check")).
		Container("app", image("app")).DependsOn("db", ecsv1alpha1.DependencyHealthy).
		Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.MountPoints = []ecsv1alpha1.MountPoint{{SourceVolume: "scratch", ContainerPath: "/scratch"}}
		}).
		Obj().Spec
	spec.Volumes = []ecsv1alpha1.Volume{{Name: "scratch"}}
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "db running", containerIs("db", ecsv1alpha1.ContainerRunning))
	h.stepUntil(time.Second, "RUNNING", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskRunning
	})
	return d
}

func TestRecoverAdoptsRunningContainers(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	last, _ := h.rec.last(d.UID)

	h.restart()
	d.Status = apiStatus(last)
	h.eng.Update(d)
	h.waitUntil("the task known again", func() bool { return len(h.eng.Tasks()) == 1 })
	// The health check goes on in the new engine.
	execs := h.rt.Count("Exec", id(d, "db"))
	h.tick(5 * time.Second)
	h.waitUntil("a health check", func() bool { return h.rt.Count("Exec", id(d, "db")) == execs+1 })
	if got := h.rec.all(d.UID); len(got) != 0 {
		t.Errorf("reports after a restart with nothing changed: %v", h.rec.statuses(d.UID))
	}
	for _, name := range []string{"db", "app"} {
		if n := h.rt.Count("Start", id(d, name)); n != 1 {
			t.Errorf("%s started %d times, want once", name, n)
		}
	}
	// Its exits reach the new engine.
	if err := h.rt.Exit(id(d, "app"), 2); err != nil {
		t.Fatal(err)
	}
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || exitCode(r, "app") != 2 || exitCode(r, "db") != fake.ExitSIGTERM {
		t.Errorf("stop: %s", dump(r))
	}
	if want := last.StartedAt.Truncate(time.Second); r.StartedAt == nil || !r.StartedAt.Equal(want) {
		t.Errorf("startedAt %v, want the one reported before the restart %v", r.StartedAt, want)
	}
}

// TestScratchVolumeWritableByTaskUsers: a task's scratch volume is shared by its
// containers, whatever user each runs as: mode 1777, like /tmp.
func TestScratchVolumeWritableByTaskUsers(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	st, err := os.Stat(filepath.Join(h.dir, "volumes", string(d.UID), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode()&(os.ModePerm|os.ModeSticky), os.ModeSticky|0o777; got != want {
		t.Errorf("scratch volume mode = %v, want %v", got, want)
	}
}

// TestContainerPolicyReachesTheRuntime: the level a task was admitted at
// (Desired.ContainerPolicy) confines the containers the engine creates.
func TestContainerPolicyReachesTheRuntime(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.DockerSecurityOptions = []string{"seccomp=unconfined"}
	}).Obj().Spec
	restricted, privileged := desired("restricted-1", &spec), desired("privileged-1", &spec)
	restricted.ContainerPolicy, privileged.ContainerPolicy = ecsv1alpha1.ContainerPolicyRestricted, ecsv1alpha1.ContainerPolicyPrivileged
	h.eng.Update(restricted)
	h.eng.Update(privileged)
	for _, tc := range []struct {
		d                                          Desired
		wantNoNewPrivileges, wantSeccompUnconfined bool
	}{{restricted, true, false}, {privileged, false, true}} {
		h.waitFor(tc.d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
		s, ok := h.rt.Spec(id(tc.d, "app"))
		if !ok || s.NoNewPrivileges != tc.wantNoNewPrivileges || s.SeccompUnconfined != tc.wantSeccompUnconfined {
			t.Errorf("%s: created %v, noNewPrivileges %v seccompUnconfined %v, want %v %v", tc.d.ContainerPolicy, ok,
				s.NoNewPrivileges, s.SeccompUnconfined, tc.wantNoNewPrivileges, tc.wantSeccompUnconfined)
		}
	}
}
