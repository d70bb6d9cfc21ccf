package engine

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// waitTimeout bounds every wait of a test in real time.
const waitTimeout = 10 * time.Second

// harness runs an engine on a fake runtime and a fake clock. restart replaces the
// engine as an agent restart would (kill -9: containers keep running).
type harness struct {
	t   *testing.T
	clk *clocktesting.FakeClock
	rt  *fake.Runtime
	dir string
	log logr.Logger

	// configure edits the engine's Config before each start.
	configure func(*Config)

	eng    *Engine
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, configure ...func(*Config)) *harness {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	h := &harness{
		t: t, clk: clk, rt: fake.New(fake.WithClock(clk)), dir: t.TempDir(),
		log:       testr.NewWithOptions(t, testr.Options{Verbosity: 1}),
		configure: func(*Config) {},
	}
	if len(configure) > 0 {
		h.configure = configure[0]
	}
	h.start()
	t.Cleanup(h.kill)
	return h
}

// start makes a new engine on the same runtime and runs it.
func (h *harness) start() {
	h.create()
	h.run()
}

// create makes a new engine on the same runtime, not running yet.
func (h *harness) create() {
	h.rec = &recorder{t: h.t, byUID: map[types.UID][]Report{}}
	cfg := Config{Runtime: h.rt, StateDir: h.dir, Clock: h.clk, Report: h.rec.record, Log: h.log}
	h.configure(&cfg)
	h.eng = New(cfg)
}

// run runs the engine made by create.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	eng, done := h.eng, h.done
	go func() { done <- eng.Run(ctx) }()
}

// kill stops the engine without touching the containers.
func (h *harness) kill() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) restart() {
	h.kill()
	h.start()
}

// waitFor polls the task's last report until cond holds.
func (h *harness) waitFor(uid types.UID, what string, cond func(Report) bool) Report {
	h.t.Helper()
	var last Report
	ok := poll(func() bool {
		var have bool
		last, have = h.rec.last(uid)
		return have && cond(last)
	})
	if !ok {
		h.t.Fatalf("timed out waiting for %s; last report: %s", what, dump(last))
	}
	return last
}

// waitUntil polls cond.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	if !poll(cond) {
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// stepUntil advances the fake clock by d whenever something waits on it, until cond
// holds. It returns how much simulated time passed.
func (h *harness) stepUntil(d time.Duration, what string, cond func() bool) time.Duration {
	h.t.Helper()
	start := h.clk.Now()
	ok := poll(func() bool {
		if cond() {
			return true
		}
		if h.clk.HasWaiters() {
			h.clk.Step(d)
		}
		return false
	})
	if !ok {
		h.t.Fatalf("timed out waiting for %s (simulated %s)", what, h.clk.Since(start))
	}
	return h.clk.Since(start)
}

// tick waits until something waits on the clock, then advances it by d.
func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	h.waitUntil("a clock waiter", h.clk.HasWaiters)
	h.clk.Step(d)
}

func poll(cond func() bool) bool {
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// recorder keeps every report per task and fails the test when a report moves
// lastStatus backwards or repeats the previous one.
type recorder struct {
	t     *testing.T
	mu    sync.Mutex
	byUID map[types.UID][]Report
}

func (r *recorder) record(rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.byUID[rep.UID]
	if n := len(prev); n > 0 {
		if rep.LastStatus.Index() < prev[n-1].LastStatus.Index() {
			r.t.Errorf("lastStatus moved backwards from %s to %s", prev[n-1].LastStatus, rep.LastStatus)
		}
		if reflect.DeepEqual(prev[n-1], rep) {
			r.t.Errorf("report sent without a change: %s", dump(rep))
		}
	}
	r.byUID[rep.UID] = append(prev, rep)
}

func (r *recorder) last(uid types.UID) (Report, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reps := r.byUID[uid]
	if len(reps) == 0 {
		return Report{}, false
	}
	return reps[len(reps)-1].DeepCopy(), true
}

func (r *recorder) all(uid types.UID) []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Report(nil), r.byUID[uid]...)
}

