package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berthdev/berth/agent/runtime"
)

// started returns a runtime on a fake clock with container id created from image and
// started, and an event stream.
func started(t *testing.T, r *Runtime, id, image string) (uint32, <-chan runtime.Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events, _ := r.Events(ctx)
	if _, err := r.Pull(ctx, image, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, spec(id, image)); err != nil {
		t.Fatal(err)
	}
	pid, err := r.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return pid, events
}

// nextEvent returns the next event, failing after a wall-clock second: a behaviour's
// exit follows the fake clock's Step in a goroutine of its own.
func nextEvent(t *testing.T, events <-chan runtime.Event) runtime.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return runtime.Event{}
}

func waitForTimers(t *testing.T, clk *clocktesting.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clock waiters, want %d", clk.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBehaviorExitAfter(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk))
	r.SetBehavior("shop/batch", Behavior{ExitAfter: time.Minute, ExitCode: 3})
	pid, events := started(t, r, "c1", "registry.example/shop/batch:1")

	clk.Step(59 * time.Second)
	if info, _ := r.Info("c1"); info.Status != runtime.StatusRunning {
		t.Fatalf("before ExitAfter: %+v", info)
	}
	clk.Step(time.Second)
	ev := nextEvent(t, events)
	if ev.Type != runtime.EventExit || ev.Pid != pid || ev.Exit.Code != 3 || !ev.Exit.ExitedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("exit event %+v (%+v), want pid %d exiting 3 at ExitAfter", ev, ev.Exit, pid)
	}
	if clk.HasWaiters() {
		t.Errorf("%d timers left after the exit", clk.Waiters())
	}

	// A restart counts down again.
	pid2, err := r.Start(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	if ev := nextEvent(t, events); ev.Pid != pid2 || ev.Exit.Code != 3 {
		t.Errorf("exit after the restart %+v", ev)
	}
}

func TestBehaviorOOMAfter(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk))
	r.SetBehavior("hog", Behavior{OOMAfter: time.Second, ExitAfter: time.Hour})
	pid, events := started(t, r, "c1", "registry.example/hog:1")
	clk.Step(time.Second)
	if ev := nextEvent(t, events); ev.Type != runtime.EventOOM || ev.ContainerID != "c1" {
		t.Errorf("first event %+v, want the OOM kill", ev)
	}
	if ev := nextEvent(t, events); ev.Type != runtime.EventExit || ev.Pid != pid || ev.Exit.Code != ExitSIGKILL || !ev.Exit.OOMKilled {
		t.Errorf("exit event %+v (%+v), want 137 OOMKilled", ev, ev.Exit)
	}
	if clk.HasWaiters() {
		t.Errorf("the ExitAfter timer outlived the process")
	}
}

func TestBehaviorTimersReleased(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk), Lean())
	r.SetBehavior("app", Behavior{ExitAfter: time.Hour, OOMAfter: 2 * time.Hour})
	ctx := context.Background()
	started(t, r, "stopped", "registry.example/app:1")
	started(t, r, "deleted", "registry.example/app:1")
	if n := clk.Waiters(); n != 4 {
		t.Fatalf("%d timers, want 2 per process", n)
	}
	if _, err := r.Stop(ctx, "stopped", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if n := clk.Waiters(); n != 0 {
		t.Errorf("%d timers left after stop and delete", n)
	}
}

