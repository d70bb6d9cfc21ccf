package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestRecoverStartsCreatedContainers(t *testing.T) {
	// The agent dies while app waits for db to be healthy: db runs, app is created.
	h := newHarness(t)
	spec := taskDef().
		Container("db", image("db")).Last(checked(5, 3, 0, "CMD", "/bin/check")).
		Container("app", image("app")).DependsOn("db", ecsv1alpha1.DependencyHealthy).
		Obj().Spec
	d := desired("web-1", &spec)
	h.rt.ScriptExec(id(d, "db"), fake.ExecResult{Code: 1})
	h.eng.Update(d)
	last := h.waitFor(d.UID, "db running", containerIs("db", ecsv1alpha1.ContainerRunning))
	if info, _ := h.rt.Info(id(d, "app")); info.Status != runtime.StatusCreated {
		t.Fatalf("app is %s, want created", info.Status)
	}

	h.restart()
	h.rt.ScriptExec(id(d, "db"), fake.ExecResult{Code: 0})
	d.Status = apiStatus(last)
	h.eng.Update(d)
	h.stepUntil(time.Second, "RUNNING", func() bool {
		r, _ := h.rec.last(d.UID)
		return r.LastStatus == ecsv1alpha1.TaskRunning
	})
	for _, name := range []string{"db", "app"} {
		if n := h.rt.Count("Start", id(d, name)); n != 1 {
			t.Errorf("%s started %d times, want once", name, n)
		}
	}
	if n := h.rt.Count("Pull", ""); n != 2 {
		t.Errorf("%d pulls, want the 2 before the restart only", n)
	}
}