// statuses is the lastStatus of each report of the task.
func (r *recorder) statuses(uid types.UID) []ecsv1alpha1.TaskStatusValue {
	var out []ecsv1alpha1.TaskStatusValue
	for _, rep := range r.all(uid) {
		out = append(out, rep.LastStatus)
	}
	return out
}

func dump(r Report) string {
	s := fmt.Sprintf("lastStatus=%s health=%s stopCode=%s stoppedReason=%q", r.LastStatus, r.HealthStatus, r.StopCode, r.StoppedReason)
	for _, c := range r.Containers {
		exit := "-"
		if c.ExitCode != nil {
			exit = fmt.Sprint(*c.ExitCode)
		}
		s += fmt.Sprintf(" [%s %s health=%s exit=%s reason=%q restarts=%d]", c.Name, c.LastStatus, c.HealthStatus, exit, c.Reason, c.RestartCount)
	}
	return s
}

// Report predicates.

func hasStatus(s ecsv1alpha1.TaskStatusValue) func(Report) bool {
	return func(r Report) bool { return r.LastStatus == s }
}

func containerOf(r Report, name string) ecsv1alpha1.ContainerStatus {
	for _, c := range r.Containers {
		if c.Name == name {
			return c
		}
	}
	return ecsv1alpha1.ContainerStatus{}
}

func containerIs(name string, s ecsv1alpha1.ContainerStatusValue) func(Report) bool {
	return func(r Report) bool { return containerOf(r, name).LastStatus == s }
}

func exitCode(r Report, name string) int32 {
	c := containerOf(r, name)
	if c.ExitCode == nil {
		return -1
	}
	return *c.ExitCode
}

// Task definitions and desired states.

// taskDef starts a host-network task definition.
func taskDef() *testobj.TaskDefinitionBuilder {
	return testobj.TaskDefinition("shop", "web").Network(ecsv1alpha1.NetworkModeHost)
}

func image(name string) string { return "registry.example/shop/" + name + ":1" }

func checked(interval, retries, startPeriod int32, cmd ...string) func(*ecsv1alpha1.ContainerDefinition) {
	return func(c *ecsv1alpha1.ContainerDefinition) {
		c.HealthCheck = &ecsv1alpha1.HealthCheck{
			Command: cmd, Interval: ptr.To(interval), Timeout: ptr.To[int32](2), Retries: ptr.To(retries), StartPeriod: ptr.To(startPeriod),
		}
	}
}

func notEssential(c *ecsv1alpha1.ContainerDefinition) { c.Essential = ptr.To(false) }

func desired(name string, spec *ecsv1alpha1.TaskDefinitionSpec) Desired {
	return Desired{
		Task:          types.NamespacedName{Namespace: "shop", Name: name},
		UID:           types.UID("uid-" + name),
		Revision:      "web:1",
		Spec:          spec,
		DesiredStatus: ecsv1alpha1.DesiredRunning,
	}
}

func stopped(d Desired, code ecsv1alpha1.StopCode, reason string) Desired {
	d.DesiredStatus, d.StopCode, d.StopReason = ecsv1alpha1.DesiredStopped, code, reason
	return d
}

// id is the runtime ID of a container of the task d.
func id(d Desired, container string) string { return runtime.ContainerID(string(d.UID), container) }

// apiStatus is what the API shows after the agent applied r: times at second
// precision, as metav1.Time serializes them.
func apiStatus(r Report) *ecsv1alpha1.TaskStatus {
	mt := func(t *time.Time) *metav1.Time {
		if t == nil {
			return nil
		}
		v := metav1.NewTime(t.Truncate(time.Second))
		return &v
	}
	st := &ecsv1alpha1.TaskStatus{
		LastStatus: r.LastStatus, HealthStatus: r.HealthStatus, StopCode: r.StopCode, StoppedReason: r.StoppedReason,
		PullStartedAt: mt(r.PullStartedAt), PullStoppedAt: mt(r.PullStoppedAt), StartedAt: mt(r.StartedAt),
		StoppingAt: mt(r.StoppingAt), StoppedAt: mt(r.StoppedAt),
	}
	for _, c := range r.Containers {
		st.Containers = append(st.Containers, *c.DeepCopy())
	}
	return st
}