func TestBehaviorStopExecUser(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk))
	zero := 0
	r.SetBehavior("shop/", Behavior{TermExitCode: &zero, User: "1000", Exec: &ExecResult{Code: 1, Output: "sick"}})
	r.SetBehavior("shop/stubborn", Behavior{IgnoreSIGTERM: true, User: "nobody", Exec: &ExecResult{Hang: true}})
	ctx := context.Background()

	started(t, r, "polite", "registry.example/shop/polite:1")
	if code, out, err := r.Exec(ctx, "polite", []string{"check"}, time.Second); code != 1 || string(out) != "sick" || err != nil {
		t.Errorf("exec = %d %q %v, want the behaviour's result", code, out, err)
	}
	r.ScriptExec("polite", ExecResult{Code: 0, Output: "fine"})
	if code, out, _ := r.Exec(ctx, "polite", []string{"check"}, time.Second); code != 0 || string(out) != "fine" {
		t.Errorf("scripted exec = %d %q, want the script over the behaviour", code, out)
	}
	if es, err := r.Stop(ctx, "polite", time.Minute); err != nil || es.Code != 0 {
		t.Errorf("stop = %+v, %v; want the behaviour's TermExitCode 0", es, err)
	}

	// The most recent matching behaviour wins; a per-container setter wins over it.
	started(t, r, "stubborn", "registry.example/shop/stubborn:1")
	done := make(chan runtime.ExitStatus)
	go func() {
		es, _ := r.Stop(ctx, "stubborn", 10*time.Second)
		done <- es
	}()
	waitForTimers(t, clk, 1)
	clk.Step(10 * time.Second)
	if es := <-done; es.Code != ExitSIGKILL {
		t.Errorf("stop of a container ignoring SIGTERM = %+v, want SIGKILL", es)
	}
	if _, err := r.Start(ctx, "stubborn"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetIgnoreSIGTERM("stubborn", false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTermExitCode("stubborn", 9); err != nil {
		t.Fatal(err)
	}
	if es, err := r.Stop(ctx, "stubborn", time.Minute); err != nil || es.Code != 9 {
		t.Errorf("stop with per-container settings = %+v, %v; want 9 at once", es, err)
	}

	for ref, want := range map[string]string{"registry.example/shop/polite:1": "1000", "registry.example/shop/stubborn:1": "nobody"} {
		if got, err := r.ImageUser(ctx, ref); err != nil || got != want {
			t.Errorf("ImageUser(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	r.AddImage("plain:1")
	if got, err := r.ImageUser(ctx, "docker.io/library/plain:1"); err != nil || got != "" {
		t.Errorf("ImageUser of an image without a behaviour = %q, %v; want root", got, err)
	}
	if _, err := r.ImageUser(ctx, "registry.example/shop/never:1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("ImageUser of an image not pulled: %v, want ErrNotFound", err)
	}
	// Setting a substring again replaces its behaviour.
	r.SetBehavior("shop/", Behavior{User: "2000"})
	if got, _ := r.ImageUser(ctx, "registry.example/shop/polite:1"); got != "2000" {
		t.Errorf("after SetBehavior again: %q, want 2000", got)
	}
}

func TestLean(t *testing.T) {
	r := New(Lean())
	started(t, r, "c1", "app:1")
	if calls, ids, n := r.Calls(), r.CallIDs("Start"), r.Count("Start", ""); len(calls) != 0 || len(ids) != 0 || n != 0 {
		t.Errorf("calls recorded: %v %v %d", calls, ids, n)
	}
	if s, ok := r.Spec("c1"); !ok || s.ID != "c1" || s.Image == "" || s.Env != nil || s.Labels != nil {
		t.Errorf("Spec = %+v, %v; want only the ID and the image kept", s, ok)
	}
}

func TestWithPullLatency(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk), WithPullLatency(3*time.Second))
	done := make(chan error)
	go func() {
		_, err := r.Pull(context.Background(), "app:1", runtime.PullDefault, nil)
		done <- err
	}()
	waitForTimers(t, clk, 1)
	clk.Step(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("pull returned before its latency: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	clk.Step(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := r.Pull(ctx, "app:1", runtime.PullPreferCached, nil)
		done <- err
	}()
	waitForTimers(t, clk, 1)
	cancel()
	var ie *runtime.ImageError
	if err := <-done; !errors.As(err, &ie) || ie.Kind != runtime.ImageUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted pull: %v, want an Unavailable *ImageError wrapping the context's error", err)
	}
}

func TestNormalizedReferences(t *testing.T) {
	ctx := context.Background()
	r := New()
	img, err := r.Pull(ctx, "app", runtime.PullDefault, nil)
	if err != nil || img.Ref != "docker.io/library/app:latest" || img.Digest != Digest("app:latest") {
		t.Fatalf("Pull(app) = %+v, %v; want docker.io/library/app:latest", img, err)
	}
	info, err := r.Create(ctx, spec("c1", "docker.io/library/app"))
	if err != nil || info.Image != "docker.io/library/app:latest" {
		t.Errorf("Create = %+v, %v; want the normalized image", info, err)
	}
	// PullOnce trusts only what the runtime pulled itself.
	r.AddImage("imported:1")
	r.FailPull("imported:1", &runtime.ImageError{Kind: runtime.ImageUnavailable})
	if _, err := r.Pull(ctx, "imported:1", runtime.PullOnce, nil); err == nil {
		t.Error("PullOnce used an image it did not pull")
	}
	if img, err := r.Pull(ctx, "imported:1", runtime.PullPreferCached, nil); err != nil || !img.Cached {
		t.Errorf("PullPreferCached = %+v, %v; want the imported image", img, err)
	}
}