func TestRecoverWhileAway(t *testing.T) {
	tests := []struct {
		name       string
		meanwhile  func(t *testing.T, rt *fake.Runtime, d Desired)
		update     func(d Desired) Desired
		wantCode   ecsv1alpha1.StopCode
		wantReason string
		wantApp    func(t *testing.T, app ecsv1alpha1.ContainerStatus)
	}{
		{
			name: "essential container exited",
			meanwhile: func(t *testing.T, rt *fake.Runtime, d Desired) {
				if err := rt.Exit(id(d, "app"), 2); err != nil {
					t.Fatal(err)
				}
			},
			wantCode: ecsv1alpha1.StopEssentialContainerExited, wantReason: reasonEssentialExited,
			wantApp: func(t *testing.T, app ecsv1alpha1.ContainerStatus) {
				if app.ExitCode == nil || *app.ExitCode != 2 {
					t.Errorf("app: %+v", app)
				}
			},
		},
		{
			name: "container removed behind the agent's back",
			meanwhile: func(t *testing.T, rt *fake.Runtime, d Desired) {
				if err := rt.Delete(context.Background(), id(d, "app")); err != nil {
					t.Fatal(err)
				}
			},
			wantCode: ecsv1alpha1.StopEssentialContainerExited, wantReason: reasonEssentialExited,
			wantApp: func(t *testing.T, app ecsv1alpha1.ContainerStatus) {
				if app.Reason != reasonLost || app.LastStatus != ecsv1alpha1.ContainerStopped {
					t.Errorf("app: %+v", app)
				}
			},
		},
		{
			name:       "the control plane stopped the task",
			update:     func(d Desired) Desired { return stopped(d, ecsv1alpha1.StopInstanceUnreachable, "") },
			wantCode:   ecsv1alpha1.StopInstanceUnreachable,
			wantReason: "Container instance was unreachable",
			wantApp: func(t *testing.T, app ecsv1alpha1.ContainerStatus) {
				if app.ExitCode == nil || *app.ExitCode != fake.ExitSIGTERM {
					t.Errorf("app: %+v", app)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			d := runToRunning(t, h)
			last, _ := h.rec.last(d.UID)
			h.kill()
			if tc.meanwhile != nil {
				tc.meanwhile(t, h.rt, d)
			}
			h.start()
			d.Status = apiStatus(last)
			if tc.update != nil {
				d = tc.update(d)
			}
			h.eng.Update(d)
			r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
			if r.StopCode != tc.wantCode || r.StoppedReason != tc.wantReason {
				t.Errorf("stop: %s", dump(r))
			}
			tc.wantApp(t, containerOf(r, "app"))
			if n := h.rt.Count("Start", ""); n != 2 {
				t.Errorf("%d starts, want the 2 before the restart", n)
			}
		})
	}
}

func TestRecoverExitBeforeUpdate(t *testing.T) {
	// The new engine has recovered the task's containers but has no Update for it
	// yet when app exits.
	h := newHarness(t)
	d := runToRunning(t, h)
	last, _ := h.rec.last(d.UID)
	h.restart()
	h.waitUntil("recovered", func() bool { return len(h.eng.Unclaimed()) == 1 })
	if err := h.rt.Exit(id(d, "app"), 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the exit reach the engine first
	d.Status = apiStatus(last)
	h.eng.Update(d)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || exitCode(r, "app") != 5 {
		t.Errorf("stop: %s", dump(r))
	}
}

func TestStopWithoutTaskDefinition(t *testing.T) {
	// After a restart the agent cannot read the task's revision any more, but the
	// control plane wants it stopped: the containers found in the runtime are.
	h := newHarness(t)
	d := runToRunning(t, h)
	last, _ := h.rec.last(d.UID)
	h.restart()
	d = stopped(d, ecsv1alpha1.StopUserInitiated, "")
	d.Spec, d.Status = nil, apiStatus(last)
	h.eng.Update(d)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if exitCode(r, "app") != fake.ExitSIGTERM || exitCode(r, "db") != fake.ExitSIGTERM || r.StopCode != ecsv1alpha1.StopUserInitiated {
		t.Errorf("stop: %s", dump(r))
	}
}

func TestStopRetriesAfterARuntimeError(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	h.rt.FailStop(id(d, "app"), errors.New("shim unavailable"))
	h.eng.Update(stopped(d, "", ""))
	h.waitUntil("a failed stop", func() bool { return h.rt.Count("Stop", "") == 1 })
	h.rt.FailStop(id(d, "app"), nil)
	h.tick(retryBackoffMin)
	r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if exitCode(r, "app") != fake.ExitSIGTERM || h.rt.Count("Stop", "") != 2 {
		t.Errorf("stop: %s after %d stops", dump(r), h.rt.Count("Stop", ""))
	}
}

func TestRecoverStoppedTaskStaysQuiet(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	h.eng.Update(stopped(d, "", ""))
	last := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	h.restart()
	d = stopped(d, "", "")
	d.Status = apiStatus(last)
	h.eng.Update(d)
	h.waitUntil("the task known again", func() bool { return len(h.eng.Tasks()) == 1 })
	time.Sleep(20 * time.Millisecond)
	if got := h.rec.all(d.UID); len(got) != 0 {
		t.Errorf("reports for a STOPPED task after a restart: %v", h.rec.statuses(d.UID))
	}
}

func TestForget(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	scratch := filepath.Join(h.dir, "volumes", string(d.UID), "scratch")
	logs := filepath.Join(h.dir, "logs", "shop_web-1_"+string(d.UID))
	for _, dir := range []string{scratch, logs} {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	reports := len(h.rec.all(d.UID))

	h.eng.Forget(d.UID)
	h.waitUntil("the task forgotten", func() bool { return len(h.eng.Tasks()) == 0 })
	if ids := h.rt.IDs(); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	for _, dir := range []string{filepath.Dir(scratch), logs} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", dir, err)
		}
	}
	if diff := cmp.Diff([]string{id(d, "app"), id(d, "db")}, h.rt.CallIDs("Stop")); diff != "" {
		t.Errorf("stops in reverse dependency order (-want +got):\n%s", diff)
	}
	// A late Update of the deleted task does not start it again.
	h.eng.Update(d)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.rec.all(d.UID)); n != reports {
		t.Errorf("%d reports after Forget", n-reports)
	}
	if ids := h.rt.IDs(); len(ids) != 0 || h.rt.Count("Start", "") != 2 {
		t.Errorf("the forgotten task ran again: %v", ids)
	}
}

func TestForgetOrphansAfterRestart(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	h.restart()
	h.waitUntil("recovered", func() bool { return len(h.eng.Unclaimed()) == 1 })
	if diff := cmp.Diff([]types.UID{d.UID}, h.eng.Unclaimed()); diff != "" {
		t.Fatalf("Unclaimed() (-want +got):\n%s", diff)
	}
	h.eng.Forget(d.UID)
	h.waitUntil("orphans removed", func() bool { return len(h.rt.IDs()) == 0 })
	h.waitUntil("nothing unclaimed", func() bool { return len(h.eng.Unclaimed()) == 0 })
	if _, err := os.Stat(filepath.Join(h.dir, "logs", "shop_web-1_"+string(d.UID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("logs of the orphan left: %v", err)
	}
}

func TestCleanup(t *testing.T) {
	h := newHarness(t)
	d := runToRunning(t, h)
	h.eng.Update(stopped(d, "", ""))
	h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	ctx := context.Background()

	if err := h.eng.Cleanup(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(h.rt.IDs()); n != 2 {
		t.Fatalf("%d containers after an early Cleanup, want 2", n)
	}
	h.clk.Step(2 * time.Hour)
	if err := h.eng.Cleanup(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ids := h.rt.IDs(); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "volumes", string(d.UID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volumes left: %v", err)
	}
	if got := h.eng.Tasks(); len(got) != 1 || got[0].LastStatus != ecsv1alpha1.TaskStopped {
		t.Errorf("Tasks() after Cleanup = %v, want the STOPPED task until Forget", got)
	}
	deletes := h.rt.Count("Delete", "")
	if err := h.eng.Cleanup(ctx, time.Hour); err != nil || h.rt.Count("Delete", "") != deletes {
		t.Errorf("a second Cleanup deleted again (%v)", err)
	}
}

func TestEventStreamBreaks(t *testing.T) {
	h := newHarness(t)
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

	h.rt.BreakEvents(errors.New("connection reset"))
	h.waitUntil("the stream closed", func() bool { return h.rt.Subscribers() == 0 })
	if err := h.rt.Exit(id(d, "app"), 4); err != nil { // nobody hears this exit
		t.Fatal(err)
	}
	h.tick(eventsBackoffMin)
	r := h.waitFor(d.UID, "STOPPED after the resync", hasStatus(ecsv1alpha1.TaskStopped))
	if r.StopCode != ecsv1alpha1.StopEssentialContainerExited || exitCode(r, "app") != 4 {
		t.Errorf("stop: %s", dump(r))
	}
	if h.rt.Subscribers() != 1 {
		t.Errorf("%d subscribers, want 1", h.rt.Subscribers())
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})

	h := newHarness(t, func(c *Config) { c.Log = log })
	spec := taskDef().Container("app", image("app")).Obj().Spec
	d := desired("web-1", &spec)
	d.Env = map[string]map[string]string{"app": {"DB_PASSWORD": "hunter2-secret"}}
	d.Auth = map[string]*runtime.Auth{"registry.example": {Username: "robot", Password: "registry-secret"}}
	h.eng.Update(d)
	h.waitFor(d.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	h.eng.Update(stopped(d, "", ""))
	h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))

	s, _ := h.rt.Spec(id(d, "app"))
	if !slices.Contains([]string(s.Env), "DB_PASSWORD=hunter2-secret") {
		t.Errorf("container env = %v", s.Env)
	}
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, "DB_PASSWORD") {
		t.Errorf("the logs do not show the spec at all; the test proves nothing:\n%s", logs)
	}
	for _, secret := range []string{"hunter2-secret", "registry-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret value is in the logs:\n%s", logs)
		}
	}
	for k, v := range s.Labels {
		if strings.Contains(v, "hunter2") || strings.Contains(k, "DB_PASSWORD") {
			t.Errorf("a secret is in label %s=%s", k, v)
		}
	}
}
